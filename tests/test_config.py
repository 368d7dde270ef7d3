"""Settings: the profiles' values, typed and checked, and the command line parsed over the same dataclass."""

import pytest

from helpers import config


def test_the_profiles_hold_the_guides_settings_and_the_offline_ones():
    tiny, guide = config.make_settings("tiny"), config.make_settings("guide")
    assert (tiny.model, tiny.source, tiny.learning_rate, tiny.batch_size) == ("splade-tiny", "wiki-science", 5e-4, 16)
    assert (guide.model, guide.dataset_name, guide.dataset_revision) == ("distilbert/distilroberta-base", "eli5_category",
                                                                         "refs/convert/parquet")
    assert (guide.learning_rate, guide.num_train_epochs, guide.weight_decay, guide.mlm_probability) == (2e-5, 3, 0.01, 0.15)
    assert (guide.text_field, guide.num_examples, guide.batch_size, guide.block_size) == ("answers.text", 5000, 8, 128)
    assert tiny.run_path.parts[-2:] == ("runs", "tiny")


def test_none_keeps_the_profiles_value_and_a_value_given_is_pinned():
    s = config.make_settings("guide", seed=None, learning_rate=1e-3, run_dir="/tmp/x")
    assert (s.seed, s.learning_rate, s.run_dir) == (42, 1e-3, "/tmp/x")
    assert s.pinned == {"learning_rate": "parameters"}  # seed=None: whatever the inputs were made with


def test_wrong_names_types_and_ranges_are_refused_with_what_to_give():
    with pytest.raises(config.SettingsError, match="unknown setting.*'sede'.*seed"):
        config.make_settings("tiny", sede=1)
    with pytest.raises(config.SettingsError, match="seed must be int, not str"):
        config.make_settings("tiny", seed="7")
    with pytest.raises(config.SettingsError, match="must be bool"):
        config.make_settings("tiny", whole_word_mask=1)
    assert config.make_settings("tiny", num_train_epochs=2).num_train_epochs == 2.0  # an int is a float here
    with pytest.raises(config.SettingsError, match="unknown profile 'huge'"):
        config.make_settings("huge")
    for bad, message in [({"mlm_probability": 1.5}, "strictly between 0 and 1"), ({"block_size": 1}, "at least 2 tokens"),
                         ({"fill_mask_text": "no blank"}, "write {mask}"), ({"streaming": True}, "needs max_steps"),
                         ({"ood_source": "wiki-science"}, "is the corpus itself"), ({"precision": "fp8"}, "fp8")]:
        with pytest.raises(config.SettingsError, match=message):
            config.make_settings("tiny", **bad)


def test_the_command_line_gives_only_what_it_names_typed_as_the_settings_declare():
    assert config.parse_command_line(["--seed", "7", "--learning-rate", "1e-3"]) == {"seed": 7, "learning_rate": 1e-3}
    assert config.parse_command_line(["--profile", "guide", "--no_masked_head"]) == {"profile": "guide", "masked_head": False}
    assert config.parse_command_line(["--fill_mask_answer", "true"]) == {"fill_mask_answer": "true"}  # a word, not a bool
    with pytest.raises(SystemExit):
        config.parse_command_line(["--seed", "seven"])
    with pytest.raises(SystemExit):
        config.parse_command_line(["--learn", "1e-3"])  # no abbreviations


def test_help_shows_the_profiles_defaults(capsys):
    with pytest.raises(SystemExit):
        config.parse_command_line(["--profile", "guide", "--help"])
    out = "".join(capsys.readouterr().out.split())  # argparse wraps its lines
    assert "default:distilbert/distilroberta-base" in out and "AdamW'speaklearningrate(default:2e-05)" in out


def test_parameter_pairs_name_the_unknown_ones():
    assert config.parameter_pairs([("seed", "3")]) == ["--seed", "3"]
    with pytest.raises(config.SettingsError, match="'speed'"):
        config.parameter_pairs([("speed", "3")])


def test_the_hub_repository_is_named_after_the_model_and_the_data():
    assert config.make_settings("guide").hub_repository == "distilroberta-base-eli5_category-mlm"
    assert config.make_settings("tiny", hub_model_id="me/mine").hub_repository == "me/mine"


def test_a_relative_run_dir_is_the_projects_and_a_relative_file_the_working_folders(tmp_path, monkeypatch):
    root = config.project_root()
    monkeypatch.chdir(root / "notebooks")  # where a notebook runs
    assert config.make_settings("tiny", run_dir="runs/mine").run_path == root / "runs" / "mine"  # beside runs/tiny
    (tmp_path / "notes.txt").write_text("A line.\n")
    (tmp_path / "wiki-other").mkdir()  # a folder named as the installed text does not take its place
    monkeypatch.chdir(tmp_path)
    s = config.make_settings("tiny", source="notes.txt", ood_source="wiki-other", model="distilbert/distilroberta-base")
    assert (s.source, s.ood_source, s.model) == (str(tmp_path / "notes.txt"), "wiki-other", "distilbert/distilroberta-base")
    assert config.make_settings("tiny", source="sub/../notes.txt").source == s.source  # one file, one name
