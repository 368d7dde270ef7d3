"""05 evaluate, part two: the other text split three ways (the general model's, the control's, the held-out part), and
a linear probe of what the encoders hold.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import evaluate as hf_evaluate
import pandas as pd
import torch
import torch.nn.functional as F
from datasets import Dataset, DatasetDict

from . import collate, data, preprocess
from .config import Settings
from .preprocess import as_text
from .steps import GENERAL

HELD_OUT = 1 / 3  # of what the general stage leaves: a fifth of the other text, as 05 scores it


def other_text(settings: Settings) -> DatasetDict:
    """``ood_source`` split three ways with the general stage's seed: the general model's part (``general``), the
    control's (``control``) and the part 05 scores (``held_out``); no record in two."""
    split = dataclasses.replace(settings, seed=GENERAL["seed"], test_size=GENERAL["test_size"])
    parts = data.split_corpus(data.load_out_of_domain(settings), split)  # train: the general stage's; test: the rest
    rest = parts["test"].train_test_split(test_size=HELD_OUT, seed=GENERAL["seed"])
    return DatasetDict(general=parts["train"], control=rest["train"], held_out=rest["test"])


def other_blocks(settings: Settings, tokenizer) -> DatasetDict:
    """The control's part and the held-out part of ``other_text``, as blocks."""
    other = dataclasses.replace(settings, text_field="text")  # ood_source's column, whatever the corpus's is
    parts = other_text(settings)
    return preprocess.group_splits(preprocess.tokenize_splits(DatasetDict(
        control=parts["control"], held_out=parts["held_out"]), tokenizer, other), other)


def ood_masks(held_out_blocks: Dataset, tokenizer, settings: Settings, n_blocks: int) -> Dataset:
    """Fixed masks, drawn with the run's seed, over ``n_blocks`` of the held-out blocks."""
    sample = held_out_blocks.shuffle(seed=settings.seed).select(range(min(n_blocks, len(held_out_blocks))))
    return collate.make_eval_masks(sample, tokenizer, settings)


# --- a linear probe on frozen encoder states ------------------------------------------------------------------

def label_scores(predictions: list[int], references: list[int]) -> dict[str, float]:
    """Accuracy and macro-F1 through an ``evaluate`` module the course ships (the Hub's are out of reach offline)."""
    module = hf_evaluate.load(str(Path(__file__).with_name("label_accuracy.py")))
    return module.compute(predictions=predictions, references=references)


@torch.no_grad()
def encoder_states(model, tokenizer, texts: list[str], max_length: int = 128, batch_size: int = 64) -> torch.Tensor:
    """Each text's last hidden states averaged over its tokens (padding left out): one row a text."""
    model.eval()
    rows = []
    for start in range(0, len(texts), batch_size):
        batch = tokenizer(texts[start:start + batch_size], truncation=True, max_length=max_length, padding=True,
                          return_tensors="pt").to(model.device)
        hidden = model.base_model(**batch).last_hidden_state  # the encoder under the vocabulary head
        weights = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        rows.append(((hidden * weights).sum(1) / weights.sum(1)).float().cpu())
    return torch.cat(rows)


def linear_probe(train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor, l2: float = 1e-3) -> torch.Tensor:
    """Logistic regression on standardized features, fitted by L-BFGS from zeros (the same fit at every run); the test
    predictions. A linear model reads only what the features hold, so it measures the encoder."""
    mean, std = train_x.mean(0), train_x.std(0).clamp_min(1e-6)
    x, test = ((train_x - mean) / std).double(), ((test_x - mean) / std).double()
    weights = torch.zeros(x.shape[1], int(train_y.max()) + 1, dtype=torch.float64, requires_grad=True)
    bias = torch.zeros(weights.shape[1], dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([weights, bias], max_iter=200, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = F.cross_entropy(x @ weights + bias, train_y) + l2 * (weights ** 2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return (test @ weights + bias).argmax(1).detach()


def label_ids(splits: DatasetDict, label_field: str) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Each split's labels as class ids, and the class names (sorted, from both splits)."""
    names = sorted({str(v) for split in splits.values() for v in split[label_field]})
    index = {name: i for i, name in enumerate(names)}
    return {k: torch.tensor([index[str(v)] for v in split[label_field]]) for k, split in splits.items()}, names


def probes(splits: DatasetDict, settings: Settings, models: dict[str, Any], tokenizer) -> dict[str, Any] | None:
    """A probe per model, fitted on the training split's labels and scored on the test split's; None (said in one
    line) where the run has no labels."""
    if not settings.label_field or settings.label_field not in splits["train"].column_names:
        print(f"no probe: the corpus has no label column {settings.label_field!r} (label_field)")
        return None
    ids, names = label_ids(splits, settings.label_field)
    texts = {k: [as_text(t) for t in split[settings.text_field]] for k, split in splits.items()}
    majority = int(torch.bincount(ids["train"]).argmax())
    found: dict[str, Any] = {"classes": names, "test_records": len(ids["test"]),
                             "majority": label_scores([majority] * len(ids["test"]), ids["test"].tolist())}
    right = {}
    for name, model in models.items():
        states = {k: encoder_states(model, tokenizer, t, settings.block_size) for k, t in texts.items()}
        predicted = linear_probe(states["train"], ids["train"], states["test"])
        found[name] = label_scores(predicted.tolist(), ids["test"].tolist())
        right[name] = predicted == ids["test"]
    # the records only one of the two probes gets right: McNemar's counts
    found["base only"] = int((right["base"] & ~right["fine-tuned"]).sum())
    found["fine-tuned only"] = int((right["fine-tuned"] & ~right["base"]).sum())
    return found


def probe_table(probe: dict[str, Any]) -> pd.DataFrame:
    """Accuracy and macro-F1 of each encoder's probe, beside always guessing the commonest class; McNemar's counts."""
    rows = {name: {**probe[name], "right where the other is wrong": probe[f"{name} only"]} for name in ("base", "fine-tuned")}
    table = pd.DataFrame(rows | {"majority class": probe["majority"]}).T.rename(columns={"macro_f1": "macro-F1"})
    return table.round(3).astype({"right where the other is wrong": "Int64"})


def probe_metrics(probe: dict[str, Any] | None) -> dict[str, float | None]:
    """The probe's keys in ``metrics.json``; None for each when the run has none (no figure left from an earlier run)."""
    keys = {"probe_accuracy_before": ("base", "accuracy"), "probe_accuracy_after": ("fine-tuned", "accuracy"),
            "probe_macro_f1_before": ("base", "macro_f1"), "probe_macro_f1_after": ("fine-tuned", "macro_f1"),
            "probe_majority": ("majority", "accuracy")}
    return {key: probe[model][what] if probe else None for key, (model, what) in keys.items()}
