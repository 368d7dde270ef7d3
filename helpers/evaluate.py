"""05 evaluate: perplexity and picked-token accuracy on the fixed evaluation masks, against reference points.

Perplexity is ``exp`` of the mean cross-entropy over the picked tokens (the 15% the collator chose, masked or not). The guide takes
``exp(trainer.evaluate()["eval_loss"])``: a mean of per-batch means, over masks drawn afresh at
every call. Here every token counts once and the masks are the same at every call. Two reference
points that need no training put the models' figures in scale: guessing uniformly over the vocabulary,
and a unigram table of the training tokens, which ignores the context altogether.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import evaluate as hf_evaluate  # the library; this module is helpers.evaluate
import pandas as pd
import torch
import torch.nn.functional as F
from datasets import Dataset
from torch.utils.data import DataLoader
from transformers import default_data_collator

from . import masked_head, progress
from .collate import IGNORE

TOP_K = (1, 5)
KINDS = ("masked", "replaced", "kept")  # what a picked position shows the model: the mask token, a random token, itself


@dataclass(frozen=True)
class Scores:
    """One model's figures on the evaluation masks: mean cross-entropy per picked token, and top-k accuracy."""

    loss: float
    tokens: int
    accuracy: dict[int, float] = field(default_factory=dict)  # k -> share of picked tokens among the first k guesses
    # kind ("masked", "replaced", "kept") -> k -> the same share among the picked positions of that kind
    accuracy_by_kind: dict[str, dict[int, float]] = field(default_factory=dict)

    @property
    def perplexity(self) -> float:
        return math.exp(self.loss)


def kinds(input_ids: torch.Tensor, labels: torch.Tensor, mask_token_id: int) -> dict[str, torch.Tensor]:
    """Each kind of picked position as a boolean tensor: shown as the mask token, as another token, or as itself."""
    picked = labels != IGNORE
    masked = picked & (input_ids == mask_token_id)
    kept = picked & (input_ids == labels)
    return {"masked": masked, "replaced": picked & ~masked & ~kept, "kept": kept}


def masked_tokens(eval_masks: Dataset) -> int:
    """How many tokens the evaluation scores: those with a label."""
    return int((torch.tensor(eval_masks["labels"]) != IGNORE).sum())


def accuracy_metric() -> hf_evaluate.EvaluationModule:
    """Top-k accuracy as an ``evaluate`` module, loaded from the installed package: the Hub's scripts are out of reach offline."""
    return hf_evaluate.load(str(Path(__file__).with_name("top_k_accuracy.py")))


def _add(metric: hf_evaluate.EvaluationModule, logits: torch.Tensor, labels: torch.Tensor, top_k: tuple[int, ...]) -> None:
    metric.add_batch(predictions=logits.topk(max(top_k), dim=-1).indices.tolist(), references=labels.tolist())


def _accuracy(metric: hf_evaluate.EvaluationModule, top_k: tuple[int, ...]) -> dict[int, float]:
    result = metric.compute(k=top_k)
    return {k: result[f"top{k}_accuracy"] for k in top_k}


@torch.no_grad()
def score(model, eval_masks: Dataset, batch_size: int = 64, head_only_at_masks: bool = True,
          top_k: tuple[int, ...] = TOP_K, mask_token_id: int | None = None) -> Scores:
    """Loss and top-k accuracy over every picked token of the evaluation set, in one pass.

    ``head_only_at_masks`` runs the MLM head at the picked positions only (same figures, less work);
    ``top_k=()`` skips the accuracy. With ``mask_token_id``, the accuracy is also kept apart for each kind of
    picked position (``KINDS``): at the mask token, the test that matters, and where the answer sits in the input.
    """
    fast = head_only_at_masks and masked_head.supported(model)
    model.eval()
    device = next(model.parameters()).device
    loader = DataLoader(eval_masks.with_format("torch"), batch_size=batch_size, collate_fn=default_data_collator)
    metric = accuracy_metric() if top_k else None
    by_kind = {kind: accuracy_metric() for kind in KINDS} if top_k and mask_token_id is not None else {}
    total, count, seen = 0.0, 0, []
    for batch in progress.bar(loader, desc="Evaluating"):
        batch = {k: v.to(device) for k, v in batch.items()}
        labels = batch.pop("labels")
        picked = labels != IGNORE
        if not picked.any():
            continue  # no picked token: nothing to score (the model's own mean would be NaN)
        if fast:
            logits = masked_head.logits_at(model, batch, picked)
        else:
            logits = masked_head.standard_forward(model, **batch).logits[picked]  # the head at every position
        total += float(F.cross_entropy(logits.float(), labels[picked], reduction="sum"))
        count += int(picked.sum())
        if metric is not None:
            _add(metric, logits, labels[picked], top_k)
        if by_kind:
            for kind, where in kinds(batch["input_ids"], labels, mask_token_id).items():
                among = where[picked]  # this kind's rows of the logits, which hold the picked positions only
                if among.any():
                    _add(by_kind[kind], logits[among], labels[picked][among], top_k)
                    seen += [kind] if kind not in seen else []
    if count == 0:
        raise ValueError("the evaluation set has no picked token to score: remake it with 03_collate's make_eval_masks")
    # a kind with no position in the set (whole-word masks replace none) is left out
    return Scores(total / count, count, _accuracy(metric, top_k) if metric is not None else {},
                  {kind: _accuracy(by_kind[kind], top_k) for kind in KINDS if kind in seen})


def mean_loss(model, eval_masks: Dataset, batch_size: int = 64, head_only_at_masks: bool = True) -> float:
    """Mean cross-entropy per picked token over the whole evaluation set (``score`` without the accuracy)."""
    return score(model, eval_masks, batch_size, head_only_at_masks, top_k=()).loss


def perplexity(model, eval_masks: Dataset, batch_size: int = 64, head_only_at_masks: bool = True) -> float:
    """``exp(mean_loss)``: how many tokens the model is, on average, as unsure between."""
    return math.exp(mean_loss(model, eval_masks, batch_size, head_only_at_masks))


def _labels(eval_masks: Dataset) -> torch.Tensor:
    labels = torch.tensor(eval_masks["labels"])
    return labels[labels != IGNORE]


STREAM_UNIGRAM_BLOCKS = 10_000  # a stream's training side has no end: the table counts its first blocks


def unigram(train_blocks, tokenizer, vocab_size: int) -> torch.Tensor:
    """Each token's share of the training blocks, add-one smoothed: the best guess that ignores the context.

    Special tokens are left out of the counts (the collator never picks them). A stream (``IterableDataset``)
    is counted over its first ``STREAM_UNIGRAM_BLOCKS`` blocks.
    """
    ids = train_blocks["input_ids"] if isinstance(train_blocks, Dataset) else \
        [block["input_ids"] for block in train_blocks.take(STREAM_UNIGRAM_BLOCKS)]
    counts = torch.bincount(torch.tensor(ids).flatten(), minlength=vocab_size).double()
    counts[tokenizer.all_special_ids] = 0
    return (counts + 1) / (counts.sum() + vocab_size)


def table_scores(probabilities: torch.Tensor, eval_masks: Dataset, top_k: tuple[int, ...] = TOP_K) -> Scores:
    """A context-free table's figures on the evaluation masks: it gives every picked token the same guesses."""
    labels = _labels(eval_masks)
    loss = float(-probabilities[labels].log().mean())
    metric = accuracy_metric()
    guesses = probabilities.topk(max(top_k)).indices.tolist()  # the same for every position
    metric.add_batch(predictions=[guesses] * len(labels), references=labels.tolist())
    return Scores(loss, len(labels), _accuracy(metric, top_k))


def uniform_scores(vocab_size: int, eval_masks: Dataset, top_k: tuple[int, ...] = TOP_K) -> Scores:
    """Guessing uniformly over the vocabulary: perplexity is the vocabulary size, top-k accuracy k / size."""
    return Scores(math.log(vocab_size), masked_tokens(eval_masks), {k: k / vocab_size for k in top_k})


def reference_table(scores: dict[str, Scores]) -> pd.DataFrame:
    """Perplexity and top-k accuracy, one row a model or reference point."""
    rows = {name: {"perplexity": round(s.perplexity, 1), **{f"top-{k} accuracy": round(a, 3) for k, a in s.accuracy.items()}}
            for name, s in scores.items()}
    return pd.DataFrame(rows).T


def _against(value: float, reference: float) -> str:
    """``value`` beside ``reference`` as a ratio in words: "3.0x below" or "1.2x above"."""
    return f"{reference / value:,.1f}x below" if value < reference else f"{value / reference:,.1f}x above"


def reading(scores: dict[str, Scores]) -> str:
    """Three or four sentences on the figures, written from them (``uniform``, ``unigram``, ``base``, ``fine-tuned``)."""
    uniform, table, base, tuned = (scores[k] for k in ("uniform", "unigram", "base", "fine-tuned"))
    v, u, b, t = uniform.perplexity, table.perplexity, base.perplexity, tuned.perplexity
    if b > u:
        first = (f"Before fine-tuning, the base model (perplexity {b:,.1f}) does worse than the unigram table ({u:,.1f}), "
                 f"which knows only how often each token occurs.")
    else:
        first = f"Even before fine-tuning, the base model (perplexity {b:,.1f}) beats the unigram table ({u:,.1f}): it reads the context."
    change = f"{b / t:,.1f}x lower than before" if t < b else "no lower than before"
    second = f"Fine-tuned, the model scores {t:,.1f}: {change}, and {_against(t, u)} the unigram table."
    if b > u > t:
        second += (f" Of that drop, the first {b / u:,.1f}x only brings it level with word counts; the remaining "
                   f"{u / t:,.1f}x is what it gets from the context.")
    one, five = min(tuned.accuracy), max(tuned.accuracy)
    third = (f"The fine-tuned model's first guess is right for {tuned.accuracy[one]:.1%} of the picked tokens (base model "
             f"{base.accuracy[one]:.1%}, unigram table {table.accuracy[one]:.1%}), and the right token is among its "
             f"first {five} for {tuned.accuracy[five]:.1%}.")
    fourth = (f"Guessing uniformly over the vocabulary would score {v:,.0f}, its size: the base model is {_against(b, v)} "
              f"that, the fine-tuned one {_against(t, v)}.")
    return " ".join([first, second, third, fourth])


def by_kind_table(scores: dict[str, Scores]) -> pd.DataFrame:
    """Top-k accuracy at each kind of picked position, one row a model: the mask token is the test that counts."""
    rows = {name: {(kind, f"top-{k}"): round(a, 3) for kind, by_k in s.accuracy_by_kind.items() for k, a in by_k.items()}
            for name, s in scores.items() if s.accuracy_by_kind}
    return pd.DataFrame(rows).T


def metrics(scores: dict[str, Scores]) -> dict[str, float]:
    """The figures ``metrics.json`` keeps: perplexity of the unigram table and both models, top-1 and top-5 accuracy,
    over every picked token and at the mask token alone."""
    base, tuned = scores["base"], scores["fine-tuned"]
    at_mask = {f"top{k}_accuracy_at_mask_{when}": s.accuracy_by_kind["masked"][k]
               for when, s in (("before", base), ("after", tuned)) if "masked" in s.accuracy_by_kind for k in TOP_K}
    return {
        "perplexity_before": base.perplexity,
        "perplexity_after": tuned.perplexity,
        "perplexity_unigram": scores["unigram"].perplexity,
        **{f"top{k}_accuracy_before": base.accuracy[k] for k in TOP_K},
        **{f"top{k}_accuracy_after": tuned.accuracy[k] for k in TOP_K},
        **at_mask,
    }


def ood_metrics(ood: dict[str, Scores]) -> dict[str, float]:
    """The out-of-domain figures ``metrics.json`` keeps: both models' perplexity and top-1 accuracy."""
    return {
        "perplexity_ood_before": ood["base"].perplexity,
        "perplexity_ood_after": ood["fine-tuned"].perplexity,
        "top1_accuracy_ood_before": ood["base"].accuracy[1],
        "top1_accuracy_ood_after": ood["fine-tuned"].accuracy[1],
    }


def kind_reading(scores: dict[str, Scores]) -> str:
    """The accuracy at each kind of picked position in words, from the figures: the mask token is the real test."""
    base, tuned = scores["base"].accuracy_by_kind, scores["fine-tuned"].accuracy_by_kind
    if "masked" not in tuned:
        return "These masks hold no mask token to score apart."
    text = (f"At the mask token, the first guess is right for {base['masked'][1]:.1%} of the positions before "
            f"fine-tuning and {tuned['masked'][1]:.1%} after")
    if "kept" in tuned:
        text += (f"; where the token was kept, for {base['kept'][1]:.1%} and {tuned['kept'][1]:.1%}, since the answer is "
                 f"in the input")
    return (text + f". The accuracy over every picked token, {scores['fine-tuned'].accuracy[1]:.1%} after, mixes these; "
            f"the mask token's figure is the one to quote (`top1_accuracy_at_mask_after` in `metrics.json`).")
