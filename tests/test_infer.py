import pytest

from helpers import infer

TEXT = "The Milky Way is a {mask} galaxy."


def test_fill_mask_returns_what_the_pipeline_returns(model, tokenizer):
    text = infer.with_mask(TEXT, tokenizer)
    by_hand = infer.fill_mask(text, model, tokenizer, top_k=5)
    by_pipeline = infer.fill_mask_pipeline(text, model, tokenizer, top_k=5)
    assert [set(r) for r in by_hand] == [{"score", "token", "token_str", "sequence"}] * 5
    assert infer.agree(by_hand, by_pipeline)
    assert [r["score"] for r in by_hand] == sorted((r["score"] for r in by_hand), reverse=True)


def test_several_masks_give_one_list_per_mask_as_the_pipeline_does(model, tokenizer):
    text = f"The {tokenizer.mask_token} Way is a {tokenizer.mask_token} galaxy."
    by_hand = infer.fill_mask(text, model, tokenizer, top_k=2)
    by_pipeline = infer.fill_mask_pipeline(text, model, tokenizer, top_k=2)
    assert len(by_hand) == 2 and all(len(row) == 2 for row in by_hand)
    assert all(infer.agree(a, b) for a, b in zip(by_hand, by_pipeline))


def test_agree_notices_a_different_token(model, tokenizer):
    rows = infer.fill_mask(infer.with_mask(TEXT, tokenizer), model, tokenizer)
    assert not infer.agree(rows, rows[::-1])


def test_a_text_without_a_mask_names_the_tokenizers_mask_token(model, tokenizer):
    with pytest.raises(ValueError, match=r"no mask token.*\[MASK\]"):
        infer.fill_mask("The Milky Way is a spiral galaxy.", model, tokenizer)


def test_another_familys_mask_token_is_named(model, tokenizer):
    with pytest.raises(ValueError, match=r"<mask> is another model family's mask token.*\[MASK\]"):
        infer.fill_mask("The Milky Way is a <mask> galaxy.", model, tokenizer)


@pytest.mark.parametrize(
    "text, top_k, words",
    [("   ", 3, "empty"), ("[MASK] " + "word " * 600, 3, "at most 512"), ("A [MASK].", 0, "top_k=0"), ("A [MASK].", 10**6, "vocabulary size")],
)
def test_unusable_requests_are_refused(model, tokenizer, text, top_k, words):
    with pytest.raises(ValueError, match=words):
        infer.fill_mask(text, model, tokenizer, top_k=top_k)


def test_side_by_side_has_a_column_pair_per_model(model, tokenizer):
    rows = infer.fill_mask(infer.with_mask(TEXT, tokenizer), model, tokenizer)
    table = infer.side_by_side({"base": rows, "again": rows})
    assert list(table.columns) == [("base", "token"), ("base", "score"), ("again", "token"), ("again", "score")]
    assert list(table.index) == [1, 2, 3]
