"""Shared fixtures: the installed tiny model, small corpora, settings pointing at a scratch run folder."""

import os
import tempfile

os.environ["HF_DATASETS_CACHE"] = tempfile.mkdtemp(prefix="hf-datasets-")  # keep the user's cache clean
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never reach for the Hub; read at import by huggingface_hub
os.environ.setdefault("TQDM_DISABLE", "1")
os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

from helpers import assets, config, steps  # noqa: E402


def pytest_collection_modifyitems(config, items):
    if not torch.cuda.is_available():
        skip = pytest.mark.skip(reason="needs a CUDA device")
        for item in items:
            if "gpu" in item.keywords:
                item.add_marker(skip)


@pytest.fixture(scope="session")
def tokenizer():
    return assets.load_tokenizer(assets.TINY_MODEL)


@pytest.fixture(scope="session")
def model():
    torch.manual_seed(0)
    return assets.load_model(assets.TINY_MODEL)


@pytest.fixture
def settings(tmp_path):
    return config.make_settings("tiny", general_stage=False, run_dir=str(tmp_path / "run"))


SENTENCES = [
    "The sun is a star at the centre of the solar system.",
    "Water boils at one hundred degrees Celsius at sea level.",
    "A galaxy is a system of stars, gas and dark matter held together by gravity.",
    "DNA carries the genetic instructions of every known living organism.",
    "The moon orbits the earth about once every twenty seven days.",
    "Photosynthesis turns light, water and carbon dioxide into sugar and oxygen.",
    "An atom has a nucleus of protons and neutrons surrounded by electrons.",
    "Volcanoes form where molten rock reaches the surface of a planet.",
]


@pytest.fixture
def text_file(tmp_path):
    """A plain-text corpus, one document a line: 64 short science sentences."""
    path = tmp_path / "corpus.txt"
    path.write_text("\n".join(SENTENCES * 8) + "\n", encoding="utf-8")
    return path


def small_run(tmp_path, **overrides) -> config.Settings:
    """A run folder holding notebooks 01-03's artifacts for 200 Wikipedia summaries, made by ``steps.load``."""
    s = config.make_settings("tiny", num_examples=200, run_dir=str(tmp_path / "run"), **{"general_stage": False, **overrides})
    return steps.load("eval_masks", s)[1]
