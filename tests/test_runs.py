import json

import pytest
from datasets import Dataset

from helpers import runs


def test_a_missing_artifact_names_the_notebook_to_run_first(settings):
    for name, notebook in [("splits", "01_load"), ("blocks", "02_preprocess"), ("eval_masks", "03_collate"), ("model", "04_train")]:
        with pytest.raises(runs.MissingArtifactError, match=f"{name} is missing.*run {notebook} first"):
            runs.require(settings, name)


def test_a_dataset_round_trips_through_the_run_folder(settings):
    runs.save_dataset(Dataset.from_dict({"x": [1, 2, 3]}), settings, "blocks")
    assert runs.load_dataset(settings, "blocks")["x"] == [1, 2, 3]
    assert [p.name for p in settings.run_path.iterdir()] == ["blocks"]  # no temporary left behind


def test_a_failed_write_leaves_the_previous_artifact_whole(settings):
    runs.save_dataset(Dataset.from_dict({"x": [1]}), settings, "blocks")
    with pytest.raises(RuntimeError):
        with runs.atomic_path(runs.path(settings, "blocks")) as tmp:
            tmp.mkdir()
            (tmp / "half-written").write_text("...")
            raise RuntimeError("crash mid-write")
    assert runs.load_dataset(settings, "blocks")["x"] == [1]
    assert [p.name for p in settings.run_path.iterdir()] == ["blocks"]


def test_update_metrics_merges_and_records_the_settings(settings):
    runs.update_metrics(settings, perplexity_before=10.0)
    metrics = runs.update_metrics(settings, perplexity_after=2.0)
    on_disk = json.loads(runs.path(settings, runs.METRICS).read_text())
    assert on_disk == metrics
    assert (metrics["perplexity_before"], metrics["perplexity_after"]) == (10.0, 2.0)
    assert metrics["settings"]["seed"] == settings.seed
