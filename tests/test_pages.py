"""The notebooks' pages: the guide's calls in code cells, settings a page can read, no machine's path, and where the
page and the package both hold a piece of code, the two kept equal (the package's copy is the tested one)."""

import ast
import json
import re
from pathlib import Path

import pytest

from helpers import config, preprocess, runs, train
from scripts import colab, export, run_all

ROOT = Path(__file__).resolve().parents[1]
PAGES = {name: json.loads((ROOT / "notebooks" / f"{name}.ipynb").read_text()) for name in run_all.NOTEBOOKS}


def code_cells(name: str) -> list[str]:
    return ["".join(c["source"]) for c in PAGES[name]["cells"] if c["cell_type"] == "code"]


def cell_with(name: str, text: str) -> str:
    return next(cell for cell in code_cells(name) if text in cell)


GUIDE_CALLS = {  # the guide's calls, in the guide's form, run on the page
    "01_load": ["load_dataset(", ".train_test_split(test_size=", ".flatten()"],
    "02_preprocess": ["AutoTokenizer.from_pretrained(", "def preprocess_function(examples)", ".map(preprocess_function, batched=True",
                      "remove_columns=", "def group_texts(examples", ".map(group_texts, batched=True"],
    "03_collate": ["DataCollatorForLanguageModeling(tokenizer=tokenizer, mlm_probability=", "def insert_random_mask("],
    "04_train": ["AutoModelForMaskedLM.from_pretrained(", "TrainingArguments(", "Trainer(model=model, args=training_args",
                 "trainer.train(resume_from_checkpoint=", "def train_loop("],
    "05_evaluate": ["math.exp(trainer.evaluate()['eval_loss'])", "def perplexity("],
    "06_infer": ['pipeline("fill-mask"', "torch.where(", "torch.topk("],
}


@pytest.mark.parametrize("name", run_all.NOTEBOOKS)
def test_the_guides_calls_are_in_code_cells(name):
    code = "\n".join(code_cells(name))
    assert [call for call in GUIDE_CALLS[name] if call not in code] == []
    assert "globals()" not in code and "show.source" not in code  # the code runs on the page, not printed


@pytest.mark.parametrize("name", run_all.NOTEBOOKS)
def test_each_page_reads_its_settings_from_its_own_parameters_cell(name):
    cells = [c for c in PAGES[name]["cells"] if c["cell_type"] == "code"]
    assert "google.colab" in "".join(cells[0]["source"]) and colab.install_command() in "".join(cells[0]["source"])
    parameters = [c for c in cells if "parameters" in c["metadata"].get("tags", [])]
    assert len(parameters) == 1
    listed = {node.targets[0].id for node in ast.parse("".join(parameters[0]["source"])).body}
    call = next(node for cell in code_cells(name)[1:] for node in ast.walk(ast.parse(cell))
                if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "make_settings")
    passed = {k.arg for k in call.keywords} | {a.id for a in call.args}
    assert passed == listed and listed <= {"profile", *config.NAMES}  # every listed setting is read, nothing else
    assert colab.badge(name) in "".join(PAGES[name]["cells"][0]["source"])


@pytest.mark.parametrize("name", run_all.NOTEBOOKS)
def test_an_opening_is_at_most_150_words(name):
    first = "".join(PAGES[name]["cells"][0]["source"])
    words = re.findall(r"[A-Za-z0-9][\w'.,%-]*", re.sub(r"\[!\[Open In Colab\].*", "", first))
    assert len(words) <= 150, len(words)


@pytest.mark.parametrize("name", run_all.NOTEBOOKS)
def test_the_committed_outputs_hold_no_machine_path_no_error_and_no_bare_check(name):
    outputs = [o for c in PAGES[name]["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])]
    text = json.dumps(outputs)
    assert outputs and not re.search(r"(/work|/tmp|/home|/root|/Users)/", text)
    assert not [o for o in outputs if o["output_type"] == "error"]
    assert not re.search(r"\d+%\|", text)  # no progress bar frozen in the page
    assert not [o for o in outputs if o.get("data", {}).get("text/plain") in (["True"], ["False"], "True", "False")]


def page_function(name: str, text: str, **namespace):
    """Define the page's function (the cell that holds ``text``) in a namespace of its own."""
    source = cell_with(name, text)
    tree = ast.parse(source)
    defs = [node for node in tree.body if isinstance(node, ast.FunctionDef)]
    module = ast.Module(body=defs, type_ignores=[])
    exec(compile(module, name, "exec"), namespace)
    return namespace[defs[0].name]


def test_the_pages_preprocess_function_is_the_packages_tokenize(tokenizer):
    settings = config.make_settings("guide", run_dir="/tmp/unused")
    page = page_function("02_preprocess", "def preprocess_function(examples)", tokenizer=tokenizer, settings=settings,
                         preprocess=preprocess)
    examples = {"answers.text": [["First answer.", "Second one,\nwith a newline."], ["Réunion is an island."]]}
    expected = preprocess.tokenize(examples, tokenizer, "answers.text")
    assert {k: v for k, v in page(examples).items()} == {k: v for k, v in expected.items()}


def test_the_page_and_the_command_line_build_the_same_training_arguments(tmp_path):
    settings = config.make_settings("tiny", run_dir=str(tmp_path), seed=7, learning_rate=1e-3)
    cell = cell_with("04_train", "training_args = TrainingArguments(")
    namespace = {"settings": settings, "runs": runs, "train": train, "TrainingArguments": train.TrainingArguments}
    exec(cell, namespace)
    page, command_line = namespace["training_args"].to_dict(), train.training_arguments(settings).to_dict()
    assert page == command_line
    assert page["learning_rate"] == 1e-3 and page["seed"] == 7 and page["eval_strategy"] == "epoch"


def test_the_package_runs_the_pages_own_functions():
    """helpers/lesson.py is what `make lib` writes from the cells marked #@save, and nothing else defines them."""
    assert (ROOT / "helpers" / "lesson.py").read_text() == export.lesson_source(), "run `make lib`"
    saved = {node.name for _, source in export.saved_cells() for node in ast.parse(source).body
             if isinstance(node, ast.FunctionDef)}
    assert saved >= {"group_texts", "insert_random_mask", "train_loop", "perplexity"}
    defined = {node.name for path in (ROOT / "helpers").glob("*.py") if path.name != "lesson.py"
               for node in ast.parse(path.read_text()).body if isinstance(node, ast.FunctionDef)}
    defined |= {node.name for path in (ROOT / "scripts").glob("*.py")
                for node in ast.parse(path.read_text()).body if isinstance(node, ast.FunctionDef)}
    assert saved & defined == set()  # no second copy by hand
