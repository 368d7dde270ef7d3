"""05 evaluate, continued: what fine-tuning on the domain changes, and what it buys on a task built on it.

Three measurements, each against something that separates the domain from mere masked-LM training:

- **in-domain against out-of-domain**: both models scored on fixed masks of held-out text from outside the
  domain (``ood_source``), beside the in-domain figures;
- **a same-budget control** (``make exercises``): a second model fine-tuned with the same recipe and the same
  number of steps on out-of-domain text, scored on both kinds of text;
- **a downstream task**: predicting each record's label (``label_field``, the summaries' topic) from the
  encoder, base against fine-tuned. In 05 a linear probe on frozen mean-pooled states; in ``make exercises`` a
  classifier fine-tuned from each encoder (``AutoModelForSequenceClassification``), with few labels and with
  all of them, over several seeds.
"""

from __future__ import annotations

import math
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import evaluate as hf_evaluate
import pandas as pd
import torch
import torch.nn.functional as F
from datasets import Dataset

from . import assets, bench, data, progress, runs, steps, train
from .config import Settings, make_settings
from .evaluate import Scores, score
from .preprocess import as_text
from .show import Markdown, markdown

SEEDS = (0, 1, 2, 3, 4)  # the classifier comparison: one fine-tuning per encoder, regime and seed
FEW_PER_CLASS = 16  # "few labels": this many training records of each class, drawn with the seed
CLASSIFIER_TOKENS = 64  # a record's first tokens: enough to tell a topic
NOT_MEASURED = "(not measured yet: run `make exercises`)"


# --- in-domain against out-of-domain -------------------------------------------------------------------------

def domain_reading(scores: dict[str, Scores], ood: dict[str, Scores], source: str, ood_source: str) -> str:
    """What the two drops say, written from them: how much of the in-domain drop happens off-domain too."""
    drop_in = scores["base"].perplexity / scores["fine-tuned"].perplexity
    drop_out = ood["base"].perplexity / ood["fine-tuned"].perplexity
    text = (f"On held-out text of the domain ({source}) perplexity fell {drop_in:,.1f}x; on text from outside it "
            f"({ood_source}), which the model never trained on, it fell {drop_out:,.1f}x.")
    if drop_out > 1 and drop_in > 1:
        share = math.log(drop_out) / math.log(drop_in)  # in log-perplexity, where drops add up
        if drop_in > drop_out:
            text += (f" Counted in log-perplexity, {share:.0%} of the in-domain drop also happens off the domain; the "
                     f"in-domain drop is larger by a further factor of {drop_in / drop_out:,.1f}, the part measured on "
                     f"the domain's own text only.")
        else:
            text += " The drop off the domain is as large as in it: none of it is measured on the domain's text only."
    base_in, base_out = scores["base"].perplexity, ood["base"].perplexity
    text += (f" Before fine-tuning, the base model found the two kinds of text about as hard ({base_in:,.1f} against "
             f"{base_out:,.1f})." if 0.8 < base_in / base_out < 1.25 else
             f" Before fine-tuning, the base model scored {base_in:,.1f} in the domain and {base_out:,.1f} outside it.")
    return text


# --- the downstream task: a linear probe on frozen encoder states --------------------------------------------

def label_metric() -> hf_evaluate.EvaluationModule:
    """Accuracy and macro-F1 as an ``evaluate`` module, loaded from the installed package (no Hub script)."""
    return hf_evaluate.load(str(Path(__file__).with_name("label_accuracy.py")))


def label_scores(predictions: list[int], references: list[int]) -> dict[str, float]:
    return label_metric().compute(predictions=predictions, references=references)


@torch.no_grad()
def encoder_states(model, tokenizer, texts: list[str], max_length: int = 128, batch_size: int = 64) -> torch.Tensor:
    """Each text's mean-pooled last hidden states (padding left out): the encoder's summary of it, one row a text."""
    model.eval()
    device = next(model.parameters()).device
    rows = []
    for start in progress.bar(range(0, len(texts), batch_size), desc="Encoding"):
        batch = tokenizer(texts[start:start + batch_size], truncation=True, max_length=max_length, padding=True,
                          return_tensors="pt").to(device)
        hidden = model.base_model(**batch).last_hidden_state  # the encoder under the MLM head
        weights = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        rows.append(((hidden * weights).sum(1) / weights.sum(1)).float().cpu())
    return torch.cat(rows)


def linear_probe(train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor, l2: float = 1e-3,
                 steps: int = 200) -> torch.Tensor:
    """Multinomial logistic regression on standardized features, fitted by L-BFGS from zeros; the test predictions.

    A linear model reads only what the features already hold, so it measures the encoder, not its own training;
    starting from zeros, the fit is the same at every run (no seed to draw).
    """
    mean, std = train_x.mean(0), train_x.std(0).clamp_min(1e-6)
    x, test = (train_x - mean) / std, (test_x - mean) / std
    n_classes = int(train_y.max()) + 1
    weights = torch.zeros(x.shape[1], n_classes, dtype=torch.float64, requires_grad=True)
    bias = torch.zeros(n_classes, dtype=torch.float64, requires_grad=True)
    x, test = x.double(), test.double()
    optimizer = torch.optim.LBFGS([weights, bias], max_iter=steps, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = F.cross_entropy(x @ weights + bias, train_y) + l2 * (weights ** 2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return (test @ weights + bias).argmax(1).detach()


def label_ids(splits, label_field: str) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Each split's labels as class ids, and the class names (sorted, from both splits)."""
    names = sorted({str(v) for split in splits.values() for v in split[label_field]})
    index = {name: i for i, name in enumerate(names)}
    return {k: torch.tensor([index[str(v)] for v in split[label_field]]) for k, split in splits.items()}, names


def no_probe(s: Settings, splits=None) -> str | None:
    """Why this run has no probe (no label column, a streamed corpus), or None when it has one."""
    if not s.label_field:
        return 'label_field is "": no probe'
    if s.streaming:
        return "a streamed corpus keeps no labelled split in the run folder: no probe"
    if splits is not None and s.label_field not in splits["train"].column_names:
        return (f"the corpus has no column {s.label_field!r} (its columns: {splits['train'].column_names}): no probe; "
                f"set label_field to a column of labels, or \"\"")
    return None


def probes(s: Settings, models: dict[str, Any], tokenizer) -> dict[str, Any] | None:
    """The probe for each model, trained on the training split's labels and scored on the test split's; None
    (and one line saying why) where the run has no labels."""
    splits = None if s.streaming else steps.splits(s)
    why = no_probe(s, splits)
    if why:
        print(why)
        return None
    ids, names = label_ids(splits, s.label_field)
    texts = {k: [as_text(t) for t in split[s.text_field]] for k, split in splits.items()}
    majority = int(torch.bincount(ids["train"]).argmax())
    always = label_scores([majority] * len(ids["test"]), ids["test"].tolist())  # the commonest class, every time
    found: dict[str, Any] = {"classes": names, "test_records": len(ids["test"]),
                             "majority": always["accuracy"], "majority_macro_f1": always["macro_f1"]}
    right = {}
    for name, model in models.items():
        states = {k: encoder_states(model, tokenizer, t, s.block_size, s.eval_batch_size) for k, t in texts.items()}
        predicted = linear_probe(states["train"], ids["train"], states["test"])
        found[name] = label_scores(predicted.tolist(), ids["test"].tolist())
        right[name] = predicted == ids["test"]
    if {"base", "fine-tuned"} <= set(right):  # the records only one of the two gets right: McNemar's counts
        found["base only"] = int((right["base"] & ~right["fine-tuned"]).sum())
        found["fine-tuned only"] = int((right["fine-tuned"] & ~right["base"]).sum())
    return found


def probe_table(probe: dict[str, Any]) -> pd.DataFrame:
    """Accuracy and macro-F1 of each encoder's probe, beside always guessing the commonest class."""
    rows = {name: {"accuracy": round(probe[name]["accuracy"], 3), "macro-F1": round(probe[name]["macro_f1"], 3)}
            for name in ("base", "fine-tuned")}
    rows["majority class"] = {"accuracy": round(probe["majority"], 3), "macro-F1": round(probe["majority_macro_f1"], 3)}
    return pd.DataFrame(rows).T


def probe_metrics(probe: dict[str, Any] | None) -> dict[str, float]:
    """The probe's keys for ``metrics.json``; None for each when the run has no probe (no figure left from an earlier one)."""
    keys = ("probe_accuracy_before", "probe_accuracy_after", "probe_macro_f1_before", "probe_macro_f1_after", "probe_majority")
    if probe is None:
        return dict.fromkeys(keys)
    return {"probe_accuracy_before": probe["base"]["accuracy"], "probe_accuracy_after": probe["fine-tuned"]["accuracy"],
            "probe_macro_f1_before": probe["base"]["macro_f1"], "probe_macro_f1_after": probe["fine-tuned"]["macro_f1"],
            "probe_majority": probe["majority"]}


def probes_beat_majority(probe: dict[str, Any] | None) -> bool:
    return probe is not None and all(probe[name]["accuracy"] > probe["majority"] for name in ("base", "fine-tuned"))


def probe_reading(probe: dict[str, Any] | None, label_field: str | None) -> str:
    """The probe's figures in words: against the majority class, then base against fine-tuned."""
    if probe is None:
        return "This run has no labels to probe (see the line above)."
    b, t = probe["base"], probe["fine-tuned"]
    text = (f"On {probe['test_records']:,} test records and {len(probe['classes'])} classes of `{label_field}`, the probe "
            f"on the base encoder is right for {b['accuracy']:.1%} (macro-F1 {b['macro_f1']:.3f}), on the fine-tuned one "
            f"for {t['accuracy']:.1%} ({t['macro_f1']:.3f}); always guessing the commonest class would score "
            f"{probe['majority']:.1%}.")
    only_b, only_t = probe["base only"], probe["fine-tuned only"]
    # McNemar's test: were the records one probe alone gets right split by chance, the gap would be within ±2√(b+c)
    noise = 2 * math.sqrt(only_b + only_t)
    text += (f" The fine-tuned encoder's probe alone gets {only_t} records right, the base encoder's alone {only_b}: a gap "
             f"of {only_t - only_b:+d} records. McNemar's test asks whether such a gap is chance: were the two probes "
             f"equally good, those {only_b + only_t} records would split evenly, give or take ±{noise:.0f} (two standard "
             f"deviations). ")
    text += "This gap is within that: no difference is shown." if abs(only_t - only_b) <= noise else \
        "This gap is beyond that."
    return text


# --- make exercises: the same-budget control and fine-tuned classifiers ---------------------------------------

def control_settings(s: Settings, max_steps: int, run_dir: Path) -> Settings:
    """The control: the same recipe and number of steps, trained on the out-of-domain text's training split."""
    changes = {name: getattr(s, name) for name in ("model", "block_size", "mlm_probability", "whole_word_mask",
                                                   "learning_rate", "batch_size", "weight_decay", "masked_head",
                                                   "precision", "seed", "test_size")}
    every_record = len(data.load_out_of_domain(s))  # all of it, split as ``steps.out_of_domain`` splits it for scoring
    return make_settings(s.profile, **changes, source=s.ood_source, ood_source=s.source, text_field="text",
                         num_examples=every_record, max_steps=max_steps, label_field="", run_dir=str(run_dir))


def control(s: Settings, train_steps: int, run_dir: Path) -> dict[str, Any]:
    """Train the control for ``train_steps``, then score the base model, the model fine-tuned on the domain and the
    control on both kinds of text."""
    other = control_settings(s, train_steps, run_dir)
    trained = train.run(other, share=False)
    tokenizer = assets.load_tokenizer(s.model)
    masks = {"in-domain": steps.eval_masks(s, tokenizer), "out-of-domain": steps.ood_eval_masks(s, tokenizer)}
    models = {"base": assets.load_model(s.model), "fine-tuned on the domain": runs.load_model(s),
              "control: fine-tuned off it": runs.load_model(other)}
    table = {name: {kind: score(model, m, s.eval_batch_size, top_k=()).perplexity for kind, m in masks.items()}
             for name, model in models.items()}
    return {"perplexity": table, "steps": trained.steps, "source": other.source}


def control_table(measured: dict[str, Any] | None) -> pd.DataFrame | Markdown:
    """05: perplexity of the three models on in-domain and out-of-domain masks."""
    if not measured or "control" not in measured:
        return markdown(NOT_MEASURED)
    texts = {"in-domain": f"{measured['measured']['source']}, held out", "out-of-domain": f"{measured['control']['source']}, held out"}
    return pd.DataFrame(measured["control"]["perplexity"]).T.rename(columns=texts).round(1)


def control_reading(measured: dict[str, Any] | None) -> Markdown:
    """The control's figures in words: the drop any MLM training gives, and the part only the domain gives."""
    if not measured or "control" not in measured:
        return markdown(NOT_MEASURED)
    p = measured["control"]["perplexity"]
    base, tuned, ctrl = p["base"], p["fine-tuned on the domain"], p["control: fine-tuned off it"]
    drop_tuned = base["in-domain"] / tuned["in-domain"]
    drop_ctrl = base["in-domain"] / ctrl["in-domain"]
    text = (f"On the domain's held-out text, the control, trained {measured['control']['steps']} steps on "
            f"{measured['control']['source']} only, took perplexity from {base['in-domain']:,.1f} to "
            f"{ctrl['in-domain']:,.1f} ({drop_ctrl:,.1f}x lower); the model fine-tuned on the domain, the same number of "
            f"steps, to {tuned['in-domain']:,.1f} ({drop_tuned:,.1f}x lower).")
    if drop_tuned > 1 and drop_ctrl > 1 and ctrl["in-domain"] > tuned["in-domain"]:
        share = math.log(drop_ctrl) / math.log(drop_tuned)
        text += (f" Counted in log-perplexity, the control reached {share:.0%} of the domain model's drop without any "
                 f"text of the domain; the domain's own text took it a further {ctrl['in-domain'] / tuned['in-domain']:,.1f}x lower.")
    elif ctrl["in-domain"] <= tuned["in-domain"]:
        text += " The control did as well on the domain's text as the model trained on it: nothing is measured for the domain."
    if ctrl["out-of-domain"] < tuned["out-of-domain"]:
        text += (f" On the other text the order turns round: the control scores {ctrl['out-of-domain']:,.1f}, the "
                 f"domain model {tuned['out-of-domain']:,.1f}.")
    else:
        text += (f" On the other text, its own kind, the control scores {ctrl['out-of-domain']:,.1f} against the domain "
                 f"model's {tuned['out-of-domain']:,.1f}.")
    return markdown(text + source_line(measured))


def few_labels(labels: list[int], per_class: int, seed: int) -> list[int]:
    """``per_class`` record indices of each class, drawn with ``seed`` (all of a class that has fewer)."""
    rng = random.Random(seed)
    picked = []
    for c in sorted(set(labels)):
        members = [i for i, label in enumerate(labels) if label == c]
        picked += sorted(rng.sample(members, min(per_class, len(members))))
    return picked


def fine_tune_classifier(encoder: str, splits, label_field: str, text_field: str, seed: int,
                         per_class: int | None = None, epochs: float = 1.0, learning_rate: float = 5e-4,
                         max_length: int = CLASSIFIER_TOKENS) -> dict[str, float]:
    """A classifier fine-tuned from ``encoder`` (a new head on its encoder), scored on the test split.

    ``per_class`` trains on that many records of each class (few labels); None on the whole training split.
    """
    from transformers import AutoModelForSequenceClassification, PrinterCallback, Trainer, TrainingArguments, set_seed
    from transformers.utils import logging as hf_logging

    tokenizer = assets.load_tokenizer(encoder)
    ids, names = label_ids(splits, label_field)

    def encoded(split: str, rows: list[int] | None = None) -> Dataset:
        texts = [as_text(t) for t in splits[split][text_field]]
        chosen = rows if rows is not None else range(len(texts))
        data = tokenizer([texts[i] for i in chosen], truncation=True, max_length=max_length)
        return Dataset.from_dict({**data, "labels": [int(ids[split][i]) for i in chosen]})

    train_rows = few_labels(ids["train"].tolist(), per_class, seed) if per_class else None
    set_seed(seed)  # the new head's starting weights, before the model is made
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # not its report of the new head, which is meant to start untrained
    try:
        model = AutoModelForSequenceClassification.from_pretrained(assets.resolve_model(encoder), num_labels=len(names))
    finally:
        hf_logging.set_verbosity(verbosity)
    with tempfile.TemporaryDirectory(prefix="classifier-") as scratch:
        args = TrainingArguments(output_dir=scratch, per_device_train_batch_size=16, per_device_eval_batch_size=128,
                                 num_train_epochs=epochs, learning_rate=learning_rate, seed=seed, save_strategy="no",
                                 report_to="none", logging_strategy="no", disable_tqdm=True,
                                 dataloader_pin_memory=torch.cuda.is_available())
        trainer = Trainer(model=model, args=args, train_dataset=encoded("train", train_rows), processing_class=tokenizer)
        trainer.remove_callback(PrinterCallback)  # twenty runs: one line each from ``classifiers``, not Trainer's logs
        trainer.train()
        predicted = trainer.predict(encoded("test")).predictions.argmax(-1)
    return label_scores(predicted.tolist(), ids["test"].tolist())


REGIMES = {"few": dict(per_class=FEW_PER_CLASS, epochs=10), "all": dict(per_class=None, epochs=1)}


def classifiers(s: Settings, encoders: dict[str, str], seeds: tuple[int, ...] = SEEDS) -> dict[str, Any]:
    """Macro-F1 and accuracy of a classifier fine-tuned from each encoder, per regime and seed."""
    splits = steps.splits(s)
    found: dict[str, Any] = {}
    for regime, how in REGIMES.items():
        found[regime] = {}
        for name, encoder in encoders.items():
            runs_ = [fine_tune_classifier(encoder, splits, s.label_field, s.text_field, seed, **how) for seed in seeds]
            found[regime][name] = {"macro_f1": [r["macro_f1"] for r in runs_], "accuracy": [r["accuracy"] for r in runs_]}
            print(f"[classifier, {regime} labels, {name}] macro-F1 {statistics.mean(found[regime][name]['macro_f1']):.3f}",
                  flush=True)
    return {"seeds": list(seeds), "few_per_class": FEW_PER_CLASS, "label_field": s.label_field, "by_regime": found}


def spread(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation."""
    return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def classifier_summary(measured: dict[str, Any] | None) -> pd.DataFrame | Markdown:
    """05: mean and spread of macro-F1 over the seeds, one row a regime, columns the encoders."""
    if not measured or "classifiers" not in measured:
        return markdown(NOT_MEASURED)
    rows = {}
    for regime, by_encoder in measured["classifiers"]["by_regime"].items():
        what = f"{measured['classifiers']['few_per_class']} labels per class" if regime == "few" else "every label"
        rows[f"macro-F1, {what}"] = {name: "{:.3f} ± {:.3f}".format(*spread(r["macro_f1"])) for name, r in by_encoder.items()}
    seeds = len(measured["classifiers"]["seeds"])
    return pd.DataFrame(rows).T.rename_axis(f"mean ± SD over {seeds} seeds")


def classifier_reading(measured: dict[str, Any] | None) -> Markdown:
    """What the classifiers measured, whatever it shows: the paired gain per seed against its spread, then why."""
    if not measured or "classifiers" not in measured:
        return markdown(NOT_MEASURED)
    c = measured["classifiers"]
    sentences = []
    for regime, by_encoder in c["by_regime"].items():
        base, tuned = by_encoder["base encoder"]["macro_f1"], by_encoder["adapted encoder"]["macro_f1"]
        gains = [t - b for b, t in zip(base, tuned)]
        gain, sd = spread(gains)
        wins, losses = sum(g > 0 for g in gains), sum(g < 0 for g in gains)
        what = f"{c['few_per_class']} labelled records per class" if regime == "few" else "every training label"
        if abs(gain) <= sd:
            verdict = "within the spread between seeds: no difference is shown"
        elif wins == len(gains) or losses == len(gains):
            verdict = f"larger than its spread and of one sign for every seed: a {'gain' if gain > 0 else 'loss'} is shown"
        else:
            verdict = "larger than its spread on average, but not of one sign across seeds: no consistent difference"
        sentences.append(f"With {what}, the adapted encoder's macro-F1 is {statistics.mean(tuned):.3f} against "
                         f"{statistics.mean(base):.3f}: a paired difference of {gain:+.3f} ± {sd:.3f} over {len(gains)} "
                         f"seeds ({wins} of {len(gains)} positive), {verdict}.")
    sentences.append("Gururangan et al. (2020, \"Don't Stop Pretraining\") found the gain from adapting to a domain large "
                     "where the domain is far from the pretraining text, and near zero where it is close.")
    if measured["measured"]["source"] == assets.WIKI_SCIENCE:
        sentences.append("bert-tiny, under SPLADE-tiny, was pretrained on Wikipedia and books, and this corpus is "
                         "Wikipedia: by that table, a gain near zero is what to expect here, whatever the perplexity did.")
    return markdown(" ".join(sentences) + source_line(measured))


def measure(s: Settings, train_steps: int, root: Path, overrides: dict[str, Any]) -> dict[str, Any]:
    """``make exercises``' adaptation figures for the model trained with ``s`` (``train_steps`` steps): the control
    and the classifiers, with what measured them."""
    start = time.perf_counter()
    found = {"control": control(s, train_steps, root / "control")}
    found["classifiers"] = classifiers(s, {"base encoder": s.model, "adapted encoder": str(runs.path(s, "model"))})
    found["measured"] = {"profile": s.profile, "model": s.model, "source": s.source, "overrides": overrides,
                         "machine": bench.machine(), "date": time.strftime("%Y-%m-%d"),
                         "seconds": round(time.perf_counter() - start)}
    return found


def source_line(measured: dict[str, Any]) -> str:
    """Which profile and run the figures came from, in italics after them."""
    m = measured["measured"]
    changed = "".join(f", {k}={v}" for k, v in m["overrides"].items())
    return (f" *(Measured by `make exercises` on the {m['profile']} profile ({m['model']} on {m['source']}{changed}), "
            f"{m['machine']}, {m['date']}.)*")


def measured_here(s: Settings, measured: dict[str, Any] | None) -> Markdown:
    """05: whether the figures below are this run's kind, or another profile's, said before they are shown."""
    if not measured:
        return markdown(NOT_MEASURED)
    m = measured["measured"]
    if s.profile == m["profile"] and s.model == m["model"] and s.source == m["source"]:
        return markdown(f"The figures below were measured by `make exercises` on this profile ({m['profile']}: "
                        f"{m['model']} on {m['source']}), in runs of their own; they are not recomputed by this run.")
    return markdown(f"**These figures are not this run's.** They were measured by `make exercises` on the "
                    f"{m['profile']} profile ({m['model']} on {m['source']}), while this run is the {s.profile} profile "
                    f"({s.model} on {s.source}); `make exercises` measures the {m['profile']} profile only.")
