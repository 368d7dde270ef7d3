import pytest

from helpers import assets


def test_the_installed_model_is_a_pretrained_masked_lm(tokenizer, model):
    assert type(model).__name__ == "BertForMaskedLM"
    assert tokenizer.mask_token == "[MASK]" and len(tokenizer) == 30522


def test_an_unreachable_hub_model_says_how_to_run_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(assets.AssetError, match=r"'distilbert/distilroberta-base'.*HF_HUB_OFFLINE.*profile='tiny'"):
        assets.load_tokenizer(assets.GUIDE_MODEL)


def test_a_folder_without_a_model_is_named(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(assets.AssetError, match=str(tmp_path)):
        assets.load_model(str(tmp_path))
