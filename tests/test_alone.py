"""Any notebook runs by itself (Colab opens each in a fresh runtime; a learner in Lab jumps to one), and the
run folder never mixes artifacts made with different settings."""

import json
import logging
import re
from pathlib import Path

import pytest

from helpers import config, run_all, runs, steps, train

ROOT = Path(__file__).resolve().parents[1]
BUILT = re.compile(r"(is not in the run folder yet|has no fine-tuned model yet): (built|trained) it with (\d\d_\w+)'s helpers in [\d.]+ s")
EARLIER = {name: run_all.NOTEBOOKS[:i] for i, name in enumerate(run_all.NOTEBOOKS)}


def printed(notebook: Path) -> str:
    cells = json.loads(notebook.read_text())["cells"]
    return "".join("".join(o.get("text", "")) for c in cells if c["cell_type"] == "code" for o in c.get("outputs", []))


@pytest.mark.slow
@pytest.mark.parametrize("name", run_all.NOTEBOOKS)
def test_each_notebook_runs_alone_in_an_empty_run_folder(tmp_path, name, caplog, capfd):
    run_dir = tmp_path / "run"
    parameters = {"profile": "tiny", "run_dir": str(run_dir), "num_train_epochs": 1}  # 05 and 06 train with the profile's
    with caplog.at_level(logging.WARNING, logger="papermill"):
        run_all.run_notebook(name, parameters, tmp_path / "out")
    assert not [r for r in caplog.records if "unknown parameter" in r.getMessage().lower()]
    assert "ERROR" not in capfd.readouterr().err

    built = {m.group(3) for m in BUILT.finditer(printed(tmp_path / "out" / f"{name}.ipynb"))}
    assert built == set(EARLIER[name]) - {"05_evaluate"}  # each earlier step's output, built and said
    s = config.make_settings("tiny", run_dir=str(run_dir), **runs.recorded_settings(run_dir, "tiny"))
    for artifact in ("splits", "blocks", "eval_masks")[: len(EARLIER[name])]:
        assert runs.read_made_with(s, artifact) == config.made_with(s, artifact)


def quick(run_dir, **values) -> config.Settings:
    return steps.settings({"profile": "tiny", "run_dir": str(run_dir), **values})


def test_unset_parameters_come_from_the_run_folders_record(tmp_path):
    quick(tmp_path, seed=1, num_examples=120, retrain=True)
    later = quick(tmp_path)  # as notebook 02, whose cell lists no seed
    assert (later.seed, later.num_examples, later.retrain) == (1, 120, False)  # retrain is for one run only
    assert quick(tmp_path / "other").seed == 42  # an empty run folder: the profile's
    assert quick(tmp_path, seed=None).seed == 42  # listed and None, as in 01's cell: the profile's, not the record's
    assert quick(tmp_path).seed == 42  # and recorded for the notebooks after it


def test_a_damaged_record_says_so_and_falls_back_to_the_profile(tmp_path, capsys):
    (tmp_path / runs.RECORD).write_text("[1, 2")
    assert quick(tmp_path).seed == 42
    assert "settings.json is damaged" in capsys.readouterr().out
    (tmp_path / runs.RECORD).write_text("null")
    assert quick(tmp_path).seed == 42


def test_the_training_command_records_its_settings_for_05_and_06(tmp_path, monkeypatch):
    monkeypatch.setattr(train, "run", lambda settings, share=True: train.TrainResult(0.0, 0, {}))
    train.main(["--run_dir", str(tmp_path), "--learning_rate", "1e-3"])
    assert quick(tmp_path).learning_rate == 1e-3


def test_another_profiles_record_is_not_taken(tmp_path):
    quick(tmp_path, seed=5)
    guide = steps.settings({"profile": "guide", "run_dir": str(tmp_path)})
    assert guide.seed == 42 and guide.model == "distilbert/distilroberta-base"


def test_blocks_from_another_split_are_rebuilt_and_the_message_names_the_setting(tmp_path, tokenizer, capsys):
    s1 = quick(tmp_path, seed=1, num_examples=120)
    steps.splits(s1)  # notebook 01 with seed=1
    assert "splits is not in the run folder yet: built it with 01_load's helpers" in capsys.readouterr().out
    s2 = quick(tmp_path, seed=2)  # then notebook 02 with seed=2
    blocks = steps.blocks(s2, tokenizer)
    out = capsys.readouterr().out
    assert "splits in the run folder was made with seed=1 (now 2): built it with 01_load's helpers" in out
    assert "blocks is not in the run folder yet: built it with 02_preprocess's helpers" in out
    assert runs.read_made_with(s2, "splits")["seed"] == runs.read_made_with(s2, "blocks")["seed"] == 2
    again = steps.blocks(s2, tokenizer)  # now made with these settings: read, not rebuilt
    assert capsys.readouterr().out == "" and again["train"]["input_ids"] == blocks["train"]["input_ids"]


def test_a_damaged_input_is_still_refused_not_rebuilt(tmp_path, tokenizer):
    s = quick(tmp_path, num_examples=120)
    steps.blocks(s, tokenizer)
    arrow = next(runs.path(s, "blocks").rglob("*.arrow"))
    arrow.write_bytes(arrow.read_bytes()[:100])
    with pytest.raises(runs.DamagedArtifactError, match="rerun 02_preprocess"):
        steps.blocks(s, tokenizer)


@pytest.mark.parametrize("path", sorted((ROOT / "notebooks").glob("*.ipynb")), ids=lambda p: p.stem)
def test_no_committed_output_holds_a_progress_bar(path):
    text = path.read_text()
    trace = re.search(r"\d+%\||it/s\]|\w: +\d+%", text)  # a bar, or its state saved as a widget
    assert trace is None, f"a progress-bar trace in the committed outputs: {trace.group() if trace else None}"


@pytest.mark.slow
def test_notebook_03_with_whole_words_saves_its_masks_under_their_own_name(tmp_path):
    run_dir = tmp_path / "run"
    run_all.run_notebook("03_collate", {"profile": "tiny", "run_dir": str(run_dir), "whole_word_mask": True}, tmp_path / "out")
    assert (run_dir / "eval_masks_whole_word").exists() and not (run_dir / "eval_masks").exists()
    s = config.make_settings("tiny", run_dir=str(run_dir), whole_word_mask=True)
    assert runs.read_made_with(s, "eval_masks_whole_word") == config.made_with(s, "eval_masks_whole_word")
    results = ["".join(o["data"]["text/plain"]) for c in json.loads((tmp_path / "out" / "03_collate.ipynb").read_text())["cells"]
               if c["cell_type"] == "code" for o in c.get("outputs", []) if o.get("output_type") == "execute_result"]
    assert results.count("True") == 2  # the rates within a point of what the collator is set to do, both checks
