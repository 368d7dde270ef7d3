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


def test_the_command_line_types_each_setting_as_declared():
    # parse_value guessed: "true" became a bool and "2024" an int, whatever the setting
    given = config.parse_command_line(["--fill_mask_answer", "true", "--hub_model_id", "2024", "--seed", "7",
                                       "--learning_rate", "1e-4", "--whole_word_mask", "true", "--num_examples", "300"])
    assert given == {"fill_mask_answer": "true", "hub_model_id": "2024", "seed": 7, "learning_rate": 1e-4,
                     "whole_word_mask": True, "num_examples": 300}
    s = config.make_settings(**given)  # validation took the word "true" as the answer, rather than crashing
    assert (s.fill_mask_answer, s.hub_model_id) == ("true", "2024")


def test_dashed_spellings_count_and_abbreviations_are_refused(capsys):
    assert config.parse_command_line(["--learning-rate", "1e-3", "--no-masked-head"]) == {"learning_rate": 1e-3,
                                                                                         "masked_head": False}
    with pytest.raises(SystemExit):
        config.parse_command_line(["--learning_r", "1e-3"])  # not silently the default learning rate
    assert "unrecognized arguments: --learning_r" in capsys.readouterr().err


def test_a_model_given_as_a_run_folders_link_is_kept_at_its_target(tmp_path):
    target = tmp_path / "artifacts" / "model-1234abcd"
    target.mkdir(parents=True)
    (tmp_path / "model").symlink_to(target.relative_to(tmp_path))
    assert config.make_settings("tiny", model=str(tmp_path / "model")).model == str(target)


def test_the_command_line_takes_the_profile_first():
    assert config.parse_command_line(["--profile", "guide"]) == {"profile": "guide"}
    assert config.parse_command_line([]) == {}


@pytest.mark.parametrize("argv, words", [(["--seed", "seven"], "invalid int value: 'seven'"),
                                         (["--whole_word_mask", "maybe"], "Truthy value expected"),
                                         (["--lr", "1"], "unrecognized arguments: --lr")])
def test_a_wrong_type_on_the_command_line_is_a_clear_error(argv, words, capsys):
    with pytest.raises(SystemExit):
        config.parse_command_line(argv)
    assert words in capsys.readouterr().err


def test_every_option_has_a_type_and_a_help_string(capsys):
    with pytest.raises(SystemExit):
        config.parse_command_line(["--help"])
    usage = capsys.readouterr().out
    for name in config.PARAMETERS:
        assert f"--{name}" in usage
    assert "fixes the split, the masks and the evaluation" in usage  # seed's help


def test_parameter_pairs_refuse_an_unknown_name():
    assert config.parameter_pairs([("seed", "7")]) == ["--seed", "7"]
    with pytest.raises(SettingsError, match=r"unknown parameter\(s\) \['lr'\]"):
        config.parameter_pairs([("lr", "1")])


@pytest.mark.parametrize("name, value", [("seed", "7"), ("masked_head", 1), ("fill_mask_answer", True),
                                         ("hub_model_id", 2024), ("batch_size", 16.0), ("block_size", True)])
def test_a_value_of_the_wrong_type_is_refused(name, value):
    with pytest.raises(SettingsError, match=f"{name}=.*must be"):
        config.make_settings("tiny", **{name: value})


def test_an_int_is_taken_for_a_float():
    s = config.make_settings("tiny", num_train_epochs=2, learning_rate=1)
    assert (s.num_train_epochs, s.learning_rate) == (2.0, 1.0) and isinstance(s.num_train_epochs, float)


def test_a_relative_runs_dir_is_taken_from_the_project_root(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # no course here: the working directory is the root, as on Colab
    monkeypatch.setenv(config.RUNS_ENV, "scratch/runs")
    assert config.make_settings("tiny").run_path == tmp_path.resolve() / "scratch" / "runs" / "tiny"
