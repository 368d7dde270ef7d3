"""Each notebook's settings and inputs, from the run folder or built on the spot: so any notebook runs alone.

A notebook asks for what earlier notebooks make (``splits``, ``blocks``, ``eval_masks``). The run folder keeps
each under a key of the settings that made it (helpers/runs.py): when it holds one for these settings it is
read; when not, it is built by calling the helpers the earlier notebooks call, and one line says what was
built and how long it took. Settings carry over too: a setting a notebook's parameters cell does not list is
taken from the run folder's record (what the notebooks before it ran with), else from the profile.
"""

from __future__ import annotations

import dataclasses
import os
import time
import warnings
from typing import Any, Callable, Mapping

from datasets import DatasetDict

from . import assets, collate, data, preprocess, progress, runs
from .config import PARAMETERS, STEP_PARAMETERS, Settings, SettingsError, default_run_dir, make_settings, typed

# notebook -> (the artifacts it reads, those it writes); "eval masks" is this run's kind of them
ARTIFACTS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "01_load": ((), ("splits",)),
    "02_preprocess": (("splits",), ("blocks",)),
    "03_collate": (("blocks",), ("eval masks",)),
    "04_train": (("blocks", "eval masks"), ("model",)),
    "05_evaluate": (("blocks", "eval masks", "model"), ("ood_eval_masks", runs.METRICS)),
    "06_infer": (("model",), (runs.METRICS,)),
}


def settings(namespace: Mapping[str, Any], notebook: str) -> Settings:
    """Settings from ``notebook``'s parameters cell, recorded in the run folder for the notebooks after it.

    Only the names the cell lists are read (``config.STEP_PARAMETERS``), ``None`` meaning the profile's value;
    the others take the value the notebooks before it ran with (the run folder's record), else the profile's.
    A setting assigned here that this notebook does not list is named in a warning: it is not read.
    """
    progress.quiet_libraries()
    listed = ("profile", *STEP_PARAMETERS[notebook], "run_dir")
    given = {name: namespace[name] for name in listed if namespace.get(name) is not None}
    profile = given.pop("profile", "tiny")
    run_dir = given.pop("run_dir", None) or str(default_run_dir(profile))
    recorded = {k: v for k, v in runs.recorded_settings(run_dir, profile).items() if k not in listed}
    chosen = make_settings(profile, **{**recorded, **given}, run_dir=run_dir)
    for name in PARAMETERS:
        if name not in listed and name in namespace and _is_setting(name, namespace[name]) \
                and namespace[name] != getattr(chosen, name):
            owner = next((nb for nb, names in STEP_PARAMETERS.items() if name in names), "run-all's -p")
            warnings.warn(f"{name}={namespace[name]!r} is set here, but {notebook} does not list {name}: it is not "
                          f"read, and {name}={getattr(chosen, name)!r} is used. Set it in {owner}'s parameters cell "
                          f"(or `make run-all PARAMS=\"-p {name} ...\"`)", stacklevel=2)
    runs.record_settings(chosen)
    print(where(chosen, notebook))
    return chosen


def _is_setting(name: str, value: Any) -> bool:
    """Whether ``value`` could be a value of setting ``name`` (06's ``model``, a model object, is not)."""
    try:
        typed(name, value)
    except SettingsError:
        return False
    return True


def where(s: Settings, notebook: str) -> str:
    """One line: the artifacts ``notebook`` reads and writes, in the run folder."""
    def names(kinds: tuple[str, ...]) -> str:
        masks = "stream_eval_masks" if s.streaming else s.eval_masks_name
        named = [masks if kind == "eval masks" else kind for kind in kinds if not (s.streaming and kind == "blocks")]
        return ", ".join(f"{name} ({runs.path(s, name).relative_to(s.run_path)})" for name in named) or "the corpus"
    reads, writes = ARTIFACTS[notebook]
    return f"run folder {runs.shown(s.run_path)}: reads {names(reads)}; writes {names(writes)}"


def _ensure(s: Settings, name: str, build: Callable[[], Any]):
    """The artifact ``name`` made with these settings, from the run folder; else built, saved and said."""
    if runs.path(s, name).exists():
        return runs.load_dataset(s, name)
    why = f"{name} for these settings is not in the run folder yet"
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

    return _ensure(s, "blocks", build)


def eval_masks(s: Settings, tokenizer=None):
    """03_collate's fixed evaluation masks over the test blocks, of this run's kind (token or whole-word).

    A streamed run's come from the records its stream held out (``stream_data``), never from another split.
    """
    tokenizer = tokenizer or assets.load_tokenizer(s.model)
    if s.streaming:
        return stream_data(s, tokenizer)[1]
    return _ensure(s, s.eval_masks_name, lambda: collate.make_eval_masks(blocks(s, tokenizer)["test"], tokenizer, s))


STREAM_EVAL_BLOCKS = 256  # streaming: the fixed evaluation masks come from at most this many held-out blocks


def stream_data(s: Settings, tokenizer):
    """Training blocks read lazily from the corpus, and evaluation masks from its first held-out blocks."""
    from datasets import Dataset

    stream = data.stream_split(data.stream_corpus(s), s)

    def held_out_masks():
        test_blocks = Dataset.from_list(list(preprocess.stream_blocks(stream["test"], tokenizer, s).take(STREAM_EVAL_BLOCKS)))
        if len(test_blocks) == 0:
            raise preprocess.BlocksError(f"the held-out records yield no block of {s.block_size} tokens: "
                                         f"use a smaller block_size, a larger test_size or more text")
        return collate.make_eval_masks(test_blocks, tokenizer, s)

    if runs.path(s, "stream_eval_masks").exists():
        masks = runs.load_dataset(s, "stream_eval_masks")
    else:  # every process makes the same masks (the stream and the seed fix them); the first one alone saves them
        masks = held_out_masks()
        if int(os.environ.get("RANK", "0")) == 0:
            runs.save_dataset(masks, s, "stream_eval_masks")
    # shuffled through a buffer, as a stream allows; the seed makes the order repeatable
    train_blocks = preprocess.stream_blocks(stream["train"], tokenizer, s).shuffle(seed=s.seed, buffer_size=10_000)
    return train_blocks, masks


def training_data(s: Settings, tokenizer):
    """04_train's inputs: the training blocks and the evaluation masks, in memory or streamed."""
    if s.streaming:
        return stream_data(s, tokenizer)
    return blocks(s, tokenizer)["train"], eval_masks(s, tokenizer)


def out_of_domain(s: Settings):
    """05's text from outside the domain (``ood_source``), split as 01 splits the corpus, with the same seed and
    test share: ``make exercises``' control trains on its train part, and every model is scored on its test part."""
    return data.split_corpus(data.load_out_of_domain(s), s)


def ood_eval_masks(s: Settings, tokenizer=None):
    """Fixed masks over held-out out-of-domain blocks, as many as the in-domain masks have, drawn with the seed."""
    tokenizer = tokenizer or assets.load_tokenizer(s.model)

    def build():
        wanted = len(eval_masks(s, tokenizer))
        held_out = DatasetDict(test=out_of_domain(s)["test"])
        ood = dataclasses.replace(s, text_field="text")  # ood_source's column, whatever the corpus's is
        test_blocks = preprocess.group_splits(preprocess.tokenize_splits(held_out, tokenizer, ood), ood)["test"]
        sample = test_blocks.shuffle(seed=s.seed).select(range(min(wanted, len(test_blocks))))
        return collate.make_eval_masks(sample, tokenizer, s)

    return _ensure(s, "ood_eval_masks", build)
