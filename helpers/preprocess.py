"""02 preprocess: tokenize each record's text, then cut the token stream into fixed-size blocks."""

from __future__ import annotations

import gc
import os

from datasets import DatasetDict, IterableDataset

from .config import Settings, SettingsError

PARALLEL_FROM = 1_000  # records; below this, starting worker processes costs more than it saves
GROUP_BATCH = 1_000  # records grouped together (datasets.map's default); the same in memory and streamed


class BlocksError(ValueError):
    """The corpus yields no blocks at this block size; the message says what to change."""


def group_texts(examples: dict[str, list[list[int]]], block_size: int) -> dict[str, list[list[int]]]:
    """Concatenate each column and cut it into block_size pieces, dropping the remainder (02_preprocess).

    The guide concatenates with ``sum(lists, [])``, which copies the growing list at every record
    (quadratic); extending one list walks each token once and gives the same blocks. Python's cycle
    collector is paused meanwhile: thousands of new block lists would set it walking every object in
    the process (a loaded model is hundreds of thousands), and lists of token ids hold no cycles.
    """
    collector_was_on = gc.isenabled()
    gc.disable()  # first, so that no allocation below can start a collection
    try:
        result = {}
        for column, lists in examples.items():
            flat: list[int] = []
            for ids in lists:
                flat.extend(ids)
            usable = len(flat) // block_size * block_size
            result[column] = [flat[i : i + block_size] for i in range(0, usable, block_size)]
        return result
    finally:
        if collector_was_on:
            gc.enable()


def check_block_size(block_size: int, tokenizer, model_config=None) -> None:
    """A block must fit the model's position embeddings (RoBERTa keeps 2 of its 514 for padding)."""
    limit = tokenizer.model_max_length
    if model_config is not None:
        positions = getattr(model_config, "max_position_embeddings", None)
        if positions:
            offset = 2 if getattr(model_config, "model_type", "") in {"roberta", "xlm-roberta", "camembert"} else 0
            limit = min(limit, positions - offset)
    if block_size > limit:
        raise SettingsError(f"block_size={block_size} is larger than the model allows ({limit} tokens): use block_size <= {limit}")


def as_text(value: str | list[str]) -> str:
    """One record's text as the tokenizer reads it: a list of texts (ELI5's ``answers.text``) joined with " "."""
    return " ".join(value) if isinstance(value, list) else value


def tokenize(examples: dict[str, list], tokenizer, text_field: str) -> dict[str, list[list[int]]]:
    """Tokenize one batch; a record holding a list of texts (ELI5's answers) is joined with " " first.

    A fast tokenizer also gives each token's character span, ``offset_mapping``: whole-word masking reads
    word boundaries from it (a token that starts where the previous one ended continues its word).
    """
    texts = [as_text(t) for t in examples[text_field]]
    # No truncation: the blocks come later. verbose=False silences the "longer than the maximum" warning.
    encoded = tokenizer(texts, verbose=False, return_offsets_mapping=tokenizer.is_fast)
    if tokenizer.is_fast:
        encoded["offset_mapping"] = [joined_offsets(spans, text) for spans, text in zip(encoded["offset_mapping"], texts)]
    return encoded


def joined_offsets(spans: list[tuple[int, int]], text: str) -> list[tuple[int, int]]:
    """Offsets adjusted so that the collator's word rule (a token not starting where the previous one ended
    begins a word) finds the words of byte-level BPE as it finds WordPiece's.

    Two adjustments, both no-ops for WordPiece: a token starting inside the previous token's span (the next byte
    of a character like é, which byte-level BPE cuts in two) starts where that one ends, so "Réunion" stays one
    word; and a token of white space alone (``Ċ``, a newline) ends where it starts, so it joins the word before
    it rather than gluing that word to the next ("nice.\nNext" is two words).
    """
    joined, end = [], 0
    for start, stop in spans:
        if start < end <= stop:  # inside the previous token's span: the same character's next byte
            start = end
        if start < stop and text[start:stop].isspace():
            stop = start
        joined.append((start, stop))
        end = max(end, stop)
    return joined


def workers(n_records: int) -> int | None:
    """How many processes tokenizing should use: the machine's cores for a large corpus (each record is
    tokenized alone, so the tokens are the same on any number)."""
    if n_records < PARALLEL_FROM:
        return None
    return min(os.cpu_count() or 1, 8)


def tokenize_splits(splits: DatasetDict, tokenizer, settings: Settings) -> DatasetDict:
    """Every split tokenized, batched and in parallel, its original columns dropped (02_preprocess)."""
    return splits.map(
        tokenize,
        batched=True,
        num_proc=workers(max(len(s) for s in splits.values())),
        remove_columns=next(iter(splits.values())).column_names,
        fn_kwargs={"tokenizer": tokenizer, "text_field": settings.text_field},
        desc="Tokenizing",
    )


def group_splits(tokens: DatasetDict, settings: Settings) -> DatasetDict:
    """Every tokenized split cut into blocks of ``block_size``; an empty split is an error (02_preprocess)."""
    # One process, in map's batches of 1,000 records: each batch drops its own remainder, so worker processes
    # (each with its own shard, so its own batch boundaries) would make the blocks depend on the machine's cores.
    blocks = tokens.map(
        group_texts,
        batched=True,
        batch_size=GROUP_BATCH,
        fn_kwargs={"block_size": settings.block_size},
        desc=f"Grouping into blocks of {settings.block_size}",
    )
    empty = [name for name, split in blocks.items() if len(split) == 0]
    if empty:
        raise BlocksError(
            f"the {' and '.join(empty)} split yields no block of {settings.block_size} tokens: "
            f"use a smaller block_size, more examples, or a smaller test_size"
        )
    return blocks


def build_blocks(splits: DatasetDict, tokenizer, settings: Settings, model_config=None) -> DatasetDict:
    """Check the block size, tokenize, group: notebook 02 in one call."""
    check_block_size(settings.block_size, tokenizer, model_config)
    return group_splits(tokenize_splits(splits, tokenizer, settings), settings)


def stream_blocks(stream: IterableDataset, tokenizer, settings: Settings) -> IterableDataset:
    """Tokenize and group a stream lazily, one ``datasets.map`` batch at a time (the same blocks as in memory)."""
    first = next(iter(stream), None)
    if first is None:
        raise BlocksError("the corpus stream holds no records")
    if settings.text_field not in first:
        raise BlocksError(f"the corpus has no column {settings.text_field!r}; its columns are {list(first)}: set text_field")
    tokens = stream.map(tokenize, batched=True, remove_columns=list(first),
                        fn_kwargs={"tokenizer": tokenizer, "text_field": settings.text_field})
    return tokens.map(group_texts, batched=True, batch_size=GROUP_BATCH, fn_kwargs={"block_size": settings.block_size})


def counts(splits: DatasetDict, blocks: DatasetDict, block_size: int) -> dict[str, dict[str, int]]:
    """Records in, blocks and tokens out, per split."""
    return {
        name: {"records": len(splits[name]), "blocks": len(blocks[name]), "tokens": len(blocks[name]) * block_size}
        for name in blocks
    }
