"""The ``## Try it`` exercises: their short variants, which train in the kernel, and what ``make exercises``
(``scripts/exercises.py``) measured at full size, in ``try_it.json``, which the folded answers are checked against.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pandas as pd
from IPython.display import Markdown

from . import assets, collate, evaluate, runs, steps
from .config import Settings, make_settings

MEASURED = Path(__file__).with_name("try_it.json")
SHORT = {"num_examples": 300, "max_steps": 40}  # a variant in the kernel: about a minute on 2 CPU cores
SKIP = "COURSE_SKIP_TRY_IT"  # set by make run-all and nbval, which leave the training exercises to the learner

def figures(settings: Settings, masks=None) -> dict[str, Any]:
    """Train with ``settings`` as ``python -m helpers.train`` does, then the run's figures: before and after training on
    ``masks`` (None: the run's own fixed masks)."""
    start = time.perf_counter()
    model_dir, settings = steps.train_model(settings)
    blocks, _ = steps.load("blocks", settings)
    own, _ = steps.load("eval_masks", settings)
    masks = own if masks is None else masks
    before = evaluate.score(assets.load_model(steps.base_model(settings), at_masks=True), masks)
    after = evaluate.score(assets.load_model(model_dir, at_masks=True), masks)
    metrics = runs.read_metrics(settings)
    return {"perplexity_before": before.perplexity, "perplexity_after": after.perplexity, "top1_after": after.accuracy[1],
            "top5_after": after.accuracy[5], "train_blocks": len(blocks["train"]), "train_steps": metrics["train_steps"],
            "train_seconds": metrics["train_seconds"], "seconds": round(time.perf_counter() - start),
            "picked": collate.measure(blocks["test"], own, assets.load_tokenizer(settings.model))["picked"]}


def short_settings(settings: Settings, **change: Any) -> Settings:
    """This run's recipe, ``SHORT``, with ``change`` on top, in a run folder of its own under ``<run folder>/try``."""
    recipe = {k: getattr(settings, k) for k in runs.DEPENDS["model"]}
    folder = "-".join(f"{k}-{v}" for k, v in change.items()) or "recipe"
    return make_settings(settings.profile, **{**recipe, **SHORT, **change}, run_dir=str(settings.run_path / "try" / folder))


def short_run(settings: Settings, **change: Any) -> pd.DataFrame | Markdown:
    """The exercise in the kernel: this run's recipe and the ``change``, each trained short, each scored before and after
    on the recipe's fixed masks (a change of the split scores on its own split's, and says so)."""
    if os.environ.get(SKIP):
        return Markdown("*(An unattended run skips this cell: run it here, in about a minute.)*")
    recipe = short_settings(settings)
    rows = {"this run's recipe": figures(recipe)}
    masks, _ = steps.load("eval_masks", recipe)
    own_split = bool(set(change) & set(runs.SPLIT))  # its test records differ: the recipe's masks may hold its training text
    rows[", ".join(f"{k}={v}" for k, v in change.items())] = figures(short_settings(settings, **change),
                                                                      None if own_split else masks)
    table = pd.DataFrame(rows).T[["perplexity_before", "perplexity_after", "top1_after", "train_blocks", "train_steps",
                                  "train_seconds"]]
    table["scored on"] = ["its test split"] + ["its own test split" if own_split else "the recipe's masks"]
    return table.rename_axis(f"{SHORT['max_steps']} steps on {SHORT['num_examples']} records")


def read(path: Path | None = None) -> dict[str, Any] | None:
    """What ``make exercises`` measured, or None before it has run."""
    path = path or MEASURED
    return json.loads(path.read_text()) if path.exists() else None


def masking_comparison():
    """03: the token-masking and the whole-word model, each scored on both kinds of masks (rows: how it was trained)."""
    measured = read() or {}
    found = measured.get("extras", {}).get("masking")
    if not found:
        return Markdown("(not measured yet: run `make exercises`)")
    return pd.DataFrame({f"trained with {model}": {(f"on {masks.removesuffix(' masking')} masks", what): round(f[key], digits)
                                                   for masks, f in by_masks.items()
                                                   for what, key, digits in (("perplexity", "perplexity", 1), ("top-1", "top1", 3))}
                         for model, by_masks in found.items()}).T
