"""The notebooks' pages: the guide's calls in code cells, settings a page can read, no machine's path, and one copy of
each function that a page and the package share."""

import ast
import json
import re
from pathlib import Path

import pytest

from helpers import config
from scripts import colab, export, run_all

ROOT = Path(__file__).resolve().parents[1]
PAGES = {name: json.loads((ROOT / "notebooks" / f"{name}.ipynb").read_text()) for name in run_all.NOTEBOOKS}


def code_cells(name: str) -> list[str]:
    return ["".join(c["source"]) for c in PAGES[name]["cells"] if c["cell_type"] == "code"]


GUIDE_CALLS = {  # the guide's calls, in the guide's form, run on the page
    "01_load": ["load_dataset(", ".train_test_split(test_size=", ".flatten()"],
    "02_preprocess": ["AutoTokenizer.from_pretrained(", "def preprocess_function(examples", ".map(preprocess_function, batched=True",
                      "remove_columns=", "def group_texts(examples", ".map(group_texts, batched=True"],
    "03_collate": ["DataCollatorForLanguageModeling(tokenizer=tokenizer, mlm_probability=", "def insert_random_mask("],
    "04_train": ["AutoModelForMaskedLM.from_pretrained(", "DataCollatorForLanguageModeling(tokenizer=tokenizer, mlm_probability=",
                 "training_args = TrainingArguments(", "trainer = Trainer(", "trainer.train()", "def train_loop(", "def perplexity("],
    "05_evaluate": ["math.exp(trainer.evaluate()['eval_loss'])", "perplexity(model, eval_masks)"],
    "06_infer": ['pipeline("fill-mask"', "torch.where(", "torch.topk("],
}


@pytest.mark.parametrize("name", run_all.NOTEBOOKS)
def test_the_guides_calls_are_in_code_cells(name):
    code = "\n".join(code_cells(name))
    assert [call for call in GUIDE_CALLS[name] if call not in code] == []
    assert "globals()" not in code and "show.source" not in code  # the code runs on the page, not printed


@pytest.mark.parametrize("name", run_all.NOTEBOOKS)
def test_each_page_lists_at_most_six_settings_and_uses_each(name):
    cells = [c for c in PAGES[name]["cells"] if c["cell_type"] == "code"]
    assert "google.colab" in "".join(cells[0]["source"]) and colab.install_command() in "".join(cells[0]["source"])
    parameters = [c for c in cells if "parameters" in c["metadata"].get("tags", [])]
    assert len(parameters) == 1
    listed = [node.targets[0].id for node in ast.parse("".join(parameters[0]["source"])).body]
    assert len(listed) <= 6 and listed[0] == "profile" and listed[-1] == "overrides"
    assert set(listed) - {"overrides"} <= {"profile", *config.NAMES}
    call = next(node for cell in code_cells(name)[1:] for node in ast.walk(ast.parse(cell))
                if isinstance(node, ast.Call) and getattr(node.func, "attr", "") in ("make_settings", "start"))
    passed = {k.arg or k.value.id for k in call.keywords} | {a.id for a in call.args if isinstance(a, ast.Name)}
    assert passed == set(listed)  # each listed setting is read, the rest through overrides
    assert colab.badge(name) in "".join(PAGES[name]["cells"][0]["source"])


@pytest.mark.parametrize("name", run_all.NOTEBOOKS)
def test_an_opening_is_at_most_150_words(name):
    first = "".join(PAGES[name]["cells"][0]["source"])
    words = re.findall(r"[A-Za-z0-9][\w'.,%-]*", re.sub(r"\[!\[Open In Colab\].*", "", first))
    assert len(words) <= 150, len(words)


def test_the_six_pages_hold_at_most_4000_words_of_prose():
    words = sum(len("".join(c["source"]).split()) for page in PAGES.values() for c in page["cells"]
                if c["cell_type"] == "markdown")
    assert words <= 4000, words


@pytest.mark.parametrize("name", run_all.NOTEBOOKS)
def test_the_committed_outputs_hold_no_machine_path_no_error_and_no_bare_check(name):
    outputs = [o for c in PAGES[name]["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])]
    text = json.dumps(outputs)
    assert outputs and not re.search(r"(/work|/tmp|/home|/root|/Users)/", text)
    assert not [o for o in outputs if o["output_type"] == "error"]
    assert not re.search(r"\d+%\|", text)  # no progress bar frozen in the page
    assert not [o for o in outputs if o.get("data", {}).get("text/plain") in (["True"], ["False"], "True", "False")]


@pytest.mark.parametrize("name, calls", [
    ("01_load", ["load_dataset", "train_test_split"]),
    ("04_train", ["DataCollatorForLanguageModeling", "TrainingArguments", "Trainer"])])
def test_the_guides_calls_take_literal_arguments_or_plain_variables(name, calls):
    """A learner can retype them: no settings object, no ** of the course's additions, nothing computed inside."""
    def plain(value) -> bool:  # "text", learning_rate, f"{run_dir}/checkpoints", lm_dataset["train"]
        return isinstance(value, (ast.Constant, ast.Name, ast.JoinedStr)) or isinstance(value, ast.Subscript) and \
            isinstance(value.value, ast.Name) and isinstance(value.slice, ast.Constant)

    found = [node for cell in code_cells(name)[1:] for node in ast.walk(ast.parse(cell)) if isinstance(node, ast.Call)
             and getattr(node.func, "id", getattr(node.func, "attr", "")) in calls]
    assert {getattr(node.func, "id", getattr(node.func, "attr", "")) for node in found} == set(calls)
    first = {}
    for node in found:  # the guide's line is each call's first on the page; the course's variants come after
        first.setdefault(getattr(node.func, "id", getattr(node.func, "attr", "")), node)
    bad = [ast.unparse(node) for node in first.values() if any(k.arg is None or not plain(k.value)
                                                                for k in node.keywords)]
    assert bad == []


def test_the_package_runs_the_pages_own_functions():
    """helpers/lesson.py is what `make lib` writes from the cells marked #@save, and nothing else defines them."""
    assert (ROOT / "helpers" / "lesson.py").read_text() == export.lesson_source(), "run `make lib`"
    saved = {node.name for _, source in export.saved_cells() for node in ast.parse(source).body
             if isinstance(node, ast.FunctionDef)}
    assert saved >= {"preprocess_function", "group_texts", "preprocess_with_spans", "insert_random_mask", "train_loop",
                     "perplexity"}
    defined = {node.name for path in (ROOT / "helpers").rglob("*.py") if path.name != "lesson.py"
               for node in ast.parse(path.read_text()).body if isinstance(node, ast.FunctionDef)}
    defined |= {node.name for path in (ROOT / "scripts").glob("*.py")
                for node in ast.parse(path.read_text()).body if isinstance(node, ast.FunctionDef)}
    assert saved & defined == set()  # no second copy by hand
