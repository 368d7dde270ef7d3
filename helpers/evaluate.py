"""05 evaluate: perplexity (``exp`` of the mean cross-entropy over every picked token, each counting once) and top-k
accuracy on the fixed masks, over every picked position and at each kind of picked position.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import evaluate as hf_evaluate  # the library; this module is helpers.evaluate
import torch
import torch.nn.functional as F
from datasets import Dataset
from torch.utils.data import DataLoader
from transformers import default_data_collator

from . import masked_head
from .collate import IGNORE

TOP_K = (1, 5)
KINDS = ("masked", "replaced", "kept")  # what a picked position shows the model: the mask token, another token, itself


@dataclass(frozen=True)
class Scores:
    """One model's figures on a set of masks: mean cross-entropy per picked token, and top-k accuracy."""

    loss: float
    tokens: int
    accuracy: dict[int, float] = field(default_factory=dict)  # k -> share of picked tokens among the first k guesses
    by_kind: dict[str, dict[int, float]] = field(default_factory=dict)  # the same, per kind of picked position

    @property
    def perplexity(self) -> float:
        return math.exp(self.loss)


def accuracy_metric() -> hf_evaluate.EvaluationModule:
    """Top-k accuracy as an ``evaluate`` module the course ships: the Hub's ``accuracy`` is out of reach offline."""
    return hf_evaluate.load(str(Path(__file__).with_name("top_k_accuracy.py")))


def kinds(input_ids: torch.Tensor, labels: torch.Tensor, mask_token_id: int) -> dict[str, torch.Tensor]:
    """Each kind of picked position: shown as the mask token, as another token, or as itself."""
    picked = labels != IGNORE
    masked, kept = picked & (input_ids == mask_token_id), picked & (input_ids == labels)
    return {"masked": masked, "replaced": picked & ~masked & ~kept, "kept": kept}


@torch.no_grad()
def score(model, eval_masks: Dataset, batch_size: int = 64, head_only_at_masks: bool = True,
          top_k: tuple[int, ...] = TOP_K, mask_token_id: int | None = None) -> Scores:
    """Loss and top-k accuracy over every picked token, in one pass; with ``mask_token_id``, the accuracy at each
    kind of picked position too. ``head_only_at_masks=False`` runs the head everywhere (the same figures, slower)."""
    fast = head_only_at_masks and masked_head.parts(model) is not None
    model.eval()
    device = next(model.parameters()).device
    metrics = {kind: accuracy_metric() for kind in ("all", *KINDS)} if top_k else {}
    total, count, seen = 0.0, 0, set()
    for batch in DataLoader(eval_masks.with_format("torch"), batch_size=batch_size, collate_fn=default_data_collator):
        batch = {k: v.to(device) for k, v in batch.items()}
        labels = batch.pop("labels")
        picked = labels != IGNORE
        if not picked.any():
            continue
        logits = masked_head.logits_at(model, batch, picked) if fast else \
            masked_head.standard_forward(model, **batch).logits[picked]
        total += float(F.cross_entropy(logits.float(), labels[picked], reduction="sum"))
        count += int(picked.sum())
        if not top_k:
            continue
        guesses = logits.topk(max(top_k), dim=-1).indices
        where = {"all": picked, **(kinds(batch["input_ids"], labels, mask_token_id) if mask_token_id is not None else {})}
        for kind, positions in where.items():
            rows = positions[picked]  # this kind's rows among the logits, which hold the picked positions only
            if rows.any():
                metrics[kind].add_batch(predictions=guesses[rows].tolist(), references=labels[picked][rows].tolist())
                seen.add(kind)
    if count == 0:
        raise ValueError("the masks hold no picked token to score: make them with collate.make_eval_masks")

    def computed(kind: str) -> dict[int, float]:
        result = metrics[kind].compute(k=top_k)
        return {k: result[f"top{k}_accuracy"] for k in top_k}

    return Scores(total / count, count, computed("all") if top_k else {},
                  {kind: computed(kind) for kind in KINDS if kind in seen})
