"""05 evaluate: perplexity on the fixed, pre-masked evaluation set, before and after fine-tuning.

Perplexity is ``exp`` of the mean cross-entropy over the masked tokens. The guide takes
``exp(trainer.evaluate()["eval_loss"])``: a mean of per-batch means, over masks drawn afresh at
every call. Here every token counts once and the masks are the same at every call.
"""

from __future__ import annotations

import math

import torch
from datasets import Dataset
from torch.utils.data import DataLoader
from transformers import default_data_collator

from . import masked_head, progress
from .collate import IGNORE


def masked_tokens(eval_masks: Dataset) -> int:
    """How many tokens the evaluation scores: those with a label."""
    return int((torch.tensor(eval_masks["labels"]) != IGNORE).sum())


@torch.no_grad()
def mean_loss(model, eval_masks: Dataset, batch_size: int = 64, head_only_at_masks: bool = True) -> float:
    """Mean cross-entropy per masked token over the whole evaluation set.

    ``head_only_at_masks`` runs the MLM head at the masked positions only (same figure, less work).
    """
    fast = head_only_at_masks and masked_head.supported(model)
    model.eval()
    device = next(model.parameters()).device
    loader = DataLoader(eval_masks.with_format("torch"), batch_size=batch_size, collate_fn=default_data_collator)
    total, count = 0.0, 0
    for batch in progress.bar(loader, desc="Evaluating"):
        batch = {k: v.to(device) for k, v in batch.items()}
        n = int((batch["labels"] != IGNORE).sum())
        if n == 0:
            continue  # no masked token: nothing to score (the model's own mean would be NaN)
        if fast:
            total += float(masked_head.loss(model, batch, reduction="sum"))
        else:
            total += float(masked_head.standard_forward(model, **batch).loss) * n  # a mean over this batch's masked tokens
        count += n
    if count == 0:
        raise ValueError("the evaluation set has no masked token to score: remake it with 03_collate's make_eval_masks")
    return total / count


def perplexity(model, eval_masks: Dataset, batch_size: int = 64, head_only_at_masks: bool = True) -> float:
    """``exp(mean_loss)``: how many tokens the model is, on average, as unsure between."""
    return math.exp(mean_loss(model, eval_masks, batch_size, head_only_at_masks))
