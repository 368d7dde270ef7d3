"""The course's shape: notebooks, their parameters, packaging and the commands the README promises."""

import ast
import json
import re
import tomllib
from pathlib import Path

import pytest
import yaml

from helpers import colab, config, run_all

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = [ROOT / "notebooks" / f"{name}.ipynb" for name in run_all.NOTEBOOKS]


def cells(path):
    return json.loads(path.read_text())["cells"]


def test_six_notebooks_in_order():
    assert sorted(p.name for p in (ROOT / "notebooks").glob("*.ipynb")) == [p.name for p in NOTEBOOKS]


def listed(path) -> list[str]:
    """What a notebook's parameters cell should list: the profile, its step's settings, the run folder."""
    return ["profile", *config.STEP_PARAMETERS[path.stem], "run_dir"]


def test_every_notebook_has_its_list_of_parameters():
    assert tuple(config.STEP_PARAMETERS) == run_all.NOTEBOOKS
    assert set(config.PARAMETERS) - {p for names in config.STEP_PARAMETERS.values() for p in names} == {
        "profile", "run_dir"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_each_notebook_has_a_parameters_cell_naming_the_settings_its_step_uses(path):
    nb = json.loads(path.read_text())
    assert {"kernelspec", "language_info"} <= set(nb["metadata"]), "papermill needs both"
    tagged = [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1
    names = [t.id for node in ast.parse("".join(tagged[0]["source"])).body for t in node.targets]
    assert names == listed(path)
    # derived values stay in helpers: every parameter but the profile defaults to None
    assert all(node.value.value is None for node in ast.parse("".join(tagged[0]["source"])).body[1:])


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_papermill_reads_every_parameter_and_its_help(path):
    import nbformat
    from papermill.translators import PythonTranslator

    notebook = nbformat.read(path, as_version=4)
    cell = next(c for c in notebook.cells if "parameters" in c.metadata.get("tags", []))
    assert [p.name for p in PythonTranslator.inspect(cell)] == listed(path)


def test_run_all_hands_each_notebook_only_what_it_lists():
    given = {"profile": "tiny", "seed": 3, "learning_rate": 1e-3, "top_k": 5}
    assert run_all.notebook_parameters("01_load", given) == {"profile": "tiny", "seed": 3}
    assert run_all.notebook_parameters("05_evaluate", given) == {"profile": "tiny"}
    assert run_all.notebook_parameters("06_infer", given) == {"profile": "tiny", "top_k": 5}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_each_notebook_opens_in_colab_and_installs_only_there(path):
    first, install = cells(path)[:2]
    assert colab.badge(path.stem) in "".join(first["source"])
    source = "".join(install["source"])
    assert 'if "google.colab" in sys.modules:' in source and colab.install_command() in source


def test_the_repository_is_one_setting():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["urls"]["Repository"] == colab.REPOSITORY


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_notebooks_carry_outputs_and_no_errors(path):
    outputs = [o for c in cells(path) if c["cell_type"] == "code" for o in c.get("outputs", [])]
    assert outputs, "commit the executed notebook (make notebooks)"
    assert not [o for o in outputs if o["output_type"] == "error"]
    assert not [o for o in outputs if o.get("name") == "stderr"], "stderr noise in committed outputs"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_papermill_records_the_notebook_file_not_a_copy_of_the_notebook(path):
    papermill = json.loads(path.read_text())["metadata"]["papermill"]
    assert papermill["input_path"] == f"notebooks/{path.name}"  # a notebook object here nested every earlier run


def sections(path) -> list[str]:
    """The notebook's second-level headings, in order."""
    return [line for c in cells(path) if c["cell_type"] == "markdown" for line in "".join(c["source"]).splitlines()
            if line.startswith("## ")]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_each_notebook_ends_with_its_exercises_after_any_speed_measurements(path):
    heads = sections(path)
    assert heads[-1] == "## Try it"
    after = cells(path)[next(i for i, c in enumerate(cells(path)) if "".join(c["source"]) == "## Try it") + 1:]
    assert f'exercises.show("{path.stem}")' in "".join(after[0]["source"])  # then any code exercise
    code = ["".join(c["source"]) for c in cells(path) if c["cell_type"] == "code"]
    timed = [i for i, c in enumerate(code) if "bench." in c]
    if timed:  # the story first: every measurement of speed sits in the closing "Going faster" section
        assert heads[-2].startswith("## Going faster")
        going = next(i for i, c in enumerate(cells(path)) if "".join(c["source"]).startswith("## Going faster"))
        bench_cells = [i for i, c in enumerate(cells(path)) if c["cell_type"] == "code" and "bench." in "".join(c["source"])]
        assert min(bench_cells) > going


@pytest.mark.parametrize("name, shown", [("02_preprocess", "preprocess.group_texts"), ("02_preprocess", "preprocess.tokenize,"),
                                         ("03_collate", "collate.make_collator"), ("04_train", "loss_at_masks"),
                                         ("04_train", "train.training_arguments, train.make_trainer"),
                                         ("04_train", "loop.train_loop")])
def test_the_code_that_is_the_lesson_is_shown_from_the_helpers(name, shown):
    code = ["".join(c["source"]) for c in cells(ROOT / "notebooks" / f"{name}.ipynb") if c["cell_type"] == "code"]
    assert any("show.source(" in c and shown in c for c in code)


def test_the_trainer_calls_shown_in_04_are_the_ones_that_run():
    import inspect

    from helpers import train

    shown = inspect.getsource(train.training_arguments) + inspect.getsource(train.make_trainer)
    assert "TrainingArguments(" in shown and "Trainer(" in shown
    for why in ("remove_unused_columns=False,  #", "eval_on_start=True,  #", "save_steps=0.1,  #", "seed=", "bf16=mixed"):
        assert why in shown, why  # each argument the course adds, with its reason


def test_notebook_06_fills_the_mask_by_hand_step_by_step():
    code = ["".join(c["source"]) for c in cells(ROOT / "notebooks" / "06_infer.ipynb") if c["cell_type"] == "code"]
    for step in ("tokenizer(text", "torch.where(", ".logits", "torch.topk(", "tokenizer.decode("):
        assert any(step in c for c in code), step


def test_evaluate_is_a_dependency_the_package_uses():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert any(d.startswith("evaluate") for d in project["dependencies"])
    assert "try_it.json" in tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["helpers"]


def test_the_shipped_accuracy_module_loads_with_evaluate_and_counts_as_numpy_does():
    from importlib.resources import files

    import evaluate as hf_evaluate
    import numpy as np

    from helpers import evaluate

    rng = np.random.default_rng(0)
    references = rng.integers(0, 8, 400)
    predictions = np.stack([rng.permutation(8)[:5] for _ in references])  # 5 ranked guesses out of 8 ids
    by_numpy = {f"top{k}_accuracy": float((predictions[:, :k] == references[:, None]).any(1).mean()) for k in (1, 3, 5)}
    shipped = hf_evaluate.load(str(files("helpers") / "top_k_accuracy.py"))  # the file as installed, through the library
    for metric in (shipped, evaluate.accuracy_metric()):
        assert isinstance(metric, hf_evaluate.EvaluationModule)
        result = metric.compute(predictions=predictions.tolist(), references=references.tolist(), k=(1, 3, 5))
        assert result == pytest.approx(by_numpy)
    assert 0 < by_numpy["top1_accuracy"] < by_numpy["top3_accuracy"] < by_numpy["top5_accuracy"] < 1  # a mix of hits and misses


def test_environment_yml_lists_the_same_dependencies_as_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = project["dependencies"] + project["optional-dependencies"]["dev"]
    conda = yaml.safe_load((ROOT / "environment.yml").read_text())["dependencies"]
    listed = [r for r in next(d["pip"] for d in conda if isinstance(d, dict)) if not r.startswith("-e")]

    def name(requirement):
        return re.split(r"[<>=!~ ]", requirement, maxsplit=1)[0].lower()

    assert sorted(map(name, wanted)) == sorted(map(name, listed))
    # the same pins, but torch: conda users get the CPU wheel this course is tested with
    assert sorted(r for r in wanted if name(r) != "torch") == sorted(r for r in listed if name(r) != "torch")


def test_readme_opens_with_the_two_commands_and_ci_runs_make_test():
    head = (ROOT / "README.md").read_text()[:800]
    assert head.index("make run-all") < head.index("make test")
    assert "make test" in (ROOT / ".ci" / "run").read_text()
