"""The tooling no notebook imports: the papermill driver, the rehearsal's stand-ins, the bench, make exercises,
the Colab links, and the measured answers the notebooks render."""

import json
import math

import pyarrow.parquet as pq
import pytest
from transformers import RobertaForMaskedLM

from helpers import assets, config, runs, tryit
from scripts import bench, colab, exercises, rehearse, run_all


def test_each_notebook_is_given_the_settings_its_cell_lists():
    assert run_all.listed("02_preprocess") == {"profile", "model", "text_field", "block_size", "run_dir"}
    every = set().union(*(run_all.listed(name) for name in run_all.NOTEBOOKS))
    assert every == set(config.NAMES) - {"streaming"}  # streaming is the command line's alone


def test_a_setting_no_notebook_lists_is_refused_before_any_notebook_runs(tmp_path):
    with pytest.raises(config.SettingsError, match=r"no notebook lists \['streaming'\].*python -m helpers.train"):
        run_all.run_all({"streaming": True, "max_steps": 5, "run_dir": str(tmp_path / "run")})
    assert not (tmp_path / "run").exists()


def test_the_headline_reads_the_runs_metrics(tmp_path):
    s = config.make_settings("tiny", run_dir=str(tmp_path))
    runs.write_json(s.run_path / "metrics.json", {
        "model": None, "perplexity_before": 3000.0, "perplexity_after": 50.0, "perplexity_unigram": 1200.0,
        "top1_accuracy_at_mask_before": 0.005, "top1_accuracy_at_mask_after": 0.29, "perplexity_ood_before": 3600.0,
        "perplexity_ood_after": 72.6, "probe_accuracy_before": None, "fill_mask_text": "a [MASK] b",
        "fill_mask": [{"token_str": "galaxy", "score": 0.319}], "train_steps": 393, "train_seconds": 87.4})
    text = run_all.headline(s)
    assert "3000.0 before, 50.0 after fine-tuning (60.0x lower; unigram table 1200.0)" in text
    assert "0.5% before, 29.0% after" in text and "galaxy 0.319" in text and "393 steps in 87.4 s" in text
    assert "probe" not in text  # a run with no probe says nothing of one


@pytest.fixture(scope="module")
def standins(tmp_path_factory):
    return rehearse.build_standins(tmp_path_factory.mktemp("standins"))


def test_the_model_stand_in_has_distilrobertas_conventions(standins):
    tokenizer = assets.load_tokenizer(standins["model"])
    model = assets.load_model(standins["model"])
    assert isinstance(model, RobertaForMaskedLM) and model.config.max_position_embeddings == 514
    assert tokenizer.mask_token == "<mask>" and tokenizer.model_max_length == 512
    encoded = tokenizer("The Milky Way is a <mask> galaxy.")
    assert "token_type_ids" not in encoded
    pieces = tokenizer.convert_ids_to_tokens(encoded["input_ids"])
    assert pieces[0] == "<s>" and pieces[-1] == "</s>" and pieces[pieces.index("<mask>") - 1] == "Ġa"  # <mask> took the space


def test_the_data_stand_in_is_laid_out_and_shaped_like_eli5(standins):
    table = pq.read_table(f"{standins['dataset_name']}/default/train/0000.parquet")
    record = table.slice(0, 1).to_pylist()[0]
    assert table.num_rows == 300 and set(record["answers"]) == {"a_id", "text", "score", "text_urls"}
    assert set(record) == {"q_id", "title", "selftext", "category", "subreddit", "answers", "title_urls", "selftext_urls"}
    assert all(len(r["answers"]["text"]) >= 2 for r in table.to_pylist())  # several answers a question


def test_the_rehearsal_category_follows_the_topic():
    by_topic = {"Physical sciences": ["Stars shine by fusion of hydrogen in their cores. Planets orbit their stars in "
                                      "ellipses. Light travels faster than any sound wave."],
                "Mathematics": ["A prime number has exactly two divisors here. Groups have an identity element always. "
                                "Every square matrix has a determinant value."]}
    for record in rehearse.eli5_records(by_topic, 40, seed=0):
        source = by_topic["Physical sciences" if record["category"] == "Physics" else "Mathematics"][0]
        assert all(sentence.rstrip(".") in source for answer in record["answers"]["text"] for sentence in answer.split(". "))


def test_bench_rows_time_only_identical_work_and_show_failures(monkeypatch):
    batch = {"input_ids": [[i] * (i % 40) for i in range(300)]}
    row = bench.group_texts_row(batch, 16, repeat=1)
    assert row.notes["identical"] and row.baseline > 0 and row.ratio == row.baseline / row.course
    monkeypatch.setattr(bench, "group_texts", lambda examples, size: {"input_ids": []})
    with pytest.raises(bench.Mismatch):
        bench.group_texts_row(batch, 16, repeat=1)
    failed = bench.ddp_row(["false"])  # a torchrun that fails: a row marked failed, never no row
    assert failed[0].failed and "exit status 1" in failed[0].failed and math.isnan(failed[0].ratio)
    assert "FAILED" in bench.table(failed)


def test_few_labels_draws_that_many_of_each_class_with_the_seed():
    labels = [0] * 10 + [1] * 3 + [2] * 20
    picked = exercises.few_labels(labels, 4, seed=1)
    assert [sum(labels[i] == c for i in picked) for c in (0, 1, 2)] == [4, 3, 4]
    assert picked == exercises.few_labels(labels, 4, seed=1) != exercises.few_labels(labels, 4, seed=2)


def test_the_measured_answers_render_from_the_file_folded(tmp_path, monkeypatch):
    measured = {"profile": "tiny", "machine": "M", "date": "D", "extras": {"mask_overlap": 0.146},
                "runs": {"baseline": {"perplexity_after": 49.0, "top1_after": 0.35},
                         "seed": {"perplexity_after": 50.5, "top1_after": 0.344}},
                "short": {"recipe": {"perplexity_before": 80.0, "perplexity_after": 70.2, "train_seconds": 9.6},
                          "seed": {"perplexity_after": 71.04, "train_seconds": 10.4}}}
    path = tmp_path / "try_it.json"
    path.write_text(json.dumps(measured))
    monkeypatch.setattr(tryit, "MEASURED", path)
    text = tryit.answer("seed").data
    assert text.startswith("<details><summary>What it measured</summary>") and text.endswith("</details>")
    assert "Perplexity 50.5 against 49.0 with seed 42, top-1 accuracy 34.4% against 35.0%" in text
    assert ("perplexity 71.0 against 70.2 without the change (from 80.0 before training); training 10 s against 10 s."
            in text)
    assert "Only 14.6% of these positions" in tryit.answer("mask_overlap").data
    assert "not measured yet" in tryit.answer("water").data  # a figure missing from the file
    path.unlink()
    assert "not measured yet" in tryit.answer("seed").data


def test_every_answer_the_notebooks_ask_for_is_measured_in_the_committed_file():
    measured = tryit.read()
    pages = [json.loads((config.project_root() / "notebooks" / f"{page}.ipynb").read_text()) for page in run_all.NOTEBOOKS]
    code = "\n".join("".join(c["source"]) for page in pages for c in page["cells"] if c["cell_type"] == "code")
    asked = {name for name in tryit.ANSWERS if f'tryit.answer("{name}")' in code}
    assert asked == set(tryit.ANSWERS)
    assert all("not measured yet" not in tryit.answer(name).data for name in asked), "run `make exercises`"
    assert set(measured["runs"]) == set(exercises.RUNS) and set(measured["short"]) == set(exercises.SHORT_RUNS)


def test_every_training_exercise_runs_in_the_kernel_with_the_change_make_exercises_measures():
    import ast

    for page in run_all.NOTEBOOKS[:5]:  # 06's exercise needs no training: its parameters cell is the change
        cells = [("".join(c["source"])) for c in json.loads((config.project_root() / "notebooks" / f"{page}.ipynb")
                                                             .read_text())["cells"] if c["cell_type"] == "code"]
        calls = [(i, ast.parse(c.strip().splitlines()[-1]).body[0].value) for i, c in enumerate(cells) if "tryit.short_run(" in c]
        assert calls, f"{page} has no exercise in the kernel"
        for i, call in calls:
            name = ast.literal_eval(ast.parse(cells[i + 1]).body[0].value.args[0])  # the answer folded after it
            assert {k.arg: ast.literal_eval(k.value) for k in call.keywords} == exercises.SHORT_RUNS[name], page


def test_a_short_run_trains_the_recipe_and_the_change_in_folders_of_their_own(tmp_path, monkeypatch):
    monkeypatch.setattr(tryit, "SHORT", {"num_examples": 100, "max_steps": 2})
    s = config.make_settings("tiny", general_stage=False, run_dir=str(tmp_path / "run"))
    table = tryit.short_run(s, seed=1)
    assert list(table.index) == ["this run's recipe", "seed=1"] and list(table["train_steps"]) == [2, 2]
    made = {p.parent.parent.name: json.loads(p.read_text())["settings"] for p in (tmp_path / "run" / "try").glob("*/model/made_with.json")}
    assert made["recipe"]["seed"] == 42 and made["seed-1"]["seed"] == 1 and made["seed-1"]["num_examples"] == 100
    assert table.equals(tryit.short_run(s, seed=1))  # read back, the same figures
    monkeypatch.setenv(tryit.SKIP, "1")
    assert "skips this cell" in tryit.short_run(s, seed=1).data


def test_the_badges_follow_the_repository_setting(tmp_path, monkeypatch):
    import shutil

    (tmp_path / "notebooks").mkdir()
    (tmp_path / "helpers").mkdir()
    shutil.copy(config.project_root() / "notebooks" / "01_load.ipynb", tmp_path / "notebooks")
    monkeypatch.setattr(colab, "NOTEBOOKS", ("01_load",))
    monkeypatch.chdir(tmp_path)
    colab.write_links("https://github.com/someone/fork", "dev")
    text = (tmp_path / "notebooks" / "01_load.ipynb").read_text()
    assert "colab.research.google.com/github/someone/fork/blob/dev/notebooks/01_load.ipynb" in text
    assert "git+https://github.com/someone/fork" in text and "mlm-course/masked-lm-course" not in text
