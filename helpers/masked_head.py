"""The MLM head applied only where the masks are (04 train, 05 evaluate, 06 infer).

A masked LM's loss looks at about 15% of the positions, yet the standard forward projects every
position onto the whole vocabulary (30,522 or 50,265 columns), most of a small model's arithmetic.
Running the encoder on every token and the head only on the picked positions gives the same loss,
exactly, for a fraction of the work. The weights are untouched: a model trained this way saves and
loads as a standard checkpoint.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

IGNORE = -100


def parts(model) -> tuple[nn.Module, nn.Module] | None:
    """(encoder, head) of a BERT- or RoBERTa-style masked LM, or None for another layout.

    None too for a model wrapped for data parallelism (DDP): its gradients are synchronised only
    through the wrapper's own forward, which runs the head everywhere.
    """
    encoder = getattr(model, getattr(model, "base_model_prefix", ""), None)
    head = getattr(model, "cls", None)  # BERT's
    if head is None:
        head = getattr(model, "lm_head", None)  # RoBERTa's
    return (encoder, head) if encoder is not None and head is not None else None


def supported(model) -> bool:
    return parts(model) is not None


def logits_at(model, batch: dict[str, torch.Tensor], positions: torch.Tensor) -> torch.Tensor:
    """Vocabulary logits at the ``positions`` (a boolean mask shaped like ``input_ids``) only: (picked, vocab)."""
    encoder, head = parts(model)
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    hidden = encoder(**inputs).last_hidden_state
    return head(hidden[positions])


def loss(model, batch: dict[str, torch.Tensor], reduction: str = "mean") -> torch.Tensor:
    """Cross-entropy over the labelled positions: what ``model(**batch).loss`` computes, head only where needed."""
    labels = batch["labels"]
    picked = labels != IGNORE
    logits = logits_at(model, batch, picked)
    return F.cross_entropy(logits.float(), labels[picked], reduction=reduction)
