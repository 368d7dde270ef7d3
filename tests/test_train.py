"""Notebooks 02 to 05 in miniature: a few training steps on a small corpus, end to end."""

import json
from pathlib import Path

import pytest
from datasets import Dataset, DatasetDict
from transformers import pipeline

from helpers import assets, collate, config, evaluate, infer, preprocess, runs, train


@pytest.fixture
def prepared(tmp_path, tokenizer):
    s = config.make_settings("tiny", run_dir=str(tmp_path / "run"), block_size=32, batch_size=8, num_train_epochs=2)
    corpus = Dataset.from_dict({"text": list(_science_texts())})
    splits = DatasetDict(train=corpus.select(range(40)), test=corpus.select(range(40, 50)))
    blocks = preprocess.build_blocks(splits, tokenizer, s)
    runs.save_dataset(blocks, s, "blocks")
    runs.save_dataset(collate.make_eval_masks(blocks["test"], tokenizer, s), s, "eval_masks")
    return s


def _science_texts():
    from helpers import data

    return data.load_wiki_science()["text"][:50]


@pytest.mark.slow
def test_training_lowers_the_loss_and_saves_a_standard_checkpoint(prepared, tokenizer):
    s = prepared
    result = train.run(s)
    steps_per_epoch = -(-len(runs.load_dataset(s, "blocks")["train"]) // s.batch_size)
    assert result.steps == 2 * steps_per_epoch
    evals = result.history["eval"]
    assert [e["epoch"] for e in evals] == [0, 1.0, 2.0]  # before training, then each epoch
    assert evals[-1]["loss"] < evals[0]["loss"]
    assert result.history["train"], "no training loss logged"

    model_dir = runs.require(s, "model")
    finetuned = assets.load_model(str(model_dir))
    eval_masks = runs.load_dataset(s, "eval_masks")
    assert evaluate.perplexity(finetuned, eval_masks) < evaluate.perplexity(assets.load_model(s.model), eval_masks)
    answers = pipeline("fill-mask", model=str(model_dir))(infer.with_mask(s.fill_mask_text, tokenizer))
    assert len(answers) == 5

    metrics = json.loads(runs.path(s, runs.METRICS).read_text())
    assert metrics["train_steps"] == result.steps and metrics["train_seconds"] > 0
    log = json.loads(runs.path(s, "train_log.json").read_text())
    assert log["history"] == result.history and log["steps"] == result.steps


def test_under_torchrun_missing_blocks_name_notebook_02_rather_than_race_to_build_them(settings, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")  # every process would build and write the same artifact
    with pytest.raises(runs.MissingArtifactError, match="blocks for these settings is not in the run folder yet: run 02_preprocess first"):
        train.run(settings)


def test_push_is_off_by_default_and_says_so(capsys, settings):
    assert train.push(settings) is None
    assert "push_to_hub is off" in capsys.readouterr().out


class HubStandIn:
    """The two calls of ``huggingface_hub.HfApi`` that ``push`` makes, answered as the Hub answers, offline."""

    def __init__(self, user: str = "learner"):
        self.user, self.repos, self.files = user, [], {}

    def create_repo(self, repo_id, repo_type="model", exist_ok=False):
        from huggingface_hub import RepoUrl

        full = repo_id if "/" in repo_id else f"{self.user}/{repo_id}"  # the Hub puts a bare name under your account
        self.repos.append((full, repo_type, exist_ok))
        return RepoUrl(f"https://huggingface.co/{full}")

    def upload_folder(self, repo_id, folder_path, repo_type="model", commit_message=None):
        folder = Path(folder_path)
        self.files[repo_id] = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


@pytest.mark.parametrize("hub_model_id, repo_id", [(None, "learner/splade-tiny-wiki-science-mlm"),
                                                   ("my-org/wiki-mlm", "my-org/wiki-mlm")])
def test_push_uploads_the_saved_model_and_tokenizer_to_the_named_repository(tmp_path, model, tokenizer, capsys,
                                                                            hub_model_id, repo_id):
    s = config.make_settings("tiny", run_dir=str(tmp_path / "run"), push_to_hub=True, hub_model_id=hub_model_id)
    model.save_pretrained(str(runs.path(s, "model")))
    tokenizer.save_pretrained(str(runs.path(s, "model")))
    (s.run_path / "checkpoints" / "checkpoint-1").mkdir(parents=True)  # never pushed
    hub = HubStandIn()
    assert train.push(s, api=hub) == f"https://huggingface.co/{repo_id}"
    assert hub.repos == [(repo_id, "model", True)]
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"} <= set(hub.files[repo_id])
    assert not [f for f in hub.files[repo_id] if "checkpoint" in f]
    assert f"to https://huggingface.co/{repo_id}" in capsys.readouterr().out


def test_the_default_repository_is_named_after_the_model_and_the_data(tmp_path):
    assert config.make_settings("guide", run_dir=str(tmp_path)).hub_repository == "distilroberta-base-eli5_category-mlm"
    local = config.make_settings("guide", run_dir=str(tmp_path), model="/x/my-roberta/", dataset_name="/data/eli5-copy")
    assert local.hub_repository == "my-roberta-eli5-copy-mlm"


def test_precision_auto_is_mixed_on_a_gpu_and_fp32_on_a_cpu_and_bf16_when_asked(settings):
    import torch

    chosen = train.precision(settings)
    if torch.cuda.is_available():
        assert sum(chosen.values()) == 1
    else:
        assert chosen == {"bf16": False, "fp16": False}
    asked = config.make_settings("tiny", run_dir=settings.run_dir, precision="bf16")
    assert train.precision(asked) == {"bf16": True, "fp16": False}
    assert train.training_arguments(asked).bf16
    with pytest.raises(config.SettingsError, match="precision='half': choose one of auto, bf16, fp16, fp32"):
        config.make_settings("tiny", precision="half")
    if not torch.cuda.is_available():
        with pytest.raises(config.SettingsError, match="precision='fp16' needs a GPU"):
            train.precision(config.make_settings("tiny", run_dir=settings.run_dir, precision="fp16"))

@pytest.mark.slow
def test_training_is_the_same_whatever_drew_random_numbers_before_it(tmp_path, tokenizer):
    """04 used to time a training step (dropout draws) between making the trainer and training: the model differed."""
    import torch

    from conftest import prepare_run

    weights = []
    for name, draw in (("plain", False), ("after_draws", True)):
        s = prepare_run(tmp_path / name, tokenizer, max_steps=3)
        trainer = train.make_trainer(s, assets.load_model(s.model), tokenizer, runs.load_dataset(s, "blocks")["train"],
                                     runs.load_dataset(s, "eval_masks"))
        if draw:
            torch.rand(1000)
        train.fit(trainer, s)
        weights.append(runs.load_model(s).state_dict())
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])


def test_the_curve_reading_compares_the_last_points():
    history = {"train": [{"step": 10, "loss": 4.5}, {"step": 20, "loss": 4.2}],
               "eval": [{"step": 0, "loss": 8.167}, {"step": 20, "loss": 3.911}]}
    assert train.curve_reading(history) == ("last evaluation loss 3.911 (step 20), below the last training loss 4.200 "
                                            "(step 20); the first evaluation, before any step, was 8.167")


@pytest.mark.slow
def test_every_model_in_notebook_04s_kernel_survives_torch_save_and_load(tmp_path, tokenizer):
    """The patched instance forward pickled, then failed to load (``AttributeError: _forward_at_masks``)."""
    import io

    import torch

    from conftest import prepare_run

    s = prepare_run(tmp_path, tokenizer, max_steps=2)
    pretrained = assets.load_model(s.model, at_masks=s.masked_head)  # as 04 loads it
    trainer = train.make_trainer(s, pretrained, tokenizer, runs.load_dataset(s, "blocks")["train"],
                                 runs.load_dataset(s, "eval_masks"))
    train.fit(trainer, s)
    baseline = assets.load_model(s.model)  # 04's "Going faster" cell measures the standard class beside it
    batch = {k: torch.tensor(v) for k, v in runs.load_dataset(s, "eval_masks")[:4].items()}
    for name, model in {"pretrained": pretrained, "trainer.model": trainer.model, "baseline": baseline}.items():
        model.eval()
        buffer = io.BytesIO()
        torch.save(model, buffer)
        buffer.seek(0)
        loaded = torch.load(buffer, weights_only=False)
        assert type(loaded) is type(model), name
        with torch.no_grad():
            assert torch.equal(loaded(**batch).loss, model(**batch).loss), name
