"""05's part two: the text outside the domain, split three ways, and the probe."""

import pytest
import torch

from helpers import assets, collate, config, data, domain


def test_label_scores_match_a_hand_computation():
    predictions, references = [0, 0, 1, 2, 2, 2], [0, 1, 1, 2, 2, 0]
    # class 0: P=1/2 R=1/2 F1=1/2; class 1: P=1 R=1/2 F1=2/3; class 2: P=2/3 R=1 F1=4/5
    found = domain.label_scores(predictions, references)
    assert found["accuracy"] == pytest.approx(4 / 6) and found["macro_f1"] == pytest.approx((1 / 2 + 2 / 3 + 4 / 5) / 3)
    assert domain.label_scores([0, 0, 0, 0], [0, 0, 0, 1])["macro_f1"] == pytest.approx((6 / 7 + 0) / 2)  # never hit


def test_the_linear_probe_finds_a_linear_rule_and_not_noise():
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(400, 8, generator=generator)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).long() + 2 * (x[:, 2] > 0).long()  # four classes, linear boundaries
    predicted = domain.linear_probe(x[:300], y[:300], x[300:])
    assert (predicted == y[300:]).double().mean() > 0.85
    shuffled = y[torch.randperm(400, generator=generator)]  # labels unrelated to the features
    assert (domain.linear_probe(x[:300], shuffled[:300], x[300:]) == shuffled[300:]).double().mean() < 0.45
    assert torch.equal(predicted, domain.linear_probe(x[:300], y[:300], x[300:]))  # from zeros: the same every time


def test_encoder_states_are_the_mean_over_real_tokens_of_the_last_layer(model, tokenizer):
    texts = ["A star is a ball of gas.", "The cell is the unit of life, found in every living thing on earth."]
    states = domain.encoder_states(model, tokenizer, texts, batch_size=2)
    for row, text in zip(states, texts):  # one text at a time: no padding at all
        alone = model.base_model(**tokenizer(text, return_tensors="pt")).last_hidden_state[0].mean(0)
        assert torch.allclose(row, alone, atol=1e-5)


def test_the_probe_finds_the_topic_and_counts_the_records_only_one_encoder_gets(tokenizer, model):
    corpus = data.load_wiki_science().shuffle(seed=0).select(range(240))
    s = config.make_settings("tiny", run_dir="/tmp/unused")
    probe = domain.probes(data.split_corpus(corpus, s), s, {"base": model, "fine-tuned": model}, tokenizer)
    assert probe["base"] == probe["fine-tuned"] and probe["base"]["accuracy"] > probe["majority"]["accuracy"]
    assert probe["base only"] == probe["fine-tuned only"] == 0  # one encoder twice: no record told apart
    assert domain.probes(data.split_corpus(corpus, s), config.make_settings("tiny", label_field=""), {}, tokenizer) is None
    assert domain.probe_metrics(None)["probe_accuracy_after"] is None  # no figure left from an earlier run


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
    blocks = domain.other_blocks(s, tokenizer)
    masks = domain.ood_masks(blocks["held_out"], tokenizer, s, n_blocks=40)
    assert len(masks) == 40

    def joined(part):  # each block, unmasked, is a run of one part's records' tokens
        ids = tokenizer(list(parts[part]["text"]))["input_ids"]
        return "," + ",".join(str(t) for record in ids for t in record) + ","

    held_out, others = joined("held_out"), joined("general") + joined("control")
    for row in masks.select(range(5)):
        block = [label if label != collate.IGNORE else token for token, label in zip(row["input_ids"], row["labels"])]
        run = "," + ",".join(map(str, block)) + ","
        assert run in held_out and run not in others
    assert domain.ood_masks(blocks["held_out"], tokenizer, s, n_blocks=40)["labels"] == masks["labels"]  # the seed draws them


def test_the_probe_table_counts_the_records_only_one_probe_gets_right():
    probe = {"test_records": 5, "majority": {"accuracy": 0.4, "macro_f1": 0.2}, "base": {"accuracy": 0.6, "macro_f1": 0.5},
             "fine-tuned": {"accuracy": 0.8, "macro_f1": 0.7}, "base only": 1, "fine-tuned only": 2}
    table = domain.probe_table(probe)
    assert table.loc["fine-tuned", "right where the other is wrong"] == 2 and table.loc["base", "accuracy"] == 0.6
    assert table["right where the other is wrong"].isna().tolist() == [False, False, True]


def test_the_other_topics_are_not_the_sciences():
    assert set(data.load_wiki(assets.OTHER_TOPICS)["topic"]) == set(assets.OTHER_TOPICS)
    assert not set(assets.OTHER_TOPICS) & set(assets.SCIENCE_TOPICS)
