"""05's domain figures: accuracy by kind of picked position, out-of-domain masks, the probe, the control, classifiers."""

import math

import pytest
import torch
import torch.nn.functional as F
from datasets import Dataset, DatasetDict
from transformers import BertConfig, BertForMaskedLM

from helpers import assets, collate, config, data, domain, evaluate, exercises, rehearse, steps

from test_evaluate import eval_set, small_model


def masks_of_known_kinds(tokenizer, n_blocks=30, length=32):
    """Blocks whose picked positions are chosen by hand, each kind at known places: position % 7 == 0 shows the
    mask token, 1 another token, 2 the token itself; the rest are not picked."""
    generator = torch.Generator().manual_seed(2)
    original = torch.randint(2000, 20000, (n_blocks, length), generator=generator)
    shown, labels = original.clone(), torch.full_like(original, collate.IGNORE)
    where = {kind: torch.arange(length) % 7 == i for i, kind in enumerate(evaluate.KINDS)}
    shown[:, where["masked"]] = tokenizer.mask_token_id
    shown[:, where["replaced"]] = original[:, where["replaced"]] + 1  # never the token itself
    for kind in evaluate.KINDS:
        labels[:, where[kind]] = original[:, where[kind]]
    masks = Dataset.from_dict({"input_ids": shown.tolist(), "attention_mask": torch.ones_like(shown).tolist(),
                               "labels": labels.tolist()})
    return masks, where


@torch.no_grad()
def test_accuracy_by_kind_is_a_hand_count_at_the_known_positions_of_each_kind(tokenizer):
    masks, where = masks_of_known_kinds(tokenizer)
    small = small_model().eval()
    batch = masks.with_format("torch")[:]
    logits = BertForMaskedLM.forward(small, input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    top5 = logits.topk(5, dim=-1).indices
    for at_masks in (True, False):
        scores = evaluate.score(small, masks, batch_size=7, head_only_at_masks=at_masks, mask_token_id=tokenizer.mask_token_id)
        for kind, columns in where.items():
            labels = batch["labels"][:, columns]
            assert scores.accuracy_by_kind[kind][1] == pytest.approx((top5[:, columns, 0] == labels).double().mean().item())
            assert scores.accuracy_by_kind[kind][5] == pytest.approx(
                (top5[:, columns] == labels[..., None]).any(-1).double().mean().item())


def test_a_model_that_copies_its_input_is_right_where_kept_and_never_at_the_mask(tokenizer, settings):
    """An "identity" model (logits: one-hot of the input token) is right exactly at the kept positions."""
    masks = eval_set(tokenizer, settings, n_blocks=20)

    class Copier(torch.nn.Module):
        config = BertConfig(vocab_size=len(tokenizer))

        def parameters(self):
            return iter([torch.zeros(1)])

        def forward(self, input_ids, attention_mask=None, **_):
            return type("Out", (), {"logits": F.one_hot(input_ids, len(tokenizer)).float()})()

    scores = evaluate.score(Copier(), masks, batch_size=8, head_only_at_masks=False, mask_token_id=tokenizer.mask_token_id)
    assert scores.accuracy_by_kind["kept"][1] == 1.0
    assert scores.accuracy_by_kind["masked"][1] == 0.0
    assert evaluate.metrics({"base": scores, "fine-tuned": scores, "unigram": scores})["top1_accuracy_at_mask_after"] == 0.0


def test_label_metric_matches_a_hand_computation():
    predictions, references = [0, 0, 1, 2, 2, 2], [0, 1, 1, 2, 2, 0]
    # class 0: P=1/2 R=1/2 F1=1/2; class 1: P=1 R=1/2 F1=2/3; class 2: P=2/3 R=1 F1=4/5
    expected = (1 / 2 + 2 / 3 + 4 / 5) / 3
    found = domain.label_scores(predictions, references)
    assert found["accuracy"] == pytest.approx(4 / 6)
    assert found["macro_f1"] == pytest.approx(expected)
    assert domain.label_scores([0, 0, 0, 0], [0, 0, 0, 1])["macro_f1"] == pytest.approx((6 / 7 + 0) / 2)  # a class never hit


def test_linear_probe_finds_a_linear_rule_and_not_noise():
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(400, 8, generator=generator)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).long() + 2 * (x[:, 2] > 0).long()  # four classes, linear boundaries
    predicted = domain.linear_probe(x[:300], y[:300], x[300:])
    assert (predicted == y[300:]).double().mean() > 0.85  # boundaries learnt from 300 points
    shuffled = y[torch.randperm(400, generator=generator)]  # labels unrelated to the features
    chance = (domain.linear_probe(x[:300], shuffled[:300], x[300:]) == shuffled[300:]).double().mean()
    assert chance < 0.45
    assert torch.equal(predicted, domain.linear_probe(x[:300], y[:300], x[300:]))  # from zeros: the same every time


def test_encoder_states_are_the_mean_over_real_tokens_of_the_last_layer(model, tokenizer):
    texts = ["A star is a ball of gas.", "The cell is the unit of life, found in every living thing on earth."]
    states = domain.encoder_states(model, tokenizer, texts, batch_size=2)
    for row, text in zip(states, texts):  # one text at a time: no padding at all
        alone = model.base_model(**tokenizer(text, return_tensors="pt")).last_hidden_state[0].mean(0)
        assert torch.allclose(row, alone, atol=1e-5)


def test_out_of_domain_masks_come_from_the_held_out_part_of_other_text(tmp_path, tokenizer):
    s = config.make_settings("tiny", run_dir=str(tmp_path / "run"), num_examples=300)
    ood = steps.out_of_domain(s)
    science = set(data.load_wiki_science()["text"])
    assert not science & set(ood["train"]["text"]) and not science & set(ood["test"]["text"])
    assert set(data.load_wiki(assets.OTHER_TOPICS)["topic"]) == set(assets.OTHER_TOPICS)
    masks = steps.ood_eval_masks(s, tokenizer)
    assert len(masks) == len(steps.eval_masks(s, tokenizer))  # as many blocks as the in-domain test set
    # each block, unmasked, is a run of the held-out records' tokens, and of no training record's
    def joined(split):
        ids = tokenizer(list(ood[split]["text"]))["input_ids"]
        return "," + ",".join(str(t) for record in ids for t in record) + ","
    held_out, trained = joined("test"), joined("train")
    for row in masks.select(range(5)):
        block = [label if label != collate.IGNORE else token for token, label in zip(row["input_ids"], row["labels"])]
        run = "," + ",".join(map(str, block)) + ","
        assert run in held_out and run not in trained
    # the same settings give the same masks (the seed draws them); another seed, other ones
    again = steps.ood_eval_masks(config.make_settings("tiny", run_dir=str(tmp_path / "again"), num_examples=300), tokenizer)
    assert again["input_ids"] == masks["input_ids"] and again["labels"] == masks["labels"]
    other = steps.ood_eval_masks(config.make_settings("tiny", run_dir=str(tmp_path / "seed1"), num_examples=300, seed=1), tokenizer)
    assert other["labels"] != masks["labels"]


def test_the_control_trains_on_text_it_is_never_scored_on(tmp_path):
    s = config.make_settings("tiny", run_dir=str(tmp_path / "run"))
    control = domain.control_settings(s, 123, tmp_path / "control")
    assert (control.source, control.ood_source, control.max_steps) == ("wiki-other", "wiki-science", 123)
    assert all(getattr(control, name) == getattr(s, name) for name in ("model", "learning_rate", "batch_size", "seed",
                                                                       "block_size", "mlm_probability", "masked_head"))
    trained_on = set(steps.splits(control)["train"]["text"])
    scored_on = set(steps.out_of_domain(s)["test"]["text"])
    assert trained_on and scored_on and not trained_on & scored_on
    assert not trained_on & set(steps.splits(s)["test"]["text"])


def test_ood_source_must_differ_from_the_corpus_and_a_missing_label_column_skips_the_probe(tmp_path, text_file, capsys):
    with pytest.raises(config.SettingsError, match="ood_source"):
        config.make_settings("tiny", ood_source="wiki-science")
    s = config.make_settings("tiny", run_dir=str(tmp_path / "run"), source=str(text_file))
    assert domain.probes(s, {}, None) is None
    assert "no column 'topic'" in capsys.readouterr().out
    assert set(domain.probe_metrics(None).values()) == {None} and not domain.probes_beat_majority(None)
    assert "no probe" in domain.no_probe(config.make_settings("tiny", label_field=""))


def test_few_labels_draws_the_same_records_for_a_seed_and_others_for_another():
    labels = [i % 3 for i in range(90)]
    picked = domain.few_labels(labels, 4, seed=0)
    assert sorted(labels[i] for i in picked) == [0] * 4 + [1] * 4 + [2] * 4
    assert picked == domain.few_labels(labels, 4, seed=0) and picked != domain.few_labels(labels, 4, seed=1)


@pytest.mark.slow
def test_a_classifier_fine_tuned_twice_with_one_seed_scores_the_same(tmp_path):
    corpus = data.load_wiki_science().shuffle(seed=0).select(range(240))
    splits = DatasetDict(data.split_corpus(corpus, config.make_settings("tiny")))
    runs_ = [domain.fine_tune_classifier(assets.TINY_MODEL, splits, "topic", "text", seed=3, per_class=8, epochs=2)
             for _ in range(2)]
    assert runs_[0] == runs_[1]
    assert 0 <= runs_[0]["macro_f1"] <= 1


def test_the_rehearsal_category_follows_the_topic():
    by_topic = {"Physical sciences": ["Stars shine by fusion of hydrogen in their cores. Planets orbit their stars in "
                                      "ellipses. Light travels faster than any sound wave. Comets carry ice from far away."],
                "Mathematics": ["A prime number has exactly two divisors here. Groups have an identity element always. "
                                "Every square matrix has a determinant value. A circle has one centre point only."]}
    records = rehearse.eli5_records(by_topic, 40, seed=0)
    for record in records:
        source = by_topic["Physical sciences" if record["category"] == "Physics" else "Mathematics"][0]
        assert all(sentence.rstrip(".") in source for answer in record["answers"]["text"] for sentence in answer.split(". "))
    assert {r["category"] for r in records} == {"Physics", "Mathematics"}


def classifiers_measured(base, adapted, source="wiki-science"):
    return {"measured": {"profile": "tiny", "model": "splade-tiny", "source": source, "overrides": {}, "machine": "M",
                         "date": "D"},
            "classifiers": {"few_per_class": 16, "by_regime": {"few": {
                "base encoder": {"macro_f1": base, "accuracy": base}, "adapted encoder": {"macro_f1": adapted, "accuracy": adapted}}}}}


def test_the_classifier_verdict_follows_the_paired_differences():
    assert "no difference is shown" in domain.classifier_reading(classifiers_measured([0.70, 0.72, 0.71], [0.71, 0.70, 0.73])).text
    shown = domain.classifier_reading(classifiers_measured([0.70, 0.72, 0.71], [0.75, 0.78, 0.76])).text
    assert "a gain is shown" in shown and "+0.053" in shown and "3 of 3 positive" in shown
    mixed = domain.classifier_reading(classifiers_measured([0.70, 0.70, 0.70, 0.70], [0.80, 0.80, 0.80, 0.69])).text
    assert "not of one sign" in mixed
    assert "Wikipedia" in shown and "Wikipedia" not in domain.classifier_reading(
        classifiers_measured([0.7, 0.7], [0.8, 0.8], source="my.jsonl")).text.split("near zero where")[1]


def test_the_control_reading_follows_the_figures():
    def reading(ctrl_in, ctrl_out):
        p = {"base": {"in-domain": 1000.0, "out-of-domain": 1000.0},
             "fine-tuned on the domain": {"in-domain": 10.0, "out-of-domain": 50.0},
             "control: fine-tuned off it": {"in-domain": ctrl_in, "out-of-domain": ctrl_out}}
        return domain.control_reading({**classifiers_measured([0.7], [0.7]),
                                       "control": {"perplexity": p, "steps": 9, "source": "wiki-other"}}).text
    usual = reading(100.0, 20.0)
    assert "50%" in usual and "10.0x lower" in usual and "order turns round" in usual  # log 10 / log 100
    assert "nothing is measured for the domain" in reading(8.0, 60.0) and "order turns round" not in reading(8.0, 60.0)


def test_the_probe_reading_weighs_the_gap_against_mcnemars_noise():
    probe = {"classes": ["a", "b"], "test_records": 500, "majority": 0.5, "base": {"accuracy": 0.90, "macro_f1": 0.9},
             "fine-tuned": {"accuracy": 0.92, "macro_f1": 0.92}, "base only": 10, "fine-tuned only": 20}
    within = domain.probe_reading(probe, "topic")
    assert "±11" in within and "within that" in within  # 2 * sqrt(30) = 10.95
    beyond = domain.probe_reading({**probe, "base only": 2, "fine-tuned only": 20}, "topic")
    assert "±9" in beyond and "beyond that" in beyond


def test_readings_state_the_figures_and_name_where_they_came_from():
    s = evaluate.Scores(math.log(100.0), 10, {1: 0.1})
    t = evaluate.Scores(math.log(10.0), 10, {1: 0.3})
    o_b, o_t = evaluate.Scores(math.log(100.0), 10, {1: 0.1}), evaluate.Scores(math.log(50.0), 10, {1: 0.2})
    text = domain.domain_reading({"base": s, "fine-tuned": t}, {"base": o_b, "fine-tuned": o_t}, "a", "b")
    assert "10.0x" in text and "2.0x" in text and f"{math.log(50) / math.log(10) - 1:.0%}" not in text
    assert f"{math.log(2) / math.log(10):.0%} of the in-domain drop" in text and "factor of 5.0" in text
    measured = classifiers_measured([0.70, 0.72, 0.71], [0.71, 0.70, 0.73])
    assert "tiny profile" in domain.classifier_reading(measured).text
    guide = config.make_settings("guide")
    assert "not this run's" in domain.measured_here(guide, measured).text
    assert "not this run's" not in domain.measured_here(config.make_settings("tiny"), measured).text


def test_the_far_domain_exercise_asks_first_and_folds_its_answer():
    far = next(e for e in exercises.EXERCISES if e.title == "A domain far from Wikipedia")
    text = exercises.item(1, far, None)
    assert text.index(far.question[:30]) < text.index("<details>") < text.index("</details>")
    assert "-p run_dir runs/try-far" in text
