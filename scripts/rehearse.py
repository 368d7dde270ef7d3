"""The guide profile rehearsed offline: DistilRoBERTa-shaped model and ELI5-shaped data built here (``make rehearse``).

The ``guide`` profile downloads ``distilbert/distilroberta-base`` and ``eli5_category`` from the Hub, which
these machines cannot reach. This module builds stand-ins with the same conventions, from the installed
Wikipedia text, in seconds, and runs all six notebooks on them under ``profile="guide"``:

- a ``RobertaForMaskedLM`` (514 positions, no ``token_type_ids``, a small hidden size) with a byte-level BPE
  tokenizer trained here, RoBERTa's special tokens, and ``<mask>`` absorbing the space before it;
- a parquet folder laid out as the Hub's parquet conversion lays it out (``default/train/0000.parquet``), each
  record shaped like ELI5's, with several answers (text, score, URLs) per question, and a ``category`` that
  follows the topic its sentences come from, so that 05's classifiers have something to find. Its out-of-domain text
  is the installed summaries of other topics, which the stand-ins never use.

What it proves: every line the guide profile runs, from ``load_dataset`` on a parquet folder to fill-mask with
``<mask>``, works on a RoBERTa tokenizer and ELI5's nested records. What it cannot: the Hub download itself.

    python -m scripts.rehearse            # builds runs/rehearse/standins, runs the notebooks into runs/rehearse
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path
from typing import Any

from helpers import assets
from helpers.config import project_root

from scripts import run_all

SPECIAL_TOKENS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]  # RoBERTa's, at RoBERTa's ids 0-4
VOCAB_SIZE = 2_000
MAX_POSITIONS = 514  # RoBERTa's: 512 tokens plus the 2 its position ids skip for padding
REHEARSAL_PARAMETERS = dict(num_train_epochs=1)  # besides model, dataset_name and dataset_revision


# ELI5's categories for the science topics: a stand-in's category follows the topic its sentences come from
CATEGORIES = {"Physical sciences": "Physics", "Biology and health sciences": "Biology", "Technology": "Technology",
              "Mathematics": "Mathematics"}


def wiki_texts_by_topic() -> dict[str, list[str]]:
    """The installed Wikipedia science summaries by topic, the stand-ins' only text."""
    articles = json.loads(assets.wiki_summaries_file().read_text(encoding="utf-8"))
    return {topic: [a["extract"] for a in articles.values() if a.get("topic") == topic and a.get("extract")]
            for topic in assets.SCIENCE_TOPICS}


def build_roberta(folder: Path, texts: list[str], hidden_size: int = 64, seed: int = 0) -> Path:
    """A DistilRoBERTa-shaped masked LM with a byte-level BPE tokenizer trained on ``texts``, saved to ``folder``."""
    import torch
    from tokenizers import AddedToken, ByteLevelBPETokenizer
    from transformers import RobertaConfig, RobertaForMaskedLM, RobertaTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(texts, vocab_size=VOCAB_SIZE, special_tokens=SPECIAL_TOKENS, show_progress=False)
    bpe.save_model(str(folder))
    # <mask> absorbs the space before it (lstrip), as in the real tokenizer: "a <mask>" is "Ġa", "<mask>"
    tokenizer = RobertaTokenizerFast.from_pretrained(
        str(folder), model_max_length=MAX_POSITIONS - 2, mask_token=AddedToken("<mask>", lstrip=True, rstrip=False))
    tokenizer.save_pretrained(str(folder))
    torch.manual_seed(seed)
    config = RobertaConfig(
        vocab_size=len(tokenizer), hidden_size=hidden_size, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=hidden_size * 4, max_position_embeddings=MAX_POSITIONS, type_vocab_size=1,
        pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
    )
    RobertaForMaskedLM(config).save_pretrained(str(folder))
    return folder


def eli5_records(by_topic: dict[str, list[str]], n_records: int, seed: int = 0) -> list[dict[str, Any]]:
    """Records shaped like ``eli5_category``'s: a question and several answers, each with a score and URLs; each
    record's answers come from one topic's sentences, and its category names that topic."""
    rng = random.Random(seed)
    sentences = {topic: [s.strip().rstrip(".") + "." for t in texts for s in t.split(". ") if len(s.split()) > 3]
                 for topic, texts in by_topic.items()}
    records = []
    for i in range(n_records):
        topic = rng.choice(sorted(sentences))
        n_answers = rng.randint(2, 4)
        answers = [" ".join(rng.sample(sentences[topic], rng.randint(1, 3))) for _ in range(n_answers)]
        records.append({
            "q_id": f"q{i:05d}",
            "title": f"ELI5: {rng.choice(sentences[topic])[:60]}?",
            "selftext": "",
            "category": CATEGORIES.get(topic, topic),
            "subreddit": "explainlikeimfive",
            "answers": {
                "a_id": [f"a{i:05d}{j}" for j in range(n_answers)],
                "text": answers,
                "score": [rng.randint(1, 500) for _ in range(n_answers)],
                "text_urls": [[] if rng.random() < 0.8 else ["https://en.wikipedia.org/wiki/Science"] for _ in range(n_answers)],
            },
            "title_urls": [],
            "selftext_urls": [],
        })
    return records


def build_eli5(folder: Path, by_topic: dict[str, list[str]], n_records: int = 300, seed: int = 0) -> Path:
    """An ELI5-shaped parquet folder, laid out as the Hub's parquet conversion: ``default/train/0000.parquet``."""
    from datasets import Dataset

    target = folder / "default" / "train"
    target.mkdir(parents=True, exist_ok=True)
    Dataset.from_list(eli5_records(by_topic, n_records, seed)).to_parquet(str(target / "0000.parquet"))
    return folder


def build_standins(folder: Path) -> dict[str, str]:
    """Both stand-ins under ``folder``; the parameters that point the guide profile at them."""
    by_topic = wiki_texts_by_topic()
    model = build_roberta(folder / "distilroberta-standin", [t for texts in by_topic.values() for t in texts])
    eli5 = build_eli5(folder / "eli5-standin", by_topic)
    return {"model": str(model), "dataset_name": str(eli5)}  # a local folder has no revision: it is ignored


def rehearse(run_dir: Path, output_dir: Path | None = None) -> Any:
    """Build the stand-ins and run the six notebooks on them with ``profile="guide"``."""
    parameters = {"profile": "guide", "run_dir": str(run_dir), **build_standins(run_dir / "standins"), **REHEARSAL_PARAMETERS}
    return run_all.run_all(parameters, output_dir)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the guide profile's six notebooks on offline stand-ins.")
    parser.add_argument("--run-dir", type=Path, default=project_root() / "runs" / "rehearse")
    args = parser.parse_args(argv)
    try:
        settings = rehearse(args.run_dir.resolve())
    except Exception as err:  # papermill's error names the notebook and the cell
        print(f"\nthe rehearsal failed: {type(err).__name__}: {err}", file=sys.stderr)
        return 1
    print()
    print(run_all.headline(settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
