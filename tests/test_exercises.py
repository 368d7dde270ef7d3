"""The Try it sections: every exercise is runnable, measured, and rendered from the measurements."""

import json

import pytest

from pathlib import Path

from helpers import checks, config, exercises, run_all

ROOT = Path(__file__).resolve().parents[1]


def test_every_notebook_has_two_to_four_exercises_and_three_have_the_learner_write_code():
    for notebook in run_all.NOTEBOOKS:
        count = len([e for e in exercises.EXERCISES if e.notebook == notebook]) + (notebook in checks.CODE_EXERCISES)
        assert 2 <= count <= 4, notebook
    assert len(checks.CODE_EXERCISES) >= 3


@pytest.mark.parametrize("notebook", sorted(checks.CODE_EXERCISES))
def test_each_code_exercise_has_a_stub_a_check_and_a_folded_answer(notebook):
    cells = json.loads((ROOT / "notebooks" / f"{notebook}.ipynb").read_text())["cells"]
    sources = ["".join(c["source"]) for c in cells]
    stub = next(i for i, text in enumerate(sources) if "raise NotImplementedError  # your code here" in text)
    assert "checks." in sources[stub + 1] and sources[stub + 2].startswith("<details>")
    assert sources[stub - 1].startswith("**Write it:") and "Predict first" in sources[stub - 1]
    printed = "".join("".join(o.get("data", {}).get("text/plain", o.get("text", ""))) for o in cells[stub + 1]["outputs"])
    assert printed.startswith("not written yet"), "the committed notebook runs with the learner's cell empty"


def test_every_exercise_asks_first_and_every_one_that_trains_has_its_own_run_folder():
    for e in exercises.EXERCISES:
        text = exercises.item(1, e, exercises.read())
        assert "?" in e.question and text.index(e.question) < text.index("<details>") < text.index("</details>")
        if e.run:
            assert f"-p run_dir runs/try-" in e.change, e.title
    folders = [e.change.split("runs/try-")[1].split('"')[0] for e in exercises.EXERCISES if "runs/try-" in e.change]
    assert len(folders) == len(set(folders))  # no two exercises share a folder


def test_every_run_is_valid_settings_and_every_exercise_names_a_run():
    for name, params in exercises.RUNS.items():
        config.make_settings(exercises.PROFILE, **params)  # raises on an unknown or bad setting
    assert {e.run for e in exercises.EXERCISES if e.run} <= set(exercises.RUNS)


def test_the_committed_figures_cover_every_exercise_on_the_plain_profile():
    measured = exercises.read()
    assert measured is not None, "run `make exercises` and commit helpers/try_it.json"
    assert measured["profile"] == "tiny" and measured["overrides"] == {}, "measured with overrides: rerun make exercises"
    assert set(measured["runs"]) == set(exercises.RUNS)
    adaptation = measured["adaptation"]  # 05's control and classifiers
    assert adaptation["measured"]["overrides"] == {} and adaptation["measured"]["profile"] == "tiny"
    assert adaptation["control"]["steps"] == measured["runs"]["baseline"]["train_steps"]  # the same budget
    assert all(len(r["macro_f1"]) == 5 for by in adaptation["classifiers"]["by_regime"].values() for r in by.values())
    for notebook in run_all.NOTEBOOKS:
        text = exercises.section(notebook, measured)
        assert "not measured yet" not in text and "{" not in text.replace("{mask}", ""), notebook


@pytest.mark.slow
def test_the_mask_overlap_exercise_measured_again_gives_the_committed_figure(tmp_path, tokenizer):
    """03's "Fresh masks differ" needs no training: rebuild the tiny profile's blocks and masks, measure it again."""
    settings = config.make_settings(exercises.PROFILE, run_dir=str(tmp_path / "baseline"))
    overlap = exercises.mask_overlap(settings, tokenizer)
    committed = exercises.read()["extras"]["mask_overlap"]
    assert overlap == pytest.approx(committed, abs=5e-4), "the figure 03 prints (to 0.1%) is stale: rerun make exercises"
    assert overlap == pytest.approx(settings.mlm_probability, abs=0.02)  # what the text says: "about the 15% that chance gives"


def test_an_exercise_renders_its_own_run_beside_the_baseline():
    measured = {"profile": "tiny", "overrides": {"max_steps": 2}, "machine": "a CPU", "date": "today", "extras": {},
                "runs": {"baseline": {"perplexity_after": 50.04, "top1_after": 0.3}, "seed": {"perplexity_after": 61.26, "top1_after": 0.25}}}
    text = exercises.section("01_load", measured)
    assert text.startswith(exercises.PREAMBLE)
    first, second = text.split("1. **Another seed.**")[1].split("2. **Your own text.**")
    assert "came out 61.3, against 50.0 with seed 42, and its top-1 accuracy 25.0% against 30.0%" in first
    assert exercises.NOT_MEASURED in second  # no train_blocks measured
    assert text.rstrip().endswith("*Measured by `make exercises` on the tiny profile, max_steps=2, a CPU, today; your "
                                  "figures will differ a little on another machine.*")


def test_an_unmeasured_exercise_says_how_to_measure_it():
    text = exercises.section("04_train", None)
    assert text.count("(not measured yet: run `make exercises`)") == 2


@pytest.mark.slow
def test_the_measuring_command_runs_every_exercise_end_to_end(tmp_path):
    """The real path of `make exercises`, shrunk: 300 records and 2 steps a run."""
    out = tmp_path / "try_it.json"
    assert exercises.main(["--out", str(out), "-p", "num_examples", "300", "-p", "max_steps", "2"]) == 0
    measured = json.loads(out.read_text())
    assert measured["overrides"] == {"num_examples": 300, "max_steps": 2}
    assert all(r["train_steps"] == 2 for r in measured["runs"].values())
    assert measured["runs"]["mlm_probability"]["picked"] == pytest.approx(0.3, abs=0.03)
    assert measured["runs"]["block_size"]["train_blocks"] > measured["runs"]["baseline"]["train_blocks"]
    assert "use block_size <= 512" in measured["extras"]["block_600_error"]
    assert measured["adaptation"]["control"]["steps"] == 2 and measured["adaptation"]["control"]["source"] == "wiki-other"
    assert set(measured["adaptation"]["classifiers"]["by_regime"]) == {"few", "all"}
    for notebook in run_all.NOTEBOOKS:
        assert "not measured yet" not in exercises.section(notebook, measured)


def _masking(token_on_token, token_on_words, words_on_token, words_on_words, seed=None):
    cell = lambda p: {"perplexity": p, "top1": 10 / p}  # noqa: E731  (lower perplexity, higher accuracy)
    runs_ = {"baseline": {"perplexity_after": token_on_token}, "seed": {"perplexity_after": seed}} if seed else {}
    return {"machine": "a CPU", "date": "today", "runs": runs_, "extras": {"masking": {
        "token masking": {"token masking": cell(token_on_token), "whole-word masking": cell(token_on_words)},
        "whole-word masking": {"token masking": cell(words_on_token), "whole-word masking": cell(words_on_words)}}}}


def test_the_masking_comparison_is_a_two_by_two_table_read_from_its_figures():
    measured = _masking(50.0, 120.0, 55.0, 90.0, seed=50.5)
    table = exercises.masking_table(measured)
    assert list(table.index) == ["trained with token masking", "trained with whole-word masking"]
    assert table.loc["trained with whole-word masking", ("on whole-word masks", "perplexity")] == 90.0
    reading = repr(exercises.masking_reading(measured))
    assert ("On whole-word masks, the model trained with whole words against the token-masking model: perplexity 90.0 "
            "against 120.0, top-1 accuracy 11.1% against 8.3%: better on both measures.") in reading
    assert "On token masks: perplexity 55.0 against 50.0, top-1 accuracy 18.2% against 20.0%: worse on both measures." in reading
    assert "Neither model is better outright" in reading and "whole-word masks are the harder test for both" in reading
    assert "perplexity from 50.0 to 50.5, the size of gap that is noise" in reading
    flipped = repr(exercises.masking_reading(_masking(50.0, 40.0, 45.0, 60.0)))
    assert "worse on both measures. On token masks" in flipped
    assert "Neither model" not in flipped and "harder test" not in flipped and "noise" not in flipped
    mixed = {"machine": "a CPU", "date": "today", "extras": {"masking": {
        "token masking": {k: {"perplexity": 50.0, "top1": 0.3} for k in ("token masking", "whole-word masking")},
        "whole-word masking": {k: {"perplexity": 40.0, "top1": 0.2} for k in ("token masking", "whole-word masking")}}}}
    assert "better by one measure and worse by the other" in repr(exercises.masking_reading(mixed))


def test_the_masking_comparison_says_how_to_measure_it_when_the_file_lacks_it():
    assert repr(exercises.masking_table({"extras": {}})) == exercises.NOT_MEASURED
    assert repr(exercises.masking_reading({"extras": {}})) == exercises.NOT_MEASURED
