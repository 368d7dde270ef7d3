"""The figures of a real tiny run (the one nbval just made: `make nbval` sets FIGURES_RUN_DIR), read back from its
run folder: what should hold on the tiny profile, checked at every `make test` rather than printed as True on a page."""

import os
from pathlib import Path

import pytest
import torch

from helpers import assets, collate, config, runs, steps

pytestmark = pytest.mark.figures


@pytest.fixture(scope="module")
def run():
    folder = os.environ.get("FIGURES_RUN_DIR")
    if not folder:
        pytest.skip("no run to read: `make nbval` sets FIGURES_RUN_DIR")
    assert Path(folder).is_dir(), f"{folder} holds no run"
    s = config.make_settings("tiny", run_dir=folder)
    return s, runs.read_metrics(s)


def test_the_collator_did_what_it_says_within_a_point(run):
    s, _ = run
    blocks, s = steps.load("blocks", s)
    masks, _ = steps.load("eval_masks", s)
    measured = collate.measure(blocks["test"], masks, assets.load_tokenizer(s.model))
    expected = collate.expected_rates(s)
    assert all(abs(measured[k] - expected[k]) < 0.01 for k in expected), measured


def test_the_general_model_beat_the_unigram_table_widely_and_fine_tuning_beat_the_general_model(run):
    _, m = run
    assert m["perplexity_installed"] > m["perplexity_unigram"]  # 04: "SPLADE-tiny as installed does worse than the table"
    assert m["perplexity_before"] <= m["perplexity_unigram"] / 5  # "before" is the general model: a working masked LM
    assert m["perplexity_after"] < m["perplexity_before"] and m["top1_accuracy_at_mask_after"] > m["top1_accuracy_at_mask_before"]


def test_both_models_were_scored_on_general_text_and_06_counted_its_sentences(run):
    _, m = run
    assert m["perplexity_ood_after"] > m["perplexity_ood_before"] > 0  # 05: "lower in the domain, higher outside it"
    assert m["probe_sentences"] == 40
    first, median = m["probe_sentences_first"], m["probe_median_rank"]  # 06: "ranked first, the two models are close;
    assert abs(first["fine-tuned"] - first["base"]) <= 4  # the median rank tells them apart: ... far up the list"
    assert median["fine-tuned"] < median["base"] / 2


def test_the_control_gained_less_in_the_domain_than_the_domains_steps_and_more_outside_it(run):
    _, m = run  # 05: "the control's steps lower the domain's perplexity too ... the domain's, twice as many, lower it far more"
    assert abs(m["control_steps"] - m["train_steps"] / 2) <= 1  # "The control sees half as many blocks as 04 trained on"
    assert m["perplexity_after"] < m["perplexity_control"] < m["perplexity_before"]
    assert m["perplexity_ood_control"] < m["perplexity_ood_before"] < m["perplexity_ood_after"]  # "gains there, ... loses"
    f1 = m["classifier_macro_f1"]
    assert [len(f1["base"]), len(f1["fine-tuned"])] == [3, 3] and min(f1["base"] + f1["fine-tuned"]) > 0.5  # chance: 0.25
    gains = [after - before for before, after in zip(f1["base"], f1["fine-tuned"])]
    low, middle, high = sorted(gains)
    assert low <= middle < 0 < high and abs(sum(gains)) / 3 < 0.005  # "two fall and the third rises about as far"


def test_the_head_is_as_wide_as_04_says(run):
    s, _ = run  # 04's "Going faster": "30,522 columns, against a hidden size of 128", as 04-11 prints them
    model_config = assets.load_config(s.model)
    assert (model_config.vocab_size, model_config.hidden_size) == (30522, 128)


def test_fine_tuning_moved_the_guides_answer_up_and_the_pipeline_filled_the_mask(run):
    _, m = run
    rank = m["fill_mask_answer_rank"]
    # 06-17: "Only the fine-tuned model lists the expected word" (among its top_k = 3)
    assert rank["fine-tuned"] <= len(m["fill_mask"]) < rank["base"]
    assert len(m["fill_mask"]) == 3 and m["fill_mask"][0]["score"] > m["fill_mask"][-1]["score"]


def test_the_run_folder_holds_each_notebooks_output_and_no_half_written_one(run):
    s, m = run
    assert {p.name for p in s.run_path.iterdir()} >= {"splits", "blocks", "eval_masks", "model", "metrics.json"}
    left = [p for p in s.run_path.rglob(".*") if p.name != ".cache" and not p.name.endswith("-lock")]  # a lock file stays
    assert not left  # no temporary left behind
    assert m["train_steps"] == 393 and m["model"] == runs.record(s, "model")
    weights = assets.load_model(str(runs.path(s, "model"))).state_dict()
    assert all(torch.isfinite(w).all() for w in weights.values())
