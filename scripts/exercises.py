"""``make exercises``: measure every ``## Try it`` answer into helpers/try_it.json.

One model trained and scored per change of the tiny profile, in scratch run folders, with the calls the notebooks
make (``steps.train_model`` is 04's training); the notebooks render the figures (``helpers/tryit.py``).

    python -m scripts.exercises                            # about 20 minutes on 2 CPU cores
    python -m scripts.exercises -p num_examples 300 -p max_steps 3 --out /tmp/quick.json   # a quick rehearsal
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from helpers import assets, collate, config, evaluate, infer, preprocess, runs, steps, tryit
from scripts.bench import machine

RUNS: dict[str, dict[str, Any]] = {  # one trained and scored model each: its changes from the tiny profile
    "baseline": {}, "seed": {"seed": 1}, "block_size": {"block_size": 64}, "mlm_probability": {"mlm_probability": 0.3},
    "one_epoch": {"num_train_epochs": 1}, "guide_lr": {"learning_rate": 2e-5}, "standard_head": {"masked_head": False},
    "whole_word": {"whole_word_mask": True},
}
# the exercises' variants in the kernel, as the notebooks call tryit.short_run(settings, **change)
SHORT_RUNS: dict[str, dict[str, Any]] = {"recipe": {}, "seed": {"seed": 1}, "block_size": {"block_size": 64},
                                         "mlm_probability": {"mlm_probability": 0.3}, "guide_lr": {"learning_rate": 2e-5},
                                         "one_epoch": {"max_steps": 13}}


def measure_short(root: Path, overrides: dict[str, Any]) -> dict[str, dict[str, Any]]:
    s = config.make_settings("tiny", **{**overrides, "run_dir": str(root / "baseline")})
    return {name: tryit.figures(tryit.short_settings(s, **change)) for name, change in SHORT_RUNS.items()}


def measure_runs(root: Path, names: list[str], overrides: dict[str, Any]) -> dict[str, dict[str, Any]]:
    measured = {}
    for name in names:
        print(f"[{name}] {RUNS[name] or 'the tiny profile as it is'}", flush=True)
        measured[name] = tryit.figures(config.make_settings("tiny", **{**RUNS[name], **overrides, "run_dir": str(root / name)}))
        print(f"[{name}] perplexity {measured[name]['perplexity_after']:.1f} ({measured[name]['seconds']} s)", flush=True)
    return measured


def extras(root: Path, measured: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """The answers that need no training of their own: an error, a mask overlap, harder masks, fill-mask, ranks."""
    s = config.make_settings("tiny", **{**overrides, "run_dir": str(root / "baseline")})
    tokenizer = assets.load_tokenizer(s.model)
    try:
        preprocess.check_block_size(600, tokenizer, assets.load_config(s.model))
        block_600_error = "(no error: this model reads 600 tokens)"
    except config.SettingsError as err:
        block_600_error = str(err)
    blocks, s = steps.load("blocks", s)
    masks, s = steps.load("eval_masks", s)
    other = collate.make_eval_masks(blocks["test"], tokenizer, dataclasses.replace(s, seed=1))
    picked, picked_too = (torch.tensor(m["labels"]) != collate.IGNORE for m in (masks, other))
    finetuned = assets.load_model(str(runs.path(s, "model")), at_masks=True)
    base = assets.load_model(steps.base_model(s), at_masks=True)
    harder = collate.make_eval_masks(blocks["test"], tokenizer, dataclasses.replace(s, mlm_probability=0.3))
    water = infer.with_mask("Water is made of hydrogen and {mask}.", tokenizer)
    found = {"block_600_error": block_600_error,
             "mask_overlap": float((picked & picked_too).sum() / picked.sum()),
             "baseline_on_30": evaluate.score(finetuned, harder, top_k=()).perplexity,
             "water_top3": ", ".join(f"{r['token_str'].strip()} ({r['score']:.3f})"
                                     for r in infer.fill_mask(water, finetuned, tokenizer, 3)),
             "water_rank": infer.rank_of(water, "oxygen", finetuned, tokenizer)[0],
             "water_rank_base": infer.rank_of(water, "oxygen", base, tokenizer)[0]}
    if "whole_word" in measured:  # each model on both kinds of masks made from the same test blocks, with their spans
        words, _ = steps.load("blocks", dataclasses.replace(s, whole_word_mask=True))
        found["masking"] = {}
        for model_kind, run in (("token masking", "baseline"), ("whole-word masking", "whole_word")):
            rs = config.make_settings("tiny", **{**RUNS[run], **overrides, "run_dir": str(root / run)})
            model = assets.load_model(str(runs.path(rs, "model")), at_masks=True)
            found["masking"][model_kind] = {}
            for mask_kind, whole in (("token masking", False), ("whole-word masking", True)):
                scores = evaluate.score(model, collate.make_eval_masks(
                    words["test"], tokenizer, dataclasses.replace(rs, whole_word_mask=whole)))
                found["masking"][model_kind][mask_kind] = {"perplexity": scores.perplexity, "top1": scores.accuracy[1]}
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Measure every Try it answer into helpers/try_it.json.")
    parser.add_argument("--out", type=Path, default=tryit.MEASURED, help="where the figures go")
    parser.add_argument("-p", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"), help="a change for every run")
    args = parser.parse_args(argv)
    overrides = config.parse_command_line(config.parameter_pairs(args.p))
    with tempfile.TemporaryDirectory(prefix="try_it-") as scratch:
        root = Path(scratch)
        trained = measure_runs(root, list(RUNS), overrides)
        measured = {"profile": "tiny", "overrides": overrides, "machine": machine(), "date": time.strftime("%Y-%m-%d"),
                    "runs": trained, "short": measure_short(root, overrides), "extras": extras(root, trained, overrides)}
    runs.write_json(args.out, measured)
    print(f"wrote {runs.shown(args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
