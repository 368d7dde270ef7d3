import copy

import pytest
import torch

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


def test_side_by_side_has_a_column_pair_per_model_each_with_its_own_answers(model, tuned, tokenizer):
    text = infer.with_mask(TEXT, tokenizer)
    results = {"base": infer.fill_mask(text, model, tokenizer), "fine-tuned": infer.fill_mask(text, tuned, tokenizer)}
    table = infer.side_by_side(results)
    assert list(table.columns) == [("base", "token"), ("base", "score"), ("fine-tuned", "token"), ("fine-tuned", "score")]
    assert list(table.index) == [1, 2, 3]
    for name, rows in results.items():
        assert table[(name, "token")].tolist() == [r["token_str"] for r in rows]
        assert table[(name, "score")].tolist() == pytest.approx([r["score"] for r in rows], abs=5e-4)
    assert table.loc[1, ("fine-tuned", "token")] == "spiral" != table.loc[1, ("base", "token")]


def test_rank_one_is_the_first_guess_with_its_probability(model, tokenizer):
    text = infer.with_mask("The Milky Way is a {mask} galaxy.", tokenizer)
    top = infer.fill_mask(text, model, tokenizer, top_k=3)
    for place, guess in enumerate(top, start=1):
        rank, probability = infer.rank_of(text, guess["token_str"], model, tokenizer)
        assert rank == place and probability == pytest.approx(guess["score"], abs=1e-6)


def test_an_answer_of_several_tokens_is_named_and_refused(tokenizer):
    with pytest.raises(ValueError, match="'photosynthesis' is 3 tokens for this tokenizer"):
        infer.answer_id("photosynthesis", tokenizer)


def test_ranking_needs_exactly_one_mask(model, tokenizer):
    with pytest.raises(ValueError, match="has 2 mask tokens"):
        infer.rank_of("a [MASK] and a [MASK]", "star", model, tokenizer)


def test_the_probe_table_ranks_each_answer_under_each_model(model, tuned, tokenizer):
    probes = ((TEXT, "spiral"), ("The Earth orbits the {mask}.", "sun"), ("Plants make food by {mask}.", "photosynthesis"))
    models = {"base": model, "fine-tuned": tuned}
    table = infer.probe_table(models, tokenizer, probes)
    assert list(table["expected"]) == ["spiral", "sun", "photosynthesis"]
    for name, m in models.items():
        for row, (template, word) in enumerate(probes[:2]):
            text = infer.with_mask(template, tokenizer)
            assert table.loc[row, f"rank, {name}"] == infer.rank_of(text, word, m, tokenizer)[0]
            assert table.loc[row, f"first guess, {name}"] == infer.fill_mask(text, m, tokenizer, top_k=1)[0]["token_str"].strip()
    assert table.loc[0, "rank, fine-tuned"] == 1 < table.loc[0, "rank, base"]  # the tuned sentence: its answer came first
    assert table["rank, base"].isna().tolist() == [False, False, True]  # several tokens: no rank


def test_the_probe_reading_counts_what_moved_and_names_copied_words():
    import pandas as pd

    table = pd.DataFrame({"sentence": ["The Earth orbits the ___.", "Water is hydrogen and ___.", "Light is a ___."],
                          "expected": ["sun", "oxygen", "wave"], "rank, base": [100, 700, 9], "rank, fine-tuned": [1, 12, 20],
                          "first guess, base": ["a", "b", "c"], "first guess, fine-tuned": ["sun", "hydrogen", "a"]})
    reading = infer.probe_reading(table)
    assert "up for 2 of 3 probes" in reading and "from 100 to 12" in reading and "1 of 3 is now the first guess" in reading
    assert "(hydrogen)" in reading  # "a" is in "Light is a ___." too, but too common to count as a copy
    two = infer.probe_reading(table.iloc[:2])
    assert "from 400 to 6.5" in two


def test_the_probe_reading_says_so_when_no_answer_is_one_token(model, tokenizer):
    table = infer.probe_table({"base": model, "fine-tuned": model}, tokenizer, (("Plants make food by {mask}.", "photosynthesis"),))
    assert "No expected word is a single token" in infer.probe_reading(table)


def test_the_answer_reading_notices_a_first_guess_that_repeats_the_sentence():
    import pandas as pd

    ranks = pd.DataFrame({"rank": [1048, 2], "probability": [0.0002, 0.0672]}, index=["base", "fine-tuned"])
    reading = infer.answer_reading("The Milky Way is a [MASK] galaxy.", "spiral", ranks, {"base": "mountains", "fine-tuned": "galaxy"})
    assert '"spiral" ranks 1,048 under the base model (probability 0.0002)' in reading
    assert "2 under the fine-tuned model (probability 0.067)" in reading
    assert 'first guess, "galaxy", repeats a word of the sentence' in reading
    assert "repeats" not in infer.answer_reading("The Milky Way is a [MASK] galaxy.", "spiral", ranks,
                                                 {"base": "x", "fine-tuned": "a"})  # too common to count


def test_an_answer_of_several_tokens_gets_no_rank_and_a_reading_that_says_why(model, tokenizer):
    text = infer.with_mask("Plants make food by {mask}.", tokenizer)
    table = infer.answer_table(text, "photosynthesis", {"base": model}, tokenizer)
    assert infer.ranks(table) == {"base": None}
    assert "several tokens for this tokenizer" in infer.answer_reading(text, "photosynthesis", table, {"base": "x"})
    table = infer.answer_table(infer.with_mask(TEXT, tokenizer), "spiral", {"base": model}, tokenizer)
    rank = infer.ranks(table)["base"]
    assert type(rank) is int and rank == infer.rank_of(infer.with_mask(TEXT, tokenizer), "spiral", model, tokenizer)[0]


def test_moved_up_checks_the_answer_and_most_probes_and_says_none_without_ranks():
    import pandas as pd

    answer = pd.DataFrame({"rank": pd.array([1048, 2], dtype="Int64")}, index=["base", "fine-tuned"])
    probes = pd.DataFrame({"rank, base": pd.array([100, 700, 5, None], dtype="Int64"),
                           "rank, fine-tuned": pd.array([1, 12, 9, None], dtype="Int64")})
    assert infer.moved_up(answer, probes) == {"answer moved up": True, "most probes moved up": True}
    probes.loc[1, "rank, fine-tuned"] = 800
    assert infer.moved_up(answer, probes)["most probes moved up"] is False  # 1 of 3
    none = pd.DataFrame({"rank": pd.array([None, None], dtype="Int64")}, index=["base", "fine-tuned"])
    assert infer.moved_up(none, pd.DataFrame({"sentence": ["x"]})) == {"answer moved up": None, "most probes moved up": None}
