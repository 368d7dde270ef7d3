"""04 train: a short run end to end, the checkpoint to resume from, the precision, the launchers, the push."""

import json
from pathlib import Path

import pytest
import torch
from conftest import small_run
from transformers import pipeline

from helpers import assets, config, evaluate, infer, runs, steps, train


def test_a_short_run_trains_saves_a_standard_checkpoint_and_records_its_time(tmp_path, tokenizer):
    s = small_run(tmp_path, max_steps=6, batch_size=8)
    model_dir, s = steps.train_model(s)
    metrics = runs.read_metrics(s)
    assert metrics["train_steps"] == 6 and metrics["train_seconds"] > 0
    config_json = json.loads((Path(model_dir) / "config.json").read_text())
    assert config_json["architectures"] == ["BertForMaskedLM"]  # a standard checkpoint, not the course's class
    masks, _ = steps.load("eval_masks", s)
    after = evaluate.score(assets.load_model(model_dir), masks, top_k=()).perplexity
    assert after < evaluate.score(assets.load_model(s.model), masks, top_k=()).perplexity
    answers = pipeline("fill-mask", model=model_dir)(infer.with_mask(s.fill_mask_text, tokenizer))
    assert len(answers) == 5


def test_a_finished_run_is_loaded_from_its_last_checkpoint_not_trained_again(tmp_path):
    s = small_run(tmp_path, max_steps=4, batch_size=8)
    first, s = steps.train_model(s)
    weights = assets.load_model(first).state_dict()
    seconds = runs.read_metrics(s)["train_seconds"]
    again, _ = steps.train_model(s)
    assert runs.read_metrics(s)["train_seconds"] == seconds  # the training time of the run that trained it
    reloaded = assets.load_model(again).state_dict()
    assert all(torch.equal(weights[k], reloaded[k]) for k in weights)


BASE = "some/base-model"  # a Hub name: its fingerprint is the name


def make_checkpoints(s, steps_done: list[int], max_steps: int, record: dict | None):
    folder = runs.path(s, "checkpoints")
    for step in steps_done:
        (folder / f"checkpoint-{step}").mkdir(parents=True)
        (folder / f"checkpoint-{step}" / "trainer_state.json").write_text(
            json.dumps({"global_step": step, "max_steps": max_steps}))
    (folder / "checkpoint-99").mkdir()  # cut off mid-save: no trainer_state.json, never resumed from
    if record is not None:
        runs.write_json(folder / runs.RECORD, record)
    return folder


def test_the_last_complete_checkpoint_of_these_settings_is_resumed_from(settings):
    folder = make_checkpoints(settings, [10, 20], 40, runs.made_with(settings, "model", BASE))
    assert train.last_checkpoint(settings, BASE) == str(folder / "checkpoint-20")
    assert train.last_checkpoint(config.make_settings("tiny", run_dir=str(settings.run_path / "empty")), BASE) is None


def test_an_interrupted_run_of_other_settings_is_refused_and_kept(settings):
    folder = make_checkpoints(settings, [10], 40, {**runs.made_with(settings, "model", BASE), "settings": {"seed": 7}})
    with pytest.raises(config.SettingsError, match="holds an interrupted run with other settings.*retrain=True"):
        train.last_checkpoint(settings, BASE)
    assert (folder / "checkpoint-10").exists()
    retrain = config.make_settings("tiny", run_dir=settings.run_dir, retrain=True)
    assert train.last_checkpoint(retrain, BASE) is None and not (folder / "checkpoint-10").exists()


def test_a_finished_run_of_other_settings_is_removed_to_train_anew(settings, capsys):
    folder = make_checkpoints(settings, [40], 40, {**runs.made_with(settings, "model", BASE), "settings": {"seed": 7}})
    assert train.last_checkpoint(settings, BASE) is None and not (folder / "checkpoint-40").exists()
    assert "removed the checkpoints of the earlier run" in capsys.readouterr().out
    assert runs.record(settings, "checkpoints") == runs.made_with(settings, "model", BASE)


def test_a_run_from_another_base_model_is_not_resumed(settings):
    folder = make_checkpoints(settings, [10], 40, runs.made_with(settings, "model", BASE))
    with pytest.raises(config.SettingsError, match="interrupted run with other settings, inputs"):
        train.last_checkpoint(settings, "another/base-model")
    assert train.last_checkpoint(settings, BASE) == str(folder / "checkpoint-10")


def test_precision_auto_is_fp32_on_a_cpu_and_bf16_when_asked(settings):
    chosen = train.precision(settings)
    assert sum(chosen.values()) == (1 if torch.cuda.is_available() else 0)
    asked = config.make_settings("tiny", run_dir=settings.run_dir, precision="bf16")
    assert train.precision(asked) == {"bf16": True, "fp16": False} and train.training_arguments(asked).bf16
    if not torch.cuda.is_available():
        with pytest.raises(config.SettingsError, match="precision='fp16' needs a GPU"):
            train.precision(config.make_settings("tiny", precision="fp16"))


def test_a_streamed_run_evaluates_each_quarter_of_its_steps(tmp_path):
    s = config.make_settings("tiny", streaming=True, max_steps=8, run_dir=str(tmp_path))
    args = train.training_arguments(s)
    assert (args.eval_strategy.value, args.eval_steps, args.max_steps) == ("steps", 0.25, 8)


@pytest.mark.parametrize("variable, name", [("ACCELERATE_USE_FSDP", "FSDP"), ("ACCELERATE_USE_DEEPSPEED", "DeepSpeed")])
def test_sharded_launchers_are_refused_before_any_work(settings, monkeypatch, variable, name):
    monkeypatch.setenv(variable, "true")  # what `accelerate launch --use_fsdp` (or DeepSpeed) sets
    with pytest.raises(config.SettingsError, match=f"{name} is not supported.*torchrun --nproc_per_node N"):
        steps.train_model(settings)
    assert not settings.run_path.exists()


class HubStandIn:
    """The two calls of ``huggingface_hub.HfApi`` that ``push`` makes, answered as the Hub answers, offline."""

    def __init__(self, user: str = "learner", fail: Exception | None = None):
        self.user, self.repos, self.files, self.fail = user, [], {}, fail

    def create_repo(self, repo_id, repo_type="model", exist_ok=False):
        from huggingface_hub import RepoUrl

        if self.fail:
            raise self.fail
        full = repo_id if "/" in repo_id else f"{self.user}/{repo_id}"  # the Hub puts a bare name under your account
        self.repos.append((full, repo_type, exist_ok))
        return RepoUrl(f"https://huggingface.co/{full}")

    def upload_folder(self, repo_id, folder_path, repo_type="model", commit_message=None):
        folder = Path(folder_path)
        self.files[repo_id] = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


@pytest.mark.parametrize("hub_model_id, repo_id", [(None, "learner/splade-tiny-wiki-science-mlm"),
                                                   ("my-org/wiki-mlm", "my-org/wiki-mlm")])
def test_push_uploads_the_saved_model_and_tokenizer_to_the_named_repository(tmp_path, model, tokenizer, hub_model_id, repo_id):
    s = config.make_settings("tiny", run_dir=str(tmp_path / "run"), push_to_hub=True, hub_model_id=hub_model_id)
    runs.save(model, s, "model", tokenizer)
    (s.run_path / "checkpoints" / "checkpoint-1").mkdir(parents=True)  # never pushed
    hub = HubStandIn()
    assert train.push(s, api=hub) == f"https://huggingface.co/{repo_id}"
    assert hub.repos == [(repo_id, "model", True)]
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"} <= set(hub.files[repo_id])
    assert not [f for f in hub.files[repo_id] if "checkpoint" in f]


def test_a_failed_push_says_what_happened_and_keeps_the_local_save(tmp_path, model, tokenizer):
    s = config.make_settings("tiny", run_dir=str(tmp_path / "run"), push_to_hub=True)
    runs.save(model, s, "model", tokenizer)
    with pytest.raises(train.PushError, match="ConnectionError: no network.*saved in /.*/run/model.*hf auth login"):
        train.push(s, api=HubStandIn(fail=ConnectionError("no network")))
    assert (s.run_path / "model" / "model.safetensors").exists()


def test_the_command_line_trains_pushes_after_saving_and_says_where_the_model_is(tmp_path, capsys, monkeypatch):
    saved_when_pushed = []
    monkeypatch.setattr(train, "push", lambda s: saved_when_pushed.append((s.run_path / "model" / "model.safetensors").exists()))
    run_dir = small_run(tmp_path).run_dir
    assert steps.main(["--run_dir", run_dir, "--max_steps", "2", "--batch_size", "4", "--push_to_hub", "True"]) == 0
    assert "2 steps in" in capsys.readouterr().out.splitlines()[-1]
    assert saved_when_pushed == [True]  # once, after the local copy is safe
    with pytest.raises(SystemExit, match="error: ood_source='wiki-science' is the corpus itself"):
        steps.main(["--run_dir", run_dir, "--ood_source", "wiki-science"])
