"""Past one machine: training data-parallel under torchrun, and corpora streamed rather than held in memory."""

import math
import os
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import prepare_run
from helpers import assets, config, data, preprocess, runs, train

ROOT = Path(__file__).resolve().parents[1]
TORCHRUN = str(Path(sys.executable).parent / "torchrun")


@pytest.mark.slow
def test_torchrun_trains_on_two_cpu_processes_and_saves_one_model(tmp_path, tokenizer):
    s = prepare_run(tmp_path, tokenizer, num_train_epochs=2, batch_size=8)
    n_train = len(runs.load_dataset(s, "blocks")["train"])
    command = [TORCHRUN, "--standalone", "--nproc_per_node", "2", "-m", "helpers.train", "--profile", "tiny",
               "--run_dir", s.run_dir, "--num_train_epochs", "2", "--batch_size", "8"]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    ran = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert ran.returncode == 0, ran.stderr[-3000:]

    # each process takes half of every global batch (gloo on the CPU), so an epoch is half the steps
    steps = math.ceil(math.ceil(n_train / 2) / s.batch_size) * 2
    for rank in (0, 1):
        assert f"process {rank} of 2: {steps} steps" in ran.stdout, ran.stdout[-2000:]
        # under DDP each process's head ran at the masked positions only: about mlm_probability of them
        share = float(re.search(rf"process {rank} of 2: .*the vocabulary head ran at ([\d.]+)% of the positions", ran.stdout).group(1))
        assert 10 < share < 20, share
    log = runs.read_json(s, "train_log.json")
    assert log["steps"] == steps and len(log["history"]["eval"]) == 3  # before training, after each epoch
    assert assets.load_model(str(runs.path(s, "model")))
    assert sorted(p.name for p in s.run_path.iterdir() if p.name.startswith(".")) == []  # no half-written temporaries


def big_text_file(tmp_path, n_lines: int = 2500) -> Path:
    """Generated science sentences, one per line: several ``datasets.map`` batches, hundreds of blocks."""
    from conftest import SENTENCES

    rng = random.Random(0)
    lines = [f"{rng.choice(SENTENCES)} Note {i} adds {rng.randrange(10**6)} to the count." for i in range(n_lines)]
    path = tmp_path / "big.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_a_stream_gives_the_blocks_the_in_memory_path_gives(tmp_path, tokenizer):
    from datasets import DatasetDict

    s = config.make_settings("tiny", source=str(big_text_file(tmp_path)), run_dir=str(tmp_path / "run"), block_size=64)
    streamed = [block["input_ids"] for block in preprocess.stream_blocks(data.stream_corpus(s), tokenizer, s)]
    corpus = data.load_corpus(s)
    built = preprocess.build_blocks(DatasetDict(train=corpus, test=corpus.select(range(50))), tokenizer, s)
    assert len(corpus) > 2000 and len(streamed) > 4 * s.batch_size
    assert streamed == built["train"]["input_ids"]


def test_the_stream_split_is_seeded_and_near_test_size(tmp_path):
    s = config.make_settings("tiny", run_dir=str(tmp_path))
    texts = [f"record number {i}" for i in range(10_000)]
    held = [t for t in texts if data.held_out(t, s)]
    assert abs(len(held) / 10_000 - s.test_size) < 0.02
    assert held == [t for t in texts if data.held_out(t, s)]
    assert held != [t for t in texts if data.held_out(t, config.make_settings("tiny", run_dir=str(tmp_path), seed=7))]


def test_two_seeds_draw_independent_test_sets(tmp_path):
    """CRC32 of "seed:text" is affine: for texts of one length, seeds 1 and 2 held out disjoint sets (0% overlap)."""
    texts = [f"record number {i:05d}" for i in range(10_000)]  # all of one length
    one, two = ({t for t in texts if data.held_out(t, config.make_settings("tiny", run_dir=str(tmp_path), seed=seed))}
                for seed in (1, 2))
    overlap = len(one & two) / len(one)
    assert 0.15 < overlap < 0.25, overlap  # independent draws of 20% share about 20% of their records


def test_a_shuffled_stream_of_several_files_splits_disjoint_and_complete(tmp_path):
    from datasets import Dataset

    folder = tmp_path / "corpus"
    folder.mkdir()
    for part in range(4):  # 4 parquet files of 60 records: the stream's shards, which a shuffle reorders
        rows = [{"text": f"file {part} record {i}: " + " ".join(["word"] * (i % 7 + 1))} for i in range(60)]
        Dataset.from_list(rows).to_parquet(str(folder / f"part-{part}.parquet"))
    s = config.make_settings("guide", dataset_name=str(folder), text_field="text", num_examples=None,
                             run_dir=str(tmp_path / "run"), streaming=True, max_steps=1)
    stream = data.stream_corpus(s)
    everything = {r["text"] for r in stream}
    for seed in (1, 2):  # training reads its part in a shuffled order (files and records), evaluation in file order
        train_texts = [r["text"] for r in data.stream_split(stream.shuffle(seed=seed, buffer_size=50), s)["train"]]
        test_texts = [r["text"] for r in data.stream_split(stream, s)["test"]]
        assert not set(train_texts) & set(test_texts), "a record in both train and test"
        assert set(train_texts) | set(test_texts) == everything and len(everything) == 240, "a record in neither"
        assert len(train_texts) + len(test_texts) == 240


def test_a_stream_needs_max_steps():
    with pytest.raises(config.SettingsError, match="streaming=True needs max_steps"):
        config.make_settings("tiny", streaming=True)


@pytest.mark.slow
@pytest.mark.parametrize("whole_word_mask", [False, True])  # whole words: the streamed blocks carry their offsets
def test_training_from_a_stream_runs_max_steps_and_saves_the_model(tmp_path, whole_word_mask):
    s = config.make_settings("tiny", source=str(big_text_file(tmp_path)), run_dir=str(tmp_path / "run"),
                             streaming=True, max_steps=8, batch_size=8, block_size=64, whole_word_mask=whole_word_mask)
    result = train.run(s)
    assert result.steps == 8
    assert [e["step"] for e in result.history["eval"]] == [0, 2, 4, 6, 8]  # before training, each quarter
    assert result.history["eval"][-1]["loss"] < result.history["eval"][0]["loss"]
    assert assets.load_model(str(runs.path(s, "model")))
    assert not runs.path(s, "blocks").exists()  # nothing of notebooks 01-03 was needed or written


@pytest.mark.slow
def test_a_streamed_run_folder_is_scored_on_what_the_stream_held_out_and_04_still_runs(tmp_path, tokenizer, capsys):
    from helpers import steps

    lines = big_text_file(tmp_path)
    run_dir = str(tmp_path / "run")
    train.main(["--source", str(lines), "--run_dir", run_dir, "--streaming", "true", "--max_steps", "4",
                "--batch_size", "8", "--block_size", "64"])
    s = steps.settings({"run_dir": run_dir}, "05_evaluate")  # 05 carries on with the streamed run's settings
    assert s.streaming
    masks = steps.eval_masks(s, tokenizer)
    # independent of the stream's machinery: the held-out lines tokenized by hand, in file order, cut into blocks
    held = [line for line in lines.read_text().splitlines() if line.strip() and data.held_out(line, s)]
    ids = [i for row in tokenizer(held[:1000], verbose=False)["input_ids"] for i in row]
    first = torch.tensor(masks[0]["input_ids"])
    labels = torch.tensor(masks[0]["labels"])
    restored = torch.where(labels != -100, labels, first)
    assert restored.tolist() == ids[:64]
    assert steps.settings({"run_dir": run_dir}, "06_infer").streaming
    assert runs.path(s, "model").exists()
    train.finetuned(s)  # the streamed model, read, not trained again
    assert "trained it" not in capsys.readouterr().out
    in_memory = steps.settings({"run_dir": run_dir}, "04_train")  # 04 lists streaming: None is in memory
    assert not in_memory.streaming and in_memory.max_steps is None
    train_blocks, eval_masks = steps.training_data(in_memory, tokenizer)  # 04's inputs, built in memory beside
    assert len(train_blocks) > 0 and runs.path(in_memory, "eval_masks").exists()


def first_training_masks(settings, tokenizer, rank: int, monkeypatch) -> torch.Tensor:
    """The masked positions of the first training batch that process ``rank`` would draw."""
    from datasets import Dataset

    monkeypatch.setenv("RANK", str(rank))  # WORLD_SIZE stays 1: no process group, only the rank's seed
    rows = Dataset.from_dict({"input_ids": torch.randint(1000, len(tokenizer), (16, 64), generator=torch.Generator().manual_seed(0)).tolist()})
    trainer = train.make_trainer(settings, assets.load_model(assets.TINY_MODEL, at_masks=True), tokenizer, rows, rows)
    return next(iter(trainer.get_train_dataloader()))["labels"] != -100


def test_each_data_parallel_process_masks_other_positions_and_a_rerun_the_same(settings, tokenizer, monkeypatch):
    rank0, rank1 = (first_training_masks(settings, tokenizer, r, monkeypatch) for r in (0, 1))
    assert not torch.equal(rank0, rank1)
    assert (rank0 & rank1).sum() < 0.5 * rank0.sum()  # about 15% of 15% shared, not all
    assert torch.equal(first_training_masks(settings, tokenizer, 1, monkeypatch), rank1)


@pytest.mark.parametrize("variable, name", [("ACCELERATE_USE_FSDP", "FSDP"), ("ACCELERATE_USE_DEEPSPEED", "DeepSpeed")])
def test_sharded_launchers_are_refused_before_any_work(settings, tokenizer, monkeypatch, variable, name):
    monkeypatch.setenv(variable, "true")  # what `accelerate launch --use_fsdp` (or DeepSpeed) sets
    with pytest.raises(config.SettingsError, match=f"{name} is not supported.*torchrun --nproc_per_node N"):
        train.run(settings)
    assert not settings.run_path.exists()
