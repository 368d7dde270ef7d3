"""The tooling no notebook imports: the papermill driver, the rehearsal's stand-ins, the bench, make exercises,
the Colab links, and the measured answers the notebooks render."""

import json
import math
import os
import re
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from transformers import RobertaForMaskedLM

from helpers import assets, config, runs, tryit
from scripts import bench, calls, colab, exercises, rehearse, run_all


def test_each_notebook_is_given_the_settings_its_cell_lists_and_the_rest_in_overrides():
    assert run_all.listed("02_preprocess") == {"profile": "tiny", "model": "splade-tiny", "block_size": 128, "overrides": {}}
    given = run_all.notebook_parameters("02_preprocess", {"profile": "guide", "block_size": 64, "seed": 1})
    assert given == {"profile": "guide", "model": "distilbert/distilroberta-base", "block_size": 64, "overrides": {"seed": 1}}
    assert run_all.notebook_parameters("04_train", {}) == {}  # the tiny profile's values are the cells' own
    assert run_all.notebook_parameters("04_train", {"profile": "guide"})["learning_rate"] == 2e-5
    for name in run_all.NOTEBOOKS:  # each cell holds the tiny profile's values
        cell = run_all.listed(name)
        assert {k: v for k, v in cell.items() if k not in ("profile", "overrides")} == \
            {k: config.PROFILES["tiny"][k] for k in cell if k not in ("profile", "overrides")}


def test_a_setting_the_notebooks_do_not_apply_is_refused_before_any_notebook_runs(tmp_path):
    with pytest.raises(config.SettingsError, match=r"without \['max_steps'\].*python -m helpers.train"):
        run_all.run_all({"max_steps": 5, "run_dir": str(tmp_path / "run")})
    assert not (tmp_path / "run").exists()


def test_make_run_all_hands_the_notebooks_paths_as_typed_where_it_runs(tmp_path, monkeypatch):
    root = config.project_root()
    (tmp_path / "my_corpus.txt").write_text("A line of text.\n")
    monkeypatch.chdir(root / "scripts")  # typed here; papermill runs each notebook in notebooks/
    given = []
    monkeypatch.setattr(run_all, "run_notebook", lambda name, parameters, output_dir: given.append(parameters))
    source = str(Path("..", *[".."] * len(root.parts[1:]), *tmp_path.parts[1:], "my_corpus.txt"))  # relative to here
    run_dir = str(Path(*[".."] * len(root.parts[1:]), *tmp_path.parts[1:], "run"))  # relative to the project, as runs/
    run_all.run_all({"source": source, "run_dir": run_dir})
    assert len(given) == 6
    for parameters in given:
        passed = {**parameters, **parameters.get("overrides", {})}
        assert passed["source"] == str(tmp_path / "my_corpus.txt") and passed["run_dir"] == str(tmp_path / "run")


def test_the_headline_reads_the_runs_metrics(tmp_path):
    s = config.make_settings("tiny", run_dir=str(tmp_path))
    runs.write_json(s.run_path / "metrics.json", {
        "model": None, "perplexity_before": 3000.0, "perplexity_after": 50.0, "perplexity_unigram": 1200.0,
        "top1_accuracy_at_mask_before": 0.005, "top1_accuracy_at_mask_after": 0.29, "perplexity_ood_before": 3600.0,
        "perplexity_ood_after": 72.6, "classifier_macro_f1": {}, "fill_mask_text": "a [MASK] b",
        "fill_mask": [{"token_str": "galaxy", "score": 0.319}], "train_steps": 393, "train_seconds": 87.4})
    text = run_all.headline(s)
    assert "3000.0 before, 50.0 after fine-tuning (60.0x lower; unigram table 1200.0)" in text
    assert "0.5% before, 29.0% after" in text and "galaxy 0.319" in text and "393 steps in 87.4 s" in text
    assert "classifiers" not in text  # a run with no labels says nothing of them
    runs.update_metrics(s, classifier_macro_f1={"base": [0.7, 0.8, 0.9], "fine-tuned": [0.6, 0.7, 0.8]})
    assert "macro-F1 over 3 seeds: 0.800 from the base model, 0.700 from the fine-tuned one" in run_all.headline(s)


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


def test_what_the_folded_answers_say_holds_for_the_committed_file():
    """Each Try it answer reads make exercises' full-size figures in words: the committed figures bear them out."""
    measured = tryit.read()
    r, x = measured["runs"], measured["extras"]
    base = r["baseline"]
    assert abs(r["seed"]["perplexity_after"] - base["perplexity_after"]) < 1  # "within a fraction of a point"
    assert 1.9 < r["block_size"]["train_blocks"] / base["train_blocks"] < 2.1  # "about twice the blocks"
    assert 1.9 < r["block_size"]["train_steps"] / base["train_steps"] < 2.1 and \
        r["block_size"]["perplexity_after"] > base["perplexity_after"]  # "a little higher"
    assert abs(r["mlm_probability"]["picked"] - 0.3) < 0.01 and r["mlm_probability"]["perplexity_after"] > base["perplexity_after"]
    assert abs(x["mask_overlap"] - 0.15) < 0.02  # "about 15%"
    assert r["whole_word"]["perplexity_after"] > base["perplexity_after"]
    way = (base["perplexity_before"] - r["guide_lr"]["perplexity_after"]) / (base["perplexity_before"] - base["perplexity_after"])
    assert 0 < way < 0.5  # "only part of the way"
    assert r["standard_head"]["perplexity_after"] == pytest.approx(base["perplexity_after"], rel=1e-6)
    assert r["standard_head"]["train_seconds"] > 2 * base["train_seconds"]  # 04: "Several times longer, same perplexity"
    first = (base["perplexity_before"] - r["one_epoch"]["perplexity_after"]) / (base["perplexity_before"] - base["perplexity_after"])
    assert first > 0.5  # "most of the drop comes in the first epoch"
    assert x["baseline_on_30"] > base["perplexity_after"]  # harder masks: "it rises"
    assert x["water_top3"].startswith("hydrogen") and 3 < x["water_rank"] and 5 * x["water_rank"] < x["water_rank_base"]
    assert "larger than the model reads (512 tokens)" in x["block_600_error"]


def test_every_exercise_make_exercises_measures_is_still_asked():
    measured = tryit.read()
    assert set(measured["runs"]) == set(exercises.RUNS) and set(measured["short"]) == set(exercises.SHORT_RUNS)


def test_every_training_exercise_runs_in_the_kernel_with_the_change_make_exercises_measures():
    import ast

    changes = []
    for page in run_all.NOTEBOOKS[:5]:  # 06's exercise needs no training: its parameters cell is the change
        cells = [("".join(c["source"])) for c in json.loads((config.project_root() / "notebooks" / f"{page}.ipynb")
                                                             .read_text())["cells"] if c["cell_type"] == "code"]
        calls = [ast.parse(c.strip().splitlines()[-1]).body[0].value for c in cells if "tryit.short_run(" in c]
        assert calls, f"{page} has no exercise in the kernel"
        changes += [{k.arg: ast.literal_eval(k.value) for k in call.keywords} for call in calls]
    assert sorted(map(str, changes)) == sorted(str(c) for name, c in exercises.SHORT_RUNS.items() if name != "recipe")


def test_a_short_run_trains_the_recipe_and_the_change_in_folders_of_their_own(tmp_path, monkeypatch):
    monkeypatch.setattr(tryit, "SHORT", {"num_examples": 100, "max_steps": 2})
    s = config.make_settings("tiny", general_stage=False, run_dir=str(tmp_path / "run"))
    table = tryit.short_run(s, seed=1)
    assert list(table.index) == ["this run's recipe", "seed=1"] and list(table["train_steps"]) == [2, 2]
    made = {p.parent.parent.name: json.loads(p.read_text())["settings"] for p in (tmp_path / "run" / "try").glob("*/model/made_with.json")}
    assert made["recipe"]["seed"] == 42 and made["seed-1"]["seed"] == 1 and made["seed-1"]["num_examples"] == 100
    assert table.equals(tryit.short_run(s, seed=1))  # read back, the same figures
    assert list(table["scored on"]) == ["its test split", "its own test split"]  # another seed: another split
    assert table.loc["seed=1", "perplexity_before"] != table.loc["this run's recipe", "perplexity_before"]
    shorter = tryit.short_run(s, block_size=64)  # the same split: both scored on the recipe's masks, from the same start
    assert shorter.loc["block_size=64", "scored on"] == "the recipe's masks"
    assert shorter.loc["block_size=64", "perplexity_before"] == shorter.loc["this run's recipe", "perplexity_before"]
    # each map batch of tokens cut at 64 gives at least twice its blocks of 128: 02's "how many training blocks"
    assert shorter.loc["block_size=64", "train_blocks"] >= 2 * shorter.loc["this run's recipe", "train_blocks"]
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


def test_the_call_count_counts_each_call_site_into_helpers_and_nothing_else(tmp_path):
    cells = ["import math\nfrom helpers import plots, runs\nfrom helpers.lesson import perplexity\n",
             "if True:\n    !pip install x\nruns.save(a, b, 'c')\n[perplexity(m, e) for m in ms]\nmath.exp(1)\n",
             "%%time\ndef table():\n    return plots.top_k(1), plots.top_k(2)\n",
             "from helpers.masked_head import at_masks\n\n\ndef at_masks(m):\n    return m\n\n\nat_masks(1)\n",
             "## markdown: runs.save(x)"]
    notebook = tmp_path / "07_x.ipynb"
    notebook.write_text(json.dumps({"cells": [{"cell_type": "markdown" if c.startswith("##") else "code", "source": c}
                                              for c in cells]}))
    assert calls.calls(notebook) == ["runs.save", "lesson.perplexity", "plots.top_k", "plots.top_k"]  # by hand


TINY_TRAINING = """
from datasets import Dataset
from transformers import BertConfig, BertForMaskedLM, Trainer, TrainingArguments

model = BertForMaskedLM(BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                   intermediate_size=32))
data = Dataset.from_dict({"input_ids": [[1, 2, 3, 4]] * 12, "labels": [[1, 2, 3, 4]] * 12})
args = TrainingArguments(output_dir="out", max_steps=3, per_device_train_batch_size=4, save_strategy="no",
                         report_to="none", use_cpu=True)
Trainer(model=model, args=args, train_dataset=data).train()
print("trained; left by the kernel's start:", [name for name in ("tqdm", "transformers", "callbacks") if name in globals()])
"""


def test_make_run_all_shows_the_cells_and_trainings_bar_on_a_terminal_and_stays_quiet_in_a_log(tmp_path, monkeypatch,
                                                                                                 capsys):
    import nbformat
    import papermill

    given, execute = [], papermill.execute_notebook
    monkeypatch.setattr(papermill, "execute_notebook", lambda *args, **options: given.append(options) or execute(*args, **options))
    (tmp_path / "notebooks").mkdir()  # a notebook that trains 3 steps with the Trainer's own bar, run by a real kernel
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(TINY_TRAINING)]),
                   tmp_path / "notebooks" / "tiny.ipynb")
    monkeypatch.setattr(config, "project_root", lambda: tmp_path)
    for key in run_all.QUIET:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setattr(run_all, "on_terminal", lambda: True)
    run_all.run_notebook("tiny", {}, tmp_path / "out")
    shown = capsys.readouterr()
    assert given[-1]["progress_bar"] == {"desc": "tiny", "leave": False}  # papermill's bar of the cells
    assert "trained" in shown.out  # the lines the cells print
    assert re.search(r"\| 3/3 \[.*it/s\]", shown.err)  # Trainer's text bar: in a kernel it draws HTML, never shown here
    assert "left by the kernel's start: []" in shown.out  # no names a cell could use without importing them
    monkeypatch.setattr(run_all, "on_terminal", lambda: False)
    run_all.run_notebook("tiny", {}, tmp_path / "out")
    assert given[-1]["progress_bar"] is False and capsys.readouterr() == ("", "")
