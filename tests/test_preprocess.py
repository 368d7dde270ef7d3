import random

import pytest
from datasets import Dataset, DatasetDict

from helpers import config, lesson, preprocess
from helpers.config import SettingsError


def guide_group_texts(examples, block_size):
    """The guide's version, kept here as the reference: quadratic ``sum(lists, [])``."""
    concatenated = {k: sum(examples[k], []) for k in examples}
    total = len(concatenated[list(examples)[0]]) // block_size * block_size
    return {k: [t[i : i + block_size] for i in range(0, total, block_size)] for k, t in concatenated.items()}


def random_batch(n_docs: int, seed: int) -> dict[str, list[list[int]]]:
    rng = random.Random(seed)
    ids = [[rng.randrange(30_000) for _ in range(rng.randrange(0, 300))] for _ in range(n_docs)]
    return {"input_ids": ids, "attention_mask": [[1] * len(x) for x in ids]}


@pytest.mark.parametrize("seed, n_docs, block_size", [(0, 50, 128), (1, 200, 7), (2, 3, 512), (3, 1, 2)])
def test_group_texts_gives_the_guides_blocks(seed, n_docs, block_size):
    batch = random_batch(n_docs, seed)
    assert lesson.group_texts(batch, block_size) == guide_group_texts(batch, block_size)
    assert lesson.guide_group_texts(batch, block_size) == guide_group_texts(batch, block_size)  # 02's Going faster


def test_group_texts_keeps_every_token_in_order_but_the_remainder():
    batch = {"input_ids": [list(range(0, 10)), list(range(10, 25)), list(range(25, 33))]}
    blocks = lesson.group_texts(batch, 8)["input_ids"]
    assert blocks == [list(range(i, i + 8)) for i in range(0, 32, 8)]  # token 32 is the dropped remainder
    assert all(len(b) == 8 for b in blocks)


def test_group_texts_on_fewer_tokens_than_a_block_gives_nothing():
    assert lesson.group_texts({"input_ids": [[1, 2, 3]]}, 4) == {"input_ids": []}


def test_preprocess_function_joins_a_list_of_texts_with_spaces(tokenizer):
    joined = lesson.preprocess_function({"t": [["first answer.", "second answer."]]}, tokenizer, "t")
    assert joined["input_ids"] == tokenizer(["first answer. second answer."])["input_ids"]  # the guide's " ".join


def test_the_word_blocks_are_the_blocks_with_each_tokens_span(tokenizer, settings):
    from helpers import data

    splits = data.split_corpus(data.load_wiki_science().select(range(120)), settings)
    plain = preprocess.build_blocks(splits, tokenizer, settings)
    words = preprocess.build_blocks(splits, tokenizer, settings, spans=True)
    assert "offset_mapping" not in plain["train"].column_names  # 02's blocks: the guide's columns
    assert words["train"]["input_ids"] == plain["train"]["input_ids"]  # the same tokens, cut the same way
    text = splits["train"][0]["text"]  # each span is where its token is in the text (WordPiece: lower case, no ##)
    first = tokenizer(text, return_offsets_mapping=True)
    spans = words["train"][0]["offset_mapping"][1:10]
    assert [text[a:b].lower() for a, b in spans] == [t.removeprefix("##") for t in
                                                      tokenizer.convert_ids_to_tokens(first["input_ids"][1:10])]


def test_block_size_larger_than_the_model_allows_is_refused(tokenizer, model):
    with pytest.raises(SettingsError, match="block_size=1024 is larger than the model reads \\(512"):
        preprocess.check_block_size(1024, tokenizer, model.config)
    preprocess.check_block_size(512, tokenizer, model.config)


def test_build_blocks_makes_full_blocks_from_every_split(tokenizer, settings):
    texts = [f"sentence number {i} is about the stars and the planets." for i in range(60)]
    splits = DatasetDict(train=Dataset.from_dict({"text": texts[:48]}), test=Dataset.from_dict({"text": texts[48:]}))
    s = config.make_settings("tiny", run_dir=settings.run_dir, block_size=16)
    blocks = preprocess.build_blocks(splits, tokenizer, s)
    assert set(blocks["train"].column_names) == {"input_ids", "token_type_ids", "attention_mask"}
    assert all(len(ids) == 16 for split in blocks.values() for ids in split["input_ids"])
    words = preprocess.build_blocks(splits, tokenizer, s, spans=True)
    assert all(len(spans) == 16 for split in words.values() for spans in split["offset_mapping"])  # grouped alike
    n_tokens = sum(len(tokenizer(t)["input_ids"]) for t in texts[:48])
    assert len(blocks["train"]) == n_tokens // 16


def test_a_corpus_shorter_than_one_block_is_an_error(tokenizer, settings):
    splits = DatasetDict(train=Dataset.from_dict({"text": ["short."] * 4}), test=Dataset.from_dict({"text": ["tiny."]}))
    with pytest.raises(preprocess.BlocksError, match="no block of 128 tokens"):
        preprocess.build_blocks(splits, tokenizer, settings)


def word_offsets(spans, text):
    return lesson.word_offsets({"offset_mapping": [list(spans)]}, [text])["offset_mapping"][0]


def test_bytes_of_one_character_join_their_word():
    # byte-level BPE's "R", "Ã", "©", "un" of "Réunion": the two bytes of "é" share its span (1, 2)
    spans = [(0, 0), (0, 1), (1, 2), (1, 2), (2, 4), (0, 0)]
    assert word_offsets(spans, "Réun") == [(0, 0), (0, 1), (1, 2), (2, 2), (2, 4), (0, 0)]


def test_a_token_of_white_space_ends_its_word_instead_of_gluing_it_to_the_next(tokenizer):
    # byte-level BPE's "nice", ".", "Ċ", "Next": the newline token sits between the words, touching both
    spans = [(0, 4), (4, 5), (5, 6), (6, 10)]
    assert word_offsets(spans, "nice.\nNext") == [(0, 4), (4, 5), (5, 5), (6, 10)]
    block = {"input_ids": tokenizer.convert_tokens_to_ids(["nice", ".", "a", "next"]), "offset_mapping": None}
    from helpers import collate

    block["offset_mapping"] = word_offsets(spans, "nice.\nNext")
    assert len(collate.words_of(block, [-100] * 4, tokenizer)) == 2  # by the collator's rule: two words
    block["offset_mapping"] = spans
    assert len(collate.words_of(block, [-100] * 4, tokenizer)) == 1  # the raw offsets glue them into one


def test_the_blocks_are_the_same_on_any_number_of_cores(tokenizer, tmp_path, monkeypatch):
    """Tokenizing runs in parallel from 1,000 records; grouping in one process, so each map batch is the same."""
    from helpers import data

    s = config.make_settings("tiny", run_dir=str(tmp_path))
    splits = data.split_corpus(data.load_wiki_science().select(range(1200)), s)
    found = []
    for cores in (1, 2, 4):
        monkeypatch.setattr(preprocess.os, "cpu_count", lambda cores=cores: cores)
        found.append(preprocess.build_blocks(splits, tokenizer, s)["train"]["input_ids"])
    assert found[0] == found[1] == found[2] and len(found[0]) > 300


def test_a_stream_gives_the_blocks_the_in_memory_path_gives(tmp_path, tokenizer):
    from test_data import big_text_file

    from helpers import data

    s = config.make_settings("tiny", source=str(big_text_file(tmp_path)), run_dir=str(tmp_path / "run"), block_size=64)
    streamed = [block["input_ids"] for block in preprocess.stream_blocks(data.stream_corpus(s), tokenizer, s)]
    corpus = data.load_corpus(s)
    built = preprocess.build_blocks(DatasetDict(train=corpus, test=corpus.select(range(50))), tokenizer, s)
    assert len(streamed) > 4 * s.batch_size and streamed == built["train"]["input_ids"]
