"""Whole-word masking: a word's pieces are hidden together or not at all, for WordPiece and byte-level BPE."""

import dataclasses

import numpy as np
import pytest
import torch
from datasets import Dataset, DatasetDict
from transformers import DataCollatorForLanguageModeling

from helpers import assets, collate, config, data, preprocess, rehearse, runs, steps, train

PROBABILITY = 0.15


@pytest.fixture(scope="module")
def roberta_tokenizer(tmp_path_factory):
    """The guide profile's offline stand-in: a byte-level BPE tokenizer, trained in seconds on the installed text."""
    folder = rehearse.build_roberta(tmp_path_factory.mktemp("roberta") / "model", rehearse.wiki_texts()[:2000])
    return assets.load_tokenizer(str(folder))


@pytest.fixture(scope="module")
def texts():
    return data.load_wiki_science()["text"][:400]


def family_tokenizer(request, name):
    return request.getfixturevalue("tokenizer" if name == "wordpiece" else "roberta_tokenizer")


def continues_word(token: str, previous: str, family: str, tokenizer) -> bool:
    """The family's own marker, independent of offsets: WordPiece's "##" piece; BPE's piece without the space
    mark that does not follow a token of white space alone (a newline, a non-breaking space)."""
    if family == "wordpiece":
        return token.startswith("##")
    return not token.startswith("Ġ") and not tokenizer.convert_tokens_to_string([previous]).isspace()


def split_words(blocks: Dataset, masks: Dataset, tokenizer, family: str) -> int:
    """How many word pieces are labelled while the piece before them in the same word is not, or the reverse."""
    split = 0
    special = set(tokenizer.all_special_ids)
    for ids, labels in zip(blocks["input_ids"], masks["labels"]):
        tokens = tokenizer.convert_ids_to_tokens(ids)
        for i in range(1, len(ids)):
            if ids[i] in special or ids[i - 1] in special or not continues_word(tokens[i], tokens[i - 1], family, tokenizer):
                continue
            split += (labels[i] != collate.IGNORE) != (labels[i - 1] != collate.IGNORE)
    return split


def blocks_for(tokenizer, texts, tmp_path, **overrides):
    s = config.make_settings("tiny", run_dir=str(tmp_path / "run"), mlm_probability=PROBABILITY, **overrides)
    corpus = Dataset.from_dict({"text": texts})
    return s, preprocess.build_blocks(DatasetDict(train=corpus.select(range(300)), test=corpus.select(range(300, 400))),
                                      tokenizer, s)


@pytest.mark.parametrize("family", ["wordpiece", "bpe"])
def test_a_words_pieces_are_labelled_together_and_about_the_probability_of_words_is_picked(request, family, texts, tmp_path):
    tokenizer = family_tokenizer(request, family)
    s, blocks = blocks_for(tokenizer, texts, tmp_path, whole_word_mask=True)
    masks = collate.make_eval_masks(blocks["test"], tokenizer, s)
    assert split_words(blocks["test"], masks, tokenizer, family) == 0
    rates = collate.word_rates(blocks["test"], masks, tokenizer)
    assert rates["picked words labelled whole"] == 1.0
    assert rates["words picked"] == pytest.approx(PROBABILITY, abs=0.025)
    assert rates["pieces per picked word"] > 1.0  # some picked words are several pieces, all hidden
    assert collate.within(collate.measure(blocks["test"], masks, tokenizer), collate.expected_rates(s), tolerance=0.025)
    # the same check fails for token masking: it splits words
    token_masks = collate.make_eval_masks(blocks["test"], tokenizer, dataclasses.replace(s, whole_word_mask=False))
    assert split_words(blocks["test"], token_masks, tokenizer, family) > 10


def test_word_ids_follow_the_offsets_rule():
    offsets = [[0, 0], [0, 2], [2, 4], [5, 7], [7, 8], [0, 0], [0, 3]]
    special = [1, 0, 0, 0, 0, 1, 0]
    assert collate.word_ids(offsets, special) == [-1, 0, 0, 1, 1, -1, 2]


@pytest.mark.parametrize("family", ["wordpiece", "bpe"])
def test_word_ids_group_tokens_as_the_library_collator_does(request, family, texts, tmp_path):
    tokenizer = family_tokenizer(request, family)
    _, blocks = blocks_for(tokenizer, texts, tmp_path)
    test = blocks["test"]
    special = np.array([tokenizer.get_special_tokens_mask(ids, already_has_special_tokens=True) for ids in test["input_ids"]])
    library, _ = DataCollatorForLanguageModeling._calc_word_ids_and_prob_mask(np.array(test["offset_mapping"]), special)
    ours = np.array([collate.word_ids(spans, row) for spans, row in zip(test["offset_mapping"], special)])
    assert np.array_equal(library == -1, ours == -1)
    assert np.array_equal(library[library >= 0] - 1, ours[ours >= 0])  # the library numbers words from 1 in each block


def test_training_batches_reach_the_collator_with_their_offsets(tmp_path, tokenizer):
    from conftest import prepare_run

    s = prepare_run(tmp_path, tokenizer, whole_word_mask=True, max_steps=2)
    trainer = train.make_trainer(s, assets.load_model(s.model, at_masks=True), tokenizer, runs.load_dataset(s, "blocks")["train"],
                                 steps.eval_masks(s, tokenizer))
    batch = next(iter(trainer.get_train_dataloader()))
    picked = batch["labels"] != collate.IGNORE
    assert picked.any() and "offset_mapping" not in batch
    assert torch.equal(picked, batch["input_ids"] == tokenizer.mask_token_id)  # every picked piece masked: whole words


def test_each_kind_of_evaluation_masks_has_its_own_name(tmp_path, tokenizer):
    from conftest import prepare_run

    s = prepare_run(tmp_path, tokenizer)
    token = runs.load_dataset(s, "eval_masks")
    whole = dataclasses.replace(s, whole_word_mask=True)
    steps.eval_masks(whole, tokenizer)
    assert runs.path(whole, "eval_masks_whole_word").exists()
    assert runs.load_dataset(s, "eval_masks")["labels"] == token["labels"]  # untouched
    assert runs.path(whole, "model") != runs.path(s, "model")  # a model trained the other way lives apart


def test_blocks_without_offsets_are_refused_by_whole_word_masking(tmp_path, tokenizer):
    from conftest import prepare_run

    s = prepare_run(tmp_path, tokenizer)
    old = runs.load_dataset(s, "blocks").remove_columns("offset_mapping")  # as a slow tokenizer's blocks
    with pytest.raises(config.SettingsError, match="rebuild them with 02_preprocess"):
        collate.make_eval_masks(old["test"], tokenizer, dataclasses.replace(s, whole_word_mask=True))
    with pytest.raises(config.SettingsError, match="rebuild them with 02_preprocess"):
        collate.both_ways(old["train"][0], tokenizer, s)  # 03 masks both ways whatever the setting


def test_a_setting_that_is_not_a_boolean_is_refused():
    with pytest.raises(config.SettingsError, match="whole_word_mask='yes': whole_word_mask must be bool, not str"):
        config.make_settings("tiny", whole_word_mask="yes")


def test_a_slow_tokenizer_is_refused_by_name(tokenizer):
    class Slow:
        is_fast = False

    s = config.make_settings("tiny", whole_word_mask=True)
    with pytest.raises(config.SettingsError, match="needs a fast tokenizer"):
        collate.make_collator(Slow(), s)


def test_the_words_token_masking_splits_are_named_with_their_hidden_pieces(tokenizer, texts, tmp_path):
    s, blocks = blocks_for(tokenizer, texts, tmp_path)
    named = {name: [] for name in collate.WAYS}
    for block in blocks["train"].select(range(40)):
        for name, table in collate.both_ways(block, tokenizer, s).items():
            named[name] += collate.part_hidden(block, table, tokenizer)
    assert named["whole-word masking"] == []
    assert len(named["token masking"]) > 3
    for word in named["token masking"]:
        pieces = word.split()
        assert len(pieces) > 1 and any(p.startswith("[") for p in pieces) and not all(p.startswith("[") for p in pieces)


@pytest.mark.parametrize("whole", [False, True])
def test_the_headline_names_the_kind_of_masks_its_figures_come_from(tmp_path, whole):
    from helpers import run_all

    s = config.make_settings("tiny", run_dir=str(tmp_path), whole_word_mask=whole)
    figures = dict(perplexity_before=100.0, perplexity_after=10.0, perplexity_unigram=50.0, top1_accuracy_before=0.1,
                   top1_accuracy_after=0.3, top5_accuracy_before=0.2, top5_accuracy_after=0.5, train_steps=3,
                   train_seconds=1.0, fill_mask_text="a [MASK].", fill_mask=[{"token_str": "b", "score": 0.5}])
    runs.update_metrics(s, **figures)
    line = run_all.headline(s, tmp_path).splitlines()[1]
    assert line.startswith("perplexity on the fixed whole-word evaluation masks" if whole else "perplexity on the fixed evaluation masks")
