"""03 collate: the masking collator, a fixed pre-masked evaluation set, and what masking did.

``DataCollatorForLanguageModeling`` picks ``mlm_probability`` of the tokens (never special ones);
of those, 80% become the mask token, 10% a random token and 10% stay as they were; ``labels``
hold the original token there and -100 elsewhere, so the loss counts only the picked tokens.
"""

from __future__ import annotations

import dataclasses
import zlib
from dataclasses import dataclass
from typing import Any

import pandas as pd
import torch
from datasets import Dataset
from transformers import DataCollatorForLanguageModeling, default_data_collator

from . import progress
from .config import Settings, SettingsError

IGNORE = -100  # the label PyTorch's cross-entropy skips


def make_collator(tokenizer, settings: Settings, seed: int | None = None) -> DataCollatorForLanguageModeling:
    """The guide's collator; with ``seed`` it draws its masks from its own generator, repeatably.

    With ``whole_word_mask`` it picks words, not tokens, and hides every piece of a picked word. It finds
    words from the blocks' ``offset_mapping`` and replaces every picked piece with the mask token (the
    library supports no 80/10/10 with whole words; said here rather than left to its warning, which some
    releases raise as a TypeError instead, transformers#42144).
    No ``pad_token = eos_token`` here: that line belongs to the causal-LM guide, and every
    masked-LM tokenizer has its own pad token.
    """
    if not settings.whole_word_mask:
        return DataCollatorForLanguageModeling(tokenizer, mlm_probability=settings.mlm_probability, seed=seed)
    if not tokenizer.is_fast:
        raise SettingsError(f"whole_word_mask=True needs a fast tokenizer (word boundaries come from its offsets); "
                            f"{type(tokenizer).__name__} is not one: load the model's fast tokenizer or set whole_word_mask=False")
    return DataCollatorForLanguageModeling(tokenizer, mlm_probability=settings.mlm_probability, whole_word_mask=True,
                                           mask_replace_prob=1.0, random_replace_prob=0.0, seed=seed)


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
        if self.settings.whole_word_mask:
            need_offsets(features[0])
        seed = batch_seed(self.settings.seed, self.rank, self.batches)
        self.batches += 1
        return make_collator(self.tokenizer, self.settings, seed=seed)(features)


def batch_seed(seed: int, rank: int, batch: int) -> int:
    """One seed per (run seed, process, training batch)."""
    return zlib.crc32(f"{seed}:{rank}:{batch}".encode())


def need_offsets(block: dict[str, Any]) -> None:
    """Whole-word masking reads word boundaries from ``offset_mapping``: an error naming the fix when blocks lack it."""
    if "offset_mapping" not in block:
        raise SettingsError("whole_word_mask=True needs blocks that carry offset_mapping, and these do not "
                            "(made by an older course, or by a tokenizer that is not fast): rebuild them with 02_preprocess")


def make_eval_masks(test_blocks: Dataset, tokenizer, settings: Settings, batch_size: int = 256) -> Dataset:
    """The test blocks masked once with the seed: every evaluation then scores the same positions."""
    masker = make_collator(tokenizer, settings, seed=settings.seed)
    if settings.whole_word_mask:
        need_offsets(test_blocks[0])
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
    """What the collator is set to do (a random replacement can draw the original token: counted as kept).

    Whole-word masking picks ``mlm_probability`` of the words, so about as much of the tokens, and masks them all.
    """
    if settings.whole_word_mask:
        return {"picked": settings.mlm_probability, "masked": 1.0, "replaced": 0.0, "kept": 0.0}
    return {"picked": settings.mlm_probability, "masked": 0.8, "replaced": 0.1, "kept": 0.1}


def word_ids(offsets: list[list[int]], special: list[bool]) -> list[int]:
    """Each token's word number in a block, -1 for a special token, by the collator's rule: a token starts a new
    word when it does not start where the previous one ended (a space lies between), or follows a special token."""
    ids, word, previous_end, previous_special = [], -1, None, True
    for (start, end), is_special in zip(offsets, special):
        if is_special:
            ids.append(-1)
        else:
            if previous_special or start != previous_end:
                word += 1
            ids.append(word)
        previous_end, previous_special = end, is_special
    return ids


def words_of(block: dict[str, Any], labels: list, tokenizer) -> list[list[tuple[str, bool]]]:
    """A block's words, each as its pieces: (token, labelled), by the collator's word rule (a label of -100: not
    labelled)."""
    special = tokenizer.get_special_tokens_mask(block["input_ids"], already_has_special_tokens=True)
    tokens = tokenizer.convert_ids_to_tokens(block["input_ids"])
    words: dict[int, list[tuple[str, bool]]] = {}
    for word, token, label in zip(word_ids(block["offset_mapping"], special), tokens, labels):
        if word >= 0:
            words.setdefault(word, []).append((token, label != IGNORE))
    return list(words.values())


def word_rates(test_blocks: Dataset, eval_masks: Dataset, tokenizer) -> dict[str, float]:
    """Measured over whole words: the share of words picked, the pieces a picked word has, and the share of picked
    words labelled whole (every piece or none), of all and of those in several pieces, where token masking cheats."""
    words = picked = pieces = whole = long_picked = long_whole = 0
    for block, labels in zip(test_blocks, eval_masks["labels"]):
        found = words_of(block, labels, tokenizer)
        words += len(found)
        for word in found:
            labelled = [is_labelled for _, is_labelled in word]
            if any(labelled):
                picked += 1
                pieces += len(labelled)
                whole += all(labelled)
                if len(labelled) > 1:
                    long_picked += 1
                    long_whole += all(labelled)
    return {"words picked": picked / words, "pieces per picked word": pieces / max(picked, 1),
            "picked words labelled whole": whole / max(picked, 1),
            "picked words of several pieces labelled whole": long_whole / max(long_picked, 1)}


def part_hidden(block: dict[str, Any], table: pd.DataFrame, tokenizer) -> list[str]:
    """The words of a block that a masking (``token_table`` rows) labelled in part, their labelled pieces in
    brackets: the pieces left in view give those away."""
    return [" ".join(f"[{token}]" if labelled else token for token, labelled in word)
            for word in words_of(block, list(table["label"]), tokenizer)
            if any(labelled for _, labelled in word) and not all(labelled for _, labelled in word)]


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


WAYS = {"token masking": False, "whole-word masking": True}


def both_ways(block: dict[str, Any], tokenizer, settings: Settings) -> dict[str, pd.DataFrame]:
    """One block masked by tokens and by whole words, with the same seed: ``token_table`` rows for each way."""
    need_offsets(block)
    tables = {}
    for name, whole in WAYS.items():
        masker = make_collator(tokenizer, dataclasses.replace(settings, whole_word_mask=whole), seed=settings.seed)
        batch = masker([block])
        tables[name] = token_table(block["input_ids"], batch["input_ids"][0].tolist(), batch["labels"][0].tolist(),
                                   tokenizer, n=len(block["input_ids"]))
    return tables


def rates_both_ways(test_blocks: Dataset, tokenizer, settings: Settings) -> pd.DataFrame:
    """Word and token rates of the fixed evaluation masks made each way from the same blocks, side by side."""
    columns = {}
    for name, whole in WAYS.items():
        masks = make_eval_masks(test_blocks, tokenizer, dataclasses.replace(settings, whole_word_mask=whole))
        rates = {**word_rates(test_blocks, masks, tokenizer), **measure(test_blocks, masks, tokenizer)}
        columns[name] = {k: round(v, 4) for k, v in rates.items()}
    table = pd.DataFrame(columns)
    table.index.name = "rate"
    return table
