"""``make bench``: the course's paths against the standard ones, measured side by side in one run.

    python -m scripts.bench                 # prints a table, writes runs/bench.json
    python -m scripts.bench --seconds 30    # shorter equal-time training race

Each row runs both sides on the same data, the same model and the same machine, one after the other,
and reports both measurements and their ratio (how many times better the course's side is). Timings
on a shared machine are noisy: read the ratios, and rerun before trusting a small one.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import torch
from datasets import DatasetDict
from transformers import RobertaConfig, RobertaForMaskedLM, TrainerCallback

from helpers import assets, collate, config, data, evaluate, infer, masked_head, preprocess, runs, train
from helpers.collate import IGNORE
from helpers.lesson import group_texts, guide_group_texts


class Mismatch(RuntimeError):
    """The two sides of a comparison disagree (different blocks, different answers): nothing worth timing."""


@dataclass
class Row:
    """One comparison: both sides' measurements, and the ratio in the course's favour (>1 is better).

    A row whose measurement could not be taken carries the reason in ``failed`` (and NaN measurements):
    the table and bench.json show it as failed rather than leaving it out."""

    name: str
    what: str
    unit: str
    baseline: float
    course: float
    higher_is_better: bool = False
    notes: dict[str, Any] = field(default_factory=dict)
    failed: str | None = None

    @classmethod
    def failure(cls, name: str, what: str, unit: str, error: str, **notes: Any) -> "Row":
        return cls(name, what, unit, math.nan, math.nan, notes=notes, failed=error)

    @property
    def ratio(self) -> float:
        if self.failed is not None:
            return math.nan
        return self.course / self.baseline if self.higher_is_better else self.baseline / self.course

    def as_dict(self) -> dict[str, Any]:
        if self.failed is not None:  # JSON has no NaN: null measurements and the reason
            return {"what": self.what, "unit": self.unit, "baseline": None, "course": None, "ratio": None,
                    "failed": self.failed, **self.notes}
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


def machine() -> str:
    """The CPU's model name (as lscpu gives it) and the threads torch uses, or the GPU's name: quoted with every timing."""
    if torch.cuda.is_available():
        return torch.cuda.get_device_name()
    name = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{name}, {torch.get_num_threads()} threads"


def cpu_bf16_units() -> bool:
    """Whether this CPU multiplies bf16 natively (AVX-512 BF16 or AMX); without, bf16 is emulated, and slower."""
    return any(getattr(torch.cpu, name, lambda: False)() for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"))


# --- 02: grouping ---------------------------------------------------------------------------------

def group_texts_row(batch: dict[str, list[list[int]]], block_size: int = 128, repeat: int = 3) -> Row:
    """The course's ``group_texts`` against the guide's, timed only once their blocks are identical (else Mismatch)."""
    course_blocks, guide_blocks = group_texts(batch, block_size), guide_group_texts(batch, block_size)
    if course_blocks != guide_blocks:
        raise Mismatch(f"group_texts and the guide's give different blocks ({len(course_blocks.get('input_ids', []))} "
                       f"against {len(guide_blocks.get('input_ids', []))})")
    n = len(batch["input_ids"])
    guide = min(seconds(lambda: guide_group_texts(batch, block_size), repeat=repeat))  # both warmed up, the same repeats
    course = min(seconds(lambda: group_texts(batch, block_size), repeat=repeat))
    return Row(f"group_texts_{n}", f"group_texts, {n:,}-example batch (blocks identical)", "s", guide, course,
               notes={"blocks": len(guide_blocks["input_ids"]), "identical": True})


# --- 04: a training step --------------------------------------------------------------------------

def distilroberta_sized(at_masks: bool = False) -> RobertaForMaskedLM:
    """DistilRoBERTa's shape (6 layers, hidden 768, vocabulary 50,265), randomly initialised: no hub here. The same
    weights either way; ``at_masks`` builds ``masked_head.RobertaForMaskedLMAtMasks``, the head at the masks."""
    torch.manual_seed(0)
    shape = RobertaConfig(vocab_size=50265, hidden_size=768, num_hidden_layers=6, num_attention_heads=12,
                          intermediate_size=3072, max_position_embeddings=514, type_vocab_size=1, pad_token_id=1)
    return (masked_head.RobertaForMaskedLMAtMasks if at_masks else RobertaForMaskedLM)(shape)


def random_mlm_batch(vocab_size: int, mask_id: int, rows: int, length: int = 128, probability: float = 0.15,
                     seed: int = 0) -> dict[str, torch.Tensor]:
    """A masked batch without a tokenizer: random ordinary tokens, ``probability`` of them masked."""
    generator = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(1000, vocab_size - 1, (rows, length), generator=generator)
    picked = torch.rand(rows, length, generator=generator) < probability
    labels = torch.where(picked, input_ids, torch.full_like(input_ids, IGNORE))
    return {"input_ids": input_ids.masked_fill(picked, mask_id), "attention_mask": torch.ones_like(input_ids), "labels": labels}


def train_step_row(name: str, what: str, model, batch: dict[str, torch.Tensor], repeat: int = 5) -> Row:
    """Forward and backward through the standard forward against the head only at the masks (``model`` is an AtMasks
    class: its own forward is the course's), once their losses agree."""
    model.eval()  # dropout off, so that the two losses can match
    with torch.no_grad():
        losses = {"baseline": float(masked_head.standard_forward(model, **batch).loss), "course": float(model(**batch).loss)}
    if abs(losses["baseline"] - losses["course"]) > 1e-4:
        raise Mismatch(f"the two forwards give different losses: {losses}")
    model.train()
    sides = {"baseline": lambda: masked_head.standard_forward(model, **batch).loss, "course": lambda: model(**batch).loss}
    timed = {}
    for label, loss in sides.items():
        def step():
            loss().backward()
            model.zero_grad(set_to_none=True)
        timed[label] = statistics.median(seconds(step, repeat))
    tokens = batch["input_ids"].numel()
    return Row(name, what, "tokens/s", tokens / timed["baseline"], tokens / timed["course"], higher_is_better=True,
               notes={"seconds_per_step": timed, "loss": losses, "tokens_per_step": tokens})


def eval_pass_row(model, eval_masks, batch_size: int = 64, repeat: int = 3) -> Row:
    """An evaluation pass with the head at every position against the head at the masks, on the same batches, once
    their losses agree: each side warmed up and timed ``repeat`` times (the median)."""
    timed, losses = {}, {}
    for label, fast in [("baseline", False), ("course", True)]:
        losses[label] = evaluate.score(model, eval_masks, batch_size, head_only_at_masks=fast, top_k=()).loss
        timed[label] = statistics.median(seconds(lambda: evaluate.score(model, eval_masks, batch_size, fast, top_k=()), repeat))
    if abs(losses["baseline"] - losses["course"]) > 1e-4:
        raise Mismatch(f"the two evaluation passes give different losses: {losses}")
    return Row("eval_pass", f"evaluation pass, {len(eval_masks)} blocks in batches of {batch_size} (head everywhere vs "
               f"head at masks)", "s", timed["baseline"], timed["course"], notes={"mean_loss": losses})


# --- 06: fill-mask --------------------------------------------------------------------------------

def fill_mask_rows(model, tokenizer, texts: list[str], repeat: int = 30) -> list[Row]:
    from transformers import pipeline

    fill = pipeline("fill-mask", model=model, tokenizer=tokenizer, device=next(model.parameters()).device)
    one = texts[0]
    if not infer.agree(fill(one, top_k=3), infer.fill_mask(one, model, tokenizer, 3)):
        raise Mismatch(f"the pipeline and the course's fill_mask give different answers for {one!r}")
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
    model = assets.load_model(settings.model, at_masks=settings.masked_head)
    # evaluation and checkpoints are not part of the race
    trainer = train.make_trainer(settings, model, tokenizer, blocks["train"], eval_masks, eval_strategy="no",
                                 save_strategy="no", disable_tqdm=True)
    trainer.add_callback(TrainingBudget(budget))
    trainer.train()
    return evaluate.score(model, eval_masks, settings.eval_batch_size, top_k=()).perplexity, trainer.state.global_step


def quality_row(course: config.Settings, blocks: DatasetDict, eval_masks, budget: float) -> Row:
    """The course's recipe with the head everywhere against the same recipe with the head at the masks, each
    given ``budget`` seconds of training steps: the perplexity each reaches (only the head placement differs)."""
    standard = replace(course, masked_head=False)
    standard_ppl, standard_steps = race(standard, blocks, eval_masks, budget)
    course_ppl, course_steps = race(course, blocks, eval_masks, budget)
    return Row("quality_equal_time", f"perplexity after {budget:.0f} s of training steps, lr {course.learning_rate:g}, "
               f"batch {course.batch_size} (head everywhere vs head at masks)", "perplexity", standard_ppl, course_ppl,
               notes={"steps": {"baseline": standard_steps, "course": course_steps}})


# --- precision on the CPU ---------------------------------------------------------------------------

def precision_row(name: str, what: str, make_model: Callable[[], Any], batches: list[dict[str, torch.Tensor]],
                  lr: float) -> Row:
    """fp32 against bf16 autocast, from the same weights over the same batches, both through the forward of the model
    ``make_model`` returns (a ``masked_head`` AtMasks class: the head at the masks): seconds a step (the median),
    and the loss on the first batch after the last step, in fp32."""
    results = {}
    for label, bf16 in [("baseline", False), ("course", True)]:
        model = make_model()
        model.train()
        optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
        times = []
        for batch in batches:
            start = time.perf_counter()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                loss = model(**batch).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            times.append(time.perf_counter() - start)
        model.eval()
        with torch.no_grad():
            final = float(model(**batches[0]).loss)
        results[label] = (statistics.median(times[1:]), final)  # the first step warms up
    tokens = batches[0]["input_ids"].numel()
    return Row(name, what, "tokens/s", tokens / results["baseline"][0], tokens / results["course"][0],
               higher_is_better=True, notes={"loss_after": {k: v[1] for k, v in results.items()}, "steps": len(batches),
                                             "bf16_units": cpu_bf16_units(), "machine": machine()})


def cpu_precision_rows(tokenizer, blocks: DatasetDict, settings: config.Settings) -> list[Row]:
    masker = collate.make_collator(tokenizer, settings, seed=settings.seed)
    train_rows = blocks["train"]
    tiny_batches = [masker([train_rows[i] for i in range(start, start + 32)]) for start in range(0, 32 * 30, 32)]
    big_batches = [random_mlm_batch(50265, 50264, rows=8, seed=i) for i in range(8)]
    return [
        precision_row("cpu_bf16_tiny", "CPU training step, tiny, 32 x 128, head at masks (fp32 vs bf16 autocast), "
                      "30 steps of the real blocks", lambda: assets.load_model(assets.TINY_MODEL, at_masks=True),
                      tiny_batches, 5e-4),
        precision_row("cpu_bf16_distilroberta_size", "CPU training step, DistilRoBERTa-sized, 8 x 128, head at masks "
                      "(fp32 vs bf16 autocast), 8 steps", lambda: distilroberta_sized(at_masks=True), big_batches, 1e-4),
    ]


# --- data parallel: torchrun, 2 processes on the CPU ------------------------------------------------

def ddp_worker(out: Path, repeat: int = 5) -> None:
    """Run under ``torchrun --nproc_per_node 2``: a DDP training step of the tiny model (gloo), head everywhere
    against head at the masks, each process its own batch; the first process writes the medians to ``out``."""
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    dist.init_process_group("gloo")
    rank = dist.get_rank()
    tokenizer = assets.load_tokenizer(assets.TINY_MODEL)
    batch = random_mlm_batch(len(tokenizer), tokenizer.mask_token_id, rows=16, seed=rank)
    result = {}
    for label, fast in [("baseline", False), ("course", True)]:
        model = assets.load_model(assets.TINY_MODEL, at_masks=fast)
        ddp = DistributedDataParallel(model.train())

        def step():
            ddp(**batch).loss.backward()
            model.zero_grad(set_to_none=True)
            dist.barrier()

        result[label] = statistics.median(seconds(step, repeat, warmup=2))
    if rank == 0:
        out.write_text(json.dumps({**result, "world_size": dist.get_world_size(), "tokens": batch["input_ids"].numel()}))
    dist.destroy_process_group()


DDP_NAME = "ddp_train_step_tiny"
DDP_WHAT = ("training step under torchrun --nproc_per_node 2 (gloo, 1 thread each), tiny, 16 x 128 a process "
            "(head everywhere vs head at masks)")


def ddp_row(command: list[str] | None = None) -> list[Row]:
    """The torchrun row; if the run fails, one row marked failed with the end of its error output (never no row).
    ``command`` stands in for the torchrun command line in tests (the output path is appended)."""
    if command is None:
        command = [str(Path(sys.executable).parent / "torchrun"), "--standalone", "--nproc_per_node", "2",
                   "-m", "scripts.bench", "--ddp-worker"]
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "ddp.json"
        env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(config.project_root()))
        try:
            ran = subprocess.run([*command, str(out)], env=env, capture_output=True, text=True, timeout=600)
        except (OSError, subprocess.TimeoutExpired) as err:
            error = f"{type(err).__name__}: {err}"
        else:
            error = None if ran.returncode == 0 and out.exists() else (
                f"exit status {ran.returncode}: {(ran.stderr or ran.stdout or 'no output').strip()[-500:]}")
        if error is not None:
            print(f"  the torchrun row failed: {error}")
            return [Row.failure(DDP_NAME, DDP_WHAT, "tokens/s", error, machine=machine())]
        found = json.loads(out.read_text())
    tokens = found["tokens"] * found["world_size"]
    return [Row(DDP_NAME, DDP_WHAT, "tokens/s", tokens / found["baseline"], tokens / found["course"],
                higher_is_better=True, notes={"seconds_per_step": found, "machine": machine()})]


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
    """On CUDA, DistilRoBERTa-sized training, 64 x 128: the head placement (both fp32), the precision (both the
    standard forward) and both together, each row changing what its name says. MFU counts the FLOPs each side
    actually runs (the head at every position, or at the masks only)."""
    if not torch.cuda.is_available():
        return []
    model = distilroberta_sized(at_masks=True).cuda()
    batch = {k: v.cuda() for k, v in random_mlm_batch(50265, 50264, rows=64).items()}
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)
    model.train()

    def timed(at_masks: bool, bf16: bool) -> float:
        def step():
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=bf16):
                loss = model(**batch).loss if at_masks else masked_head.standard_forward(model, **batch).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            torch.cuda.synchronize()
        return statistics.median(seconds(step, repeat=10, warmup=3))

    runs_ = {(m, b): timed(m, b) for m in (False, True) for b in (False, True)}
    tokens = batch["input_ids"].numel()
    name = torch.cuda.get_device_name()
    peak = next((v for k, v in PEAK_BF16_FLOPS.items() if k in name), None)
    rows = []
    for row_name, what, base, course in [
        ("gpu_head_placement", "head everywhere vs head at masks, both fp32", (False, False), (True, False)),
        ("gpu_precision", "fp32 vs bf16 autocast, both the standard forward", (False, False), (False, True)),
        ("gpu_both", "fp32 head everywhere vs bf16 head at masks", (False, False), (True, True)),
    ]:
        notes = {"device": name, "seconds_per_step": {"baseline": runs_[base], "course": runs_[course]}}
        if peak:
            notes["mfu"] = {label: train_flops(model, batch, head_everywhere=not side[0]) / runs_[side] / peak
                            for label, side in (("baseline", base), ("course", course))}
            notes["peak_bf16_flops"] = peak  # both sides against the bf16 peak (SXM figures for H100/H200)
        rows.append(Row(row_name, f"GPU training step, DistilRoBERTa-sized, 64 x 128 ({what})", "tokens/s",
                        tokens / runs_[base], tokens / runs_[course], higher_is_better=True, notes=notes))
    return rows


# --- the whole bench --------------------------------------------------------------------------------

def run(budget: float, out: Path) -> list[Row]:
    torch.manual_seed(0)
    tokenizer = assets.load_tokenizer(assets.TINY_MODEL)
    rows: list[Row] = []

    def done(new: list[Row]) -> None:
        for row in new:
            print(f"  {row.name}: {'FAILED' if row.failed else f'{row.ratio:.1f}x'}", flush=True)
        rows.extend(new)

    print("group_texts ...", flush=True)
    all_texts = list(data.load_wiki_science()["text"])
    every_summary = [a["extract"] for a in json.loads(assets.wiki_summaries_file().read_text()).values() if a.get("extract")]
    tokens = tokenizer(every_summary[:5000], verbose=False)
    for n in (1000, 5000):
        done([group_texts_row({k: v[:n] for k, v in tokens.items()})])

    print("training step ...", flush=True)
    tiny = assets.load_model(assets.TINY_MODEL, at_masks=True)
    done([train_step_row("train_step_tiny", "training step, tiny (SPLADE-tiny), 32 x 128", tiny,
                         random_mlm_batch(len(tokenizer), tokenizer.mask_token_id, rows=32))])
    done([train_step_row("train_step_distilroberta_size", "training step, DistilRoBERTa-sized, 8 x 128",
                         distilroberta_sized(at_masks=True), random_mlm_batch(50265, 50264, rows=8))])

    print("evaluation pass ...", flush=True)
    with tempfile.TemporaryDirectory() as scratch:
        settings = config.make_settings("tiny", run_dir=scratch)
        corpus = data.load_corpus(settings)
        blocks = preprocess.build_blocks(data.split_corpus(corpus, settings), tokenizer, settings)
        eval_masks = collate.make_eval_masks(blocks["test"], tokenizer, settings)
        done([eval_pass_row(tiny, eval_masks, settings.eval_batch_size)])

        print("fill-mask ...", flush=True)
        done(fill_mask_rows(tiny, tokenizer, masked_sentences(all_texts, tokenizer.mask_token)))

        print("bf16 against fp32 on the CPU ...", flush=True)
        done(cpu_precision_rows(tokenizer, blocks, settings))

        print(f"quality at equal time ({budget:.0f} s each) ...", flush=True)
        done([quality_row(settings, blocks, eval_masks, budget)])

    print("torchrun, 2 processes ...", flush=True)
    done(ddp_row())

    if torch.cuda.is_available():
        print("GPU ...", flush=True)
        done(gpu_rows())
    write(rows, out)
    return rows


def write(rows: list[Row], out: Path) -> None:
    record = {"machine": {"platform": platform.platform(), "processor": machine(), "bf16_units": cpu_bf16_units(),
                          "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
                          "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None},
              **{row.name: row.as_dict() for row in rows}}
    out.parent.mkdir(parents=True, exist_ok=True)
    runs.write_json(out, record)


def table(rows: list[Row]) -> str:
    lines = [f"{'row':<34} {'baseline':>12} {'course':>12} {'unit':<12} {'ratio':>7}"]
    for row in rows:
        if row.failed is not None:
            reason = row.failed.strip().splitlines()[-1][:80] if row.failed.strip() else "no reason given"
            lines.append(f"{row.name:<34} {'FAILED':>12} {'FAILED':>12} {row.unit:<12} {'failed':>7}  ({reason})")
        else:
            lines.append(f"{row.name:<34} {row.baseline:>12.4g} {row.course:>12.4g} {row.unit:<12} {row.ratio:>6.1f}x")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="The course's fast paths against the standard ones, side by side.")
    parser.add_argument("--seconds", type=float, default=60, help="training seconds each recipe gets in the quality race")
    parser.add_argument("--out", type=Path, default=config.project_root() / "runs" / "bench.json")
    parser.add_argument("--ddp-worker", type=Path, default=None, help=argparse.SUPPRESS)  # the torchrun row's processes
    args = parser.parse_args(argv)
    if args.ddp_worker:
        ddp_worker(args.ddp_worker)
        return
    rows = run(args.seconds, args.out)
    print()
    print(f"on {machine()}, torch {torch.__version__}")
    print(table(rows))
    print("\nratio: how many times better the course's side is (faster, or lower perplexity).")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
