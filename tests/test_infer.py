"""06 infer: the by-hand fill-mask against the library's pipeline, ranks against a hand sort, the errors."""

import copy

import pytest
import torch
from transformers import pipeline

from helpers import infer

TEXT = "The Milky Way is a {mask} galaxy."


@pytest.fixture(scope="module")
def tuned(model, tokenizer):
    """The tiny model after a few optimizer steps on one sentence, "spiral" at its mask: a genuinely different model."""
    tuned = copy.deepcopy(model).train()
    inputs = tokenizer(infer.with_mask(TEXT, tokenizer), return_tensors="pt")
    labels = torch.full_like(inputs["input_ids"], -100)
    labels[inputs["input_ids"] == tokenizer.mask_token_id] = infer.answer_id("spiral", tokenizer)
    optimizer = torch.optim.AdamW(tuned.parameters(), lr=1e-3)
    for _ in range(5):
        tuned(**inputs, labels=labels).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    return tuned.eval()


def test_fill_mask_returns_what_the_pipeline_returns(model, tokenizer):
    fill = pipeline("fill-mask", model=model, tokenizer=tokenizer)
    for template in (TEXT, "Water is made of hydrogen and {mask}.", "The {mask} Way is a {mask} galaxy."):
        text = infer.with_mask(template, tokenizer)
        by_hand, by_pipeline = infer.fill_mask(text, model, tokenizer, top_k=4), fill(text, top_k=4)
        if "{mask}" in template.replace("{mask}", "", 1):  # several masks: one list per mask, as the pipeline gives
            assert len(by_hand) == 2 and all(infer.agree(a, b) for a, b in zip(by_hand, by_pipeline))
        else:
            assert infer.agree(by_hand, by_pipeline)
    rows = infer.fill_mask(infer.with_mask(TEXT, tokenizer), model, tokenizer)
    assert not infer.agree(rows, rows[::-1])  # the comparison can fail


def test_texts_in_one_batch_give_what_each_gives_alone(model, tokenizer):
    texts = [infer.with_mask(t, tokenizer) for t in (TEXT, "An atom has a nucleus surrounded by {mask}.")]
    together = infer.fill_masks(texts, model, tokenizer, 3)
    assert all(infer.agree(a, infer.fill_mask(t, model, tokenizer, 3)) for a, t in zip(together, texts))


@pytest.mark.parametrize("text, message", [("The Milky Way is a spiral galaxy.", r"no mask token.*\[MASK\]"),
                                           ("The Milky Way is a <mask> galaxy.", "<mask> is another model family's"),
                                           ("a [MASK] " + "word " * 600, "reads at most 512")])
def test_a_text_the_model_cannot_fill_is_refused_with_the_reason(model, tokenizer, text, message):
    with pytest.raises(ValueError, match=message):
        infer.fill_mask(text, model, tokenizer)


def test_rank_of_is_the_place_in_a_hand_sort(model, tokenizer):
    text = infer.with_mask(TEXT, tokenizer)
    with torch.no_grad():
        inputs = tokenizer(text, return_tensors="pt")
        logits = model(**inputs).logits[0, (inputs["input_ids"][0] == tokenizer.mask_token_id).nonzero()[0, 0]]
    order = logits.argsort(descending=True).tolist()
    rank, probability = infer.rank_of(text, "spiral", model, tokenizer)
    assert rank == order.index(infer.answer_id("spiral", tokenizer)) + 1
    assert probability == pytest.approx(float(logits.softmax(-1)[infer.answer_id("spiral", tokenizer)]), rel=1e-5)
    assert infer.rank_of(text, "electromagnetism", model, tokenizer) is None  # several pieces: no rank


def test_probe_sentences_follow_the_stated_rule(tokenizer):
    texts = ["Too short to use here.",  # under 8 words
             "The Earth turns around the sun once every year. A second sentence is never used.",
             "Photosynthesis turns light, water and carbon dioxide into sugar and (oxygen).", "Ignored: n=2 found already."]
    assert infer.answer_id("year", tokenizer) is not None  # four letters: too short to be picked, though one token
    assert infer.probe_sentences(texts, tokenizer, n=2) == [  # the last lower-case word of 5+ letters and one token
        ("The Earth turns around the sun once {mask} year.", "every"),
        ("Photosynthesis turns light, water and carbon dioxide into sugar and ({mask}).", "oxygen")]


def test_the_probe_table_and_its_reading(model, tuned, tokenizer):
    texts = ["Too short.", "Our home galaxy, the Milky Way, is a barred spiral. Not this sentence."]
    table = infer.probe_table({"base": model, "fine-tuned": tuned}, tokenizer, texts)
    first = table.iloc[0]
    assert len(table) == 1 and first["expected"] == "spiral"
    assert first["sentence"] == "Our home galaxy, the Milky Way, is a barred ___."
    inputs = tokenizer(f"Our home galaxy, the Milky Way, is a barred {tokenizer.mask_token}.", return_tensors="pt")
    with torch.no_grad():  # by hand: the standard forward's logits at the mask, sorted
        logits = tuned(**inputs).logits[0, (inputs["input_ids"][0] == tokenizer.mask_token_id).nonzero()[0, 0]]
    assert first["first guess, fine-tuned"] == tokenizer.decode([int(logits.argmax())]).strip()
    assert first["rank, fine-tuned"] == logits.argsort(descending=True).tolist().index(infer.answer_id("spiral", tokenizer)) + 1
