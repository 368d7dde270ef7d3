"""01 load: a corpus from the Hub, the installed Wikipedia text or a file, split with a seed.

Every source goes through ``datasets.load_dataset`` or ``Dataset``, so every later step sees the
same thing: a ``DatasetDict`` with ``train`` and ``test`` and a text column (``settings.text_field``).
"""

from __future__ import annotations

import codecs
import hashlib
import json
from pathlib import Path
from typing import Any

from datasets import Dataset, DatasetDict, IterableDataset, load_dataset

from . import assets
from .config import Settings

TEXT_SUFFIXES = {".txt": "text", ".text": "text", ".jsonl": "json", ".json": "json"}


class CorpusError(ValueError):
    """The corpus could not be loaded or is unusable; the message says what to try."""


def load_corpus(settings: Settings) -> Dataset:
    """The whole corpus as one Dataset (01_load), limited to ``num_examples`` where set."""
    if settings.source in assets.WIKI_TOPICS:
        corpus = load_wiki(assets.WIKI_TOPICS[settings.source])
    elif settings.source == "hub":
        corpus = load_hub(settings)
    else:
        corpus = load_text_file(Path(settings.source), settings.text_field)
    if settings.text_field not in corpus.column_names:
        raise CorpusError(
            f"the corpus has no column {settings.text_field!r}; its columns are {corpus.column_names}: "
            f"set text_field to the one that holds the text"
        )
    wanted = settings.num_examples
    if wanted is not None and wanted > len(corpus):
        print(f"num_examples={wanted}, but the corpus has only {len(corpus)} records: using all {len(corpus)}")
    elif wanted is not None and settings.source != "hub":  # the hub path asked for train[:N] already
        corpus = corpus.select(range(wanted))
    return corpus


def load_wiki(topics: tuple[str, ...]) -> Dataset:
    """The installed Wikipedia lead summaries of ``topics``, with their ``title`` and ``topic``."""
    articles = json.loads(assets.wiki_summaries_file().read_text(encoding="utf-8"))
    rows = [
        {"title": a["title"], "topic": a["topic"], "text": a["extract"]}
        for a in articles.values()
        if a.get("topic") in topics and a.get("extract")
    ]
    return Dataset.from_list(rows)


def load_wiki_science() -> Dataset:
    """The 3,216 Wikipedia lead summaries on science, biology, technology and mathematics."""
    return load_wiki(assets.SCIENCE_TOPICS)


def load_out_of_domain(settings: Settings) -> Dataset:
    """05's text from outside the domain (``ood_source``): installed summaries of other topics, or a file's ``text``."""
    if settings.ood_source in assets.WIKI_TOPICS:
        return load_wiki(assets.WIKI_TOPICS[settings.ood_source])
    return load_text_file(Path(settings.ood_source), "text")


def load_hub(settings: Settings) -> Dataset:
    """``load_dataset(name, config, revision=..., split="train[:N]")`` then ``flatten()``, as the guide does.

    ``dataset_name`` may also be a local folder of parquet or JSON files (the same call reads it).
    """
    split = settings.dataset_split
    if settings.num_examples is not None:
        split = f"{split}[:{settings.num_examples}]"
    # ELI5 nests the answers: flatten() turns answers{text, score, ...} into answers.text, answers.score, ...
    return hub_dataset(settings, split).flatten()


def hub_dataset(settings: Settings, split: str, streaming: bool = False):
    """One ``load_dataset`` call for the Hub or a local folder; a failure says what was tried and what to do."""
    local = Path(settings.dataset_name).is_dir()  # a folder has no revisions: the profile's one is not for it
    kwargs = {"revision": settings.dataset_revision} if settings.dataset_revision and not local else {}
    try:
        return load_dataset(settings.dataset_name, settings.dataset_config, split=split, streaming=streaming, **kwargs)
    except Exception as err:  # datasets raises many types here: connection, offline mode, scripts, not found
        raise CorpusError(_hub_advice(settings, err)) from err


def _hub_advice(settings: Settings, err: Exception) -> str:
    tried = f"{settings.dataset_name!r} (config {settings.dataset_config!r}, revision {settings.dataset_revision!r})"
    message = str(err)
    download = (f"`hf download {settings.dataset_name} --repo-type dataset --revision refs/convert/parquet "
                f"--local-dir <folder>` where there is a network, then dataset_name='<folder>'")
    if "scripts are no longer supported" in message.lower() or "loading script" in message.lower():
        why = "it is a script dataset, which datasets 4 and later refuse"
        fix = ("try dataset_revision='refs/convert/parquet' (the Hub's parquet conversion of a script dataset, "
               f"whose config is usually 'default'), a parquet mirror of it, or {download}")
    elif assets.hub_offline():
        why = "HF_HUB_OFFLINE is set, so the Hub is not asked"
        fix = f"unset HF_HUB_OFFLINE where there is a network, or {download}"
    elif "revision" in message.lower() and settings.dataset_revision:
        why = f"the dataset has no revision {settings.dataset_revision!r}"
        fix = "try dataset_revision='main' if it is already parquet, or a parquet mirror with its own revision"
    elif "config" in message.lower():
        why = f"{type(err).__name__}: {message.splitlines()[0] if message else ''}"
        fix = "pass dataset_config= one of the config names the message lists (the parquet conversion's is often 'default')"
    else:
        why = f"{type(err).__name__}: {message.splitlines()[0] if message else ''}"
        fix = "check the name and revision, and the network"
    return (
        f"could not load the dataset {tried}: {why}. To fix: {fix}; or run offline with profile='tiny' "
        f"(source='wiki-science'), or pass a local copy as source='path/to/file.jsonl' or dataset_name='path/to/folder'."
    )


def load_text_file(file: Path, text_field: str = "text", streaming: bool = False):
    """A user's own text: ``.txt`` (one document per line) or ``.jsonl`` (one JSON object per line)."""
    builder = check_text_file(file)
    corpus = load_dataset(builder, data_files=str(file), split="train", streaming=streaming)
    if builder == "text":
        corpus = corpus.filter(lambda row: bool(row["text"].strip()))
    return corpus


def check_text_file(file: Path) -> str:
    """The ``datasets`` builder for a text file, after checking that it exists, has text, and is UTF-8."""
    if not file.is_file():
        raise CorpusError(f"no such file: {file} (source= takes 'wiki-science', 'wiki-other', 'hub', or a .txt/.jsonl file)")
    builder = TEXT_SUFFIXES.get(file.suffix.lower())
    if builder is None:
        raise CorpusError(f"{file}: unknown kind of file; use .txt (a document per line) or .jsonl (a JSON object per line)")
    if file.stat().st_size == 0:
        raise CorpusError(f"{file} is empty")
    decoder, read = codecs.getincrementaldecoder("utf-8")(), 0
    with file.open("rb") as chunks:  # a megabyte at a time: the file may be larger than memory
        for chunk in iter(lambda: chunks.read(1 << 20), b""):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as err:
                raise CorpusError(f"{file} is not UTF-8 text (byte {read + err.start}); convert it, e.g. `iconv -t utf-8`") from err
            read += len(chunk)
    return builder


def stream_corpus(settings: Settings) -> IterableDataset:
    """The corpus read lazily, record by record (``streaming=True``): for corpora larger than memory."""
    if settings.source in assets.WIKI_TOPICS:
        stream = load_wiki(assets.WIKI_TOPICS[settings.source]).to_iterable_dataset()
    elif settings.source == "hub":
        # a stream has no flatten(): answers{text} -> answers.text by hand
        stream = hub_dataset(settings, settings.dataset_split, streaming=True).map(flatten_record)
    else:
        stream = load_text_file(Path(settings.source), streaming=True)
    return stream.take(settings.num_examples) if settings.num_examples is not None else stream


def flatten_record(record: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested fields as dotted names, as ``Dataset.flatten()`` names them (``answers.text``)."""
    flat = {}
    for key, value in record.items():
        if isinstance(value, dict):
            flat.update(flatten_record(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def held_out(text: str | list[str], settings: Settings) -> bool:
    """Whether a record is a test record: a hash of the record's text keyed with the seed, below ``test_size``.

    A keyed hash (BLAKE2b), so that two seeds draw independent test sets; CRC32 of "seed:text" is affine in its
    input, and for texts of one length the test sets of two seeds did not overlap at all.

    The text, not the record's position: a shuffled stream reorders its files and records, and a split by
    position would then put some records in both parts and others in neither.
    """
    key = " ".join(text) if isinstance(text, list) else str(text)
    digest = hashlib.blake2b(key.encode(), digest_size=8, key=str(settings.seed).encode()).digest()
    return int.from_bytes(digest, "big") < settings.test_size * 2**64


def stream_split(stream: IterableDataset, settings: Settings) -> dict[str, IterableDataset]:
    """A seeded train/test split decided record by record, since a stream cannot be shuffled whole."""
    field = settings.text_field
    return {
        "train": stream.filter(lambda record: not held_out(record[field], settings)),
        "test": stream.filter(lambda record: held_out(record[field], settings)),
    }


def split_corpus(corpus: Dataset, settings: Settings) -> DatasetDict:
    """A seeded train/test split (the guide's ``train_test_split(test_size=0.2)`` had no seed)."""
    n_test = round(len(corpus) * settings.test_size)
    if n_test < 1 or n_test > len(corpus) - 1:
        raise CorpusError(
            f"test_size={settings.test_size} of {len(corpus)} records leaves a split empty: "
            f"use more records or a test_size nearer 0.5"
        )
    return corpus.train_test_split(test_size=settings.test_size, seed=settings.seed)


def counts(splits: DatasetDict, text_field: str) -> dict[str, dict[str, int]]:
    """Records and words per split: what the learner checks after loading."""

    def words(value) -> int:
        return sum(len(t.split()) for t in value) if isinstance(value, list) else len(value.split())

    return {
        name: {"records": len(split), "words": sum(words(v) for v in split[text_field])}
        for name, split in splits.items()
    }
