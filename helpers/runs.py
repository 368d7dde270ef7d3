"""The run folder ``runs/<profile>/``: what each notebook writes there and the next one reads.

Each artifact lives in ``artifacts/<name>-<key>``, the key a short hash of the settings it depends on
(``config.ARTIFACT_FIELDS``): a run with other settings writes beside it, never over it, and switching back finds
it again. The run folder's top holds what people and scripts read, for the settings the notebooks last ran with:
``settings.json`` (that record), ``model`` and ``metrics.json`` (links into ``artifacts/``) and ``notebooks/``.
``python -m helpers.runs prune RUN_DIR`` removes the artifacts of settings no longer used.

Every artifact is written under a temporary name and renamed into place when complete, so a crash never
leaves a half-written artifact that a later notebook would read as good.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from .config import ARTIFACT_FIELDS, ONE_OFF, PARAMETERS, Settings, SettingsError, make_settings

# artifact -> the notebook that writes it
PRODUCERS: dict[str, str] = {
    "splits": "01_load",
    "blocks": "02_preprocess",
    "eval_masks": "03_collate",
    "eval_masks_whole_word": "03_collate",
    "stream_eval_masks": "python -m helpers.train --streaming true",
    "ood_eval_masks": "05_evaluate",
    "model": "04_train",
    "checkpoints": "04_train",
    "train_log.json": "04_train",
    "metrics.json": "05_evaluate and 06_infer",
    "settings.json": "any notebook",
}
METRICS = "metrics.json"
RECORD = "settings.json"  # in the run folder: the settings the notebooks last ran with
ARTIFACTS = "artifacts"
# What an earlier version of the course kept at the run folder's top, one copy each, overwritten on change.
OLD_LAYOUT = ("splits", "blocks", "eval_masks", "eval_masks_whole_word", "checkpoints", "train_log.json")


class MissingArtifactError(FileNotFoundError):
    """An earlier notebook's output is missing; the message names the notebook to run first."""


class DamagedArtifactError(RuntimeError):
    """An artifact exists but cannot be read whole; the message names the notebook that rewrites it."""


class OldRunFolderError(SettingsError):
    """The run folder was written by an earlier version of the course; the message says how to carry on."""


def damaged(settings: Settings, name: str, err: Exception) -> DamagedArtifactError:
    producer = PRODUCERS.get(name, "the notebook that wrote it")
    return DamagedArtifactError(
        f"{name} in {settings.run_path} is damaged or incomplete ({type(err).__name__}: {err}): "
        f"rerun {producer} to write it again"
    )


def key(settings: Settings, name: str) -> str:
    """A short hash of the settings that artifact ``name`` depends on: the same settings, the same key."""
    values = {field: getattr(settings, field) for field in ARTIFACT_FIELDS[name]}
    return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()[:8]


def path(settings: Settings, name: str) -> Path:
    """Where ``name`` lives: an artifact under its key in ``artifacts/``, anything else at the run folder's top."""
    artifacts = settings.run_path / ARTIFACTS
    if name in ARTIFACT_FIELDS:
        return artifacts / f"{name}-{key(settings, name)}"
    if name == "checkpoints":  # an interrupted training run's, beside the model it will become
        return artifacts / f"checkpoints-{key(settings, 'model')}"
    if name == "train_log.json":
        return path(settings, "model") / name
    if name == METRICS:  # the figures of one model: never a mix from two
        return artifacts / f"metrics-{key(settings, 'model')}.json"
    return settings.run_path / name


def current(settings: Settings) -> None:
    """Point the run folder's ``model`` and ``metrics.json`` at those of ``settings``; no link where there are none yet."""
    for name in ("model", METRICS):
        link, target = settings.run_path / name, path(settings, name)
        if link.is_symlink():
            link.unlink()
        if target.exists():
            link.symlink_to(target.relative_to(settings.run_path))


def check_layout(run_dir: str | Path) -> None:
    """Refuse a run folder written by an earlier version of the course; it is never deleted."""
    run_dir = Path(run_dir)
    old = [name for name in OLD_LAYOUT if (run_dir / name).exists()]
    old += [name for name in ("model", METRICS) if (run_dir / name).exists() and not (run_dir / name).is_symlink()]
    if old:
        raise OldRunFolderError(
            f"{run_dir} was written by an earlier version of the course ({', '.join(old)} at its top, one copy each): "
            f"it is left as it is. Move it aside (`mv {run_dir} {run_dir}-old`) or choose another run_dir, then rerun; "
            f"the notebooks rebuild what they need"
        )


def shown(folder: Path) -> str:
    """A path as the notebooks print it: relative to the project where it lies inside it, never a machine's own path."""
    from .config import project_root

    folder = Path(folder).resolve()
    return str(folder.relative_to(project_root())) if folder.is_relative_to(project_root()) else folder.name


def require(settings: Settings, name: str) -> Path:
    """The path of an earlier notebook's artifact, or an error naming the notebook to run first."""
    target = path(settings, name)
    if not target.exists():
        producer = PRODUCERS.get(name, "the earlier notebooks")
        raise MissingArtifactError(
            f"{name} is missing from {settings.run_path} for these settings: run {producer} first "
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
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p)
    elif p.exists() or p.is_symlink():
        p.unlink()


def made_with(settings: Settings, name: str) -> dict[str, Any]:
    """The settings artifact ``name`` depends on, written beside it for people to read (its key is their hash)."""
    return {field: getattr(settings, field) for field in ARTIFACT_FIELDS[name]}


def save_dataset(dataset, settings: Settings, name: str) -> Path:
    """``save_to_disk`` a Dataset or DatasetDict under its key in the run folder, atomically."""
    target = path(settings, name)
    with atomic_path(target) as tmp:
        dataset.save_to_disk(str(tmp))
        (tmp / "made_with.json").write_text(json.dumps(made_with(settings, name), indent=2) + "\n")
    return target


def record_settings(settings: Settings) -> None:
    """Write the run folder's record, which later notebooks take their unset parameters from."""
    check_layout(settings.run_path)
    values = {k: v for k, v in settings.as_dict().items() if k not in ONE_OFF}
    write_json(path(settings, RECORD), values)
    current(settings)


def recorded_settings(run_dir: str | Path, profile: str | None) -> dict[str, Any]:
    """The settings the run folder's notebooks last ran with ({} if none, or for another profile; with
    ``profile=None``, whichever profile it records, named in the result).

    A record that is not valid JSON of valid settings is refused with the fix, never silently reset.
    """
    check_layout(run_dir)
    record = Path(run_dir) / RECORD
    if not record.exists():
        return {}
    try:
        values = json.loads(record.read_text())
        if not isinstance(values, dict):
            raise ValueError("not a JSON object")
        if profile is not None and values.get("profile") != profile:
            return {}
        values = {k: v for k, v in values.items() if k not in (*ONE_OFF, "run_dir")}
        make_settings(**values)  # every value of its setting's type and range
    except (ValueError, SettingsError) as err:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise DamagedArtifactError(
            f"{record} is damaged ({type(err).__name__}: {err}): delete it, and the next notebook records "
            f"its settings anew (the artifacts beside it are kept)"
        ) from err
    return {k: v for k, v in values.items() if k in PARAMETERS and (k != "profile" or profile is None)}


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
        tmp.write(json.dumps(data, indent=2) + "\n")
    os.replace(tmp.name, target)


def read_json(settings: Settings, name: str) -> Any:
    try:
        return json.loads(require(settings, name).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise damaged(settings, name, err) from err


def load_model(settings: Settings):
    """The fine-tuned model that 04_train saved for these settings, or an error naming 04_train."""
    from .assets import AssetError, load_model as load

    target = require(settings, "model")
    try:
        return load(str(target))
    except AssetError as err:
        raise damaged(settings, "model", err) from err


def update_metrics(settings: Settings, **values: Any) -> dict[str, Any]:
    """Merge ``values`` into this model's ``metrics.json`` (with the settings used) and return the whole record."""
    metrics = read_metrics(settings)
    metrics.update(values)
    metrics["settings"] = settings.as_dict()
    write_json(path(settings, METRICS), metrics)
    current(settings)
    return metrics


def read_metrics(settings: Settings) -> dict[str, Any]:
    """What the notebooks have recorded so far for this model's settings ({} before any)."""
    return read_json(settings, METRICS) if path(settings, METRICS).exists() else {}


def in_use(settings: Settings) -> set[Path]:
    """The artifacts that ``settings`` reads: both kinds of evaluation masks, the model, its checkpoints and metrics."""
    names = [*ARTIFACT_FIELDS, "checkpoints", METRICS]
    return {path(settings, name) for name in names}


def prune(run_dir: str | Path) -> list[Path]:
    """Remove the artifacts that the run folder's recorded settings do not use; the paths removed."""
    run_dir = Path(run_dir).resolve()
    check_layout(run_dir)
    if not (run_dir / RECORD).exists():
        raise MissingArtifactError(f"{run_dir / RECORD} is missing: with no record of the settings in use, nothing is pruned")
    settings = make_settings(**{**recorded_settings(run_dir, None), "run_dir": str(run_dir)})
    keep = in_use(settings)
    removed = [p for p in sorted((run_dir / ARTIFACTS).glob("*")) if p not in keep and not p.name.startswith(".")]
    for p in removed:
        _remove(p)
    return removed


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2 or args[0] != "prune":
        print("usage: python -m helpers.runs prune RUN_DIR   (removes every artifact that the settings recorded in "
              "RUN_DIR/settings.json do not use, other settings' models included)")
        return 2
    try:
        removed = prune(args[1])
    except (SettingsError, MissingArtifactError, DamagedArtifactError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print("\n".join(f"removed {p}" for p in removed) or "nothing to remove: every artifact is in use")
    return 0


if __name__ == "__main__":
    sys.exit(main())
