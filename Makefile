# make run-all    the six notebooks, in order, with papermill (PROFILE=guide, PARAMS="-p learning_rate 1e-4")
# make test       unit tests, then nbval on the committed notebooks and the run's figures (under 10 minutes on 2 cores)
# make test-slow  each notebook alone, all six as one notebook, the rehearsal, torchrun, streaming, a killed run,
#                 the Colab install and JupyterLab (about 20 minutes; make test-browser: the Chromium tier)
# make rehearse   the guide profile's six notebooks offline, on a DistilRoBERTa-shaped model and ELI5-shaped data
# make bench      the course's fast paths against the standard ones, side by side (runs/bench.json)
# make lab        JupyterLab on the notebooks
# make notebooks  re-execute the committed notebooks in place (the outputs you see on GitHub)
# make lib        copy the notebooks' cells marked #@save into helpers/lesson.py (make test fails while they differ)
# make exercises  measure every Try it answer at full size (helpers/try_it.json; about 20 minutes)

PYTHON  ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
SETUP   := $(VENV)/.setup-done
PROFILE ?=
PARAMS  ?=
QUIET   := TQDM_DISABLE=1 HF_DATASETS_DISABLE_PROGRESS_BARS=1 HF_HUB_DISABLE_PROGRESS_BARS=1

.PHONY: setup run-all test unit nbval test-slow test-browser rehearse bench lab notebooks lib exercises clean

setup: $(SETUP)

# torch first, pinned: a torch range resolved later could pull a newer build. pip picks which: on Linux PyPI's is the
# CUDA one (several GB); TORCH_INDEX=https://download.pytorch.org/whl/cpu takes the CPU wheel from PyTorch's index.
TORCH_INDEX ?=
$(SETUP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check torch==2.13.0 $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(BIN)/pip install -q --disable-pip-version-check -e ".[dev]"
	touch $@

# On a terminal, a bar of each notebook's cells, the lines they print and Trainer's own bar; quiet in a log or CI
# (scripts/run_all.py).
run-all: $(SETUP)
	$(BIN)/python -m scripts.run_all $(if $(PROFILE),--profile $(PROFILE)) $(PARAMS)

test: unit nbval

unit: $(SETUP)
	$(QUIET) $(BIN)/python -m pytest -q -m "not slow and not browser and not figures" tests

# nbval re-executes the committed notebooks into a scratch run folder and compares their outputs, floats, clocks
# and the run folder's name masked (tests/nbval_sanitize.cfg); then the run's figures are checked (tests/test_figures.py).
nbval: $(SETUP)
	rm -rf runs/.nbval
	$(QUIET) COURSE_RUNS_DIR=runs/.nbval COURSE_SKIP_TRY_IT=1 $(BIN)/python -m pytest -q -p no:cacheprovider --nbval --nbval-current-env \
		--nbval-sanitize-with tests/nbval_sanitize.cfg notebooks
	$(QUIET) FIGURES_RUN_DIR=runs/.nbval/tiny $(BIN)/python -m pytest -q -m figures tests

test-slow: $(SETUP)
	$(QUIET) $(BIN)/python -m pytest -q -m "slow and not browser" tests

# The browser tier: headless Chromium renders notebook 06 (screenshot in runs/browser/). Installs Debian's
# chromium first where it is missing (root: apt-get).
test-browser: $(SETUP)
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium)
	$(QUIET) $(BIN)/python -m pytest -q -m browser tests

# Stand-ins built in seconds from the installed text (scripts/rehearse.py), then run-all with PROFILE=guide on them.
rehearse: $(SETUP)
	rm -rf runs/rehearse
	$(QUIET) $(BIN)/python -m scripts.rehearse

bench: $(SETUP)
	$(QUIET) $(BIN)/python -m scripts.bench $(BENCH_ARGS)

# --allow-root only where you are root (containers, these build machines): Jupyter refuses root otherwise.
lab: $(SETUP)
	$(BIN)/jupyter lab notebooks $(if $(filter 0,$(shell id -u)),--allow-root)

# A scratch run folder of its own, so the committed outputs always come from a fresh training run.
notebooks: $(SETUP)
	rm -rf runs/.notebooks
	$(QUIET) COURSE_RUNS_DIR=runs/.notebooks $(BIN)/python -m scripts.run_all --output-dir notebooks

lib: $(SETUP)
	$(BIN)/python -m scripts.export

exercises: $(SETUP)
	$(QUIET) $(BIN)/python -m scripts.exercises

clean:
	rm -rf runs .pytest_cache
	@echo "left: $${COURSE_CACHE:-$$HOME/.cache/mlm-course} (the general model, shared by every run; remove it to make it afresh)"
