import pytest
import torch
from datasets import Dataset

from helpers import collate, config

N_BLOCKS = 400  # 400 x 128 tokens: binomial noise on the rates well under a point


@pytest.fixture(scope="module")
def blocks(tokenizer):
    generator = torch.Generator().manual_seed(0)
    ordinary = torch.randint(1000, len(tokenizer), (N_BLOCKS, 128), generator=generator)
    ordinary[:, 0] = tokenizer.cls_token_id
    ordinary[:, -1] = tokenizer.sep_token_id
    return Dataset.from_dict({"input_ids": ordinary.tolist()})


@pytest.mark.parametrize("probability", [0.15, 0.3])
def test_measured_rates_match_the_collators_settings(blocks, tokenizer, tmp_path, probability):
    s = config.make_settings("tiny", run_dir=str(tmp_path), mlm_probability=probability)
    masks = collate.make_eval_masks(blocks, tokenizer, s)
    measured = collate.measure(blocks, masks, tokenizer)
    assert collate.within(measured, collate.expected_rates(s), tolerance=0.01), measured


def test_a_changed_probability_fails_the_check(blocks, tokenizer, tmp_path):
    s = config.make_settings("tiny", run_dir=str(tmp_path))
    wrong = config.make_settings("tiny", run_dir=str(tmp_path), mlm_probability=0.2)
    measured = collate.measure(blocks, collate.make_eval_masks(blocks, tokenizer, wrong), tokenizer)
    assert not collate.within(measured, collate.expected_rates(s), tolerance=0.01)


def test_special_tokens_are_never_picked(blocks, tokenizer, settings):
    masks = collate.make_eval_masks(blocks, tokenizer, settings)
    labels = torch.tensor(masks["labels"])
    assert (labels[:, 0] == collate.IGNORE).all() and (labels[:, -1] == collate.IGNORE).all()


def test_eval_masks_repeat_with_the_seed_and_change_with_another(blocks, tokenizer, tmp_path):
    first = collate.make_eval_masks(blocks, tokenizer, config.make_settings("tiny", run_dir=str(tmp_path)))
    again = collate.make_eval_masks(blocks, tokenizer, config.make_settings("tiny", run_dir=str(tmp_path)))
    other = collate.make_eval_masks(blocks, tokenizer, config.make_settings("tiny", run_dir=str(tmp_path), seed=1))
    assert first["input_ids"] == again["input_ids"] and first["labels"] == again["labels"]
    assert first["labels"] != other["labels"]


def test_train_eval_collator_masks_training_rows_and_passes_masked_rows(blocks, tokenizer, settings):
    both = collate.TrainEvalCollator(tokenizer, settings)
    rows = [blocks[i] for i in range(4)]
    masked = both(rows)
    assert (masked["labels"] != collate.IGNORE).any()
    second = both(rows)
    assert not torch.equal(second["labels"], masked["labels"])  # the next batch: other masks
    assert torch.equal(collate.TrainEvalCollator(tokenizer, settings)(rows)["labels"], masked["labels"])  # a rerun: the same
    other_rank = collate.TrainEvalCollator(tokenizer, settings, rank=1)(rows)
    assert not torch.equal(other_rank["labels"], masked["labels"])
    resumed = collate.TrainEvalCollator(tokenizer, settings, batches=1)  # as after a checkpoint at batch 1
    assert torch.equal(resumed(rows)["labels"], second["labels"])  # the batch the uninterrupted run masked next
    premasked = [{"input_ids": r["input_ids"], "labels": r["input_ids"]} for r in rows]
    passed = both(premasked)
    assert torch.equal(passed["input_ids"], torch.tensor([r["input_ids"] for r in rows]))
    assert torch.equal(passed["labels"], passed["input_ids"])


def test_token_table_names_what_happened(tokenizer):
    m, cls = tokenizer.mask_token_id, tokenizer.cls_token_id
    table = collate.token_table([cls, 2000, 2001, 2002, 2003], [cls, m, 2001, 2050, 2003], [-100, 2000, 2001, 2002, -100], tokenizer)
    assert list(table["what"]) == ["", "masked", "kept", "replaced", ""]
