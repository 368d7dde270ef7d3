"""05 evaluate, part two: the other text split three ways (the general model's, the control's, the held-out part), and
the control's blocks and the held-out part's fixed masks.
"""

from __future__ import annotations

import dataclasses

from datasets import Dataset, DatasetDict

from . import collate, data, preprocess
from .config import Settings
# The general stage's recipe, besides the tiny profile's: one pass over two fifths of the other text, split with a seed of
# its own, so that 05 keeps the same records for its control and its test whatever the run's seed.
GENERAL = {"num_train_epochs": 1.0, "seed": 42, "test_size": 0.6}
HELD_OUT = 1 / 3  # of what the general stage leaves: a fifth of the other text, as 05 scores it


def other_text(settings: Settings) -> DatasetDict:
    """``ood_source`` split three ways with the general stage's seed: the general model's part (``general``), the
    control's (``control``) and the part 05 scores (``held_out``); no record in two."""
    split = dataclasses.replace(settings, seed=GENERAL["seed"], test_size=GENERAL["test_size"])
    parts = data.split_corpus(data.load_out_of_domain(settings), split)  # train: the general stage's; test: the rest
    rest = parts["test"].train_test_split(test_size=HELD_OUT, seed=GENERAL["seed"])
    return DatasetDict(general=parts["train"], control=rest["train"], held_out=rest["test"])


def other_blocks(settings: Settings, tokenizer, n_masks: int) -> tuple[Dataset, Dataset]:
    """The control's part of ``other_text`` as blocks, and fixed masks (the run's seed) over ``n_masks`` of the held-out
    part's blocks."""
    other = dataclasses.replace(settings, text_field="text")  # ood_source's column, whatever the corpus's is
    parts = other_text(settings)
    blocks = preprocess.group_splits(preprocess.tokenize_splits(DatasetDict(  # whole words: with each token's span
        control=parts["control"], held_out=parts["held_out"]), tokenizer, other, spans=settings.whole_word_mask), other)
    held_out = blocks["held_out"].shuffle(seed=settings.seed)
    return blocks["control"], collate.make_eval_masks(held_out.select(range(min(n_masks, len(held_out)))), tokenizer, settings)

