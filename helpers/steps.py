"""Each notebook's inputs, read from the run folder or made with the earlier notebooks' calls: so any notebook runs alone.

``load("blocks", settings)`` reads 02's blocks when every setting the notebook pinned agrees with what made them (a
clash is refused with the fix); missing, damaged or made by other code, they are made again with the settings they had,
and made from other inputs (an edited corpus, splits made again), from those inputs as they are now. A model made by
other code is used, and said to be older; one trained on other blocks is refused with the fix. ``main`` is
``python -m helpers.train``: 04 unattended.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import sys
import time
from typing import Any, Callable

from pathlib import Path

from datasets import Dataset, DatasetDict, load_from_disk
from filelock import FileLock

from . import assets, collate, data, domain, lesson, preprocess, runs, train
from .config import Settings, SettingsError, check, make_settings, parse_command_line

COMMAND_LINE_ONLY = ("streaming", "max_steps", "precision")  # 04's page trains as the guide does, without them
STREAM_EVAL_BLOCKS = 256  # a streamed run's fixed evaluation masks come from its first held-out blocks


def load(name: str, settings: Settings) -> tuple[Any, Settings]:
    """The artifact ``name`` (a Dataset, or the model's folder) and the settings that made it, this notebook's on top;
    ``"blocks"`` with ``whole_word_mask`` are 03's word blocks: 02's tokens, each with its character span."""
    name = "word_blocks" if name == "blocks" and settings.whole_word_mask else name
    target, record = runs.path(settings, name), runs.record(settings, name)
    why = "missing"
    if record is not None and not runs.current(settings, name):  # made again from its inputs as they are now
        parent = runs.made_from(settings, name)  # its own settings kept, the others taken from that input
        own = {k: v for k, v in record["settings"].items() if not parent or k not in runs.DEPENDS[parent]}
        settings = pinned(settings, own, name)
        why = "made from other inputs (the corpus or an earlier step changed since)"
        if name == "model" and not settings.retrain:  # never trained again unasked
            raise SettingsError(f"{runs.shown(target)} was trained on other blocks than these settings make now (the "
                                f"corpus or an earlier step changed since): rerun 04_train, or set retrain=True")
    elif record is not None:
        settings = pinned(settings, record["settings"], name)  # a clash is refused here, with the fix
        same_code = record["code"] == runs.CODE
        if same_code or name == "model":  # a model is used, and said to be older
            try:
                if name == "model" and not (target / "model.safetensors").is_file():
                    raise FileNotFoundError(target / "model.safetensors")
                thing = str(target) if name == "model" else load_from_disk(str(target), keep_in_memory=True)
                older = "" if same_code else " (by older code or libraries: rerun 04_train to train it with these)"
                print(f"read {runs.shown(target)}, made by {runs.MADE_BY[name]}{older}")
                return thing, settings
            except (OSError, ValueError) as err:  # a file cut short or missing: make it again
                why = f"damaged ({type(err).__name__})"
        else:
            why = "made by other code"
    start = time.perf_counter()
    thing, settings = BUILD[name](settings)
    if name != "model" and int(os.environ.get("RANK", "0")) == 0:
        runs.save(thing, settings, name)
    print(f"{runs.shown(target)} was {why}: made it with {runs.MADE_BY[name]}'s calls in {time.perf_counter() - start:.0f} s")
    return thing, settings


def refuse_command_line_only(parameters: dict[str, Any]) -> None:
    """The notebooks train as the guide does: a setting only ``python -m helpers.train`` applies is refused, not ignored."""
    refused = sorted(k for k, v in parameters.items() if k in COMMAND_LINE_ONLY and v is not None)  # None: not given
    if refused:
        raise SettingsError(f"the notebooks train as the guide does, without {refused}: give "
                            f"{'it' if len(refused) == 1 else 'them'} to `python -m helpers.train` instead")


def start(profile: str, *names: str, **parameters: Any) -> tuple[Any, ...]:
    """A notebook's first call: its settings (``profile``, then its ``parameters``) and its inputs ``names``, each read
    with ``load``; ``"model_checkpoint"`` is the model's folder (or its Hub name), ``"base_model"`` where 04 started."""
    refuse_command_line_only(parameters)
    settings = make_settings(profile, **parameters)
    things = []
    for name in names:
        if name == "base_model":  # the one the run folder's model started from, where it has one
            things.append(started_from(settings) or base_model(settings))
        elif name == "model_checkpoint":
            things.append(assets.model_path(settings.model))
        else:
            thing, settings = load(name, settings)
            things.append(thing)
    return (settings, *things)


def pinned(settings: Settings, values: dict[str, Any], source: str) -> Settings:
    """``settings`` with ``values`` (what made ``source``) pinned in place; a value pinned otherwise is refused."""
    clash = {k: v for k, v in values.items() if k in settings.pinned and v != getattr(settings, k)}
    if clash:
        made = ", ".join(f"{k}={v!r}" for k, v in clash.items())
        where = {settings.pinned[k] for k in clash}
        mine = ", ".join(f"{k}={getattr(settings, k)!r}" for k in clash)
        if where == {"parameters"}:
            first = runs.MADE_BY[next(a for a in runs.DEPENDS if set(clash) & set(runs.DEPENDS[a]))]
            fix = (f"set {made} in the parameters cell (or None: whatever the inputs were made with), or make the inputs "
                   f"again with {mine}: rerun the notebooks from {first} (make run-all PARAMS=\"-p ...\")")
        else:
            later = max([source, *where - {"parameters"}], key=list(runs.DEPENDS).index)
            fix = f"they come from different runs: rerun {runs.MADE_BY[later]} to make {later} again from its inputs"
        raise SettingsError(f"{runs.shown(runs.path(settings, source))} was made with {made}, and "
                            f"{'this notebook' if where == {'parameters'} else ' and '.join(where - {'parameters'})} "
                            f"has {mine}: {fix}")
    merged = dataclasses.replace(settings, **values)
    check(merged)  # what the inputs bring must still make sense with what the notebook sets
    object.__setattr__(merged, "pinned", {**{k: source for k in values}, **settings.pinned})
    return merged


def _splits(s: Settings) -> tuple[Any, Settings]:
    return data.split_corpus(data.load_corpus(s), s), pinned(s, runs.settings_of(s, "splits"), "splits")


def _blocks(s: Settings) -> tuple[Any, Settings]:
    splits, s = load("splits", s)
    blocks = preprocess.build_blocks(splits, assets.load_tokenizer(s.model), s, assets.load_config(s.model))
    return blocks, pinned(s, runs.settings_of(s, "blocks"), "blocks")


def _word_blocks(s: Settings) -> tuple[Any, Settings]:
    plain = dataclasses.replace(s, whole_word_mask=False)
    object.__setattr__(plain, "pinned", s.pinned)
    _, made = load("blocks", plain)  # 02's blocks, made or read: the word blocks are these, each token with its span
    splits, s = load("splits", pinned(s, runs.settings_of(made, "blocks"), "blocks"))
    blocks = preprocess.build_blocks(splits, assets.load_tokenizer(s.model), s, assets.load_config(s.model), spans=True)
    return blocks, pinned(s, runs.settings_of(s, "word_blocks"), "word_blocks")


def _eval_masks(s: Settings) -> tuple[Any, Settings]:
    tokenizer = assets.load_tokenizer(s.model)
    if s.streaming:  # the first held-out blocks of the stream: never text the stream trains on
        test = data.stream_split(data.stream_corpus(s), s)["test"]
        test_blocks = Dataset.from_list(list(preprocess.stream_blocks(test, tokenizer, s).take(STREAM_EVAL_BLOCKS)))
    else:
        blocks, s = load("blocks", s)
        test_blocks = blocks["test"]
    return collate.make_eval_masks(test_blocks, tokenizer, s), pinned(s, runs.settings_of(s, "eval_masks"), "eval_masks")


def started_from(settings: Settings) -> str | None:
    """The base model the run folder's model was fine-tuned from (None: no model, or no record of its base); refused,
    with the fix, when it has changed since."""
    made = (runs.record(settings, "model") or {}).get("inputs", {})
    if not made.get("base"):
        return None
    if runs.fingerprint(made["base"]) != made["base_files"]:
        raise SettingsError(f"{runs.shown(runs.path(settings, 'model'))} was fine-tuned from {made['base']}, which has "
                            f"changed or gone since: rerun 04_train to fine-tune from today's base model")
    print("the base model: the one the fine-tuned model started from")
    return made["base"]


def general_folder(settings: Settings) -> Path:
    """The general model's folder in the cache, named by a hash of all that makes it: the recipe, the general text, the
    model's files and the course's code (so two versions of the code keep two models)."""
    made_of = [domain.GENERAL, runs.CODE, runs.fingerprint(assets.model_path(settings.model)),
               list(domain.other_text(settings)["general"]["text"])]
    return assets.CACHE / f"general-{runs.digest(made_of)[:12]}"


def base_model(settings: Settings) -> str:
    """Where fine-tuning starts: the general model (made once with 04's ``guide_trainer``, under a lock that a second
    process waits at), or without a general stage the model's own."""
    if not settings.general_stage:
        return assets.model_path(settings.model)
    folder = general_folder(settings)
    folder.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(f"{folder}.lock"):  # its own lock: runs.atomic, inside, holds the .<name>-lock one
        if not (folder / "model.safetensors").exists():
            if int(os.environ.get("WORLD_SIZE", "1")) > 1:
                raise SettingsError("the general model is not made yet: make it in one process first (run 04_train, "
                                    "or python -m helpers.train --max_steps 1 --run_dir runs/scratch), then launch them")
            print(f"the general model is not in the cache: making it in {runs.shown(folder)}")
            recipe = make_settings("tiny", model=settings.model, text_field="text")  # the tiny profile's 04
            tokenizer = assets.load_tokenizer(settings.model)
            text = DatasetDict(train=domain.other_text(settings)["general"])
            blocks = preprocess.group_splits(preprocess.tokenize_splits(text, tokenizer, recipe), recipe)["train"]
            with runs.atomic(folder) as scratch:  # whole or not at all
                trainer = lesson.guide_trainer(assets.model_path(settings.model), blocks, None, str(scratch / "checkpoints"),
                                               mlm_probability=recipe.mlm_probability, learning_rate=recipe.learning_rate,
                                               num_train_epochs=domain.GENERAL["num_train_epochs"],
                                               batch_size=recipe.batch_size, seed=domain.GENERAL["seed"], eval_strategy="no")
                trainer.train()
                trainer.save_model(str(scratch))
                shutil.rmtree(scratch / "checkpoints")  # its last step's optimizer: nothing resumes a finished model
    print("the base model: the general model, kept in the cache")
    return str(folder)


def train_model(settings: Settings) -> tuple[str, Settings]:
    """Notebook 04 in one call, resumed where a run stopped and saved (pushed with ``push_to_hub``); also under torchrun."""
    train.check_launcher()
    tokenizer = assets.load_tokenizer(settings.model)
    eval_masks, settings = load("eval_masks", settings)
    if settings.streaming:  # shuffled through a buffer, as a stream allows; the seed makes the order repeatable
        stream = data.stream_split(data.stream_corpus(settings), settings)["train"]
        train_blocks = preprocess.stream_blocks(stream, tokenizer, settings).shuffle(seed=settings.seed, buffer_size=10_000)
    else:
        train_blocks = load("blocks", settings)[0]["train"]
    base = base_model(settings)
    model = assets.load_model(base, at_masks=settings.masked_head)
    trainer = train.make_trainer(settings, model, tokenizer, train_blocks, eval_masks)
    first = trainer.is_world_process_zero()
    checkpoint = train.last_checkpoint(settings, base) if first else None  # the first process settles the folder
    trainer.accelerator.wait_for_everyone()
    checkpoint = checkpoint if first else train.last_checkpoint(settings, base)
    before = trainer.evaluate()["eval_loss"]  # as 04 does, before train()
    output = trainer.train(resume_from_checkpoint=checkpoint)
    after = trainer.evaluate()["eval_loss"]  # before save, which may push from the first process
    train.save(trainer, settings, checkpoint, output)
    print(f"perplexity on the fixed masks: {math.exp(before):,.1f} before training, {math.exp(after):,.1f} after")
    return str(runs.path(settings, "model")), settings


BUILD: dict[str, Callable[[Settings], tuple[Any, Settings]]] = {
    "splits": _splits, "blocks": _blocks, "word_blocks": _word_blocks, "eval_masks": _eval_masks, "model": train_model}


def main(argv: list[str] | None = None) -> int:
    """``python -m helpers.train``: settings from the command line (``--help`` lists them), then ``train_model``."""
    try:
        settings = make_settings(**parse_command_line(sys.argv[1:] if argv is None else argv))
        folder, settings = train_model(settings)
    except (SettingsError, assets.AssetError, data.CorpusError, preprocess.BlocksError, train.PushError) as err:
        sys.exit(f"error: {err}")  # the message says what to fix; a traceback would bury it
    metrics = runs.read_metrics(settings)
    print(f"process {os.environ.get('RANK', 0)}: {metrics.get('train_steps', '?')} steps in "
          f"{metrics.get('train_seconds', '?')} s; the model is in {runs.shown(folder)}")
    return 0
