"""The ``## Try it`` section at the end of every notebook: changes to make, and what each one measured.

Every expectation is measured, never guessed: ``python -m helpers.exercises`` (``make exercises``) trains
and scores one model per parameter change on the tiny profile, with the notebooks' own helpers, and writes
the figures to ``try_it.json`` beside this module. Each notebook's section renders from that file.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import assets, bench, collate, config, domain, evaluate, infer, preprocess, runs, steps, train
from .show import Markdown, markdown
from .config import make_settings

MEASURED = Path(__file__).with_name("try_it.json")
NOT_MEASURED = "(not measured yet: run `make exercises`)"
PROFILE = "tiny"

# One trained and scored model per entry: its parameter changes from the tiny profile.
RUNS: dict[str, dict[str, Any]] = {
    "baseline": {},
    "seed": {"seed": 1},
    "block_size": {"block_size": 64},
    "mlm_probability": {"mlm_probability": 0.3},
    "one_epoch": {"num_train_epochs": 1},
    "guide_lr": {"learning_rate": 2e-5},
    "standard_head": {"masked_head": False},
    "whole_word": {"whole_word_mask": True},
}


@dataclass(frozen=True)
class Exercise:
    notebook: str
    title: str
    question: str  # asked first: what to predict, answerable from the notebook
    change: str  # the exact parameter or command; one that trains names its own run folder
    expect: str  # the measured answer, folded; {b[...]} is the baseline run's figures, {r[...]} this run's, {x[...]} the extras
    run: str | None = None  # the entry of RUNS this exercise trains; None: measured by ``extras`` alone


def _run_all(params: str, folder: str) -> str:
    """The command for an exercise that trains: its own run folder, so that the notebooks' run stays as it is."""
    return f'`make run-all PARAMS="{params} -p run_dir runs/try-{folder}"`'


EXERCISES: tuple[Exercise, ...] = (
    Exercise("01_load", "Another seed",
             "Another seed draws another split, other masks and another order of batches. Predict: how far will the "
             "fine-tuned model's perplexity move from this run's?",
             _run_all("-p seed 1", "seed"),
             "It came out {r[perplexity_after]:.1f}, against {b[perplexity_after]:.1f} with seed 42, and its top-1 "
             "accuracy {r[top1_after]:.1%} against {b[top1_after]:.1%}: a difference of that size between two runs is "
             "noise, not progress.", run="seed"),
    Exercise("01_load", "Your own text",
             "Predict: with a corpus a tenth the size of this one, will the perplexity after fine-tuning be higher or "
             "lower, and how much would you trust a difference between two such runs?",
             _run_all("-p source my_notes.txt", "own-text") + " (one document a line; or a .jsonl file with a `text` field)",
             "Notebook 01 then counts your records and words, and every figure after it is about your text. A corpus "
             "much smaller than this one (which notebook 02 cuts into {b[train_blocks]:,} training blocks of 128 tokens) "
             "gives few steps and a noisy perplexity; compare with `seed` changed, as above, before trusting a difference."),
    Exercise("02_preprocess", "Shorter blocks",
             "Blocks of 64 tokens instead of 128: how many training blocks will there be, how many steps will three "
             "epochs of 16 blocks a step take, and will the perplexity be higher or lower?",
             _run_all("-p block_size 64", "block64"),
             "Twice as many blocks, each with half the context: {r[train_blocks]:,} training blocks against "
             "{b[train_blocks]:,}, so {r[train_steps]} steps against {b[train_steps]}. The fine-tuned model's perplexity "
             "came out {r[perplexity_after]:.1f} on its own evaluation masks, against {b[perplexity_after]:.1f}. Three "
             "things differ at once (the context, the number of steps, and the masks it is scored on), so this is not "
             "the block size's effect alone; add `-p max_steps {b[train_steps]}` for the same number of steps.",
             run="block_size"),
    Exercise("02_preprocess", "A block longer than the model reads",
             "The tiny model reads at most 512 positions. Predict what happens with 600-token blocks: an error, a "
             "truncation, or a model that reads past its end?",
             "`block_size = 600` here",
             "Refused before anything is built or written, with the model's limit in the message: "
             "*{x[block_600_error]}*"),
    Exercise("03_collate", "Pick twice as much",
             "With `mlm_probability` 0.3, what share of the tokens will the rates table show picked, what split of "
             "masked, replaced and kept, and will the perplexity on those masks be higher or lower?",
             _run_all("-p mlm_probability 0.3", "pick30"),
             "The rates table shows {r[picked]:.1%} of the tokens picked (80/10/10 unchanged). Each picked token now "
             "has less context to go on: on these 30% masks the fine-tuned model's perplexity came out "
             "{r[perplexity_after]:.1f}, against {b[perplexity_after]:.1f} for the 15% model on 15% masks.",
             run="mlm_probability"),
    Exercise("03_collate", "Fresh masks differ",
             "Masks drawn over the same test blocks with seed 1: what share of these masks' picked positions will "
             "they pick too?",
             "In a new cell, mask the test blocks with another seed: `import dataclasses`, "
             "then `other = collate.make_eval_masks(blocks[\"test\"], tokenizer, dataclasses.replace(settings, seed=1))`, "
             "then the share of picked positions both share: `import numpy as np`, `a = np.array(eval_masks[\"labels\"]) != -100`, "
             "`b = np.array(other[\"labels\"]) != -100`, `(a & b).sum() / a.sum()`",
             "Masks drawn with another seed share only {x[mask_overlap]:.1%} of their picked positions with these, "
             "about the 15% that chance gives: this is why each training batch, masked afresh, is a new task, while "
             "the fixed evaluation masks are the same task every time."),
    Exercise("03_collate", "Whole words",
             "Trained and scored with whole-word masks, will the model's perplexity be higher or lower than token "
             "masking's, and can the two figures be compared?",
             _run_all("-p whole_word_mask True", "whole-word"),
             "Every notebook then masks whole words, in training and in the fixed evaluation masks (saved as "
             "`eval_masks_whole_word`, beside the token masks). The model came out at perplexity "
             "{r[perplexity_after]:.1f} on its whole-word masks, against {b[perplexity_after]:.1f} for token masking on "
             "token masks: not comparable, being different tasks. Notebook 05 scores both models on both kinds of masks.",
             run="whole_word"),
    Exercise("04_train", "The guide's learning rate",
             "The guide trains at 2e-5, this profile at 5e-4. Predict the perplexity after the same 393 steps at 2e-5: "
             "near this run's, or far above it?",
             _run_all("-p learning_rate 2e-5", "lr2e-5"),
             "The guide's 2e-5 suits DistilRoBERTa's 82M parameters, already a masked LM. Here notebook 05 then shows a "
             "perplexity of {r[perplexity_after]:.1f} after {r[train_steps]} steps, against {b[perplexity_after]:.1f} at "
             "5e-4: a tiny model that must relearn filling in words needs the larger step.", run="guide_lr"),
    Exercise("04_train", "The head at every position",
             "With `masked_head` off, the vocabulary head runs at every position. Predict: how much longer will "
             "training take, and how different will the model be?",
             _run_all("-p masked_head False", "standard-head"),
             "The standard forward: training took {r[train_seconds]:.0f} s against {b[train_seconds]:.0f} s with the "
             "head at the masks ({x[standard_head_ratio]:.1f}x longer, one run each on {x[machine]}), for a perplexity of "
             "{r[perplexity_after]:.1f} against {b[perplexity_after]:.1f}: the same training, computed a slower way.",
             run="standard_head"),
    Exercise("05_evaluate", "One epoch instead of three",
             "Looking at 04's loss curve, predict the perplexity after one epoch: nearer the base model's or the "
             "three-epoch model's?",
             _run_all("-p num_train_epochs 1", "one-epoch"),
             "Perplexity {r[perplexity_after]:.1f} and top-1 accuracy {r[top1_after]:.1%} after one epoch, against "
             "{b[perplexity_after]:.1f} and {b[top1_after]:.1%} after three: most of the gain comes in the first epoch, "
             "as 04's loss curve shows.", run="one_epoch"),
    Exercise("05_evaluate", "A harder test for the same model",
             "The same fine-tuned model, scored on masks that pick 30% of the test tokens: will its perplexity rise "
             "or fall, and by about how much?",
             "In a new cell: `import dataclasses`, `from helpers import collate`, then "
             "`harder = collate.make_eval_masks(steps.blocks(settings, tokenizer)[\"test\"], tokenizer, "
             "dataclasses.replace(settings, mlm_probability=0.3))` and `evaluate.score(finetuned, harder).perplexity`",
             "The same fine-tuned model, {b[perplexity_after]:.1f} on 15% masks, scores {x[baseline_on_30]:.1f} on 30% "
             "masks of the same test blocks: each hidden token has less context around it. Perplexity depends on the "
             "task as much as on the model, so compare models only on the same masks."),
    Exercise("05_evaluate", "A domain far from Wikipedia",
             "Gururangan et al. found adaptation pays most where the domain is far from the pretraining text. "
             "Predict: on legal contracts, clinical notes or your own field's text, will the fine-tuned encoder's probe "
             "beat the base encoder's by more than it does here, and will less of the perplexity drop happen on the "
             "installed summaries?",
             "Write your labelled corpus as a `.jsonl` file, one JSON object a line with a `text` and a `label` field, "
             "then " + _run_all("-p source my_corpus.jsonl -p text_field text -p label_field label", "far"),
             "No labelled corpus far from Wikipedia is installed, so this is the one exercise without a measured answer. "
             "Look at three figures in this notebook's new run: the share of the in-domain drop that also happens on "
             "the installed summaries (the domain reading gives it; far from Wikipedia it should be smaller, since the "
             "domain then has more to teach), the probe's gap between the base and the fine-tuned encoder, in records, "
             "against this run's, and the majority class both must beat. "
             "Then run it again with `-p seed 1` before trusting a gap of a point or two."),
    Exercise("06_infer", "Another sentence",
             "The probe table above ranks \"oxygen\" for this sentence under both models. Predict the fine-tuned "
             "model's first three guesses: which word of the sentence itself will lead?",
             "`fill_mask_text = \"Water is made of hydrogen and {mask}.\"` and `fill_mask_answer = \"oxygen\"` here",
             "The fine-tuned model's first three guesses: {x[water_top3]}; \"oxygen\" ranks {x[water_rank]} "
             "(base model: {x[water_rank_base]:,})."),
)


def notebooks() -> list[str]:
    """The six notebooks, in order."""
    return list(config.STEP_PARAMETERS)


def figures(settings: config.Settings, result: train.TrainResult) -> dict[str, Any]:
    """What the notebooks show for one run: perplexity and accuracy before and after, blocks, masking, time."""
    tokenizer = assets.load_tokenizer(settings.model)
    blocks = steps.blocks(settings, tokenizer)
    eval_masks = steps.eval_masks(settings, tokenizer)
    before = evaluate.score(assets.load_model(settings.model), eval_masks, settings.eval_batch_size)
    after = evaluate.score(runs.load_model(settings), eval_masks, settings.eval_batch_size)
    return {
        "perplexity_before": before.perplexity, "perplexity_after": after.perplexity,
        "top1_after": after.accuracy[1], "top5_after": after.accuracy[5],
        "train_blocks": len(blocks["train"]), "train_steps": result.steps, "train_seconds": result.seconds,
        "picked": collate.measure(blocks["test"], eval_masks, tokenizer)["picked"],
    }


def measure_runs(root: Path, names: list[str], overrides: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Train and score one model per named entry of ``RUNS``, each in its own run folder under ``root``."""
    measured = {}
    for name in names:
        settings = make_settings(PROFILE, **{**RUNS[name], **overrides, "run_dir": str(root / name)})
        print(f"[{name}] {RUNS[name] or 'the tiny profile as it is'}", flush=True)
        start = time.perf_counter()
        measured[name] = figures(settings, train.run(settings, share=False))
        print(f"[{name}] perplexity {measured[name]['perplexity_after']:.1f} ({time.perf_counter() - start:.0f} s)", flush=True)
    return measured


def mask_overlap(settings: config.Settings, tokenizer) -> float:
    """03's "Fresh masks differ": the share of the fixed evaluation masks' picked positions that masks drawn
    over the same test blocks with seed 1 pick too. Needs no training: blocks and masks only."""
    masks = steps.eval_masks(settings, tokenizer)
    other = collate.make_eval_masks(steps.blocks(settings, tokenizer)["test"], tokenizer, dataclasses.replace(settings, seed=1))
    picked = [label != collate.IGNORE for row in masks["labels"] for label in row]
    picked_other = [label != collate.IGNORE for row in other["labels"] for label in row]
    return sum(a and b for a, b in zip(picked, picked_other)) / sum(picked)


def extras(root: Path, measured: dict[str, dict[str, Any]], overrides: dict[str, Any]) -> dict[str, Any]:
    """The figures that need no training of their own: an error, a mask overlap, fill-mask and ranks."""
    base_settings = make_settings(PROFILE, **{**overrides, "run_dir": str(root / "baseline")})
    tokenizer = assets.load_tokenizer(base_settings.model)
    try:
        preprocess.check_block_size(600, tokenizer, assets.load_config(base_settings.model))
        block_600_error = "(no error: this model reads 600 tokens)"
    except config.SettingsError as err:
        block_600_error = str(err)
    test_blocks = steps.blocks(base_settings, tokenizer)["test"]
    finetuned = runs.load_model(base_settings)
    base = assets.load_model(base_settings.model)
    water = infer.with_mask("Water is made of hydrogen and {mask}.", tokenizer)
    spiral = infer.with_mask(base_settings.fill_mask_text, tokenizer)
    found = {
        "block_600_error": block_600_error,
        "mask_overlap": mask_overlap(base_settings, tokenizer),
        "baseline_on_30": evaluate.score(finetuned, collate.make_eval_masks(
            test_blocks, tokenizer, dataclasses.replace(base_settings, mlm_probability=0.3)), top_k=()).perplexity,
        "water_top3": ", ".join(f"{r['token_str'].strip()} ({r['score']:.3f})" for r in infer.fill_mask(water, finetuned, tokenizer, 3)),
        "water_rank": infer.rank_of(water, "oxygen", finetuned, tokenizer)[0],
        "water_rank_base": infer.rank_of(water, "oxygen", base, tokenizer)[0],
        "spiral_rank": infer.rank_of(spiral, base_settings.fill_mask_answer, finetuned, tokenizer)[0],
        "spiral_rank_base": infer.rank_of(spiral, base_settings.fill_mask_answer, base, tokenizer)[0],
        "machine": bench.machine(),
    }
    if "whole_word" in measured:
        found["masking"] = masking(root, overrides, tokenizer)
    if "standard_head" in measured:
        found["standard_head_ratio"] = measured["standard_head"]["train_seconds"] / measured["baseline"]["train_seconds"]
    return found


def masking(root: Path, overrides: dict[str, Any], tokenizer) -> dict[str, dict[str, dict[str, float]]]:
    """The token-masking and the whole-word model, each scored on both kinds of fixed masks of the same test blocks."""
    trained = {"token masking": "baseline", "whole-word masking": "whole_word"}
    table: dict[str, dict[str, dict[str, float]]] = {}
    for model_kind, run in trained.items():
        settings = make_settings(PROFILE, **{**RUNS[run], **overrides, "run_dir": str(root / run)})
        model = runs.load_model(settings)
        table[model_kind] = {}
        for mask_kind, whole in collate.WAYS.items():
            masks = steps.eval_masks(dataclasses.replace(settings, whole_word_mask=whole), tokenizer)
            scores = evaluate.score(model, masks, settings.eval_batch_size)
            table[model_kind][mask_kind] = {"perplexity": scores.perplexity, "top1": scores.accuracy[1]}
    return table


def masking_table(measured: dict[str, Any] | None = None):
    """05: the comparison of token and whole-word masking, rows the models, columns the masks they are scored on."""
    import pandas as pd

    measured = measured or read()
    if not measured or "masking" not in measured["extras"]:
        return markdown(NOT_MEASURED)
    rows = {}
    for model_kind, by_masks in measured["extras"]["masking"].items():
        rows[f"trained with {model_kind}"] = {
            (f"on {mask_kind.removesuffix(' masking')} masks", what): round(value, 3 if what == "top-1 accuracy" else 1)
            for mask_kind, figures in by_masks.items()
            for what, value in (("perplexity", figures["perplexity"]), ("top-1 accuracy", figures["top1"]))}
    return pd.DataFrame(rows).T


def masking_reading(measured: dict[str, Any] | None = None) -> Markdown:
    """A few sentences on the comparison, written from its figures: each test read alone, then what it does
    and does not show."""
    measured = measured or read()
    if not measured or "masking" not in measured["extras"]:
        return markdown(NOT_MEASURED)
    m = measured["extras"]["masking"]
    token, whole = m["token masking"], m["whole-word masking"]

    def on(masks: str) -> tuple[str, bool]:
        """The whole-word model against the token-masking model on one kind of masks: a sentence, and whether it won."""
        w, t = whole[masks], token[masks]
        lower, higher = w["perplexity"] < t["perplexity"], w["top1"] > t["top1"]
        verdict = ("better on both measures" if lower and higher else "worse on both measures" if not (lower or higher)
                   else "better by one measure and worse by the other")
        return (f"perplexity {w['perplexity']:.1f} against {t['perplexity']:.1f}, top-1 accuracy {w['top1']:.1%} against "
                f"{t['top1']:.1%}: {verdict}", lower and higher)

    on_words, wins_on_words = on("whole-word masking")
    on_tokens, wins_on_tokens = on("token masking")
    text = (f"On whole-word masks, the model trained with whole words against the token-masking model: {on_words}. "
            f"On token masks: {on_tokens}.")
    if wins_on_words and not wins_on_tokens:
        text += (" Neither model is better outright: each beats the other on the kind of masks it was trained on, and "
                 "which kind matters depends on what the model is used for next.")
    if all(m[k]["whole-word masking"]["perplexity"] > m[k]["token masking"]["perplexity"] for k in m):
        text += " By perplexity, whole-word masks are the harder test for both models."
    text += (" The two kinds of masks differ in two ways, every piece of a picked word hidden and no picked token left "
             "as it was or swapped, and this table cannot tell which of the two matters.")
    runs_ = measured.get("runs", {})
    if "seed" in runs_ and "baseline" in runs_:
        text += (f" Each model was trained once; another seed moved the token-masking model's perplexity from "
                 f"{runs_['baseline']['perplexity_after']:.1f} to {runs_['seed']['perplexity_after']:.1f}, the size of "
                 f"gap that is noise.")
    return markdown(text + f" *(Measured by `make exercises` on {measured['machine']}, {measured['date']}.)*")


def measure(root: Path, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Every exercise's figures: all of ``RUNS`` trained and scored, then the extras, then the adaptation figures."""
    overrides = overrides or {}
    measured = measure_runs(root, list(RUNS), overrides)
    return {"profile": PROFILE, "overrides": overrides, "machine": bench.machine(), "date": time.strftime("%Y-%m-%d"),
            "runs": measured, "extras": extras(root, measured, overrides),
            "adaptation": measure_adaptation(root, measured, overrides)}


def measure_adaptation(root: Path, measured: dict[str, dict[str, Any]], overrides: dict[str, Any]) -> dict[str, Any]:
    """05's control and classifiers, for the baseline run's model (``domain.measure``)."""
    settings = make_settings(PROFILE, **{**overrides, "run_dir": str(root / "baseline")})
    return domain.measure(settings, measured["baseline"]["train_steps"], root, overrides)


def adaptation() -> dict[str, Any] | None:
    """The adaptation figures ``make exercises`` measured, or None before it has run."""
    return (read() or {}).get("adaptation")


def read(path: Path = MEASURED) -> dict[str, Any] | None:
    """The measured figures, or None before the first `make exercises`."""
    return json.loads(path.read_text()) if path.exists() else None


def expectation(exercise: Exercise, measured: dict[str, Any] | None) -> str:
    """The exercise's expectation with its measured figures; says so when they are not measured yet."""
    try:
        runs_ = measured["runs"]
        return exercise.expect.format(b=runs_["baseline"], r=runs_.get(exercise.run, {}), x=measured["extras"])
    except (KeyError, TypeError):
        return NOT_MEASURED


def item(number: int, e: Exercise, measured: dict[str, Any] | None) -> str:
    """One exercise: the question first, then the exact change, then the answer folded in a ``<details>`` block."""
    measured_here = e.run is not None or "{x[" in e.expect  # else: what to look for, with figures for scale
    answer = "What it measured" if measured_here else "What to look for"
    return (f"{number}. **{e.title}.** {e.question}\n\n   *The change:* {e.change}.\n\n"
            f"   <details><summary>{answer}</summary>\n\n   {expectation(e, measured)}\n\n   </details>\n")


PREAMBLE = ("Predict first: each exercise asks a question you can answer from this notebook, then gives the exact change "
            "to make; the answer, measured by `make exercises` (which trains and scores every variant with these same "
            "helpers, figures kept in `helpers/try_it.json`), is folded below it. A command that trains names its own "
            "run folder (`-p run_dir runs/try-...`), so this run's model and figures stay as they are.")


def section(notebook: str, measured: dict[str, Any] | None) -> str:
    """The markdown of one notebook's Try it list, after the one paragraph every list starts with."""
    items = [PREAMBLE + "\n"]
    items += [item(i, e, measured) for i, e in enumerate((e for e in EXERCISES if e.notebook == notebook), start=1)]
    if measured:
        changed = "".join(f", {k}={v}" for k, v in measured["overrides"].items())
        items.append(f"\n*Measured by `make exercises` on the {measured['profile']} profile{changed}, {measured['machine']}, "
                     f"{measured['date']}; your figures will differ a little on another machine.*")
    return "\n".join(items)


def show(notebook: str) -> Markdown:
    """This notebook's exercises, rendered in the notebook."""
    return markdown(section(notebook, read()))


def main(argv: list[str] | None = None) -> int:
    """Measure every exercise in scratch run folders and write the figures (``make exercises``)."""
    parser = argparse.ArgumentParser(description="Measure every Try it exercise and write helpers/try_it.json.")
    parser.add_argument("--out", type=Path, default=MEASURED, help="where the figures go")
    parser.add_argument("-p", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                        help="a setting changed in every run (a quick rehearsal: -p num_examples 300 -p max_steps 3)")
    parser.add_argument("--adaptation-only", action="store_true",
                        help="measure only 05's control and classifiers (the baseline trained again), keeping the rest")
    args = parser.parse_args(argv)
    overrides = config.parse_command_line(config.parameter_pairs(args.p))  # typed as the settings declare
    with tempfile.TemporaryDirectory(prefix="try_it-") as scratch:
        if args.adaptation_only:
            measured = read(args.out) or {}
            if not measured:
                parser.error(f"{args.out} holds no other figures yet: run the whole of `make exercises` first")
            if measured["overrides"] != overrides:  # one file, one set of settings
                parser.error(f"{args.out} was measured with {measured['overrides'] or 'no overrides'}: give the same -p")
            measured["adaptation"] = measure_adaptation(Path(scratch), measure_runs(Path(scratch), ["baseline"], overrides),
                                                        overrides)
        else:
            measured = measure(Path(scratch), overrides)
    runs.write_json(args.out, measured)
    for notebook in notebooks():
        print(f"\n## {notebook}\n{section(notebook, measured)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
