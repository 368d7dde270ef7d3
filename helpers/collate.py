"""03 collate: the masking collator, a fixed pre-masked evaluation set, and what masking did.

``DataCollatorForLanguageModeling`` picks ``mlm_probability`` of the tokens (never special ones);
of those, 80% become the mask token, 10% a random token and 10% stay as they were; ``labels``
hold the original token there and -100 elsewhere, so the loss counts only the picked tokens.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any

import pandas as pd
import torch
from datasets import Dataset
from transformers import DataCollatorForLanguageModeling, default_data_collator

from . import progress
from .config import Settings

IGNORE = -100  # the label PyTorch's cross-entropy skips


def make_collator(tokenizer, settings: Settings, seed: int | None = None) -> DataCollatorForLanguageModeling:
    """The guide's collator; with ``seed`` it draws its masks from its own generator, repeatably.

    No ``pad_token = eos_token`` here: that line belongs to the causal-LM guide, and every
    masked-LM tokenizer has its own pad token.
    """
    return DataCollatorForLanguageModeling(tokenizer, mlm_probability=settings.mlm_probability, seed=seed)


@dataclass
class TrainEvalCollator:
    """Masks training batches afresh each time; passes pre-masked evaluation rows through as they are.

    Trainer uses one collator for both; fresh masks help training, fixed ones make evaluation comparable.
    Training batch number ``batches`` of process ``rank`` is masked from its own seed (``batch_seed``): data-
    parallel processes mask different positions, a rerun the same ones, and a run resumed from a checkpoint
    (``batches`` set to where it was) the same ones as the uninterrupted run. A shared random stream would
    not do the last: Trainer's data loader draws one batch ahead, so the stream a checkpoint saves is one
    batch further on than the batch that comes next.
    """

    tokenizer: Any
    settings: Settings
    rank: int = 0
    batches: int = 0  # training batches masked so far

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        if "labels" in features[0]:
            return default_data_collator(features)
        seed = batch_seed(self.settings.seed, self.rank, self.batches)
        self.batches += 1
        return make_collator(self.tokenizer, self.settings, seed=seed)(features)


def batch_seed(seed: int, rank: int, batch: int) -> int:
    """One seed per (run seed, process, training batch)."""
    return zlib.crc32(f"{seed}:{rank}:{batch}".encode())


def make_eval_masks(test_blocks: Dataset, tokenizer, settings: Settings, batch_size: int = 256) -> Dataset:
    """The test blocks masked once with the seed: every evaluation then scores the same positions."""
    masker = make_collator(tokenizer, settings, seed=settings.seed)
    columns: dict[str, list] = {}
    for start in progress.bar(range(0, len(test_blocks), batch_size), desc="Masking the test blocks"):
        rows = [test_blocks[i] for i in range(start, min(start + batch_size, len(test_blocks)))]
        batch = masker(rows)
        for key, value in batch.items():
            columns.setdefault(key, []).extend(value.tolist())
    return Dataset.from_dict(columns)


def masking_rates(original: torch.Tensor, masked: torch.Tensor, labels: torch.Tensor, tokenizer) -> dict[str, float]:
    """Measured rates: the share of ordinary tokens picked, and of the picked, masked / replaced / kept."""
    special = torch.zeros_like(original, dtype=torch.bool)
    for token_id in tokenizer.all_special_ids:
        special |= original == token_id
    picked = labels != IGNORE
    n_picked = int(picked.sum())
    became_mask = picked & (masked == tokenizer.mask_token_id)
    kept = picked & (masked == original)
    return {
        "picked": n_picked / int((~special).sum()),
        "masked": int(became_mask.sum()) / n_picked,
        "replaced": int((picked & ~became_mask & ~kept).sum()) / n_picked,
        "kept": int(kept.sum()) / n_picked,
    }


def measure(test_blocks: Dataset, eval_masks: Dataset, tokenizer) -> dict[str, float]:
    """``masking_rates`` over a whole masked set, against the blocks it was made from."""
    return masking_rates(
        torch.tensor(test_blocks["input_ids"]),
        torch.tensor(eval_masks["input_ids"]),
        torch.tensor(eval_masks["labels"]),
        tokenizer,
    )


def expected_rates(settings: Settings) -> dict[str, float]:
    """What the collator is set to do (a random replacement can draw the original token: counted as kept)."""
    return {"picked": settings.mlm_probability, "masked": 0.8, "replaced": 0.1, "kept": 0.1}


def rates_table(measured: dict[str, float], expected: dict[str, float]) -> pd.DataFrame:
    """Measured against expected, one row a rate."""
    rows = [{"rate": k, "expected": p, "measured": round(measured[k], 4)} for k, p in expected.items()]
    return pd.DataFrame(rows).set_index("rate")


def within(measured: dict[str, float], expected: dict[str, float], tolerance: float) -> bool:
    """True when every measured rate lies within ``tolerance`` of its expected value."""
    return all(abs(measured[k] - expected[k]) <= tolerance for k in expected)


def token_table(original: list[int], masked: list[int], labels: list[int], tokenizer, n: int = 20) -> pd.DataFrame:
    """One block, token by token: what each token was, what the model sees, and what happened to it."""
    rows = []
    for position, (before, after, label) in enumerate(zip(original[:n], masked[:n], labels[:n])):
        if label == IGNORE:
            what = ""
        elif after == tokenizer.mask_token_id:
            what = "masked"
        elif after == before:
            what = "kept"
        else:
            what = "replaced"
        rows.append(
            {
                "position": position,
                "token": tokenizer.convert_ids_to_tokens(before),
                "model sees": tokenizer.convert_ids_to_tokens(after),
                "what": what,
                "label": tokenizer.convert_ids_to_tokens(label) if label != IGNORE else IGNORE,
            }
        )
    return pd.DataFrame(rows).set_index("position")
