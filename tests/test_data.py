import json

import pytest
from datasets import Dataset

from helpers import config, data
from helpers.data import CorpusError


def eli5_record(i: int) -> dict:
    """One record shaped like eli5_category's: only answers.text is used."""
    return {
        "q_id": f"q{i}",
        "title": f"Why is the sky blue, take {i}?",
        "selftext": "",
        "category": "Physics",
        "subreddit": "explainlikeimfive",
        "answers": {
            "a_id": [f"a{i}0", f"a{i}1"],
            "text": [f"Sunlight scatters off air, answer {i}.", "Blue light scatters the most."],
            "score": [10 + i, 3],
            "text_urls": [[], []],
        },
        "title_urls": [],
        "selftext_urls": [],
    }


@pytest.fixture
def eli5_folder(tmp_path):
    """An ELI5-shaped dataset laid out as the Hub's parquet conversion lays it out: default/train/0000.parquet."""
    folder = tmp_path / "eli5_local"
    (folder / "default" / "train").mkdir(parents=True)
    Dataset.from_list([eli5_record(i) for i in range(30)]).to_parquet(str(folder / "default" / "train" / "0000.parquet"))
    return folder


def test_the_eli5_path_loads_and_flattens_through_load_dataset(eli5_folder, tmp_path):
    s = config.make_settings("guide", dataset_name=str(eli5_folder), dataset_revision=None, num_examples=20, run_dir=str(tmp_path))
    corpus = data.load_corpus(s)
    assert len(corpus) == 20  # split="train[:20]", as the guide's train[:5000]
    assert "answers.text" in corpus.column_names and "answers" not in corpus.column_names
    assert corpus[0]["answers.text"] == ["Sunlight scatters off air, answer 0.", "Blue light scatters the most."]
    splits = data.split_corpus(corpus, s)
    assert (len(splits["train"]), len(splits["test"])) == (16, 4)


def test_an_unreachable_hub_says_what_was_tried_and_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    s = config.make_settings("guide", run_dir=str(tmp_path))
    with pytest.raises(CorpusError) as err:
        data.load_corpus(s)
    message = str(err.value)
    assert "'eli5_category'" in message and "refs/convert/parquet" in message
    assert "profile='tiny'" in message and "local copy" in message


def test_wiki_science_is_the_installed_text():
    corpus = data.load_wiki_science()
    assert len(corpus) == 3216
    assert set(corpus["topic"]) <= set(data.assets.SCIENCE_TOPICS)
    assert all(len(t) > 0 for t in corpus["text"])


def test_a_text_file_is_one_document_a_line(text_file, tmp_path):
    s = config.make_settings("tiny", source=str(text_file), run_dir=str(tmp_path))
    corpus = data.load_corpus(s)
    assert len(corpus) == 64 and corpus[0]["text"].startswith("The sun is a star")


def test_a_jsonl_file_with_its_own_text_field(tmp_path):
    path = tmp_path / "notes.jsonl"
    path.write_text("\n".join(json.dumps({"id": i, "body": f"note {i}"}) for i in range(10)), encoding="utf-8")
    s = config.make_settings("tiny", source=str(path), text_field="body", num_examples=5, run_dir=str(tmp_path))
    assert data.load_corpus(s)["body"] == [f"note {i}" for i in range(5)]


@pytest.mark.parametrize(
    "content, words",
    [(None, "no such file"), (b"", "is empty"), (b"caf\xe9 au lait\n", "not UTF-8")],
)
def test_bad_files_are_refused_with_the_reason(tmp_path, content, words):
    path = tmp_path / "corpus.txt"
    if content is not None:
        path.write_bytes(content)
    s = config.make_settings("tiny", source=str(path), run_dir=str(tmp_path))
    with pytest.raises(CorpusError, match=words):
        data.load_corpus(s)


def test_a_missing_text_field_lists_the_columns(tmp_path):
    path = tmp_path / "notes.jsonl"
    path.write_text('{"body": "a"}\n{"body": "b"}\n', encoding="utf-8")
    s = config.make_settings("tiny", source=str(path), run_dir=str(tmp_path))
    with pytest.raises(CorpusError, match=r"no column 'text'.*\['body'\]"):
        data.load_corpus(s)


def test_more_examples_than_the_corpus_holds_says_what_was_used(text_file, tmp_path, capsys):
    s = config.make_settings("tiny", source=str(text_file), num_examples=1000, run_dir=str(tmp_path))
    assert len(data.load_corpus(s)) == 64
    assert "num_examples=1000, but the corpus has 64 records: using all of them" in capsys.readouterr().out


def test_the_split_repeats_with_the_seed(text_file, tmp_path):
    corpus = Dataset.from_dict({"text": [f"doc {i}" for i in range(50)]})
    s = config.make_settings("tiny", run_dir=str(tmp_path))
    first, again = data.split_corpus(corpus, s), data.split_corpus(corpus, s)
    other = data.split_corpus(corpus, config.make_settings("tiny", run_dir=str(tmp_path), seed=1))
    assert first["test"]["text"] == again["test"]["text"] != other["test"]["text"]
    assert len(first["test"]) == 10


def test_a_test_size_that_empties_a_split_is_refused(tmp_path):
    corpus = Dataset.from_dict({"text": ["a", "b", "c"]})
    with pytest.raises(CorpusError, match="leaves a split empty"):
        data.split_corpus(corpus, config.make_settings("tiny", run_dir=str(tmp_path), test_size=0.1))


def test_a_script_dataset_says_what_to_try(tmp_path):
    s = config.make_settings("guide", dataset_revision="main", run_dir=str(tmp_path))
    with pytest.raises(CorpusError, match="refs/convert/parquet.*parquet copy of a script dataset"):
        with data.advice(s):
            raise RuntimeError("Dataset scripts are no longer supported, but found eli5_category.py")


def test_the_page_and_the_helper_load_the_same_hub_records(eli5_folder, tmp_path):
    """01's page calls load_dataset itself for the guide profile; load_corpus is what a notebook run alone calls."""
    s = config.make_settings("guide", dataset_name=str(eli5_folder), num_examples=20, run_dir=str(tmp_path))
    from datasets import load_dataset

    page = load_dataset(s.dataset_name, s.dataset_config, split=data.split_name(s), revision=s.dataset_revision).flatten()
    assert data.split_name(s) == "train[:20]"
    assert page.to_list() == data.load_corpus(s).to_list()


def test_counts_words_in_lists_and_strings():
    splits = {"train": Dataset.from_dict({"t": [["a b", "c"], ["d"]]})}
    assert data.counts(splits, "t") == {"train": {"records": 2, "words": 4}}


def big_text_file(tmp_path, n_lines: int = 2500):
    """Generated science sentences, one a line: several ``map`` batches, hundreds of blocks."""
    import random

    from conftest import SENTENCES

    rng = random.Random(0)
    path = tmp_path / "big.txt"
    path.write_text("\n".join(f"{rng.choice(SENTENCES)} Note {i} adds {rng.randrange(10**6)}." for i in range(n_lines)) + "\n")
    return path


def test_the_stream_split_is_seeded_near_test_size_and_keyed(tmp_path):
    s = config.make_settings("tiny", run_dir=str(tmp_path))
    texts = [f"record number {i:05d}" for i in range(10_000)]  # all of one length
    held = [t for t in texts if data.held_out(t, s)]
    assert abs(len(held) / 10_000 - s.test_size) < 0.02 and held == [t for t in texts if data.held_out(t, s)]
    one, two = ({t for t in texts if data.held_out(t, config.make_settings("tiny", run_dir=str(tmp_path), seed=seed))}
                for seed in (1, 2))
    assert 0.15 < len(one & two) / len(one) < 0.25  # independent draws of 20% share about 20% of their records


def test_a_shuffled_stream_of_several_files_splits_disjoint_and_complete(tmp_path):
    folder = tmp_path / "corpus"
    folder.mkdir()
    for part in range(4):  # 4 parquet files of 60 records: the stream's shards, which a shuffle reorders
        rows = [{"text": f"file {part} record {i}: " + " ".join(["word"] * (i % 7 + 1))} for i in range(60)]
        Dataset.from_list(rows).to_parquet(str(folder / f"part-{part}.parquet"))
    s = config.make_settings("guide", dataset_name=str(folder), text_field="text", num_examples=None,
                             run_dir=str(tmp_path / "run"), streaming=True, max_steps=1)
    stream = data.stream_corpus(s)
    everything = {r["text"] for r in stream}
    train = [r["text"] for r in data.stream_split(stream.shuffle(seed=1, buffer_size=50), s)["train"]]
    test = [r["text"] for r in data.stream_split(stream, s)["test"]]
    assert not set(train) & set(test) and set(train) | set(test) == everything and len(train) + len(test) == 240
