import dataclasses
import json

import pytest
from datasets import Dataset

from helpers import config, runs


def test_a_missing_artifact_names_the_notebook_to_run_first(settings):
    for name, notebook in [("splits", "01_load"), ("blocks", "02_preprocess"), ("eval_masks", "03_collate"), ("model", "04_train")]:
        with pytest.raises(runs.MissingArtifactError, match=f"{name} is missing.*run {notebook} first"):
            runs.require(settings, name)


def test_a_dataset_round_trips_through_the_run_folder(settings):
    runs.save_dataset(Dataset.from_dict({"x": [1, 2, 3]}), settings, "blocks")
    assert runs.load_dataset(settings, "blocks")["x"] == [1, 2, 3]
    folder = runs.path(settings, "blocks")
    assert [p.name for p in folder.parent.iterdir()] == [folder.name]  # no temporary left behind


def test_a_failed_write_leaves_the_previous_artifact_whole(settings):
    runs.save_dataset(Dataset.from_dict({"x": [1]}), settings, "blocks")
    with pytest.raises(RuntimeError):
        with runs.atomic_path(runs.path(settings, "blocks")) as tmp:
            tmp.mkdir()
            (tmp / "half-written").write_text("...")
            raise RuntimeError("crash mid-write")
    assert runs.load_dataset(settings, "blocks")["x"] == [1]
    folder = runs.path(settings, "blocks")
    assert [p.name for p in folder.parent.iterdir()] == [folder.name]


def test_update_metrics_merges_and_records_the_settings(settings):
    runs.update_metrics(settings, perplexity_before=10.0)
    metrics = runs.update_metrics(settings, perplexity_after=2.0)
    on_disk = json.loads(runs.path(settings, runs.METRICS).read_text())
    assert on_disk == metrics
    assert (metrics["perplexity_before"], metrics["perplexity_after"]) == (10.0, 2.0)
    assert metrics["settings"]["seed"] == settings.seed


def test_artifacts_of_other_settings_live_beside_each_other(settings):
    other = dataclasses.replace(settings, seed=7)
    runs.save_dataset(Dataset.from_dict({"x": [1]}), settings, "splits")
    runs.save_dataset(Dataset.from_dict({"x": [2]}), other, "splits")
    assert runs.path(settings, "splits") != runs.path(other, "splits")
    assert runs.load_dataset(settings, "splits")["x"] == [1] and runs.load_dataset(other, "splits")["x"] == [2]
    # a setting the artifact does not depend on leaves its key alone
    assert runs.path(dataclasses.replace(settings, learning_rate=1.0), "splits") == runs.path(settings, "splits")
    assert runs.path(dataclasses.replace(settings, learning_rate=1.0), "model") != runs.path(settings, "model")


def test_metrics_of_two_models_are_never_mixed(settings):
    other = dataclasses.replace(settings, learning_rate=1e-3)
    runs.update_metrics(settings, perplexity_before=10.0, perplexity_after=2.0)
    runs.update_metrics(other, perplexity_before=10.0)
    top = settings.run_path / runs.METRICS
    assert json.loads(top.read_text()) == {"perplexity_before": 10.0, "settings": other.as_dict()}
    runs.record_settings(settings)  # back to the first settings: the top-level file follows
    assert json.loads(top.read_text())["perplexity_after"] == 2.0


def test_the_model_link_follows_the_recorded_settings(settings):
    folder = runs.path(settings, "model")
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    runs.record_settings(settings)
    assert (settings.run_path / "model").resolve() == folder.resolve()
    runs.record_settings(dataclasses.replace(settings, seed=3))  # no model for these yet: no link to a stale one
    assert not (settings.run_path / "model").exists() and folder.exists()


@pytest.mark.parametrize("old", ["splits", "checkpoints", "model", "metrics.json"])
def test_a_run_folder_from_before_keyed_artifacts_is_refused_and_kept(settings, old):
    settings.run_path.mkdir(parents=True)
    if old.endswith(".json"):
        (settings.run_path / old).write_text("old")
    else:
        (settings.run_path / old).mkdir()
        (settings.run_path / old / "data.arrow").write_text("old")
    with pytest.raises(runs.OldRunFolderError, match=r"earlier version of the course.*mv .* or choose another run_dir"):
        runs.record_settings(settings)
    kept = settings.run_path / old
    assert (kept.read_text() if kept.is_file() else (kept / "data.arrow").read_text()) == "old"


@pytest.mark.parametrize("text", ["{not json", "[1, 2]", '{"profile": "tiny", "seed": "seven"}'])
def test_a_damaged_settings_record_is_refused_with_the_fix(settings, text):
    record = settings.run_path / runs.RECORD
    record.parent.mkdir(parents=True)
    record.write_text(text)
    with pytest.raises(runs.DamagedArtifactError, match="delete it"):
        runs.recorded_settings(settings.run_path, "tiny")
    assert record.read_text() == text  # not reset behind the learner's back


def test_prune_removes_only_the_artifacts_of_settings_no_longer_used(settings):
    old = dataclasses.replace(settings, seed=7)
    for s in (old, settings):
        runs.save_dataset(Dataset.from_dict({"x": [1]}), s, "splits")
        runs.update_metrics(s, perplexity_before=1.0)
    runs.record_settings(settings)
    removed = runs.prune(settings.run_path)
    assert set(removed) == {runs.path(old, "splits").resolve(), runs.path(old, runs.METRICS).resolve()}
    assert runs.load_dataset(settings, "splits")["x"] == [1] and runs.read_metrics(settings)["perplexity_before"] == 1.0


def test_prune_refuses_a_damaged_record_and_removes_nothing(settings, capsys):
    runs.save_dataset(Dataset.from_dict({"x": [1]}), settings, "splits")
    (settings.run_path / runs.RECORD).write_text("{not json")
    assert runs.main(["prune", str(settings.run_path)]) == 2
    assert "is damaged" in capsys.readouterr().err and runs.path(settings, "splits").exists()
