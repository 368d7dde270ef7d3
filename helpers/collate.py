"""03 collate: the masking collator, the fixed evaluation masks, and what masking did to the blocks.

``DataCollatorForLanguageModeling`` picks each ordinary token with probability ``mlm_probability``; of those, 80%
become the mask token, 10% a random token and 10% stay; ``labels`` hold the original token there, -100 elsewhere.
"""

from __future__ import annotations

import dataclasses
import zlib
from typing import Any

import torch
from datasets import Dataset
from transformers import DataCollatorForLanguageModeling, TrainerCallback, default_data_collator

from .config import Settings, SettingsError
from .lesson import insert_random_mask

from .masked_head import IGNORE  # the label PyTorch's cross-entropy skips


def make_collator(tokenizer, settings: Settings, seed: int | None = None) -> DataCollatorForLanguageModeling:
    """The guide's collator; with ``whole_word_mask``, one that picks whole words and masks all their pieces."""
    if not settings.whole_word_mask:
        return DataCollatorForLanguageModeling(tokenizer=tokenizer, mlm_probability=settings.mlm_probability, seed=seed)
    if not tokenizer.is_fast:
        raise SettingsError("whole_word_mask=True needs a fast tokenizer, whose offsets give the word boundaries")
    return DataCollatorForLanguageModeling(tokenizer=tokenizer, mlm_probability=settings.mlm_probability, seed=seed,
                                           whole_word_mask=True, mask_replace_prob=1.0, random_replace_prob=0.0)


class SeededMasks(TrainerCallback):
    """04's collator and callback: fixed evaluation rows (labelled) pass through; training batch ``n`` of process ``rank``
    is masked from (seed, rank, n), so processes differ and a resumed run masks as the uninterrupted one would."""

    def __init__(self, collator: DataCollatorForLanguageModeling, seed: int) -> None:
        self.collator, self.seed, self.rank, self.batches = collator, seed, 0, 0

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        if "labels" in features[0]:
            return default_data_collator(features)
        seed = zlib.crc32(f"{self.seed}:{self.rank}:{self.batches}".encode())
        self.batches += 1
        return dataclasses.replace(self.collator, seed=seed)(features)

    def on_train_begin(self, args, state, control, train_dataloader=None, **kwargs) -> None:
        # one batch a step (the course does not accumulate); a stream draws its skipped batches again, through here
        streamed = isinstance(getattr(train_dataloader, "dataset", None), torch.utils.data.IterableDataset)
        self.rank, self.batches = args.process_index, 0 if streamed else state.global_step


def make_eval_masks(test_blocks: Dataset, tokenizer, settings: Settings) -> Dataset:
    """The test blocks masked once with the seed, with 03's ``insert_random_mask``."""
    return test_blocks.map(insert_random_mask, batched=True, remove_columns=test_blocks.column_names, desc="Masking",
                           fn_kwargs={"data_collator": make_collator(tokenizer, settings, seed=settings.seed)})


def masking_rates(original: torch.Tensor, masked: torch.Tensor, labels: torch.Tensor, tokenizer) -> dict[str, float]:
    """Measured: the share of ordinary tokens picked, and of the picked, the shares masked, replaced and kept."""
    special = torch.isin(original, torch.tensor(tokenizer.all_special_ids))
    picked = labels != IGNORE
    n_picked = int(picked.sum())
    became_mask = picked & (masked == tokenizer.mask_token_id)
    kept = picked & (masked == original)
    return {"picked": n_picked / int((~special).sum()), "masked": int(became_mask.sum()) / n_picked,
            "replaced": int((picked & ~became_mask & ~kept).sum()) / n_picked, "kept": int(kept.sum()) / n_picked}


def measure(test_blocks: Dataset, eval_masks: Dataset, tokenizer) -> dict[str, float]:
    """``masking_rates`` over a whole masked set, against the blocks it was made from."""
    return masking_rates(torch.tensor(test_blocks["input_ids"]), torch.tensor(eval_masks["input_ids"]),
                         torch.tensor(eval_masks["labels"]), tokenizer)


def expected_rates(settings: Settings) -> dict[str, float]:
    """What the collator is set to do (a random replacement that draws the original token counts as kept)."""
    if settings.whole_word_mask:
        return {"picked": settings.mlm_probability, "masked": 1.0, "replaced": 0.0, "kept": 0.0}
    return {"picked": settings.mlm_probability, "masked": 0.8, "replaced": 0.1, "kept": 0.1}


# --- whole words (03's last section) -------------------------------------------------------------------------

def words_of(block: dict[str, Any], labels: list[int], tokenizer) -> list[list[tuple[str, bool]]]:
    """A block's words, each a list of (piece, labelled), split where the collator splits them (by the offsets)."""
    special = tokenizer.get_special_tokens_mask(block["input_ids"], already_has_special_tokens=True)
    words: list[list[tuple[str, bool]]] = []
    end, after_special = None, True
    for (start, stop), is_special, token, label in zip(block["offset_mapping"], special,
                                                       tokenizer.convert_ids_to_tokens(block["input_ids"]), labels):
        if not is_special:
            if after_special or start != end:
                words.append([])
            words[-1].append((token, label != IGNORE))
        end, after_special = stop, is_special
    return words


def part_hidden(block: dict[str, Any], labels: list[int], tokenizer) -> list[str]:
    """The words of a block labelled only in part, their labelled pieces in brackets: the pieces in view give them away."""
    return [" ".join(f"[{piece}]" if labelled else piece for piece, labelled in word)
            for word in words_of(block, labels, tokenizer) if 0 < sum(labelled for _, labelled in word) < len(word)]
