"""Each notebook's inputs, from the run folder or built on the spot: so any notebook runs alone (Colab, Lab).

A notebook asks for what earlier notebooks make (``splits``, ``blocks``, ``eval_masks``, the fine-tuned
model). When the run folder holds it, made with the same settings, it is read; when it is missing or was
made with other settings, it is built by calling the helpers the earlier notebooks call, and one line says
what was built, why, and how long it took. A damaged artifact is still refused with the notebook that
rewrites it. Settings carry over too: a setting a notebook's parameters cell does not list is taken from the
run folder's record (what the notebooks before it ran with), else from the profile.
"""

from __future__ import annotations

import os
import time
from typing import Any, Callable, Mapping

from . import assets, collate, data, preprocess, progress, runs
from .config import ADDED_LATER, PARAMETERS, Settings, default_run_dir, made_with, make_settings


def settings(namespace: Mapping[str, Any]) -> Settings:
    """Settings from a notebook's parameters cell, recorded in the run folder for the notebooks after it.

    A setting the cell lists takes its value, ``None`` meaning the profile's; one it does not list takes the
    value the notebooks before it ran with (the run folder's record), else the profile's.
    """
    progress.quiet_libraries()
    listed = {name for name in PARAMETERS if name in namespace}
    given = {name: namespace[name] for name in listed if namespace[name] is not None}
    profile = given.pop("profile", "tiny")
    run_dir = given.get("run_dir") or str(default_run_dir(profile))
    recorded = {k: v for k, v in runs.recorded_settings(run_dir, profile).items() if k not in listed}
    chosen = make_settings(profile, **{**recorded, **given, "run_dir": run_dir})
    runs.record_settings(chosen)
    return chosen


def differences(recorded: dict[str, Any] | None, wanted: dict[str, Any]) -> str:
    """The settings that differ, as ``seed=1 (now 2)``; "" when none do."""
    if recorded is None:
        return "settings that were not recorded"

    def value(record: dict[str, Any], name: str) -> Any:  # a setting left out of a record is at its ADDED_LATER value
        return record.get(name, ADDED_LATER.get(name))

    names = [*wanted, *(name for name in recorded if name not in wanted)]
    changed = [f"{k}={value(recorded, k)!r} (now {value(wanted, k)!r})" for k in names if value(recorded, k) != value(wanted, k)]
    return ", ".join(changed)


def _ensure(s: Settings, name: str, build: Callable[[], Any], lacks: Callable[[Any], str] = lambda _: ""):
    """The artifact ``name`` from the run folder if made with these settings; else built, saved and said.

    ``lacks`` names what a stored artifact misses for these settings ("" when nothing): it is then rebuilt too.
    """
    wanted = made_with(s, name)
    if runs.path(s, name).exists():
        differ = differences(runs.read_made_with(s, name), wanted)
        if not differ:
            stored = runs.load_dataset(s, name)
            missing = lacks(stored)
            if not missing:
                return stored
            why = f"{name} in the run folder {missing}"
        else:
            why = f"{name} in the run folder was made with {differ}"
    else:
        why = f"{name} is not in the run folder yet"
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:  # several processes must not write one artifact at once
        raise runs.MissingArtifactError(f"{why}: run {runs.PRODUCERS[name]} first, in one process")
    start = time.perf_counter()
    artifact = build()
    runs.save_dataset(artifact, s, name)
    print(f"{why}: built it with {runs.PRODUCERS[name]}'s helpers in {time.perf_counter() - start:.1f} s")
    return artifact


def splits(s: Settings):
    """01_load's train/test split."""
    return _ensure(s, "splits", lambda: data.split_corpus(data.load_corpus(s), s))


def blocks(s: Settings, tokenizer=None):
    """02_preprocess's blocks of ``block_size`` tokens."""
    def build():
        tok = tokenizer or assets.load_tokenizer(s.model)
        model_config = assets.load_config(s.model)
        preprocess.check_block_size(s.block_size, tok, model_config)  # before any split is built
        return preprocess.build_blocks(splits(s), tok, s, model_config)

    def lacks(stored) -> str:  # blocks made before whole-word masking carry no offsets (03 masks both ways)
        if "offset_mapping" in stored["train"].column_names or not (tokenizer or assets.load_tokenizer(s.model)).is_fast:
            return ""
        return "carries no offset_mapping, which whole-word masking needs"

    return _ensure(s, "blocks", build, lacks)


def eval_masks(s: Settings, tokenizer=None):
    """03_collate's fixed evaluation masks over the test blocks, of this run's kind (token or whole-word)."""
    return _ensure(s, s.eval_masks_name,
                   lambda: collate.make_eval_masks(blocks(s, tokenizer)["test"], tokenizer or assets.load_tokenizer(s.model), s))


def finetuned(s: Settings):
    """04_train's fine-tuned model, trained here first when the run folder has none made with these settings."""
    from . import train  # here: train reads its inputs through this module

    if runs.path(s, "model").exists():
        differ = differences(runs.read_made_with(s, "model"), made_with(s, "model"))
        if not differ:
            return runs.load_model(s)
        why = f"the model in the run folder was trained with {differ}"
    else:
        why = "the run folder has no fine-tuned model yet"
    start = time.perf_counter()
    train.run(s, share=False)
    print(f"{why}: trained it with 04_train's helpers in {time.perf_counter() - start:.1f} s")
    return runs.load_model(s)
