"""The slow tier (`make test-slow`): each notebook run alone as Colab opens it, the six notebooks' code cells as one
notebook, the guide profile on its stand-ins, several processes (torchrun, accelerate launch), a stream, and a run
killed mid-way that resumes to the weights of one never interrupted. Each cut to what it must prove."""

import json
import math
import re
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
import torch
from conftest import small_run

from helpers import assets, collate, config, runs, steps
from scripts import rehearse, run_all

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
ENV = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", TQDM_DISABLE="1")


@pytest.mark.parametrize("name", run_all.NOTEBOOKS)
def test_each_notebook_runs_alone_in_an_empty_run_folder(tmp_path, name, caplog):
    """As on Colab: no notebook before it has run; what it needs is made with the earlier notebooks' calls."""
    run_all.run_notebook(name, run_all.notebook_parameters(name, {"run_dir": str(tmp_path / "run")}), tmp_path / "out")
    executed = nbformat.read(tmp_path / "out" / f"{name}.ipynb", as_version=4)
    printed = "".join(o.get("text", "") for c in executed.cells if c.cell_type == "code" for o in c.outputs)
    assert "Passed unknown parameter" not in caplog.text
    if name != "01_load":
        assert "was missing: made it with 01_load's calls" in printed  # the chain, from the start
    if name in ("05_evaluate", "06_infer"):
        assert "model was missing: made it with 04_train's calls" in printed


def test_a_whole_word_run_through_03_and_04_as_make_run_all_passes_it(tmp_path):
    """03's Try it: ``-p whole_word_mask True`` masks and trains whole words, on 03's blocks with their spans."""
    given = {"run_dir": str(tmp_path / "run"), "whole_word_mask": True, "num_examples": 300}
    for name in ("03_collate", "04_train"):
        run_all.run_notebook(name, run_all.notebook_parameters(name, given), tmp_path / "out")
    s, masks, words = steps.start("tiny", "eval_masks", "blocks", run_dir=given["run_dir"])
    assert s.whole_word_mask and runs.record(s, "model")["settings"]["whole_word_mask"] is True
    assert runs.read_metrics(s)["train_steps"] == 3 * math.ceil(len(words["train"]) / s.batch_size)  # 04: 3 epochs
    tokenizer = assets.load_tokenizer(s.model)
    parts = [[labelled for _, labelled in word] for block, labels in zip(words["test"], masks["labels"])
             for word in collate.words_of(block, labels, tokenizer)]
    assert any(len(p) > 1 and all(p) for p in parts) and all(all(p) or not any(p) for p in parts)  # whole words


def test_the_six_notebooks_code_cells_run_as_one_notebook(tmp_path):
    """A learner copies every code cell, in order, into one notebook: it runs to the end, and what the pages made
    equals what the package's tested copies make from the same inputs."""
    cells = [cell for name in run_all.NOTEBOOKS for cell in nbformat.read(ROOT / "notebooks" / f"{name}.ipynb", 4).cells
             if cell.cell_type == "code"]
    one = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c.source) for c in cells])
    one.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = tmp_path / "all.ipynb"
    nbformat.write(one, path)
    env = {**ENV, "COURSE_RUNS_DIR": str(tmp_path / "runs")}
    ran = subprocess.run([sys.executable, "-m", "papermill", str(path), str(tmp_path / "out.ipynb"), "--cwd",
                          str(ROOT / "notebooks")], env=env, capture_output=True, text=True, timeout=1200)
    assert ran.returncode == 0, ran.stderr[-3000:]
    s = config.make_settings("tiny", run_dir=str(tmp_path / "runs" / "tiny"))
    blocks, s = steps.load("blocks", s)
    saved, _ = steps.load("eval_masks", s)
    made = collate.make_eval_masks(blocks["test"], assets.load_tokenizer(s.model), s)
    assert saved["labels"] == made["labels"] and saved["input_ids"] == made["input_ids"]
    metrics = runs.read_metrics(s)
    assert metrics["train_steps"] == 393 and metrics["perplexity_after"] < metrics["perplexity_before"]
    assert metrics["perplexity_before"] < metrics["perplexity_unigram"] / 5  # "before" is the general model


def test_the_guide_profile_runs_all_six_notebooks_on_its_stand_ins(tmp_path):
    s = rehearse.rehearse(tmp_path / "run")
    assert s.profile == "guide" and s.learning_rate == 2e-5 and s.text_field == "answers.text"
    splits, _ = steps.load("splits", s)
    assert all(isinstance(texts, list) and len(texts) >= 2 for texts in splits["train"]["answers.text"])  # ELI5's nesting
    metrics = runs.read_metrics(s)
    assert "<mask>" in metrics["fill_mask_text"] and len(metrics["fill_mask"]) == 3
    assert metrics["perplexity_unigram"] > 0 and len(metrics["classifier_macro_f1"]["fine-tuned"]) == 3
    model_config = json.loads((s.run_path / "model" / "config.json").read_text())
    assert model_config["architectures"] == ["RobertaForMaskedLM"]
    assert sorted(p.name for p in (s.run_path / "notebooks").glob("*.ipynb")) == [f"{n}.ipynb" for n in run_all.NOTEBOOKS]


def launch(command: list[str], run_dir: str, *options: str) -> subprocess.CompletedProcess:
    ran = subprocess.run([*command, "-m", "helpers.train", "--run_dir", run_dir, "--batch_size", "8",
                          "--general_stage", "false", *options],
                         cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=600)
    assert ran.returncode == 0, ran.stderr[-3000:]
    return ran


BIN = Path(sys.executable).parent


@pytest.mark.parametrize("launcher", [
    [str(BIN / "torchrun"), "--standalone", "--nproc_per_node", "2"],
    [str(BIN / "accelerate"), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",  # on CPUs: gloo
     "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "29613"]])
def test_two_processes_train_one_model_each_on_its_share(tmp_path, launcher):
    s = small_run(tmp_path, batch_size=8)
    n_train = len(steps.load("blocks", s)[0]["train"])
    ran = launch(launcher, s.run_dir, "--num_train_epochs", "1")
    per_process = -(-n_train // 2)  # each process takes half of every global batch: half the steps an epoch
    steps_run = re.findall(r"process (\d): (\d+) steps in", ran.stdout)  # the ranks share one stdout: lines may run together
    assert sorted(steps_run) == [("0", str(-(-per_process // 8))), ("1", str(-(-per_process // 8)))], ran.stdout[-2000:]
    left = [p for p in s.run_path.iterdir() if p.name.startswith(".") and not p.name.endswith("-lock")]  # a lock stays
    assert assets.load_model(str(runs.path(s, "model"))) and not left


def test_a_streamed_run_trains_max_steps_and_05_scores_the_masks_its_stream_held_out(tmp_path, tokenizer):
    from test_data import big_text_file

    lines = big_text_file(tmp_path)
    run_dir = str(tmp_path / "run")
    launch([sys.executable], run_dir, "--source", str(lines), "--streaming", "true", "--max_steps", "8",
           "--block_size", "64", "--whole_word_mask", "true")
    s = config.make_settings("tiny", run_dir=run_dir)
    model_dir, s = steps.load("model", s)  # as 05 and 06 load it: the streamed model, not trained again
    masks, s = steps.load("eval_masks", s)
    assert s.streaming and s.whole_word_mask and runs.read_metrics(s)["train_steps"] == 8
    # independent of the stream's machinery: the held-out lines tokenized by hand, in file order, cut into blocks
    from helpers import data

    held = [line for line in lines.read_text().splitlines() if line.strip() and data.held_out(line, s)]
    ids = [i for row in tokenizer(held[:200], verbose=False)["input_ids"] for i in row]
    first = torch.tensor(masks[0]["input_ids"])
    labels = torch.tensor(masks[0]["labels"])
    assert torch.where(labels != -100, labels, first).tolist() == ids[:64]
    assert not (Path(run_dir) / "blocks").exists()  # nothing of notebooks 01-03 was needed


def test_a_killed_run_resumes_to_the_weights_of_one_never_interrupted(tmp_path):
    options = ("--max_steps", "40", "--batch_size", "8")
    killed, whole = small_run(tmp_path / "killed"), small_run(tmp_path / "whole")
    process = subprocess.Popen([sys.executable, "-m", "helpers.train", "--run_dir", killed.run_dir, "--general_stage",
                                "false", *options], cwd=ROOT,
                               env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    checkpoints = killed.run_path / "checkpoints"
    deadline = time.monotonic() + 300
    while not list(checkpoints.glob("checkpoint-*/trainer_state.json")):
        assert process.poll() is None and time.monotonic() < deadline, "training ended before its first checkpoint"
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (killed.run_path / "model").exists(), "a killed run must not leave a model behind"
    resumed = launch([sys.executable], killed.run_dir, *options)
    assert "resuming from" in resumed.stdout
    launch([sys.executable], whole.run_dir, *options)
    a = assets.load_model(str(runs.path(killed, "model"))).state_dict()
    b = assets.load_model(str(runs.path(whole, "model"))).state_dict()
    assert max(float((a[k] - b[k]).abs().max()) for k in a) < 1e-5
