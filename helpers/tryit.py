"""The measured answers of the notebooks' ``## Try it`` exercises, folded, from ``try_it.json`` (every notebook).

Each exercise's question and change are the notebook's own markdown; its answer is a short template here, filled
with what ``make exercises`` (``scripts/exercises.py``) measured by training and scoring each variant. ``{b[...]}``
is the unchanged run's figures, ``{r[...]}`` the exercise's own run's, ``{x[...]}`` the figures needing no training.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from IPython.display import Markdown

MEASURED = Path(__file__).with_name("try_it.json")

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
                 "{b[perplexity_after]:.1f} at 5e-4: the guide's rate suits an 82M-parameter model that already fills in "
                 "words; this tiny one must relearn it in a few hundred steps."),
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


def read(path: Path | None = None) -> dict[str, Any] | None:
    """What ``make exercises`` measured, or None before it has run."""
    path = path or MEASURED
    return json.loads(path.read_text()) if path.exists() else None


def answer(name: str) -> Markdown:
    """The exercise's measured answer, folded under "What it measured", with the run that measured it."""
    run, template = ANSWERS[name]
    measured = read()
    try:
        runs = measured["runs"]
        text = template.format(b=runs["baseline"], r=runs.get(run, {}), x=measured["extras"])
        text += f" *(`make exercises`, {measured['profile']} profile, {measured['machine']}, {measured['date']})*"
    except (KeyError, TypeError):
        text = "(not measured yet: run `make exercises`)"
    return Markdown(f"<details><summary>What it measured</summary>\n\n{text}\n\n</details>")


def masking_comparison():
    """03: the token-masking and the whole-word model, each scored on both kinds of masks (rows: how it was trained)."""
    import pandas as pd

    measured = read() or {}
    found = measured.get("extras", {}).get("masking")
    if not found:
        return Markdown("(not measured yet: run `make exercises`)")
    return pd.DataFrame({f"trained with {model}": {(f"on {masks.removesuffix(' masking')} masks", what): round(f[key], digits)
                                                   for masks, f in by_masks.items()
                                                   for what, key, digits in (("perplexity", "perplexity", 1), ("top-1", "top1", 3))}
                         for model, by_masks in found.items()}).T
