"""The run folder, ``runs/<profile>/``: what each notebook saves for the next, whole or not at all, with a
``made_with.json`` of the settings and the code (the course's files, the libraries' versions) that made it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from filelock import FileLock

from . import data
from .config import Settings, project_root

SPLIT = ("source", "dataset_name", "dataset_config", "dataset_revision", "dataset_split", "text_field", "num_examples",
         "test_size", "seed")
# artifact -> the settings it depends on; each artifact is made from the one before it
DEPENDS = {
    "splits": SPLIT,
    "blocks": (*SPLIT, "model", "block_size"),
    "word_blocks": (*SPLIT, "model", "block_size"),  # the blocks with each token's span, for whole-word masking
    "eval_masks": (*SPLIT, "model", "block_size", "mlm_probability", "whole_word_mask", "streaming"),
    "model": (*SPLIT, "model", "general_stage", "ood_source", "block_size", "mlm_probability", "whole_word_mask", "streaming", "learning_rate",
              "num_train_epochs", "batch_size", "weight_decay", "masked_head", "precision", "max_steps"),
}
MADE_BY = {"splits": "01_load", "blocks": "02_preprocess", "word_blocks": "03_collate", "eval_masks": "03_collate",
           "model": "04_train"}
RECORD = "made_with.json"


def code_version() -> dict[str, str]:
    """The course's own files, hashed, and the versions of the libraries that shape what they make."""
    import datasets
    import torch
    import transformers

    digest = hashlib.sha256()
    for file in sorted(Path(__file__).parent.rglob("*.py")):
        digest.update(file.read_bytes())
    return {"helpers": digest.hexdigest()[:12], "transformers": transformers.__version__,
            "datasets": datasets.__version__, "torch": torch.__version__.split("+")[0]}


CODE = code_version()


def shown(path: str | Path) -> str:
    """A path as the notebooks print it: relative to the project (where a run folder is, by default), or to home."""
    path = Path(path).resolve()
    if path.is_relative_to(project_root()):
        return str(path.relative_to(project_root()))
    return f"~/{path.relative_to(Path.home())}" if path.is_relative_to(Path.home()) else str(path)


def path(settings: Settings, name: str) -> Path:
    return settings.run_path / name


@contextmanager
def atomic(target: Path) -> Iterator[Path]:
    """A temporary path beside ``target``; when the block ends without an error, it replaces ``target`` whole. A second
    writer waits at a lock, so a temporary folder found is a crashed writer's, and is removed."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(target.parent / f".{target.name}-lock"):
        for stale in target.parent.glob(f".{target.name}.*"):  # left by a save that a crash cut short
            shutil.rmtree(stale, ignore_errors=True)
        scratch = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        try:
            yield scratch / target.name
            old = scratch / "old"
            if target.exists():
                os.replace(target, old)
            os.replace(scratch / target.name, target)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)


def settings_of(settings: Settings, name: str) -> dict[str, Any]:
    """The settings the artifact ``name`` depends on, as its record keeps them."""
    return {k: getattr(settings, k) for k in DEPENDS[name] if k != "ood_source" or settings.general_stage}


def made_from(settings: Settings, name: str) -> str | None:
    """The artifact ``name`` is made from (None: from the corpus itself); a model and the fixed masks from 03's word
    blocks with ``whole_word_mask``."""
    if name == "splits" or settings.streaming:
        return None
    return {"blocks": "splits", "word_blocks": "blocks"}.get(name, "word_blocks" if settings.whole_word_mask else "blocks")


def digest(found: Any) -> str:
    return hashlib.sha256(json.dumps(found, sort_keys=True).encode()).hexdigest()[:16]


def fingerprint(model: str) -> str:
    """A model folder's files, hashed (a Hub name: the name)."""
    folder = Path(model)
    if not folder.is_dir():
        return model
    return data.hash_files(sorted(f for f in folder.iterdir() if f.is_file() and f.name != RECORD))


def inputs(settings: Settings, name: str, base: str | None = None) -> dict[str, str]:
    """What ``name`` is made from: the record of the artifact before it, or the corpus's contents; for a model, also
    the base model it starts from (``base``) and its files."""
    parent = made_from(settings, name)
    found = {parent: digest(record(settings, parent))} if parent else {"corpus": data.fingerprint(settings)}
    return {**found, "base": base, "base_files": fingerprint(base)} if base else found


def made_with(settings: Settings, name: str, base: str | None = None) -> dict[str, Any]:
    """The record of the artifact ``name``: its settings, the code, and its inputs (a model's: with its ``base``)."""
    return {"settings": settings_of(settings, name), "code": CODE, "inputs": inputs(settings, name, base)}


def current(settings: Settings, name: str) -> bool:
    """Whether the artifact ``name`` was made from what it would be made from now, all the way back to the corpus."""
    found = record(settings, name)
    if found is None:
        return False
    made = dataclasses.replace(settings, **{k: v for k, v in found["settings"].items() if k in DEPENDS["model"]})
    parent = made_from(made, name)  # with the settings that made it: its corpus, its kind of masks
    if parent and not current(settings, parent):
        return False
    return all(found.get("inputs", {}).get(k) == v for k, v in inputs(made, name).items())


def save(thing: Any, settings: Settings, name: str, tokenizer=None) -> None:
    """``save_to_disk`` a Dataset or DatasetDict, or ``save_pretrained`` a model (its record naming the base it was
    loaded from) and its tokenizer, as ``name`` in the run folder, whole or not at all, with its ``made_with.json``."""
    target = path(settings, name)
    base = getattr(getattr(thing, "config", None), "_name_or_path", None)  # what from_pretrained loaded it from
    with atomic(target) as tmp:
        if hasattr(thing, "save_to_disk"):
            thing.save_to_disk(str(tmp))
        else:
            thing.save_pretrained(str(tmp))
            tokenizer.save_pretrained(str(tmp))
        write_json(tmp / RECORD, made_with(settings, name, base))
    print(f"wrote {shown(target)}")


def record(settings: Settings, name: str) -> dict[str, Any] | None:
    """What made the artifact ``name`` in the run folder (None when there is none, or it is not a record)."""
    try:
        found = json.loads((path(settings, name) / RECORD).read_text())
    except (OSError, ValueError):
        return None
    return found if isinstance(found, dict) and isinstance(found.get("settings"), dict) and "code" in found else None


def write_json(target: Path, content: Any) -> None:
    """A JSON file written whole or not at all (data.write_whole)."""
    data.write_whole(target, (json.dumps(content, indent=2) + "\n").encode())


def read_metrics(settings: Settings) -> dict[str, Any]:
    """The run's ``metrics.json``: the figures the notebooks recorded for the model in the run folder ({} before any)."""
    try:
        metrics = json.loads(path(settings, "metrics.json").read_text())
    except FileNotFoundError:
        return {}
    except ValueError as err:
        raise ValueError(f"{shown(path(settings, 'metrics.json'))} is damaged ({err}): delete it, and rerun "
                         f"05_evaluate and 06_infer to write it again") from err
    return metrics if metrics.get("model") == record(settings, "model") else {}  # another model's figures: not these


def update_metrics(settings: Settings, **values: Any) -> dict[str, Any]:
    """Merge ``values`` into ``metrics.json``, the figures of the model in the run folder, and return them all; 05 and
    06 may write at once, so one waits for the other."""
    settings.run_path.mkdir(parents=True, exist_ok=True)
    with FileLock(path(settings, ".metrics.json-lock")):
        metrics = {**read_metrics(settings), **values, "model": record(settings, "model")}
        write_json(path(settings, "metrics.json"), metrics)
    return metrics
