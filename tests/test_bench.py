"""The benchmark's pieces, quickly: each comparison checks its two sides agree before it times them."""

import random

import pytest
from transformers import TrainerControl, TrainerState

from helpers import bench, collate, config, infer


def test_group_texts_row_compares_identical_blocks():
    rng = random.Random(0)
    batch = {"input_ids": [[rng.randrange(100) for _ in range(rng.randrange(200))] for _ in range(100)]}
    row = bench.group_texts_row(batch)
    assert row.name == "group_texts_100" and row.baseline > 0 and row.course > 0


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


def test_training_budget_stops_training_once_spent():
    budget, state, control = bench.TrainingBudget(0.0), TrainerState(), TrainerControl()
    budget.on_step_begin(None, state, control)
    budget.on_step_end(None, state, control)
    assert control.should_training_stop


def test_the_table_has_a_line_per_row():
    rows = [bench.Row("a", "a", "s", 2.0, 1.0), bench.Row("b", "b", "tokens/s", 1.0, 3.0, higher_is_better=True)]
    lines = bench.table(rows).splitlines()
    assert len(lines) == 3 and lines[1].endswith("2.0x") and lines[2].endswith("3.0x")


def test_masked_head_setting_chooses_the_models_forward(tokenizer, settings):
    from datasets import Dataset

    from helpers import assets, masked_head, train

    model = assets.load_model(assets.TINY_MODEL)
    rows = Dataset.from_dict({"input_ids": [[101] + [2000] * 30 + [102]] * 4})
    trainer = train.make_trainer(settings, model, tokenizer, rows, rows)
    assert masked_head.installed(model) and trainer.model_accepts_loss_kwargs  # it weighs tokens across accumulation
    standard = config.make_settings("tiny", run_dir=settings.run_dir, masked_head=False)
    trainer = train.make_trainer(standard, model, tokenizer, rows, rows)
    assert not masked_head.installed(model)
    assert not trainer.model_accepts_loss_kwargs  # BERT's own per-batch mean: Trainer scales it for accumulation


def test_precision_row_trains_both_sides_from_the_same_weights(tokenizer):
    from helpers import assets

    batches = [bench.random_mlm_batch(len(tokenizer), tokenizer.mask_token_id, rows=4, length=32) for _ in range(3)]
    row = bench.precision_row("p", "tiny", lambda: assets.load_model(assets.TINY_MODEL), batches, lr=5e-4)
    assert row.baseline > 0 and row.course > 0 and row.notes["steps"] == 3
    losses = row.notes["loss_after"]
    assert abs(losses["baseline"] - losses["course"]) < 0.5  # bf16 rounds, it does not derail three steps
    assert isinstance(row.notes["bf16_units"], bool) and "threads" in row.notes["machine"]


@pytest.mark.slow
def test_the_torchrun_row_times_both_forwards_on_two_processes():
    rows = bench.ddp_row()
    assert len(rows) == 1 and rows[0].notes["seconds_per_step"]["world_size"] == 2
    assert rows[0].baseline > 0 and rows[0].course > 0


def test_the_quality_row_changes_only_the_head_placement(monkeypatch, settings):
    raced = []
    monkeypatch.setattr(bench, "race", lambda s, *_: raced.append(s) or (10.0, 5))
    bench.quality_row(settings, None, None, 1.0)
    standard, course = raced
    assert {k for k in standard.as_dict() if standard.as_dict()[k] != course.as_dict()[k]} == {"masked_head"}
