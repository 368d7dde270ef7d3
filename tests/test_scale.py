"""Past one machine: notebook 04's training as a command that torchrun runs data-parallel."""

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import prepare_run
from helpers import assets, runs

ROOT = Path(__file__).resolve().parents[1]
TORCHRUN = str(Path(sys.executable).parent / "torchrun")


@pytest.mark.slow
def test_torchrun_trains_on_two_cpu_processes_and_saves_one_model(tmp_path, tokenizer):
    s = prepare_run(tmp_path, tokenizer, num_train_epochs=2, batch_size=8)
    n_train = len(runs.load_dataset(s, "blocks")["train"])
    command = [TORCHRUN, "--standalone", "--nproc_per_node", "2", "-m", "helpers.train", "--profile", "tiny",
               "--run_dir", s.run_dir, "--num_train_epochs", "2", "--batch_size", "8"]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    ran = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert ran.returncode == 0, ran.stderr[-3000:]

    # each process takes half of every global batch (gloo on the CPU), so an epoch is half the steps
    steps = math.ceil(math.ceil(n_train / 2) / s.batch_size) * 2
    for rank in (0, 1):
        assert f"process {rank} of 2: {steps} steps" in ran.stdout, ran.stdout[-2000:]
    log = runs.read_json(s, "train_log.json")
    assert log["steps"] == steps and len(log["history"]["eval"]) == 3  # before training, after each epoch
    assert assets.load_model(str(runs.path(s, "model")))
    assert sorted(p.name for p in s.run_path.iterdir() if p.name.startswith(".")) == []  # no half-written temporaries
