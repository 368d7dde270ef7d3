"""``make exercises``: measure every ``## Try it`` answer, and 05's control and classifiers, into helpers/try_it.json.

One model trained and scored per change of the tiny profile, in scratch run folders, with the calls the notebooks
make (``steps.train_model`` is 04's training); the notebooks render the figures (``helpers/tryit.py``).

    python -m scripts.exercises                            # about 25 minutes on 2 CPU cores
    python -m scripts.exercises --adaptation-only          # 05's control and classifiers only
    python -m scripts.exercises -p num_examples 300 -p max_steps 3 --out /tmp/quick.json   # a quick rehearsal
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from datasets import Dataset

from helpers import assets, collate, config, domain, evaluate, infer, preprocess, runs, steps, tryit
from helpers.preprocess import as_text
from scripts.bench import machine

RUNS: dict[str, dict[str, Any]] = {  # one trained and scored model each: its changes from the tiny profile
    "baseline": {}, "seed": {"seed": 1}, "block_size": {"block_size": 64}, "mlm_probability": {"mlm_probability": 0.3},
    "one_epoch": {"num_train_epochs": 1}, "guide_lr": {"learning_rate": 2e-5}, "standard_head": {"masked_head": False},
    "whole_word": {"whole_word_mask": True},
}
# the exercises' variants in the kernel, as the notebooks call tryit.short_run(settings, **change)
SHORT_RUNS: dict[str, dict[str, Any]] = {"recipe": {}, "seed": {"seed": 1}, "block_size": {"block_size": 64},
                                         "mlm_probability": {"mlm_probability": 0.3}, "guide_lr": {"learning_rate": 2e-5},
                                         "standard_head": {"masked_head": False}, "one_epoch": {"max_steps": 13}}


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
    if "standard_head" in measured:
        found["standard_head_ratio"] = measured["standard_head"]["train_seconds"] / measured["baseline"]["train_seconds"]
    if "whole_word" in measured:  # each model on both kinds of masks made from the same test blocks
        found["masking"] = {}
        for model_kind, run in (("token masking", "baseline"), ("whole-word masking", "whole_word")):
            rs = config.make_settings("tiny", **{**RUNS[run], **overrides, "run_dir": str(root / run)})
            model = assets.load_model(str(runs.path(rs, "model")), at_masks=True)
            found["masking"][model_kind] = {}
            for mask_kind, whole in collate.WAYS.items():
                scores = evaluate.score(model, collate.make_eval_masks(
                    blocks["test"], tokenizer, dataclasses.replace(rs, whole_word_mask=whole)))
                found["masking"][model_kind][mask_kind] = {"perplexity": scores.perplexity, "top1": scores.accuracy[1]}
    return found


# --- 05's part two: the same-budget control and the fine-tuned classifiers ---------------------------------------

def control(s: config.Settings, train_steps: int, root: Path) -> dict[str, Any]:
    """The base model trained as many further steps, with the same recipe, on the other text's training split (as the
    general stage splits it), then the base, the domain model and the control on held-out text of both kinds."""
    base = steps.base_model(s)
    recipe = {k: getattr(s, k) for k in runs.DEPENDS["model"] if k not in (*runs.SPLIT, "model", "general_stage", "ood_source")}
    other = config.make_settings("tiny", **{**recipe, "max_steps": train_steps}, model=base, general_stage=False,
                                 seed=steps.GENERAL["seed"], test_size=steps.GENERAL["test_size"],  # its split
                                 source=s.ood_source, ood_source=s.source,
                                 text_field="text", label_field="", run_dir=str(root / "control"))
    control_dir, _ = steps.train_model(other)
    tokenizer = assets.load_tokenizer(s.model)
    masks = {"in the domain": steps.load("eval_masks", s)[0]}
    masks["on the other text"] = domain.ood_masks(s, tokenizer, len(masks["in the domain"]))
    models = dict(zip(domain.CONTROL, (base, str(runs.path(s, "model")), control_dir)))
    return {"perplexity": {name: {kind: evaluate.score(assets.load_model(path, at_masks=True), m, top_k=()).perplexity
                                  for kind, m in masks.items()} for name, path in models.items()},
            "steps": train_steps, "source": s.ood_source}


SEEDS, FEW_PER_CLASS, CLASSIFIER_TOKENS = (0, 1, 2, 3, 4), 16, 64
REGIMES = {"few": dict(per_class=FEW_PER_CLASS, epochs=10), "all": dict(per_class=None, epochs=1)}


def few_labels(labels: list[int], per_class: int, seed: int) -> list[int]:
    """``per_class`` record indices of each class, drawn with ``seed`` (all of a class that has fewer)."""
    rng = random.Random(seed)
    return [i for c in sorted(set(labels)) for i in sorted(rng.sample([j for j, label in enumerate(labels) if label == c],
                                                                      min(per_class, labels.count(c))))]


def classifier(encoder: str, splits, s: config.Settings, seed: int, per_class: int | None, epochs: float) -> dict[str, float]:
    """A classifier fine-tuned from ``encoder`` (a new head on it) with ``Trainer``, scored on the test split."""
    from transformers import AutoModelForSequenceClassification, PrinterCallback, Trainer, TrainingArguments, set_seed
    from transformers.utils import logging as hf_logging

    tokenizer = assets.load_tokenizer(encoder)
    ids, names = domain.label_ids(splits, s.label_field)

    def encoded(split: str, rows: list[int] | None = None) -> Dataset:
        texts = [as_text(t) for t in splits[split][s.text_field]]
        rows = range(len(texts)) if rows is None else rows
        tokens = tokenizer([texts[i] for i in rows], truncation=True, max_length=CLASSIFIER_TOKENS)
        return Dataset.from_dict({**tokens, "labels": [int(ids[split][i]) for i in rows]})

    set_seed(seed)  # the new head's starting weights
    hf_logging.set_verbosity_error()  # not its report of the new head, which is meant to start untrained
    model = AutoModelForSequenceClassification.from_pretrained(assets.model_path(encoder), num_labels=len(names))
    hf_logging.set_verbosity_warning()
    with tempfile.TemporaryDirectory() as scratch:
        args = TrainingArguments(output_dir=scratch, per_device_train_batch_size=16, per_device_eval_batch_size=128,
                                 num_train_epochs=epochs, learning_rate=5e-4, seed=seed, save_strategy="no",
                                 report_to="none", logging_strategy="no", disable_tqdm=True, dataloader_pin_memory=False)
        train_rows = few_labels(ids["train"].tolist(), per_class, seed) if per_class else None
        trainer = Trainer(model=model, args=args, train_dataset=encoded("train", train_rows), processing_class=tokenizer)
        trainer.remove_callback(PrinterCallback)
        trainer.train()
        predicted = trainer.predict(encoded("test")).predictions.argmax(-1)
    return domain.label_scores(predicted.tolist(), ids["test"].tolist())


def classifiers(s: config.Settings) -> dict[str, Any]:
    splits, s = steps.load("splits", s)
    encoders = {"base encoder": steps.base_model(s), "adapted encoder": str(runs.path(s, "model"))}
    found: dict[str, Any] = {}
    for regime, how in REGIMES.items():
        found[regime] = {}
        for name, encoder in encoders.items():
            scores = [classifier(encoder, splits, s, seed, **how) for seed in SEEDS]
            found[regime][name] = {k: [r[k] for r in scores] for k in ("macro_f1", "accuracy")}
            print(f"[classifier, {regime} labels, {name}] macro-F1 {statistics.mean(found[regime][name]['macro_f1']):.3f}")
    return {"seeds": list(SEEDS), "few_per_class": FEW_PER_CLASS, "label_field": s.label_field, "by_regime": found}


def adaptation(root: Path, measured: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    start = time.perf_counter()
    s = config.make_settings("tiny", **{**overrides, "run_dir": str(root / "baseline")})
    found = {"control": control(s, measured["baseline"]["train_steps"], root), "classifiers": classifiers(s)}
    found["measured"] = {"profile": s.profile, "model": s.model, "source": s.source, "overrides": overrides,
                         "machine": machine(), "date": time.strftime("%Y-%m-%d"), "seconds": round(time.perf_counter() - start)}
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Measure every Try it answer into helpers/try_it.json.")
    parser.add_argument("--out", type=Path, default=tryit.MEASURED, help="where the figures go")
    parser.add_argument("-p", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"), help="a change for every run")
    parser.add_argument("--adaptation-only", action="store_true", help="only 05's control and classifiers (the baseline "
                                                                       "trained again); the rest is kept")
    args = parser.parse_args(argv)
    overrides = config.parse_command_line(config.parameter_pairs(args.p))
    with tempfile.TemporaryDirectory(prefix="try_it-") as scratch:
        root = Path(scratch)
        if args.adaptation_only:
            measured = tryit.read(args.out) or {}
            if measured.get("overrides", overrides) != overrides:  # one file, one set of changes
                parser.error(f"{args.out} was measured with {measured['overrides'] or 'no changes'}: give the same -p")
            if not measured:
                parser.error(f"{args.out} holds no other figures yet: run the whole of `make exercises` first")
            measured["adaptation"] = adaptation(root, measure_runs(root, ["baseline"], overrides), overrides)
        else:
            trained = measure_runs(root, list(RUNS), overrides)
            measured = {"profile": "tiny", "overrides": overrides, "machine": machine(), "date": time.strftime("%Y-%m-%d"),
                        "runs": trained, "short": measure_short(root, overrides), "extras": extras(root, trained, overrides),
                        "adaptation": adaptation(root, trained, overrides)}
    runs.write_json(args.out, measured)
    print(f"wrote {runs.shown(args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
