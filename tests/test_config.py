import pytest

from helpers import config
from helpers.config import SettingsError


def test_profiles_hold_the_guides_settings():
    guide = config.make_settings("guide")
    assert (guide.model, guide.dataset_name, guide.num_examples) == ("distilbert/distilroberta-base", "eli5_category", 5000)
    assert (guide.test_size, guide.block_size, guide.mlm_probability) == (0.2, 128, 0.15)
    assert (guide.learning_rate, guide.num_train_epochs, guide.weight_decay) == (2e-5, 3, 0.01)
    assert guide.dataset_revision == "refs/convert/parquet"
    tiny = config.make_settings()
    assert tiny.profile == "tiny" and tiny.model == "splade-tiny" and tiny.source == "wiki-science"


def test_none_keeps_the_profile_value_and_overrides_apply():
    s = config.make_settings("tiny", learning_rate=None, seed=7, block_size=64)
    assert s.learning_rate == config.PROFILES["tiny"]["learning_rate"]
    assert (s.seed, s.block_size) == (7, 64)


def test_run_dir_defaults_to_runs_profile(monkeypatch, tmp_path):
    monkeypatch.setenv(config.RUNS_ENV, str(tmp_path))
    assert config.make_settings("guide").run_path == tmp_path / "guide"


def test_unknown_profile_lists_the_valid_ones():
    with pytest.raises(SettingsError, match=r"unknown profile 'huge'.*guide.*tiny"):
        config.make_settings("huge")


def test_unknown_parameter_lists_the_valid_names():
    with pytest.raises(SettingsError, match=r"unknown parameter\(s\) \['lr'\].*learning_rate"):
        config.make_settings("tiny", lr=1e-3)


@pytest.mark.parametrize(
    "name, value, words",
    [
        ("block_size", 1, "at least 2"),
        ("mlm_probability", 0.0, "between 0 and 1"),
        ("mlm_probability", 1.0, "between 0 and 1"),
        ("test_size", 1.5, "between 0 and 1"),
        ("learning_rate", -1.0, "positive"),
        ("batch_size", 0, "at least 1"),
        ("top_k", 0, "at least 1"),
        ("fill_mask_text", "no blank here", "{mask}"),
        ("fill_mask_answer", "spiral arms", "the one word"),
    ],
)
def test_out_of_range_settings_name_the_problem(name, value, words):
    with pytest.raises(SettingsError, match=name) as err:
        config.make_settings("tiny", **{name: value})
    assert words in str(err.value)


@pytest.mark.parametrize("text, value", [("3", 3), ("1e-4", 1e-4), ("true", True), ("None", None), ("eli5", "eli5")])
def test_parse_value_types_command_line_values(text, value):
    assert config.parse_value(text) == value


def test_a_relative_runs_dir_is_taken_from_the_project_root(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # no course here: the working directory is the root, as on Colab
    monkeypatch.setenv(config.RUNS_ENV, "scratch/runs")
    assert config.make_settings("tiny").run_path == tmp_path.resolve() / "scratch" / "runs" / "tiny"
