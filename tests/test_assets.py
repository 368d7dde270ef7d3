import pytest

from helpers import assets


def test_the_installed_model_is_a_pretrained_masked_lm(tokenizer, model):
    assert type(model).__name__ == "BertForMaskedLM"
    assert tokenizer.mask_token == "[MASK]" and len(tokenizer) == 30522


def test_an_unreachable_hub_model_says_how_to_run_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(assets.AssetError, match=r"'distilbert/distilroberta-base'.*HF_HUB_OFFLINE.*profile='tiny'"):
        assets.load_tokenizer(assets.GUIDE_MODEL)


def test_a_folder_without_weights_is_named(tmp_path, model, tokenizer):
    model.config.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)  # a config and a tokenizer, but no model.safetensors
    with pytest.raises(assets.AssetError, match=f"the folder {tmp_path} holds no model weights.*save_pretrained"):
        assets.load_model(str(tmp_path))


def test_a_folder_with_a_broken_config_is_named(tmp_path, model):
    model.save_pretrained(tmp_path)
    (tmp_path / "config.json").write_text("{ not json")
    with pytest.raises(assets.AssetError, match=f"could not load AutoModelForMaskedLM from the folder {tmp_path}"):
        assets.load_model(str(tmp_path))
