import pytest
import torch
from datasets import Dataset

from helpers import collate, config, plots

N_BLOCKS = 400  # 400 x 128 tokens: binomial noise on the rates well under a point


def within(measured, expected, tolerance):
    return all(abs(measured[k] - expected[k]) <= tolerance for k in expected)


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
    assert within(measured, collate.expected_rates(s), 0.01), measured


def test_a_changed_probability_fails_the_check(blocks, tokenizer, tmp_path):
    s = config.make_settings("tiny", run_dir=str(tmp_path))
    wrong = config.make_settings("tiny", run_dir=str(tmp_path), mlm_probability=0.2)
    measured = collate.measure(blocks, collate.make_eval_masks(blocks, tokenizer, wrong), tokenizer)
    assert not within(measured, collate.expected_rates(s), 0.01)


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


class State:  # what Trainer hands a callback: the step a run starts (or resumes) at
    def __init__(self, global_step):
        self.global_step = global_step


class Args:
    def __init__(self, process_index):
        self.process_index = process_index


def seeded(tokenizer, settings, rank=0, step=0):
    masks = collate.SeededMasks(collate.make_collator(tokenizer, settings), seed=settings.seed)
    masks.on_train_begin(Args(rank), State(step), None)
    return masks


def test_seeded_masks_mask_each_batch_afresh_repeatably_per_process_and_after_a_resume(blocks, tokenizer, settings):
    rows = [blocks[i] for i in range(4)]
    masks = seeded(tokenizer, settings)
    first, second = masks(rows), masks(rows)
    assert (first["labels"] != collate.IGNORE).any()
    assert not torch.equal(second["labels"], first["labels"])  # the next batch: other masks
    assert torch.equal(seeded(tokenizer, settings)(rows)["labels"], first["labels"])  # a rerun: the same
    assert not torch.equal(seeded(tokenizer, settings, rank=1)(rows)["labels"], first["labels"])  # another process
    assert torch.equal(seeded(tokenizer, settings, step=1)(rows)["labels"], second["labels"])  # resumed at step 1


def test_seeded_masks_pass_the_fixed_evaluation_rows_through(blocks, tokenizer, settings):
    rows = [{"input_ids": blocks[i]["input_ids"], "labels": blocks[i]["input_ids"]} for i in range(4)]
    passed = seeded(tokenizer, settings)(rows)
    assert torch.equal(passed["input_ids"], torch.tensor([r["input_ids"] for r in rows]))
    assert torch.equal(passed["labels"], passed["input_ids"])


def test_the_eval_masks_are_the_library_collators_over_map_batches_of_a_thousand(blocks, tokenizer, settings):
    """make_eval_masks against the library's collator called by hand, one seeded generator over the whole set."""
    from transformers import DataCollatorForLanguageModeling

    library = DataCollatorForLanguageModeling(tokenizer=tokenizer, mlm_probability=0.15, seed=settings.seed)
    by_hand = library([blocks[i] for i in range(len(blocks))])  # 400 rows: one map batch
    masks = collate.make_eval_masks(blocks, tokenizer, settings)
    assert masks["labels"] == by_hand["labels"].tolist() and masks["input_ids"] == by_hand["input_ids"].tolist()


def test_masking_rates_by_hand(tokenizer):
    m, cls, sep = tokenizer.mask_token_id, tokenizer.cls_token_id, tokenizer.sep_token_id
    original = torch.tensor([[cls, 2000, 2001, 2002, 2003, sep]])
    masked = torch.tensor([[cls, m, 2001, 2050, 2003, sep]])
    labels = torch.tensor([[-100, 2000, 2001, 2002, -100, -100]])
    rates = collate.masking_rates(original, masked, labels, tokenizer)
    assert rates == {"picked": 3 / 4, "masked": 1 / 3, "replaced": 1 / 3, "kept": 1 / 3}


def test_whole_word_masks_hide_every_piece_of_a_picked_word(tokenizer, settings):
    from helpers import lesson

    text = " ".join(["the turnip and the rutabaga are root vegetables"] * 40)
    tokens = lesson.preprocess_with_spans({"text": [text]}, tokenizer, "text")
    block = {k: v[0][:128] for k, v in tokens.items()}
    s = config.make_settings("tiny", run_dir=settings.run_dir, whole_word_mask=True, mlm_probability=0.3)
    masked = collate.make_collator(tokenizer, s, seed=0)([block])
    labels = masked["labels"][0].tolist()
    words = collate.words_of(block, labels, tokenizer)
    picked = [w for w in words if any(labelled for _, labelled in w)]
    assert picked and all(all(labelled for _, labelled in w) for w in picked)  # whole or nothing
    assert any(len(w) > 1 for w in picked)  # a word of several pieces among them: "turn ##ip", "ru ##ta ##ba ##ga"
    assert all(masked["input_ids"][0][i] == tokenizer.mask_token_id for i, label in enumerate(labels) if label != -100)
    token = collate.make_collator(tokenizer, dataclasses_replace(s, whole_word_mask=False), seed=0)([block])
    assert collate.part_hidden(block, token["labels"][0].tolist(), tokenizer)  # token masking leaves some in part


def dataclasses_replace(s, **changes):
    import dataclasses

    return dataclasses.replace(s, **changes)


def test_each_position_is_named_for_what_it_shows(tokenizer):
    m, cls = tokenizer.mask_token_id, tokenizer.cls_token_id
    seen, labels = [cls, m, 2001, 2050, 2003], [-100, 2000, 2001, 2002, -100]  # by hand: not picked, masked, kept, swapped
    assert [plots.kind(s, label, m) for s, label in zip(seen, labels)] == ["", "masked", "kept", "replaced", ""]
