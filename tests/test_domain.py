"""05's part two: the text outside the domain, split three ways, and the classifiers' scores."""

import pytest

from helpers import assets, collate, config, data, domain, lesson


def test_05s_macro_f1_matches_a_hand_computation():
    predictions, references = [0, 0, 1, 2, 2, 2], [0, 1, 1, 2, 2, 0]
    # class 0: P=1/2 R=1/2 F1=1/2; class 1: P=1 R=1/2 F1=2/3; class 2: P=2/3 R=1 F1=4/5
    assert lesson.macro_f1(predictions, references) == pytest.approx((1 / 2 + 2 / 3 + 4 / 5) / 3)
    assert lesson.macro_f1([0, 0, 0, 0], [0, 0, 0, 1]) == pytest.approx((6 / 7 + 0) / 2)  # class 1 never hit
    assert lesson.macro_f1([3, 3], [0, 0]) == 0  # a class only predicted counts too


def test_the_other_text_splits_three_ways_and_05s_masks_come_from_its_held_out_part(tmp_path, tokenizer):
    s = config.make_settings("tiny", run_dir=str(tmp_path), seed=7)
    parts = domain.other_text(s)
    texts = {name: set(part["text"]) for name, part in parts.items()}
    everything = data.load_out_of_domain(s)["text"]
    assert sum(len(part) for part in parts.values()) == len(everything) and set().union(*texts.values()) == set(everything)
    assert not (texts["general"] & texts["control"] or texts["general"] & texts["held_out"] or texts["control"] & texts["held_out"])
    assert [round(len(parts[name]) / len(everything), 2) for name in parts] == [0.4, 0.4, 0.2]
    assert domain.other_text(config.make_settings("tiny", seed=1))["held_out"]["text"] == parts["held_out"]["text"]  # its own seed
    assert not set(data.load_wiki_science()["text"]) & set(everything)
    control, masks = domain.other_blocks(s, tokenizer, n_masks=40)
    assert len(masks) == 40 and len(control) > 40

    def joined(part):  # each block, unmasked, is a run of one part's records' tokens
        ids = tokenizer(list(parts[part]["text"]))["input_ids"]
        return "," + ",".join(str(t) for record in ids for t in record) + ","

    held_out, others = joined("held_out"), joined("general") + joined("control")
    for row in masks.select(range(5)):
        block = [label if label != collate.IGNORE else token for token, label in zip(row["input_ids"], row["labels"])]
        run = "," + ",".join(map(str, block)) + ","
        assert run in held_out and run not in others
    assert "," + ",".join(map(str, control[0]["input_ids"])) + "," in joined("control")  # the control's own text
    assert domain.other_blocks(s, tokenizer, n_masks=40)[1]["labels"] == masks["labels"]  # the seed draws them


def test_the_other_topics_are_not_the_sciences():
    assert set(data.load_wiki(assets.OTHER_TOPICS)["topic"]) == set(assets.OTHER_TOPICS)
    assert not set(assets.OTHER_TOPICS) & set(assets.SCIENCE_TOPICS)
