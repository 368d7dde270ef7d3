"""The ``## Try it`` exercises: their measured answers, folded, from ``try_it.json``, and their short variants that train
in the kernel. ``make exercises`` (``scripts/exercises.py``) measures both with the code here.
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

ANSWERS = {  # exercise -> (the run it trains, or None; its answer)
    "seed": ("seed", "Perplexity {r[perplexity_after]:.1f} against {b[perplexity_after]:.1f} with seed 42, top-1 "
             "accuracy {r[top1_after]:.1%} against {b[top1_after]:.1%}: a difference that size between two runs is noise."),
    "block_size": ("block_size", "{r[train_blocks]:,} training blocks against {b[train_blocks]:,}, so {r[train_steps]} "
                   "steps against {b[train_steps]}; perplexity {r[perplexity_after]:.1f} on its own masks against "
                   "{b[perplexity_after]:.1f}. The context, the number of steps and the masks all changed at once: add "
                   "`-p max_steps {b[train_steps]}` for the same number of steps."),
    "block_600": (None, "Refused before anything is built, with the model's limit in the message: *{x[block_600_error]}*"),
    "mlm_probability": ("mlm_probability", "{r[picked]:.1%} of the tokens picked, 80/10/10 unchanged; perplexity "
                        "{r[perplexity_after]:.1f} on these 30% masks, against {b[perplexity_after]:.1f} for the 15% model on "
                        "15% masks: each hidden token has less context around it."),
    "mask_overlap": (None, "Only {x[mask_overlap]:.1%} of these positions, about the 15% chance gives: each training "
                     "batch, masked afresh, is a new task, and the fixed masks are the same task every time."),
    "whole_word": ("whole_word", "Perplexity {r[perplexity_after]:.1f} on its whole-word masks, against "
                   "{b[perplexity_after]:.1f} for token masking on token masks: two different tasks, so the figures do "
                   "not compare. The table above scores both models on both kinds of masks."),
    "guide_lr": ("guide_lr", "Perplexity {r[perplexity_after]:.1f} after {r[train_steps]} steps at 2e-5, against "
                 "{b[perplexity_after]:.1f} at 5e-4, from {b[perplexity_before]:.1f} before fine-tuning."),
    "standard_head": ("standard_head", "Training took {r[train_seconds]:.0f} s against {b[train_seconds]:.0f} s "
                      "({x[standard_head_ratio]:.1f}x longer, one run each), for perplexity {r[perplexity_after]:.1f} "
                      "against {b[perplexity_after]:.1f}: the same training, computed a slower way."),
    "one_epoch": ("one_epoch", "Perplexity {r[perplexity_after]:.1f} and top-1 accuracy {r[top1_after]:.1%} after one "
                  "epoch, against {b[perplexity_after]:.1f} and {b[top1_after]:.1%} after three."),
    "harder_masks": (None, "{x[baseline_on_30]:.1f} on 30% masks of the same test blocks, against "
                     "{b[perplexity_after]:.1f} on 15% masks: compare models only on the same masks."),
    "water": (None, "The fine-tuned model's first three: {x[water_top3]}; \"oxygen\" ranks {x[water_rank]} (base model: "
              "{x[water_rank_base]:,})."),
}


def figures(settings: Settings) -> dict[str, Any]:
    """Train with ``settings`` as 04 does (``steps.train_model``), then what the notebooks show of the run."""
    start = time.perf_counter()
    model_dir, settings = steps.train_model(settings)
    blocks, _ = steps.load("blocks", settings)
    masks, _ = steps.load("eval_masks", settings)
    before = evaluate.score(assets.load_model(steps.base_model(settings), at_masks=True), masks)
    after = evaluate.score(assets.load_model(model_dir, at_masks=True), masks)
    metrics = runs.read_metrics(settings)
    return {"perplexity_before": before.perplexity, "perplexity_after": after.perplexity, "top1_after": after.accuracy[1],
            "top5_after": after.accuracy[5], "train_blocks": len(blocks["train"]), "train_steps": metrics["train_steps"],
            "train_seconds": metrics["train_seconds"], "seconds": round(time.perf_counter() - start),
            "picked": collate.measure(blocks["test"], masks, assets.load_tokenizer(settings.model))["picked"]}


def short_settings(settings: Settings, **change: Any) -> Settings:
    """This run's recipe, ``SHORT``, with ``change`` on top, in a run folder of its own under ``<run folder>/try``."""
    recipe = {k: getattr(settings, k) for k in runs.DEPENDS["model"]}
    folder = "-".join(f"{k}-{v}" for k, v in change.items()) or "recipe"
    return make_settings(settings.profile, **{**recipe, **SHORT, **change}, run_dir=str(settings.run_path / "try" / folder))


def short_run(settings: Settings, **change: Any) -> pd.DataFrame | Markdown:
    """The exercise in the kernel: this run's recipe and the ``change``, each trained short with 04's calls, side by side."""
    if os.environ.get(SKIP):
        return Markdown("*(An unattended run skips this cell: run it here, in about a minute.)*")
    rows = {name: figures(short_settings(settings, **extra)) for name, extra in
            (("this run's recipe", {}), (", ".join(f"{k}={v}" for k, v in change.items()), change))}
    columns = ["perplexity_before", "perplexity_after", "top1_after", "train_blocks", "train_steps", "train_seconds"]
    return pd.DataFrame(rows).T[columns].rename_axis(f"{SHORT['max_steps']} steps on {SHORT['num_examples']} records")


def read(path: Path | None = None) -> dict[str, Any] | None:
    """What ``make exercises`` measured, or None before it has run."""
    path = path or MEASURED
    return json.loads(path.read_text()) if path.exists() else None


def answer(name: str) -> Markdown:
    """The exercise's measured answer, folded under "What it measured", with the run that measured it."""
    run, template = ANSWERS[name]
    measured = read()
    try:
        trained = measured["runs"]
        text = template.format(b=trained["baseline"], r=trained.get(run, {}), x=measured["extras"])
        if name in measured.get("short", {}):
            s, b = measured["short"][name], measured["short"]["recipe"]
            text += (f" In the kernel ({SHORT['max_steps']} steps on {SHORT['num_examples']} records, each run scored on "
                     f"its own held-out fifth: a small sample): perplexity {s['perplexity_after']:.1f} against "
                     f"{b['perplexity_after']:.1f} without the change (from {b['perplexity_before']:.1f} before training); "
                     f"training {s['train_seconds']:.0f} s against {b['train_seconds']:.0f} s.")
        text += f" *(`make exercises`, {measured['profile']} profile, {measured['machine']}, {measured['date']})*"
    except (KeyError, TypeError):
        text = "(not measured yet: run `make exercises`)"
    return Markdown(f"<details><summary>What it measured</summary>\n\n{text}\n\n</details>")


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
