"""02 preprocess: tokenize each record's text, then cut the token stream into blocks of ``block_size`` tokens."""

from __future__ import annotations

import os

from datasets import DatasetDict, IterableDataset

from .config import Settings, SettingsError
from .lesson import group_texts, preprocess_function, preprocess_with_spans


class BlocksError(ValueError):
    """The corpus yields no blocks at this block size; the message says what to change."""


def check_block_size(block_size: int, tokenizer, model_config=None) -> None:
    """A block must fit the model's position embeddings (RoBERTa keeps 2 of its 514 for padding)."""
    limit = tokenizer.model_max_length
    positions = getattr(model_config, "max_position_embeddings", None)
    if positions:
        limit = min(limit, positions - (2 if model_config.model_type in ("roberta", "xlm-roberta", "camembert") else 0))
    if block_size > limit:
        raise SettingsError(f"block_size={block_size} is larger than the model reads ({limit} tokens): use block_size <= {limit}")


def workers(n_records: int) -> int | None:
    """Processes for tokenizing: the cores for a large corpus, none below 1,000 records; the tokens do not depend on it."""
    return min(os.cpu_count() or 1, 8) if n_records >= 1_000 else None


def tokenize_splits(splits: DatasetDict, tokenizer, settings: Settings, spans: bool = False) -> DatasetDict:
    """Every split tokenized, batched and in parallel, its original columns dropped (02_preprocess); ``spans``: each
    token's character span kept, as 03 does for whole words."""
    return splits.map(preprocess_with_spans if spans else preprocess_function, batched=True,
                      num_proc=workers(max(len(s) for s in splits.values())),
                      remove_columns=next(iter(splits.values())).column_names,
                      fn_kwargs={"tokenizer": tokenizer, "text_field": settings.text_field}, desc="Tokenizing")


def group_splits(tokens: DatasetDict, settings: Settings) -> DatasetDict:
    """Every split cut into blocks in one process: each batch drops its remainder, so workers would change the blocks."""
    blocks = tokens.map(group_texts, batched=True, fn_kwargs={"block_size": settings.block_size}, desc="Grouping")
    empty = [name for name, split in blocks.items() if len(split) == 0]
    if empty:
        raise BlocksError(f"the {' and '.join(empty)} split yields no block of {settings.block_size} tokens: use a "
                          f"smaller block_size, more records, or another test_size")
    return blocks


def build_blocks(splits: DatasetDict, tokenizer, settings: Settings, model_config=None, spans: bool = False) -> DatasetDict:
    """Notebook 02 in one call: check the block size, tokenize, group; ``spans``: 03's word blocks."""
    check_block_size(settings.block_size, tokenizer, model_config)
    return group_splits(tokenize_splits(splits, tokenizer, settings, spans), settings)


def stream_blocks(stream: IterableDataset, tokenizer, settings: Settings) -> IterableDataset:
    """A stream tokenized and grouped lazily, one ``map`` batch of 1,000 records at a time: the in-memory blocks (with
    ``whole_word_mask``, each token's span too)."""
    first = next(iter(stream), None)
    if first is None or settings.text_field not in first:
        raise BlocksError(f"the stream holds no record with a column {settings.text_field!r}: check source and text_field")
    tokenize = preprocess_with_spans if settings.whole_word_mask else preprocess_function
    tokens = stream.map(tokenize, batched=True, remove_columns=list(first),
                        fn_kwargs={"tokenizer": tokenizer, "text_field": settings.text_field})
    return tokens.map(group_texts, batched=True, fn_kwargs={"block_size": settings.block_size})
