"""The benchmark's pieces, quickly: each comparison checks its two sides agree before it times them."""

import json
import math
import random
import sys

import pytest
import torch
from transformers import BertForMaskedLM, TrainerControl, TrainerState

from helpers import bench, collate, config, infer, masked_head, preprocess


def ragged_batch():
    rng = random.Random(0)
    return {"input_ids": [[rng.randrange(100) for _ in range(rng.randrange(200))] for _ in range(100)]}


def test_group_texts_row_compares_identical_blocks():
    batch = ragged_batch()
    row = bench.group_texts_row(batch)
    total = sum(len(x) for x in batch["input_ids"])
    assert row.name == "group_texts_100" and row.notes == {"blocks": total // 128, "identical": True}


def test_group_texts_row_refuses_to_time_different_blocks(monkeypatch):
    real = preprocess.group_texts
    monkeypatch.setattr(preprocess, "group_texts", lambda b, n: {k: v[1:] for k, v in real(b, n).items()})  # one short
    with pytest.raises(bench.Mismatch, match="different blocks"):
        bench.group_texts_row(ragged_batch())


def test_train_step_row_reports_equal_losses(model, tokenizer):
    row = bench.train_step_row("step", "tiny", model, bench.random_mlm_batch(len(tokenizer), tokenizer.mask_token_id, rows=4, length=32), repeat=1)
    assert row.notes["loss"]["baseline"] == pytest.approx(row.notes["loss"]["course"], rel=1e-5)
    assert row.unit == "tokens/s" and row.ratio == row.course / row.baseline
    assert set(row.as_dict()) >= {"baseline", "course", "ratio", "unit"}


def test_eval_pass_row_gives_the_same_loss_both_ways(model, tokenizer, settings):
    from datasets import Dataset

    blocks = Dataset.from_dict({"input_ids": bench.random_mlm_batch(len(tokenizer), 103, rows=16, length=32)["input_ids"].tolist()})
    masks = collate.make_eval_masks(blocks, tokenizer, settings)
    row = bench.eval_pass_row(model, masks, settings)
    assert row.notes["mean_loss"]["baseline"] == pytest.approx(row.notes["mean_loss"]["course"], rel=1e-5)


def test_fill_mask_rows_time_agreeing_answers(model, tokenizer):
    texts = bench.masked_sentences(["one two three four five six seven eight nine"] * 4, tokenizer.mask_token, n=4)
    rows = bench.fill_mask_rows(model, tokenizer, texts, repeat=3)
    assert [r.name for r in rows] == ["fill_mask_latency_p50", "fill_mask_latency_p95", "fill_mask_batch_4"]
    assert infer.agree(infer.fill_masks(texts, model, tokenizer, 3)[1], infer.fill_mask(texts[1], model, tokenizer, 3))


def test_fill_mask_rows_refuse_to_time_disagreeing_answers(model, tokenizer, monkeypatch):
    texts = bench.masked_sentences(["one two three four five six seven eight nine"] * 4, tokenizer.mask_token, n=4)
    real = infer.fill_mask
    monkeypatch.setattr(infer, "fill_mask", lambda *a: [dict(p, token=p["token"] + 1) for p in real(*a)])
    with pytest.raises(bench.Mismatch, match="different answers"):
        bench.fill_mask_rows(model, tokenizer, texts, repeat=3)


def test_training_budget_stops_training_once_spent_and_not_before(monkeypatch):
    clock = iter([0.0, 0.4, 1.0, 1.5, 2.0, 2.2])  # steps of 0.4, 0.5 and 0.2 s
    monkeypatch.setattr(bench.time, "perf_counter", lambda: next(clock))
    budget, state = bench.TrainingBudget(1.0), TrainerState()
    stopped = []
    for _ in range(3):
        control = TrainerControl()
        budget.on_step_begin(None, state, control)
        budget.on_step_end(None, state, control)
        stopped.append(control.should_training_stop)
    assert stopped == [False, False, True] and budget.spent == pytest.approx(1.1)  # 0.9 s is under, 1.1 s is over


def test_the_table_has_a_line_per_row():
    rows = [bench.Row("a", "a", "s", 2.0, 1.0), bench.Row("b", "b", "tokens/s", 1.0, 3.0, higher_is_better=True)]
    lines = bench.table(rows).splitlines()
    assert len(lines) == 3 and lines[1].endswith("2.0x") and lines[2].endswith("3.0x")


def test_a_failed_torchrun_row_is_shown_as_failed():
    rows = bench.ddp_row([sys.executable, "-c", "import sys; sys.exit('gloo could not bind')"])
    assert len(rows) == 1
    row = rows[0]
    assert row.name == "ddp_train_step_tiny" and "gloo could not bind" in row.failed and math.isnan(row.ratio)
    line = bench.table([bench.Row("a", "a", "s", 2.0, 1.0), row]).splitlines()[-1]
    assert line.startswith("ddp_train_step_tiny") and "FAILED" in line and "gloo could not bind" in line
    record = json.loads(json.dumps(row.as_dict(), allow_nan=False))  # bench.json stays valid JSON
    assert record["failed"] == row.failed and record["ratio"] is None


def test_a_torchrun_that_cannot_start_is_a_failed_row_too(tmp_path):
    rows = bench.ddp_row([str(tmp_path / "no-torchrun-here")])
    assert len(rows) == 1 and "FileNotFoundError" in rows[0].failed


def test_the_torchrun_row_reads_the_workers_seconds():
    found = {"baseline": 0.5, "course": 0.25, "world_size": 2, "tokens": 2048}
    write = f"import json, sys; json.dump({found!r}, open(sys.argv[-1], 'w'))"
    row, = bench.ddp_row([sys.executable, "-c", write])
    assert row.failed is None
    assert row.baseline == pytest.approx(2 * 2048 / 0.5) and row.course == pytest.approx(2 * 2048 / 0.25)
    assert row.ratio == pytest.approx(2.0) and bench.table([row]).splitlines()[-1].endswith("2.0x")


def test_the_race_loads_the_class_the_masked_head_setting_asks_for(monkeypatch, settings):
    from helpers import evaluate, train

    given = []

    class FakeTrainer:
        state = TrainerState(global_step=7)

        def add_callback(self, _callback):
            pass

        def train(self):
            pass

    monkeypatch.setattr(train, "make_trainer", lambda s, model, *a, **k: given.append(model) or FakeTrainer())
    monkeypatch.setattr(evaluate, "perplexity", lambda *a: 12.0)
    standard = config.make_settings("tiny", run_dir=settings.run_dir, masked_head=False)
    assert bench.race(settings, {"train": None}, None, 1.0) == (12.0, 7)
    assert bench.race(standard, {"train": None}, None, 1.0) == (12.0, 7)
    at_masks, plain = given
    assert type(at_masks) is masked_head.model_class(at_masks.config) is masked_head.BertForMaskedLMAtMasks
    assert type(plain) is BertForMaskedLM
    assert torch.equal(at_masks.cls.predictions.decoder.weight, plain.cls.predictions.decoder.weight)  # same weights


def test_precision_row_trains_both_sides_from_the_same_weights_through_the_head_at_the_masks(tokenizer):
    from helpers import assets

    batches = [bench.random_mlm_batch(len(tokenizer), tokenizer.mask_token_id, rows=4, length=32) for _ in range(3)]
    counts = []

    def make_model():
        model = assets.load_model(assets.TINY_MODEL, at_masks=True)
        counts.append(masked_head.HeadCount(model))
        return model

    row = bench.precision_row("p", "tiny", make_model, batches, lr=5e-4)
    assert row.notes["steps"] == 3
    start = assets.load_model(assets.TINY_MODEL).eval()
    with torch.no_grad():
        before = float(masked_head.standard_forward(start, **batches[0]).loss)
    losses = row.notes["loss_after"]
    assert losses["baseline"] < before - 0.05  # three steps on these batches lower their loss
    assert abs(losses["baseline"] - losses["course"]) < 0.1 * (before - losses["baseline"]) + 0.05  # bf16 rounds, no more
    mlm_share = sum(float((b["labels"] != -100).sum()) for b in batches) / sum(b["labels"].numel() for b in batches)
    for count in counts:  # each side's training steps ran the head at the masks only, then one loss
        assert count.head_rows / count.positions == pytest.approx(mlm_share, rel=0.3) and count.share() < 0.5
    assert isinstance(row.notes["bf16_units"], bool) and "threads" in row.notes["machine"]


@pytest.mark.slow
def test_the_torchrun_row_times_both_forwards_on_two_processes():
    rows = bench.ddp_row()
    assert len(rows) == 1 and rows[0].failed is None, rows[0].failed
    found = rows[0].notes["seconds_per_step"]
    assert found["world_size"] == 2
    tokens = found["tokens"] * 2
    assert rows[0].baseline == pytest.approx(tokens / found["baseline"]) and rows[0].course == pytest.approx(tokens / found["course"])


def test_the_quality_row_changes_only_the_head_placement(monkeypatch, settings):
    raced = []
    monkeypatch.setattr(bench, "race", lambda s, *_: raced.append(s) or (10.0, 5))
    bench.quality_row(settings, None, None, 1.0)
    standard, course = raced
    assert {k for k in standard.as_dict() if standard.as_dict()[k] != course.as_dict()[k]} == {"masked_head"}
