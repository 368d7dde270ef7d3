"""``make bench``: the course's paths against the standard ones, measured side by side in one run.

    python -m helpers.bench                 # prints a table, writes runs/bench.json
    python -m helpers.bench --seconds 30    # shorter equal-time training race

Each row runs both sides on the same data, the same model and the same machine, one after the other,
and reports both measurements and their ratio (how many times better the course's side is). Timings
on a shared machine are noisy: read the ratios, and rerun before trusting a small one.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import torch
from datasets import DatasetDict
from transformers import RobertaConfig, RobertaForMaskedLM, TrainerCallback

from . import assets, collate, config, data, evaluate, infer, masked_head, preprocess, train
from .collate import IGNORE


@dataclass
class Row:
    """One comparison: both sides' measurements, and the ratio in the course's favour (>1 is better)."""

    name: str
    what: str
    unit: str
    baseline: float
    course: float
    higher_is_better: bool = False
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float:
        return self.course / self.baseline if self.higher_is_better else self.baseline / self.course

    def as_dict(self) -> dict[str, Any]:
        return {"what": self.what, "unit": self.unit, "baseline": self.baseline, "course": self.course,
                "ratio": self.ratio, **self.notes}


def seconds(fn: Callable[[], Any], repeat: int, warmup: int = 1) -> list[float]:
    """Wall-clock seconds of ``repeat`` calls, after ``warmup`` calls that are not counted."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


# --- 02: grouping ---------------------------------------------------------------------------------

def guide_group_texts(examples: dict[str, list[list[int]]], block_size: int) -> dict[str, list[list[int]]]:
    """The guide's ``group_texts``, kept as the baseline: ``sum(lists, [])`` copies the list at every record."""
    concatenated = {k: sum(examples[k], []) for k in examples}
    total = len(concatenated[next(iter(examples))]) // block_size * block_size
    return {k: [t[i : i + block_size] for i in range(0, total, block_size)] for k, t in concatenated.items()}


def group_texts_row(batch: dict[str, list[list[int]]], block_size: int = 128) -> Row:
    assert preprocess.group_texts(batch, block_size) == guide_group_texts(batch, block_size), "blocks differ"
    n = len(batch["input_ids"])
    guide = min(seconds(lambda: guide_group_texts(batch, block_size), repeat=2))
    course = min(seconds(lambda: preprocess.group_texts(batch, block_size), repeat=5))
    return Row(f"group_texts_{n}", f"group_texts, {n:,}-example batch (blocks identical)", "s", guide, course)


def describe_group(row: Row) -> str:
    """A ``group_texts_row`` in three lines, for notebook 02."""
    return (f"the guide's sum(lists, []): {row.baseline * 1e3:.1f} ms\n"
            f"the course's group_texts:  {row.course * 1e3:.2f} ms\n"
            f"{row.ratio:.1f}x faster, the same blocks")


# --- 04: a training step --------------------------------------------------------------------------

def distilroberta_sized() -> RobertaForMaskedLM:
    """DistilRoBERTa's shape (6 layers, hidden 768, vocabulary 50,265), randomly initialised: no hub here."""
    torch.manual_seed(0)
    shape = RobertaConfig(vocab_size=50265, hidden_size=768, num_hidden_layers=6, num_attention_heads=12,
                          intermediate_size=3072, max_position_embeddings=514, type_vocab_size=1, pad_token_id=1)
    return RobertaForMaskedLM(shape)


def random_mlm_batch(vocab_size: int, mask_id: int, rows: int, length: int = 128, probability: float = 0.15) -> dict[str, torch.Tensor]:
    """A masked batch without a tokenizer: random ordinary tokens, ``probability`` of them masked."""
    generator = torch.Generator().manual_seed(0)
    input_ids = torch.randint(1000, vocab_size - 1, (rows, length), generator=generator)
    picked = torch.rand(rows, length, generator=generator) < probability
    labels = torch.where(picked, input_ids, torch.full_like(input_ids, IGNORE))
    return {"input_ids": input_ids.masked_fill(picked, mask_id), "attention_mask": torch.ones_like(input_ids), "labels": labels}


def step_losses(model, batch: dict[str, torch.Tensor]) -> tuple[float, float]:
    """The standard forward's loss and the course's on the same batch (dropout off, so they can match)."""
    model.eval()
    with torch.no_grad():
        return float(model(**batch).loss), float(masked_head.loss(model, batch))


def train_step_row(name: str, what: str, model, batch: dict[str, torch.Tensor], repeat: int = 5) -> Row:
    """Forward and backward through the standard forward against the head only at the masks."""
    standard_loss, course_loss = step_losses(model, batch)
    model.train()

    def standard():
        model(**batch).loss.backward()
        model.zero_grad(set_to_none=True)

    def course():
        masked_head.loss(model, batch).backward()
        model.zero_grad(set_to_none=True)

    tokens = batch["input_ids"].numel()
    base_s = statistics.median(seconds(standard, repeat))
    fast_s = statistics.median(seconds(course, repeat))
    model.eval()
    return Row(name, what, "tokens/s", tokens / base_s, tokens / fast_s, higher_is_better=True,
               notes={"seconds_per_step": {"baseline": base_s, "course": fast_s},
                      "loss": {"baseline": standard_loss, "course": course_loss}, "tokens_per_step": tokens})


def compare_train_step(model, tokenizer, blocks, settings: config.Settings, repeat: int = 3) -> Row:
    """Notebook 04's side-by-side: one batch of the real training blocks, both ways."""
    masker = collate.make_collator(tokenizer, settings, seed=settings.seed)
    batch = masker([blocks[i] for i in range(settings.batch_size)])
    return train_step_row("train_step", f"training step, {settings.batch_size} x {settings.block_size} tokens",
                          model, batch, repeat)


def describe_step(row: Row) -> str:
    """A ``train_step_row`` in three lines, for notebook 04."""
    per_step, loss = row.notes["seconds_per_step"], row.notes["loss"]
    return (f"standard forward:  {per_step['baseline']:.3f} s a step, loss {loss['baseline']:.5f}\n"
            f"head at the masks: {per_step['course']:.3f} s a step, loss {loss['course']:.5f}\n"
            f"{row.ratio:.1f}x faster, same loss")


# --- 05: an evaluation pass -----------------------------------------------------------------------

def eval_pass_row(model, eval_masks, settings: config.Settings) -> Row:
    """The guide's evaluation (full head, Trainer's default batch of 8) against the course's."""
    guide_batch = 8
    timed = {}
    for label, batch_size, fast in [("baseline", guide_batch, False), ("course", settings.eval_batch_size, True)]:
        start = time.perf_counter()
        loss = evaluate.mean_loss(model, eval_masks, batch_size, head_only_at_masks=fast)
        timed[label] = (time.perf_counter() - start, loss)
    return Row("eval_pass", f"evaluation pass, {len(eval_masks)} blocks (batch {guide_batch} full head vs "
               f"{settings.eval_batch_size} head at masks)", "s", timed["baseline"][0], timed["course"][0],
               notes={"mean_loss": {k: v[1] for k, v in timed.items()}})


def describe_eval(row: Row) -> str:
    """An ``eval_pass_row`` in three lines, for notebook 05."""
    loss = row.notes["mean_loss"]
    return (f"the guide's way (batch 8, head everywhere): {row.baseline:.2f} s, loss {loss['baseline']:.5f}\n"
            f"the course's (larger batch, head at masks): {row.course:.2f} s, loss {loss['course']:.5f}\n"
            f"{row.ratio:.1f}x faster, same loss")


# --- 06: fill-mask --------------------------------------------------------------------------------

def fill_mask_rows(model, tokenizer, texts: list[str], repeat: int = 30) -> list[Row]:
    from transformers import pipeline

    fill = pipeline("fill-mask", model=model, tokenizer=tokenizer, device=next(model.parameters()).device)
    one = texts[0]
    assert infer.agree(fill(one, top_k=3), infer.fill_mask(one, model, tokenizer, 3)), "pipeline and course disagree"
    base = seconds(lambda: fill(one, top_k=3), repeat)
    fast = seconds(lambda: infer.fill_mask(one, model, tokenizer, 3), repeat)

    def p95(xs: list[float]) -> float:
        return statistics.quantiles(xs, n=20)[-1]

    batch_base = min(seconds(lambda: fill(texts, top_k=3, batch_size=len(texts)), repeat=3))
    batch_fast = min(seconds(lambda: infer.fill_masks(texts, model, tokenizer, 3), repeat=3))
    return [
        Row("fill_mask_latency_p50", "fill-mask, one sentence, median latency", "s", statistics.median(base), statistics.median(fast)),
        Row("fill_mask_latency_p95", "fill-mask, one sentence, 95th percentile latency", "s", p95(base), p95(fast)),
        Row(f"fill_mask_batch_{len(texts)}", f"fill-mask, batch of {len(texts)}, sentences per second", "sentences/s",
            len(texts) / batch_base, len(texts) / batch_fast, higher_is_better=True),
    ]


def masked_sentences(texts: list[str], mask_token: str, n: int = 64) -> list[str]:
    """``n`` sentences from the corpus, each with its sixth word masked."""
    out = []
    for text in texts:
        words = text.split()[:14]
        if len(words) >= 8:
            words[5] = mask_token
            out.append(" ".join(words))
        if len(out) == n:
            break
    return out


# --- the recipe: quality at equal time --------------------------------------------------------------

class TrainingBudget(TrainerCallback):
    """Stops training once its steps have taken ``seconds`` (evaluation and saving not counted)."""

    def __init__(self, seconds: float):
        self.budget, self.spent, self.started = seconds, 0.0, 0.0

    def on_step_begin(self, args, state, control, **kwargs):
        self.started = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        self.spent += time.perf_counter() - self.started
        if self.spent >= self.budget:
            control.should_training_stop = True


def race(settings: config.Settings, blocks: DatasetDict, eval_masks, budget: float) -> tuple[float, int]:
    """Train ``settings``' recipe for ``budget`` seconds of steps; the perplexity it reaches and its steps."""
    tokenizer = assets.load_tokenizer(settings.model)
    model = assets.load_model(settings.model)
    # evaluation and checkpoints are not part of the race
    trainer = train.make_trainer(settings, model, tokenizer, blocks["train"], eval_masks,
                                 eval_strategy="no", eval_on_start=False, save_strategy="no")
    trainer.add_callback(TrainingBudget(budget))
    trainer.train()
    return evaluate.perplexity(model, eval_masks, settings.eval_batch_size), trainer.state.global_step


def quality_row(course: config.Settings, blocks: DatasetDict, eval_masks, budget: float) -> Row:
    guide = replace(course, learning_rate=2e-5, batch_size=8, masked_head=False)
    guide_ppl, guide_steps = race(guide, blocks, eval_masks, budget)
    course_ppl, course_steps = race(course, blocks, eval_masks, budget)
    return Row("quality_equal_time", f"perplexity after {budget:.0f} s of training steps (guide: lr 2e-5, batch 8, "
               f"full head; course: lr {course.learning_rate:g}, batch {course.batch_size}, head at masks)",
               "perplexity", guide_ppl, course_ppl, notes={"steps": {"baseline": guide_steps, "course": course_steps}})


# --- GPU rows ---------------------------------------------------------------------------------------

PEAK_BF16_FLOPS = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "L4": 121e12, "A10": 125e12}


def train_flops(model, batch: dict[str, torch.Tensor], head_everywhere: bool) -> float:
    """Model FLOPs of one training step: 6 x parameters x tokens for the encoder, plus the head where it runs."""
    encoder, _ = masked_head.parts(model)
    embeddings = sum(p.numel() for p in encoder.embeddings.parameters())
    dense = sum(p.numel() for p in encoder.parameters()) - embeddings
    tokens = batch["input_ids"].numel()
    head_tokens = tokens if head_everywhere else int((batch["labels"] != IGNORE).sum())
    config_ = model.config
    head = config_.hidden_size * (config_.vocab_size + config_.hidden_size)
    attention = 2 * config_.num_hidden_layers * batch["input_ids"].shape[1] * config_.hidden_size  # QK^T and AV
    return 6 * (dense + attention) * tokens + 6 * head * head_tokens


def gpu_rows() -> list[Row]:
    """On CUDA: DistilRoBERTa-sized training, fp32 standard forward against bf16 with the head at masks."""
    if not torch.cuda.is_available():
        return []
    model = distilroberta_sized().cuda()
    batch = {k: v.cuda() for k, v in random_mlm_batch(50265, 50264, rows=64).items()}
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)
    model.train()

    def step(fast: bool):
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=fast):
            loss = masked_head.loss(model, batch) if fast else model(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    def timed(fast: bool) -> float:
        def run():
            step(fast)
            torch.cuda.synchronize()
        return statistics.median(seconds(run, repeat=10, warmup=3))

    base_s, fast_s = timed(False), timed(True)
    tokens = batch["input_ids"].numel()
    name = torch.cuda.get_device_name()
    peak = next((v for k, v in PEAK_BF16_FLOPS.items() if k in name), None)
    flops = train_flops(model, batch, head_everywhere=True)  # the same useful work on both sides
    notes = {"device": name, "seconds_per_step": {"baseline": base_s, "course": fast_s}}
    if peak:
        notes["mfu"] = {"baseline": flops / base_s / peak, "course": flops / fast_s / peak, "peak_bf16_flops": peak}
    return [Row("gpu_train_step_distilroberta_size", "GPU training step, DistilRoBERTa-sized, 64 x 128 "
                "(fp32 standard vs bf16 head at masks)", "tokens/s", tokens / base_s, tokens / fast_s,
                higher_is_better=True, notes=notes)]


# --- the whole bench --------------------------------------------------------------------------------

def run(budget: float, out: Path) -> list[Row]:
    torch.manual_seed(0)
    tokenizer = assets.load_tokenizer(assets.TINY_MODEL)
    rows: list[Row] = []

    def done(new: list[Row]) -> None:
        for row in new:
            print(f"  {row.name}: {row.ratio:.1f}x", flush=True)
        rows.extend(new)

    print("group_texts ...", flush=True)
    all_texts = list(data.load_wiki_science()["text"])
    every_summary = [a["extract"] for a in json.loads(assets.wiki_summaries_file().read_text()).values() if a.get("extract")]
    tokens = tokenizer(every_summary[:5000], verbose=False)
    for n in (1000, 5000):
        done([group_texts_row({k: v[:n] for k, v in tokens.items()})])

    print("training step ...", flush=True)
    tiny = assets.load_model(assets.TINY_MODEL)
    done([train_step_row("train_step_tiny", "training step, tiny (SPLADE-tiny), 32 x 128", tiny,
                         random_mlm_batch(len(tokenizer), tokenizer.mask_token_id, rows=32))])
    done([train_step_row("train_step_distilroberta_size", "training step, DistilRoBERTa-sized, 8 x 128",
                         distilroberta_sized(), random_mlm_batch(50265, 50264, rows=8))])

    print("evaluation pass ...", flush=True)
    with tempfile.TemporaryDirectory() as scratch:
        settings = config.make_settings("tiny", run_dir=scratch)
        corpus = data.load_corpus(settings)
        blocks = preprocess.build_blocks(data.split_corpus(corpus, settings), tokenizer, settings)
        eval_masks = collate.make_eval_masks(blocks["test"], tokenizer, settings)
        done([eval_pass_row(tiny, eval_masks, settings)])

        print("fill-mask ...", flush=True)
        done(fill_mask_rows(tiny, tokenizer, masked_sentences(all_texts, tokenizer.mask_token)))

        print(f"quality at equal time ({budget:.0f} s each) ...", flush=True)
        done([quality_row(settings, blocks, eval_masks, budget)])

    if torch.cuda.is_available():
        print("GPU ...", flush=True)
        done(gpu_rows())
    write(rows, out)
    return rows


def write(rows: list[Row], out: Path) -> None:
    record = {"machine": {"platform": platform.platform(), "processor": platform.processor(),
                          "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
                          "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None},
              **{row.name: row.as_dict() for row in rows}}
    out.parent.mkdir(parents=True, exist_ok=True)
    from .runs import write_json

    write_json(out, record)


def table(rows: list[Row]) -> str:
    lines = [f"{'row':<34} {'baseline':>12} {'course':>12} {'unit':<12} {'ratio':>7}"]
    for row in rows:
        lines.append(f"{row.name:<34} {row.baseline:>12.4g} {row.course:>12.4g} {row.unit:<12} {row.ratio:>6.1f}x")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="The course's fast paths against the standard ones, side by side.")
    parser.add_argument("--seconds", type=float, default=60, help="training seconds each recipe gets in the quality race")
    parser.add_argument("--out", type=Path, default=config.project_root() / "runs" / "bench.json")
    args = parser.parse_args(argv)
    rows = run(args.seconds, args.out)
    print()
    print(table(rows))
    print("\nratio: how many times better the course's side is (faster, or lower perplexity).")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
