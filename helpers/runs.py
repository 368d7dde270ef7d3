"""The run folder ``runs/<profile>/``: what each notebook writes there and the next one reads.

Every artifact is written under a temporary name and renamed into place when complete, so a
crash never leaves a half-written artifact that a later notebook would read as good.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from .config import ONE_OFF, PARAMETERS, Settings, made_with

# artifact -> the notebook that writes it
PRODUCERS: dict[str, str] = {
    "splits": "01_load",
    "blocks": "02_preprocess",
    "eval_masks": "03_collate",
    "eval_masks_whole_word": "03_collate",
    "model": "04_train",
    "train_log.json": "04_train",
    "metrics.json": "05_evaluate and 06_infer",
    "settings.json": "any notebook",
}
METRICS = "metrics.json"


class MissingArtifactError(FileNotFoundError):
    """An earlier notebook's output is missing; the message names the notebook to run first."""


class DamagedArtifactError(RuntimeError):
    """An artifact exists but cannot be read whole; the message names the notebook that rewrites it."""


def damaged(settings: Settings, name: str, err: Exception) -> DamagedArtifactError:
    producer = PRODUCERS.get(name, "the notebook that wrote it")
    return DamagedArtifactError(
        f"{name} in {settings.run_path} is damaged or incomplete ({type(err).__name__}: {err}): "
        f"rerun {producer} to write it again"
    )


def path(settings: Settings, name: str) -> Path:
    return settings.run_path / name


def require(settings: Settings, name: str) -> Path:
    """The path of an earlier notebook's artifact, or an error naming the notebook to run first."""
    target = path(settings, name)
    if not target.exists():
        producer = PRODUCERS.get(name, "the earlier notebooks")
        raise MissingArtifactError(
            f"{name} is missing from {settings.run_path}: run {producer} first "
            f"(with the same profile, {settings.profile!r}), or `make run-all`"
        )
    return target


@contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success it replaces ``target`` in one rename."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent)) / target.name
    try:
        yield tmp
        old = target.parent / f".{target.name}.old"
        if target.exists():
            _remove(old)
            os.replace(target, old)
        os.replace(tmp, target)
        _remove(old)
    finally:
        _remove(tmp.parent)


def _remove(p: Path) -> None:
    if p.is_dir():
        shutil.rmtree(p, ignore_errors=True)
    elif p.exists():
        p.unlink()


MADE_WITH = "made_with.json"  # inside an artifact's folder: the settings it was made with
RECORD = "settings.json"  # in the run folder: the settings the notebooks last ran with


def save_dataset(dataset, settings: Settings, name: str) -> Path:
    """``save_to_disk`` a Dataset or DatasetDict into the run folder with the settings it was made with, atomically."""
    target = path(settings, name)
    with atomic_path(target) as tmp:
        dataset.save_to_disk(str(tmp))
        (tmp / MADE_WITH).write_text(json.dumps(made_with(settings, name), indent=2) + "\n")
    return target


def read_made_with(settings: Settings, name: str) -> dict[str, Any] | None:
    """The settings an artifact was made with; None for one written before they were recorded."""
    record = require(settings, name) / MADE_WITH
    if not record.exists():
        return None
    try:
        return json.loads(record.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise damaged(settings, name, err) from err


def record_settings(settings: Settings) -> None:
    """Write the run folder's record, which later notebooks take their unset parameters from."""
    values = {k: v for k, v in settings.as_dict().items() if k not in ONE_OFF}
    write_json(path(settings, RECORD), values)


def recorded_settings(run_dir: str | Path, profile: str) -> dict[str, Any]:
    """The settings the run folder's notebooks last ran with ({} if none, or for another profile)."""
    record = Path(run_dir) / RECORD
    if not record.exists():
        return {}
    try:
        values = json.loads(record.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        values = None
    if not isinstance(values, dict):
        print(f"{record} is damaged: the profile's settings are used and recorded anew")
        return {}
    if values.get("profile") != profile:
        return {}
    return {k: v for k, v in values.items() if k in PARAMETERS and k not in (*ONE_OFF, "profile", "run_dir")}


def load_dataset(settings: Settings, name: str):
    """Load an artifact that ``save_dataset`` wrote (in memory: they are small)."""
    from datasets import load_from_disk

    target = require(settings, name)
    try:
        return load_from_disk(str(target), keep_in_memory=True)
    except Exception as err:  # arrow, JSON and file errors all mean the same thing here
        raise damaged(settings, name, err) from err


def write_json(target: Path, data: Any) -> None:
    """A JSON file written whole or not at all: a temporary file renamed over the old one in one step."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=target.parent, prefix=f".{target.name}.", delete=False) as tmp:
        tmp.write(json.dumps(data, indent=2, default=str) + "\n")
    os.replace(tmp.name, target)


def read_json(settings: Settings, name: str) -> Any:
    try:
        return json.loads(require(settings, name).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise damaged(settings, name, err) from err


def load_model(settings: Settings):
    """The fine-tuned model that 04_train saved, or an error naming 04_train."""
    from .assets import AssetError, load_model as load

    target = require(settings, "model")
    try:
        return load(str(target))
    except AssetError as err:
        raise damaged(settings, "model", err) from err


def update_metrics(settings: Settings, **values: Any) -> dict[str, Any]:
    """Merge ``values`` into ``metrics.json`` (with the settings used) and return the whole record."""
    metrics = read_metrics(settings)
    metrics.update(values)
    metrics["settings"] = settings.as_dict()
    write_json(path(settings, METRICS), metrics)
    return metrics


def read_metrics(settings: Settings) -> dict[str, Any]:
    """What the notebooks have recorded so far ({} before any)."""
    return read_json(settings, METRICS) if path(settings, METRICS).exists() else {}
