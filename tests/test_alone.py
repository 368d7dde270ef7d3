"""Any notebook runs by itself (Colab opens each in a fresh runtime; a learner in Lab jumps to one), and the
run folder never mixes artifacts made with different settings."""

import json
import logging
import re
from pathlib import Path

import pytest

from helpers import config, run_all, runs, steps, train

ROOT = Path(__file__).resolve().parents[1]
BUILT = re.compile(r"(is not in the run folder yet|had no model trained with these settings): (built|trained) it with (\d\d_\w+)'s helpers in [\d.]+ s")
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
    # each earlier step's output, built and said (05 also builds its own out-of-domain masks; 06 needs nothing of 05)
    assert built - {name} == set(EARLIER[name]) - {"05_evaluate"}
    s = config.make_settings("tiny", run_dir=str(run_dir), **runs.recorded_settings(run_dir, "tiny"))
    for artifact in ("splits", "blocks", "eval_masks")[: len(EARLIER[name])]:
        assert runs.path(s, artifact).exists()


def quick(run_dir, notebook="01_load", **values) -> config.Settings:
    """A notebook's settings cell: ``values`` as the globals its parameters cell (and later cells) bound."""
    return steps.settings({"profile": "tiny", "run_dir": str(run_dir), **values}, notebook)


def test_unset_parameters_come_from_the_run_folders_record(tmp_path):
    quick(tmp_path, seed=1, num_examples=120)
    quick(tmp_path, "04_train", retrain=True)
    later = quick(tmp_path, "02_preprocess")  # whose cell lists no seed
    assert (later.seed, later.num_examples, later.retrain) == (1, 120, False)  # retrain is for one run only
    assert quick(tmp_path / "other", "02_preprocess").seed == 42  # an empty run folder: the profile's
    assert quick(tmp_path, seed=None).seed == 42  # listed and None, as in 01's cell: the profile's, not the record's
    assert quick(tmp_path, "02_preprocess").seed == 42  # and recorded for the notebooks after it


def test_only_the_settings_a_notebook_lists_are_read(tmp_path, model):
    """06 binds ``model`` to a model object; the old settings(globals()) took it for the setting and crashed."""
    first = quick(tmp_path, "06_infer")
    record = (tmp_path / runs.RECORD).read_text()
    again = quick(tmp_path, "06_infer", model=model, seed=7, block_size=None)  # Run All again, after cells bound these
    assert again == first and (tmp_path / runs.RECORD).read_text() == record


def test_a_setting_assigned_where_the_notebook_does_not_list_it_is_named_in_a_warning(tmp_path):
    quick(tmp_path, seed=3)
    with pytest.warns(UserWarning, match=r"seed=7 is set here, but 03_collate does not list seed: it is not read, "
                                         r"and seed=3 is used. Set it in 01_load"):
        s = quick(tmp_path, "03_collate", seed=7)
    assert s.seed == 3


def test_the_record_holds_only_values_of_each_settings_type(tmp_path):
    with pytest.raises(config.SettingsError, match="seed='7'"):
        quick(tmp_path, seed="7")
    assert not (tmp_path / runs.RECORD).exists()
    quick(tmp_path, "04_train", num_train_epochs=2)
    assert json.loads((tmp_path / runs.RECORD).read_text())["num_train_epochs"] == 2.0


def test_a_damaged_record_is_refused_and_kept(tmp_path):
    (tmp_path / runs.RECORD).write_text("[1, 2")
    with pytest.raises(runs.DamagedArtifactError, match=r"settings.json is damaged .*delete it"):
        quick(tmp_path, "02_preprocess")
    assert (tmp_path / runs.RECORD).read_text() == "[1, 2"


def test_the_training_command_records_its_settings_for_05_and_06(tmp_path, monkeypatch):
    monkeypatch.setattr(train, "run", lambda settings, share=True: train.TrainResult(0.0, 0, {}))
    train.main(["--run_dir", str(tmp_path), "--learning_rate", "1e-3"])
    assert quick(tmp_path, "05_evaluate").learning_rate == 1e-3


def test_another_profiles_record_is_not_taken(tmp_path):
    quick(tmp_path, seed=5)
    guide = steps.settings({"profile": "guide", "run_dir": str(tmp_path)}, "02_preprocess")
    assert guide.seed == 42 and guide.model == "distilbert/distilroberta-base"


def test_other_settings_build_beside_and_switching_back_reads_the_first(tmp_path, tokenizer, capsys):
    s1 = quick(tmp_path, seed=1, num_examples=120)
    first = steps.blocks(s1, tokenizer)  # notebook 02 alone after 01 with seed=1
    out = capsys.readouterr().out
    assert "splits for these settings is not in the run folder yet: built it with 01_load's helpers" in out
    assert "blocks for these settings is not in the run folder yet: built it with 02_preprocess's helpers" in out
    s2 = quick(tmp_path, seed=2, num_examples=120)
    steps.blocks(s2, tokenizer)
    assert "built it with 02_preprocess's helpers" in capsys.readouterr().out
    assert runs.path(s1, "blocks").exists() and runs.path(s2, "blocks").exists()  # neither overwrote the other
    again = steps.blocks(quick(tmp_path, seed=1, num_examples=120), tokenizer)  # back to seed 1: read, not rebuilt
    assert "built" not in capsys.readouterr().out and again["train"]["input_ids"] == first["train"]["input_ids"]


def test_each_notebook_says_where_its_inputs_and_outputs_are(tmp_path, capsys):
    s = quick(tmp_path, "04_train")
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert str(tmp_path) not in line  # no machine's own path: a folder outside the project is shown by its name
    assert line == (f"run folder {tmp_path.name}: reads blocks (artifacts/{runs.path(s, 'blocks').name}), eval_masks "
                    f"(artifacts/{runs.path(s, 'eval_masks').name}); writes model (artifacts/{runs.path(s, 'model').name})")


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
    s = config.make_settings("tiny", run_dir=str(run_dir), whole_word_mask=True)
    assert runs.path(s, "eval_masks_whole_word").exists() and not runs.path(s, "eval_masks").exists()
    results = ["".join(o["data"]["text/plain"]) for c in json.loads((tmp_path / "out" / "03_collate.ipynb").read_text())["cells"]
               if c["cell_type"] == "code" for o in c.get("outputs", []) if o.get("output_type") == "execute_result"]
    assert results.count("True") == 2  # the rates within a point of what the collator is set to do, both checks
