"""Nothing lost, every failure explained: interrupted training, damaged artifacts, bad models and data."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from datasets import Dataset, DatasetDict

from conftest import prepare_run as prepare
from helpers import assets, config, data, preprocess, runs, train

ROOT = Path(__file__).resolve().parents[1]
KILL_RUN = dict(block_size=128, batch_size=16, num_train_epochs=8)
# A resumed run's weights against the uninterrupted run's, per element. Measured on 2 CPU cores: identical (0.0);
# the bound leaves room for reordered float sums on other machines, yet is far below what a tensor left at its
# pretrained value differs by (every SPLADE-tiny LayerNorm tensor moves by at least 7e-3 in this run).
RESUME_TOLERANCE = 1e-5


def train_command(s: config.Settings) -> list[str]:
    args = [sys.executable, "-m", "helpers.train", "--profile", "tiny", "--run_dir", s.run_dir]
    for name, value in KILL_RUN.items():
        args += [f"--{name}", str(value)]
    return args


def complete_checkpoints(s: config.Settings) -> list[Path]:
    return [p for p in runs.path(s, "checkpoints").glob("checkpoint-*") if (p / "trainer_state.json").exists()]


@pytest.mark.slow
def test_a_killed_training_resumes_to_the_same_step_count_with_no_gap_in_its_history(tmp_path, tokenizer):
    s = prepare(tmp_path, tokenizer, **KILL_RUN)
    steps_per_epoch = -(-len(runs.load_dataset(s, "blocks")["train"]) // s.batch_size)
    total = steps_per_epoch * int(s.num_train_epochs)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    process = subprocess.Popen(train_command(s), cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not complete_checkpoints(s) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert process.poll() is None, "training finished before it could be killed: make the run longer"
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not runs.path(s, "model").exists(), "a killed run must not leave a model behind"

    rerun = subprocess.run(train_command(s), cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert "resuming the interrupted run from checkpoint-" in rerun.stdout
    said = (rerun.stdout + rerun.stderr).lower()
    assert "unexpected keys" not in said and "missing keys" not in said, "a tensor was not restored on resume"

    # the same run uninterrupted ends with the same weights: every tensor restored, the same masks drawn after
    straight = prepare(tmp_path / "straight", tokenizer, **KILL_RUN)
    uninterrupted = subprocess.run(train_command(straight), cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert uninterrupted.returncode == 0, uninterrupted.stderr[-2000:]
    resumed_weights = assets.load_model(str(runs.path(s, "model"))).state_dict()
    straight_weights = assets.load_model(str(runs.path(straight, "model"))).state_dict()
    assert resumed_weights.keys() == straight_weights.keys()
    for name, tensor in straight_weights.items():
        assert torch.allclose(resumed_weights[name], tensor, rtol=0, atol=RESUME_TOLERANCE), name
    log = runs.read_json(s, "train_log.json")
    assert log["steps"] == total
    logged = [e["step"] for e in log["history"]["train"]]
    every = logged[0]
    assert logged == list(range(every, total + 1, every)), "a gap or a repeat in the training history"
    assert [e["epoch"] for e in log["history"]["eval"]] == [0, *range(1, int(s.num_train_epochs) + 1)]
    assert assets.load_model(str(runs.path(s, "model")))


@pytest.mark.slow
def test_a_finished_run_is_reused_unless_retrain_is_asked(tmp_path, tokenizer, capsys):
    s = prepare(tmp_path, tokenizer, num_train_epochs=1, batch_size=32)
    first = train.run(s)
    model_file = runs.path(s, "model") / "model.safetensors"
    written = model_file.stat().st_mtime_ns
    again = train.run(s)
    assert again.reused and again.steps == first.steps and again.history == first.history
    assert "already trained with these settings" in capsys.readouterr().out
    assert model_file.stat().st_mtime_ns == written
    runs.update_metrics(s, perplexity_after=1.0)  # as 05 would record it for the first model
    forced = train.run(config.make_settings("tiny", run_dir=s.run_dir, num_train_epochs=1, batch_size=32, retrain=True))
    assert not forced.reused and forced.steps == first.steps
    assert "perplexity_after" not in runs.read_metrics(s)  # the new model's figures are not mixed with the old one's
    changed = train.run(config.make_settings("tiny", run_dir=s.run_dir, num_train_epochs=1, batch_size=16))
    assert not changed.reused and changed.steps > first.steps  # other settings: a new run, not the old one
    assert train.run(s).reused  # beside it, the first run's model is still there: switching back reuses it


def truncate(file: Path) -> None:
    file.write_bytes(file.read_bytes()[: file.stat().st_size // 2])


@pytest.mark.parametrize("name, notebook", [("splits", "01_load"), ("blocks", "02_preprocess"), ("eval_masks", "03_collate")])
def test_a_half_written_dataset_is_refused_with_the_notebook_to_rerun(settings, name, notebook):
    dataset = Dataset.from_dict({"input_ids": [[i] * 64 for i in range(500)]})
    runs.save_dataset(DatasetDict(train=dataset, test=dataset) if name != "eval_masks" else dataset, settings, name)
    for arrow in runs.path(settings, name).rglob("*.arrow"):
        truncate(arrow)
    with pytest.raises(runs.DamagedArtifactError, match=f"{name} in .* is damaged or incomplete.*rerun {notebook}"):
        runs.load_dataset(settings, name)


def test_a_dataset_missing_its_index_is_refused(settings):
    runs.save_dataset(Dataset.from_dict({"x": [1, 2]}), settings, "eval_masks")
    (runs.path(settings, "eval_masks") / "state.json").unlink()
    with pytest.raises(runs.DamagedArtifactError, match="rerun 03_collate"):
        runs.load_dataset(settings, "eval_masks")


def test_a_truncated_model_is_refused_with_04_named(settings, model, tokenizer):
    folder = runs.path(settings, "model")
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    truncate(folder / "model.safetensors")
    with pytest.raises(runs.DamagedArtifactError, match="model in .* is damaged or incomplete.*rerun 04_train"):
        runs.load_model(settings)


@pytest.mark.parametrize("name", ["metrics.json", "train_log.json"])
def test_truncated_json_is_refused(settings, name):
    runs.write_json(runs.path(settings, name), {"perplexity_before": 3524.5, "perplexity_after": 49.9})
    truncate(runs.path(settings, name))
    with pytest.raises(runs.DamagedArtifactError, match=f"{name} in .* is damaged"):
        runs.read_json(settings, name)


def test_a_model_without_an_mlm_head_is_not_a_masked_lm(tmp_path):
    from transformers import BertConfig, BertModel

    BertModel(BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64)).save_pretrained(tmp_path)
    with pytest.raises(assets.AssetError, match="is not a masked LM.*MLM head would start random"):
        assets.load_model(str(tmp_path))


def test_a_tokenizer_without_a_mask_token_is_refused(tmp_path, tokenizer):
    tokenizer.save_pretrained(tmp_path)
    settings_file = tmp_path / "tokenizer_config.json"
    tokenizer_config = json.loads(settings_file.read_text())
    tokenizer_config["mask_token"] = None  # as a causal-LM tokenizer has it
    settings_file.write_text(json.dumps(tokenizer_config))
    with pytest.raises(assets.AssetError, match="has no mask token"):
        assets.load_tokenizer(str(tmp_path))


def test_a_script_dataset_says_what_to_try(tmp_path):
    s = config.make_settings("guide", run_dir=str(tmp_path), dataset_revision=None)
    advice = data._hub_advice(s, RuntimeError("Dataset scripts are no longer supported, but found eli5_category.py"))
    assert "script dataset" in advice and "refs/convert/parquet" in advice and "profile='tiny'" in advice


def test_a_failed_push_raises_what_happened_and_keeps_the_local_save(settings, model):
    asked = config.make_settings("tiny", run_dir=settings.run_dir, push_to_hub=True)
    model.save_pretrained(str(runs.path(asked, "model")))
    assert os.environ["HF_HUB_OFFLINE"] == "1"  # the real HfApi, refused before it reaches the network
    with pytest.raises(train.PushError, match=r"push_to_hub to 'splade-tiny-wiki-science-mlm' failed: \w+.*saved locally"):
        train.push(asked)
    assert (runs.path(asked, "model") / "model.safetensors").exists()


def test_the_training_command_exits_non_zero_after_a_failed_push(tmp_path, tokenizer, monkeypatch, capsys):
    s = prepare(tmp_path, tokenizer)

    def fit(trainer, settings):  # training itself is tested elsewhere: save the untrained model as if trained
        trainer.model.save_pretrained(str(runs.path(settings, "model")))
        return train.TrainResult(0.0, 0, {})

    monkeypatch.setattr(train, "fit", fit)
    with pytest.raises(SystemExit) as exit_:
        train.main(["--run_dir", s.run_dir, "--push_to_hub", "true"])
    assert exit_.value.code != 0 and "push_to_hub to" in str(exit_.value.code) and "saved locally" in str(exit_.value.code)
    assert (runs.path(s, "model") / "model.safetensors").exists()


@pytest.mark.slow
def test_the_blocks_are_the_same_on_any_number_of_cores(tmp_path, tokenizer, monkeypatch):
    """Each worker of a parallel map dropped its own shard's remainders, so the blocks depended on the cores."""
    s = config.make_settings("tiny", run_dir=str(tmp_path))
    corpus = data.load_wiki_science().select(range(1_300))  # above PARALLEL_FROM, so tokenizing runs in parallel
    splits = data.split_corpus(corpus, s)
    made = {}
    for cores in (1, 2, 4, 8):
        monkeypatch.setattr(os, "cpu_count", lambda: cores)
        made[cores] = preprocess.build_blocks(splits, tokenizer, s)
    assert preprocess.workers(len(splits["train"])) == 8  # the last one did use 8 processes
    for cores in (2, 4, 8):
        for name in ("train", "test"):
            assert made[cores][name]["input_ids"] == made[1][name]["input_ids"], (cores, name)


@pytest.fixture(scope="module")
def roberta_tokenizer(tmp_path_factory):
    """A small byte-level BPE tokenizer with RoBERTa's special tokens, trained here (no hub)."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import RobertaTokenizerFast

    from conftest import SENTENCES

    folder = tmp_path_factory.mktemp("roberta-tokenizer")
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(SENTENCES * 4, vocab_size=400, special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
    bpe.save_model(str(folder))
    return RobertaTokenizerFast.from_pretrained(folder)


def test_berts_mask_token_given_to_roberta_is_named(roberta_tokenizer):
    from helpers import infer

    with pytest.raises(ValueError, match=r"\[MASK\] is another model family's mask token.*this tokenizer's mask token is <mask>"):
        infer.check_text("The Milky Way is a [MASK] galaxy.", roberta_tokenizer, top_k=3)
    infer.check_text(infer.with_mask("The Milky Way is a {mask} galaxy.", roberta_tokenizer), roberta_tokenizer, top_k=3)


def test_a_checkpoint_cut_off_mid_save_is_skipped(settings):
    folder = runs.path(settings, "checkpoints")
    assert train.last_checkpoint(folder) is None  # a fresh run: nothing to resume
    for step in (10, 20):
        (folder / f"checkpoint-{step}").mkdir(parents=True)
        (folder / f"checkpoint-{step}" / "model.safetensors").write_bytes(b"...")
    (folder / "checkpoint-10" / "trainer_state.json").write_text("{}")  # Trainer writes it last: 20 was cut off
    assert train.last_checkpoint(folder) == folder / "checkpoint-10"


def test_checkpoints_of_other_settings_are_neither_resumed_nor_deleted(settings):
    complete = runs.path(settings, "checkpoints") / "checkpoint-10"
    complete.mkdir(parents=True)
    (complete / "trainer_state.json").write_text("{}")
    other = config.make_settings("tiny", run_dir=settings.run_dir, learning_rate=1e-3)
    assert train.last_checkpoint(runs.path(other, "checkpoints")) is None and complete.exists()


def test_the_commands_refuse_bad_settings_with_the_valid_names(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT), COURSE_RUNS_DIR=str(tmp_path))
    run_all = subprocess.run([sys.executable, "-m", "helpers.run_all", "-p", "lr", "1e-3"], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=120)
    assert run_all.returncode == 2 and "unknown parameter(s) ['lr']" in run_all.stderr and "learning_rate" in run_all.stderr
    assert "Traceback" not in run_all.stderr and not (tmp_path / "tiny").exists()
    trained = subprocess.run([sys.executable, "-m", "helpers.train", "--run_dir", str(tmp_path / "empty"), "--block_size",
                              "600"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert trained.returncode == 1 and "error: block_size=600 is larger than the model allows (512 tokens)" in trained.stderr
    assert "Traceback" not in trained.stderr
    assert not list((tmp_path / "empty").rglob("blocks*"))  # refused before any block was written
