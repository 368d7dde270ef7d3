"""01 load: a corpus from the installed Wikipedia text, the Hub or a file, as a ``Dataset`` with a text column, split
with the seed, or streamed.
"""

from __future__ import annotations

import codecs
import hashlib
import json
import os
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from datasets import Dataset, DatasetDict, IterableDataset, load_dataset

from . import assets
from .config import Settings

TEXT_SUFFIXES = {".txt": "text", ".text": "text", ".jsonl": "json", ".json": "json"}


class CorpusError(ValueError):
    """The corpus could not be loaded or is unusable; the message says what to try."""


def load_corpus(settings: Settings) -> Dataset:
    """The whole corpus (01_load's three doors in one call), its nested fields flattened, ``num_examples`` at most."""
    if settings.source in assets.WIKI_TOPICS:
        corpus = load_wiki(assets.WIKI_TOPICS[settings.source])
    elif settings.source == "hub":
        with advice(settings):
            corpus = load_dataset(settings.dataset_name, settings.dataset_config, split=split_name(settings),
                                  revision=settings.dataset_revision)
    else:
        corpus = load_text_file(Path(settings.source))
    corpus = corpus.flatten()
    if settings.text_field not in corpus.column_names:
        raise CorpusError(f"the corpus has no column {settings.text_field!r}; its columns are {corpus.column_names}: "
                          f"set text_field to the one that holds the text")
    if settings.num_examples is not None and settings.source != "hub":  # the Hub's split asked for [:N] already
        if settings.num_examples > len(corpus):
            print(f"num_examples={settings.num_examples}, but the corpus has {len(corpus)} records: using all of them")
        corpus = corpus.select(range(min(settings.num_examples, len(corpus))))
    return corpus


def corpus_file(source: str) -> str:
    """What 01 hands ``load_dataset("json", ...)``: the installed summaries (``wiki-science``, ``wiki-other``) or your
    ``.txt`` (a document a line), written as JSON lines in the cache once per content; a ``.jsonl`` file as it is."""
    if source in assets.WIKI_TOPICS:
        rows = load_wiki(assets.WIKI_TOPICS[source]).to_list()
    else:
        file = Path(source)
        if check_text_file(file) == "json":
            return str(file)
        rows = [{"text": line.strip()} for line in file.read_text(encoding="utf-8").splitlines() if line.strip()]
    text = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows).encode()
    target = assets.CACHE / f"{Path(source).stem}-{hashlib.sha256(text).hexdigest()[:12]}.jsonl"
    if not target.exists():  # named by its content: a changed text gets a file of its own
        write_whole(target, text)
    return str(target)


def write_whole(target: Path, content: bytes) -> None:
    """``content`` in ``target``, whole or not at all: written beside it under a name of its own, then renamed."""
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = target.with_name(f".{target.name}.{uuid.uuid4().hex[:12]}")
    try:
        scratch.write_bytes(content)
        os.replace(scratch, target)
    finally:
        scratch.unlink(missing_ok=True)  # left only where writing failed


def hash_files(files: list[Path]) -> str:
    """The files' names and bytes, hashed, each read in chunks (a corpus may be large)."""
    hashed = hashlib.sha256()
    for file in files:
        hashed.update(file.name.encode())
        with file.open("rb") as chunks:
            for chunk in iter(lambda: chunks.read(1 << 20), b""):
                hashed.update(chunk)
    return hashed.hexdigest()[:16]


def fingerprint(settings: Settings) -> str:
    """What the corpus holds: its file's name and bytes hashed (the installed summaries' or yours); from the Hub, its
    name, config, revision and split, which the settings hold already."""
    if settings.source == "hub":
        return "hub"
    file = assets.wiki_summaries_file() if settings.source in assets.WIKI_TOPICS else Path(settings.source)
    try:
        return hash_files([file])
    except OSError:
        return "unreadable"  # not current: making it again says what is wrong with the file


def split_name(settings: Settings) -> str:
    """The split the Hub is asked for: ``"train[:5000]"`` for the guide profile."""
    n = settings.num_examples
    return f"{settings.dataset_split}[:{n}]" if n is not None else settings.dataset_split


def load_wiki(topics: tuple[str, ...]) -> Dataset:
    """The installed Wikipedia lead summaries of ``topics``, with their ``title`` and ``topic``."""
    articles = json.loads(assets.wiki_summaries_file().read_text(encoding="utf-8"))
    return Dataset.from_list([{"title": a["title"], "topic": a["topic"], "text": a["extract"]}
                              for a in articles.values() if a.get("topic") in topics and a.get("extract")])


def load_wiki_science() -> Dataset:
    """The 3,216 Wikipedia lead summaries on science, biology, technology and mathematics."""
    return load_wiki(assets.SCIENCE_TOPICS)


def load_out_of_domain(settings: Settings) -> Dataset:
    """05's text from outside the domain (``ood_source``): installed summaries of other topics, or a file's ``text``."""
    if settings.ood_source in assets.WIKI_TOPICS:
        return load_wiki(assets.WIKI_TOPICS[settings.ood_source])
    return load_text_file(Path(settings.ood_source))


@contextmanager
def advice(settings: Settings) -> Iterator[None]:
    """Around ``load_dataset`` from the Hub: a failure says what was asked for, why it failed, and what to try."""
    try:
        yield
    except Exception as err:  # datasets raises many types here: connection, offline mode, scripts, not found
        tried = f"{settings.dataset_name!r} (config {settings.dataset_config!r}, revision {settings.dataset_revision!r})"
        message = str(err).splitlines()[0] if str(err) else type(err).__name__
        download = (f"`hf download {settings.dataset_name} --repo-type dataset --revision refs/convert/parquet "
                    f"--local-dir <folder>` where there is a network, then dataset_name='<folder>'")
        if "scripts are no longer supported" in message.lower():
            fix = f"dataset_revision='refs/convert/parquet' (the Hub's parquet copy of a script dataset), or {download}"
        elif assets.hub_offline():
            message, fix = "HF_HUB_OFFLINE is set, so the Hub is not asked", download
        elif "revision" in message.lower():
            fix = "dataset_revision='main' if the dataset is parquet already, or a parquet mirror with its own revision"
        elif "config" in message.lower():
            fix = "dataset_config= one of the names the message lists (the parquet copy's is often 'default')"
        else:
            fix = "check the name, the revision and the network"
        raise CorpusError(f"could not load the dataset {tried}: {message}. To fix: {fix}; or run offline with "
                          f"profile='tiny', or give a local copy (source='file.jsonl', dataset_name='folder')") from err


def load_text_file(file: Path, streaming: bool = False):
    """Your own text: ``.txt`` (one document a line) or ``.jsonl`` (one JSON object a line)."""
    builder = check_text_file(file)
    corpus = load_dataset(builder, data_files=str(file), split="train", streaming=streaming)
    return corpus.filter(lambda row: bool(row["text"].strip())) if builder == "text" else corpus


def check_text_file(file: Path) -> str:
    """The ``datasets`` builder for a text file, after checking that it exists, holds text, and is UTF-8."""
    if not file.is_file():
        raise CorpusError(f"no such file: {file} (source= takes 'wiki-science', 'wiki-other', 'hub', or a .txt/.jsonl file)")
    builder = TEXT_SUFFIXES.get(file.suffix.lower())
    if builder is None:
        raise CorpusError(f"{file}: unknown kind of file; use .txt (a document a line) or .jsonl (a JSON object a line)")
    if file.stat().st_size == 0:
        raise CorpusError(f"{file} is empty")
    decoder, read = codecs.getincrementaldecoder("utf-8")(), 0
    with file.open("rb") as chunks:  # a megabyte at a time: the file may be larger than memory
        for chunk in iter(lambda: chunks.read(1 << 20), b""):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as err:
                raise CorpusError(f"{file} is not UTF-8 (byte {read + err.start}); convert it, e.g. `iconv -t utf-8`") from err
            read += len(chunk)
    return builder


def split_corpus(corpus: Dataset, settings: Settings) -> DatasetDict:
    """01's seeded split (the guide's ``train_test_split(test_size=0.2)`` has no seed)."""
    n_test = round(len(corpus) * settings.test_size)
    if not 1 <= n_test <= len(corpus) - 1:
        raise CorpusError(f"test_size={settings.test_size} of {len(corpus)} records leaves a split empty: use more "
                          f"records or a test_size nearer 0.5")
    return corpus.train_test_split(test_size=settings.test_size, seed=settings.seed)


def stream_corpus(settings: Settings) -> IterableDataset:
    """The corpus read lazily, record by record: for text larger than memory (``streaming=True``)."""
    if settings.source in assets.WIKI_TOPICS:
        stream = load_wiki(assets.WIKI_TOPICS[settings.source]).to_iterable_dataset()
    elif settings.source == "hub":
        with advice(settings):
            stream = load_dataset(settings.dataset_name, settings.dataset_config, split=settings.dataset_split,
                                  revision=settings.dataset_revision, streaming=True)
        stream = stream.map(flatten_record)  # a stream has no flatten(): answers{text} -> answers.text by hand
    else:
        stream = load_text_file(Path(settings.source), streaming=True)
    return stream.take(settings.num_examples) if settings.num_examples is not None else stream


def flatten_record(record: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested fields under dotted names, as ``Dataset.flatten()`` names them (``answers.text``)."""
    flat = {}
    for key, value in record.items():
        flat.update(flatten_record(value, f"{prefix}{key}.") if isinstance(value, dict) else {f"{prefix}{key}": value})
    return flat


def held_out(text: str | list[str], settings: Settings) -> bool:
    """Whether a streamed record is a test record: a hash of its text keyed with the seed (BLAKE2b), below test_size.

    The text, not the record's position, which a shuffled stream changes; a keyed hash, so that two seeds draw
    independent test sets.
    """
    key = " ".join(text) if isinstance(text, list) else str(text)
    digest = hashlib.blake2b(key.encode(), digest_size=8, key=str(settings.seed).encode()).digest()
    return int.from_bytes(digest, "big") < settings.test_size * 2**64


def stream_split(stream: IterableDataset, settings: Settings) -> dict[str, IterableDataset]:
    """A seeded train/test split decided record by record, since a stream cannot be shuffled whole."""
    field = settings.text_field
    return {"train": stream.filter(lambda record: not held_out(record[field], settings)),
            "test": stream.filter(lambda record: held_out(record[field], settings))}


def counts(splits: DatasetDict, text_field: str) -> dict[str, dict[str, int]]:
    """Records and words per split: what a learner checks after loading."""

    def words(value) -> int:
        return sum(len(t.split()) for t in value) if isinstance(value, list) else len(value.split())

    return {name: {"records": len(split), "words": sum(words(v) for v in split[text_field])} for name, split in splits.items()}
