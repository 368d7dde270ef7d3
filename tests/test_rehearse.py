"""The guide profile rehearsed offline: all six notebooks on a DistilRoBERTa-shaped model and ELI5-shaped data.

The stand-ins are built here (``helpers.rehearse``), so the path a learner with a GPU and the Hub takes is
run on every ``make test``: a RoBERTa tokenizer, ``<mask>``, ELI5's nested answers, a parquet folder laid
out as the Hub's conversion. Only the download itself is left out.
"""

import pyarrow.parquet as pq
import pytest
from transformers import AutoModelForMaskedLM, RobertaForMaskedLM, pipeline

from helpers import assets, config, rehearse, run_all, runs


@pytest.fixture(scope="module")
def standins(tmp_path_factory):
    return rehearse.build_standins(tmp_path_factory.mktemp("standins"))


def test_the_model_stand_in_has_distilrobertas_conventions(standins):
    tokenizer = assets.load_tokenizer(standins["model"])
    model = assets.load_model(standins["model"])
    assert isinstance(model, RobertaForMaskedLM) and model.config.max_position_embeddings == 514
    assert tokenizer.mask_token == "<mask>" and tokenizer.model_max_length == 512
    encoded = tokenizer("The Milky Way is a <mask> galaxy.")
    assert "token_type_ids" not in encoded
    pieces = tokenizer.convert_ids_to_tokens(encoded["input_ids"])
    assert pieces[0] == "<s>" and pieces[-1] == "</s>"
    assert pieces[pieces.index("<mask>") - 1] == "Ġa"  # <mask> absorbed the space before it, as RoBERTa's does


def test_the_data_stand_in_is_laid_out_and_shaped_like_eli5(standins):
    table = pq.read_table(f"{standins['dataset_name']}/default/train/0000.parquet")
    assert table.num_rows == 300
    record = table.slice(0, 1).to_pylist()[0]
    assert set(record) == {"q_id", "title", "selftext", "category", "subreddit", "answers", "title_urls", "selftext_urls"}
    assert set(record["answers"]) == {"a_id", "text", "score", "text_urls"}
    assert all(len(r["answers"]["text"]) >= 2 for r in table.to_pylist())  # several answers a question


@pytest.mark.slow
def test_the_six_notebooks_run_the_guide_profile_on_the_stand_ins(tmp_path, standins):
    parameters = {"profile": "guide", "run_dir": str(tmp_path / "run"), **standins, **rehearse.REHEARSAL_PARAMETERS}
    s = run_all.run_all(parameters)
    assert s.profile == "guide" and s.learning_rate == 2e-5 and s.text_field == "answers.text"

    splits = runs.load_dataset(s, "splits")
    assert "answers.text" in splits["train"].column_names
    assert all(isinstance(texts, list) and len(texts) >= 2 for texts in splits["train"]["answers.text"])
    blocks = runs.load_dataset(s, "blocks")
    assert {len(ids) for ids in blocks["train"]["input_ids"]} == {128}
    eval_masks = runs.load_dataset(s, "eval_masks")
    assert sum(label != -100 for row in eval_masks["labels"] for label in row) > 0

    model = AutoModelForMaskedLM.from_pretrained(str(runs.path(s, "model")))
    assert isinstance(model, RobertaForMaskedLM)
    fill = pipeline("fill-mask", model=str(runs.path(s, "model")))
    assert len(fill("The Milky Way is a <mask> galaxy.", top_k=3)) == 3

    metrics = runs.read_metrics(s)
    assert "<mask>" in metrics["fill_mask_text"] and len(metrics["fill_mask"]) == 3
    assert metrics["perplexity_before"] > 0 and metrics["perplexity_after"] > 0
    assert metrics["perplexity_unigram"] > 0  # RoBERTa's special tokens left out of the counts
    assert all(0 <= metrics[f"top{k}_accuracy_{when}"] <= 1 for k in (1, 5) for when in ("before", "after"))
    assert set(metrics["fill_mask_answer_rank"]) == {"base", "fine-tuned"}
    assert f"on the local folder {standins['dataset_name']}" in run_all.headline(s, tmp_path)
    assert sorted(p.name for p in (s.run_path / "notebooks").glob("*.ipynb")) == [f"{n}.ipynb" for n in run_all.NOTEBOOKS]


def test_the_headline_names_the_dataset_and_revision_from_the_hub(tmp_path):
    s = config.make_settings("guide", run_dir=str(tmp_path))
    assert run_all.source_name(s) == "eli5_category at refs/convert/parquet from the Hub"
    assert run_all.source_name(config.make_settings("tiny", run_dir=str(tmp_path))) == "wiki-science"
