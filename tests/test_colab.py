"""Colab: each notebook's first code cell installs the course there, and only there. Here that install step runs
as written, in a fresh virtual environment, from a clean clone standing in for GitHub."""

import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from scripts import colab

ROOT = Path(__file__).resolve().parents[1]


def install_line(notebook: Path) -> str:
    cell = json.loads(notebook.read_text())["cells"][1]
    return next(line.strip() for line in "".join(cell["source"]).splitlines() if line.strip().startswith("!pip install"))


@pytest.mark.slow
def test_the_colab_cell_installs_the_helpers_from_a_clean_clone(tmp_path):
    clone, venv = tmp_path / "clone", tmp_path / "venv"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True, timeout=120)
    line = install_line(ROOT / "notebooks" / "01_load.ipynb")
    assert f"git+{colab.REPOSITORY}" in line
    command = shlex.split(line[1:].replace(f"git+{colab.REPOSITORY}", f"git+file://localhost{clone}"))  # "!" is IPython's

    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = str(venv / "bin" / "python")
    # Colab comes with torch; here the CPU wheel stands in for it (a range alone would pull a CUDA build)
    subprocess.run([python, "-m", "pip", "install", "-q", "--disable-pip-version-check", "torch==2.13.0"], check=True, timeout=600)
    installed = subprocess.run([python, "-m", *command], capture_output=True, text=True, timeout=900)
    assert installed.returncode == 0, installed.stderr[-3000:]

    probe = "import helpers, helpers.assets as a, helpers.data as d; print(helpers.__file__); print(len(d.load_wiki_science())); print(a.load_tokenizer('splade-tiny').mask_token)"
    ran = subprocess.run([python, "-c", probe], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                         env={"PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1", "HOME": str(tmp_path)})
    assert ran.returncode == 0, ran.stderr[-3000:]
    where, records, mask = ran.stdout.split()
    assert where.startswith(str(venv)) and "site-packages" in where  # the installed copy, not this checkout
    assert (records, mask) == ("3216", "[MASK]")
    # the Try it exercises' full-size form where there is no Makefile: 04's training as a command, from anywhere
    trained = subprocess.run([python, "-m", "helpers.train", "--general_stage", "false", "--num_examples", "100",
                              "--max_steps", "2", "--run_dir", "runs/try"], cwd=tmp_path, capture_output=True, text=True,
                             timeout=600, env={"PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1", "HOME": str(tmp_path)})
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert "perplexity on the fixed masks" in trained.stdout and (tmp_path / "runs" / "try" / "model").is_dir()
