"""The run folder and each notebook's inputs: read when made with these settings by this code, made again when
missing, damaged or made by other code, refused when made with other settings; nothing half-written after a crash."""

import hashlib
import json
from pathlib import Path

import pytest
from conftest import small_run

from helpers import config, runs, steps


def test_a_missing_input_is_made_with_the_earlier_notebooks_calls_then_read(tmp_path, capsys):
    s = config.make_settings("tiny", num_examples=200, seed=7, run_dir=str(tmp_path / "run"))
    blocks, merged = steps.load("blocks", s)
    out = capsys.readouterr().out
    assert "splits was missing: made it with 01_load's calls" in out and "blocks was missing" in out
    assert (s.run_path / "splits" / "made_with.json").exists() and (s.run_path / "blocks" / "made_with.json").exists()
    again, _ = steps.load("blocks", s)
    assert capsys.readouterr().out == f"read {s.run_path / 'blocks'}, made by 02_preprocess\n"
    assert again["train"]["input_ids"] == blocks["train"]["input_ids"]
    assert set(merged.pinned) >= set(runs.DEPENDS["blocks"])  # every later input must agree with what made these


def test_start_is_make_settings_then_load_of_each_input_in_turn(tmp_path, capsys):
    run = str(tmp_path / "run")
    steps.load("eval_masks", config.make_settings("tiny", num_examples=200, seed=7, run_dir=run))  # made, then read below
    settings, blocks, masks = steps.start("tiny", "blocks", "eval_masks", num_examples=200, seed=7, run_dir=run)
    by_hand = config.make_settings("tiny", num_examples=200, seed=7, run_dir=run)
    read_blocks, by_hand = steps.load("blocks", by_hand)
    read_masks, by_hand = steps.load("eval_masks", by_hand)
    assert settings == by_hand and settings.pinned == by_hand.pinned
    assert blocks["test"]["input_ids"] == read_blocks["test"]["input_ids"] and masks["labels"] == read_masks["labels"]


def test_a_whole_word_run_reads_02s_tokens_with_their_spans_and_masks_whole_words(tmp_path):
    from helpers import assets, collate

    run = str(tmp_path / "run")
    _, plain = steps.start("tiny", "blocks", num_examples=200, run_dir=run)
    s, masks, words, checkpoint = steps.start("tiny", "eval_masks", "blocks", "model_checkpoint", whole_word_mask=True,
                                              num_examples=200, run_dir=run)
    assert "offset_mapping" not in plain["test"].column_names and (s.run_path / "word_blocks" / "made_with.json").exists()
    assert words["test"]["input_ids"] == plain["test"]["input_ids"]  # 02's tokens, each with its span
    tokenizer = assets.load_tokenizer(checkpoint)
    parts = [[labelled for _, labelled in word] for block, labels in zip(words["test"], masks["labels"])
             for word in collate.words_of(block, labels, tokenizer)]  # words as the collator reads them, by hand
    assert any(len(p) > 1 and all(p) for p in parts) and all(all(p) or not any(p) for p in parts)  # whole or nothing


def test_word_blocks_follow_02s_blocks_when_02_runs_again(tmp_path, capsys):
    import shutil

    run, other = str(tmp_path / "run"), str(tmp_path / "other")
    steps.start("tiny", "blocks", whole_word_mask=True, num_examples=200, run_dir=run)  # word blocks of 128 tokens
    steps.start("tiny", "blocks", num_examples=200, block_size=64, run_dir=other)
    steps.start("tiny", "blocks", whole_word_mask=True, num_examples=200, run_dir=run)
    assert "read" in capsys.readouterr().out.splitlines()[-1]  # made once, then read
    shutil.rmtree(Path(run) / "blocks")
    shutil.copytree(Path(other) / "blocks", Path(run) / "blocks")  # as if 02 ran again with block_size 64
    s, words = steps.start("tiny", "blocks", whole_word_mask=True, run_dir=run)  # 03 lists no block size
    assert "word_blocks was made from other inputs" in capsys.readouterr().out
    assert s.block_size == 64 and {len(ids) for ids in words["train"]["input_ids"]} == {64}


def test_the_record_holds_the_settings_and_the_code_that_made_the_artifact(tmp_path):
    import datasets
    import transformers

    s = small_run(tmp_path)
    record = json.loads((s.run_path / "eval_masks" / "made_with.json").read_text())
    assert record["settings"] == {k: getattr(s, k) for k in runs.DEPENDS["eval_masks"]}
    import torch

    files = sorted((Path(runs.__file__).parent).rglob("*.py"))
    digest = hashlib.sha256(b"".join(f.read_bytes() for f in files)).hexdigest()[:12]  # the helpers, hashed by hand
    assert record["code"] == {"helpers": digest, "transformers": transformers.__version__,
                              "datasets": datasets.__version__, "torch": torch.__version__.split("+")[0]}


def test_a_notebook_carries_on_with_the_settings_its_input_was_made_with(tmp_path):
    made = small_run(tmp_path, seed=7, block_size=64)
    later = config.make_settings("tiny", mlm_probability=None, run_dir=made.run_dir)  # 03 lists no seed, no block size
    _, later = steps.load("blocks", later)
    assert (later.seed, later.block_size, later.num_examples) == (7, 64, 200)


def test_an_input_made_with_other_settings_is_refused_with_the_fix_and_kept(tmp_path):
    made = small_run(tmp_path, seed=7)
    before = (made.run_path / "blocks" / "made_with.json").read_text()
    giving_seed = config.make_settings("tiny", seed=42, run_dir=made.run_dir)  # a notebook whose cell says seed = 42
    with pytest.raises(config.SettingsError, match=r"blocks was made with seed=7, and this notebook has seed=42: set "
                                                   r"seed=7 in the parameters cell \(or None.*rerun the notebooks from 01_load"):
        steps.load("blocks", giving_seed)
    assert (made.run_path / "blocks" / "made_with.json").read_text() == before
    _, left_open = steps.load("blocks", config.make_settings("tiny", seed=None, run_dir=made.run_dir))
    assert left_open.seed == 7  # None: what the input was made with


def test_what_an_input_brings_must_still_make_sense_with_the_notebooks_settings(tmp_path):
    s = config.make_settings("tiny", source="wiki-other", ood_source="wiki-science", num_examples=200,
                             run_dir=str(tmp_path / "run"))
    steps.load("splits", s)  # made from the other topics, as a control would be
    with pytest.raises(config.SettingsError, match="ood_source='wiki-other' is the corpus itself"):
        steps.load("splits", config.make_settings("tiny", run_dir=s.run_dir))  # 05's default: the corpus itself


def test_an_input_whose_input_changed_is_made_again_from_it_never_mixed(tmp_path):
    import shutil

    made = small_run(tmp_path)  # blocks and eval masks of 128 tokens
    other = small_run(tmp_path / "other", block_size=64)
    shutil.rmtree(made.run_path / "blocks")
    shutil.copytree(other.run_path / "blocks", made.run_path / "blocks")  # as if 02 ran again with block_size 64, not 03
    masks, settings = steps.load("eval_masks", config.make_settings("tiny", run_dir=made.run_dir))
    assert settings.block_size == 64 and {len(ids) for ids in masks["input_ids"]} == {64}  # made again from 02's
    assert runs.current(settings, "eval_masks") and steps.load("blocks", settings)[1].block_size == 64
    with pytest.raises(config.SettingsError, match="eval_masks was made with block_size=64, and this notebook has "
                                                   "block_size=128"):  # a value the notebook sets is never overridden
        steps.load("eval_masks", config.make_settings("tiny", run_dir=made.run_dir, block_size=128))


def test_an_input_made_by_other_code_is_made_again_with_the_settings_it_had(tmp_path, capsys, monkeypatch):
    s = small_run(tmp_path, block_size=64)
    capsys.readouterr()
    monkeypatch.setattr(runs, "CODE", {**runs.CODE, "helpers": "another"})
    blocks, later = steps.load("blocks", config.make_settings("tiny", run_dir=s.run_dir))  # a notebook left at None
    assert "blocks was made by other code: made it with 02_preprocess's calls" in capsys.readouterr().out
    assert runs.record(s, "blocks")["code"]["helpers"] == "another" and later.block_size == 64
    assert {len(ids) for ids in blocks["train"]["input_ids"]} == {64}


def test_a_model_made_by_other_code_is_used_and_said_to_be_older(tmp_path, capsys, monkeypatch, model, tokenizer):
    s = small_run(tmp_path)  # blocks: the model is recorded as trained on them
    runs.save(model, s, "model", tokenizer)
    monkeypatch.setattr(runs, "CODE", {**runs.CODE, "helpers": "another"})
    folder, _ = steps.load("model", s)
    assert folder == str(s.run_path / "model") and "by older code or libraries: rerun 04_train" in capsys.readouterr().out


def test_a_damaged_input_is_made_again_with_the_settings_it_had(tmp_path, capsys):
    s = small_run(tmp_path, block_size=64)
    for arrow in (s.run_path / "blocks").rglob("*.arrow"):
        arrow.write_bytes(b"cut short")
    capsys.readouterr()
    blocks, _ = steps.load("blocks", config.make_settings("tiny", run_dir=s.run_dir))
    assert "blocks was damaged (" in capsys.readouterr().out and {len(i) for i in blocks["train"]["input_ids"]} == {64}
    (s.run_path / "blocks" / "made_with.json").write_text('["not", "a record"]')
    assert steps.load("blocks", config.make_settings("tiny", run_dir=s.run_dir))[1].block_size == 128  # no record: missing


def test_a_crash_while_saving_leaves_the_old_artifact_whole_and_no_temporary(tmp_path):
    s = small_run(tmp_path)
    before = sorted(p.name for p in (s.run_path / "blocks").rglob("*"))

    class Crashing:
        def save_to_disk(self, folder):
            Path(folder).mkdir()
            (Path(folder) / "half").write_text("half of it")
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        runs.save(Crashing(), s, "blocks")
    assert sorted(p.name for p in (s.run_path / "blocks").rglob("*")) == before
    assert not [p for p in s.run_path.iterdir() if p.name.startswith(".") and not p.name.endswith("-lock")]  # a lock stays


def test_metrics_belong_to_the_model_they_were_measured_on(tmp_path):
    s = config.make_settings("tiny", run_dir=str(tmp_path / "run"))
    (s.run_path / "model").mkdir(parents=True)
    runs.write_json(s.run_path / "model" / runs.RECORD, {"settings": {"seed": 1}, "code": runs.CODE})
    assert runs.update_metrics(s, perplexity_after=50.0)["perplexity_after"] == 50.0
    assert runs.update_metrics(s, top1=0.3)["perplexity_after"] == 50.0  # merged
    runs.write_json(s.run_path / "model" / runs.RECORD, {"settings": {"seed": 2}, "code": runs.CODE})  # another model
    assert runs.read_metrics(s) == {}
    (s.run_path / "metrics.json").write_text("{cut")
    with pytest.raises(ValueError, match="metrics.json is damaged.*rerun 05_evaluate and 06_infer"):
        runs.read_metrics(s)


def test_records_and_metrics_are_written_whole_with_the_mode_any_file_gets(tmp_path):
    (tmp_path / "plain.txt").write_text("written by open()")
    runs.write_json(tmp_path / "metrics.json", {"perplexity_after": 47.8})
    runs.write_json(tmp_path / "metrics.json", {"perplexity_after": 50.0})  # over the old one
    assert json.loads((tmp_path / "metrics.json").read_text()) == {"perplexity_after": 50.0}
    mode = {p.name: p.stat().st_mode for p in tmp_path.iterdir()}  # nothing else: no scratch file left
    assert mode == {"plain.txt": mode["plain.txt"], "metrics.json": mode["plain.txt"]}  # a temporary file's was 0600
    (tmp_path / "record.json").mkdir()  # a folder where the file should go: the rename fails
    (tmp_path / "record.json" / "kept").write_text("")
    with pytest.raises(OSError):
        runs.write_json(tmp_path / "record.json", {"code": 1})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json", "plain.txt", "record.json"]  # no scratch file


def test_the_corpus_and_model_fingerprints_hash_each_files_name_and_bytes(tmp_path):
    (tmp_path / "a.txt").write_text("one")
    (tmp_path / "b.bin").write_bytes(bytes(range(256)) * 5000)  # over the 1 MiB chunk
    by_hand = hashlib.sha256(b"a.txt" + b"one" + b"b.bin" + bytes(range(256)) * 5000).hexdigest()[:16]
    assert runs.fingerprint(str(tmp_path)) == by_hand
    assert runs.fingerprint("some/hub-name") == "some/hub-name"
    s = config.make_settings("tiny", source=str(tmp_path / "a.txt"))
    assert runs.inputs(s, "splits") == {"corpus": hashlib.sha256(b"a.txt" + b"one").hexdigest()[:16]}


def test_paths_are_shown_relative_to_the_project(tmp_path):
    root = config.project_root()
    assert runs.shown(root / "runs" / "tiny" / "blocks") == "runs/tiny/blocks"
    assert runs.shown(tmp_path / "run") == str(tmp_path / "run")  # outside the project: where it is


def test_the_general_stage_has_a_switch_of_its_own():
    assert config.make_settings("tiny").general_stage and not config.make_settings("guide").general_stage
    assert not config.make_settings("tiny", model="some/folder").general_stage  # a model you name starts as it is
    assert config.make_settings("tiny", model="some/folder", general_stage=True).general_stage


def test_the_general_model_is_made_once_with_04s_recipe_on_the_general_part_of_the_other_text(tmp_path, monkeypatch,
                                                                                                 capsys):
    from helpers import assets, domain, lesson

    monkeypatch.setattr(assets, "CACHE", tmp_path / "cache")
    monkeypatch.setitem(domain.GENERAL, "num_train_epochs", 0.02)  # 3 steps of the recipe
    seen, guide_trainer = [], lesson.guide_trainer  # 04's recipe, each call's arguments kept
    monkeypatch.setattr(lesson, "guide_trainer", lambda *args, **kw: seen.append((args, kw)) or guide_trainer(*args, **kw))
    s = config.make_settings("tiny", num_examples=200, seed=7, run_dir=str(tmp_path / "run"))
    folder = Path(steps.base_model(s))
    assert "not in the cache: making it" in capsys.readouterr().out and folder.parent == tmp_path / "cache"
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors", "tokenizer.json",
                                                         "tokenizer_config.json", "training_args.bin"]  # no checkpoint
    (checkpoint, blocks, eval_dataset, _), recipe = seen[0]
    assert checkpoint == assets.model_path("splade-tiny") and eval_dataset is None
    assert recipe["learning_rate"] == config.make_settings("tiny").learning_rate and recipe["eval_strategy"] == "no"
    # its blocks are the general part's text, tokenized and concatenated by hand: never 05's control or held-out part
    tokenizer = assets.load_tokenizer("splade-tiny")
    texts, size, by_hand = domain.other_text(s)["general"]["text"], config.make_settings("tiny").block_size, []
    for start in range(0, len(texts), 1000):  # datasets.map's batches: each drops its own remainder
        ids = [i for text in texts[start:start + 1000] for i in tokenizer(text)["input_ids"]]
        by_hand += ids[:len(ids) // size * size]
    assert [i for block in blocks["input_ids"] for i in block] == by_hand
    made = (folder / "model.safetensors").stat().st_mtime_ns
    assert steps.base_model(s) == str(folder) and (folder / "model.safetensors").stat().st_mtime_ns == made
    assert len(seen) == 1  # read from the cache, not trained again


def test_the_general_models_folder_is_named_by_its_text_its_model_and_the_code_not_by_the_runs_settings(tmp_path,
                                                                                                         monkeypatch):
    text = tmp_path / "other.txt"
    text.write_text("".join(f"Line {i} of some general text about the weather and the sea.\n" for i in range(40)))
    s = config.make_settings("tiny", ood_source=str(text), run_dir=str(tmp_path / "run"))
    folder = steps.general_folder(s)
    assert steps.general_folder(config.make_settings("tiny", ood_source=str(text), learning_rate=1e-3, seed=1)) == folder
    text.write_text(text.read_text().replace("sea", "hills"))
    assert steps.general_folder(s) != folder  # an edited text: another model
    text.write_text(text.read_text().replace("hills", "sea"))
    assert steps.general_folder(s) == folder
    monkeypatch.setattr(runs, "CODE", {**runs.CODE, "helpers": "other"})
    assert steps.general_folder(s) != folder  # other code keeps a model of its own, and leaves this one


def test_two_processes_making_the_general_model_at_once_make_it_once_and_both_read_it(tmp_path):
    import os
    import subprocess
    import sys

    script = ("from helpers import config, domain, steps; domain.GENERAL['num_train_epochs'] = 0.02; "
              "print('folder', steps.base_model(config.make_settings('tiny', run_dir='unused')))")
    env = {**os.environ, "COURSE_CACHE": str(tmp_path / "cache"), "TQDM_DISABLE": "1"}
    both = [subprocess.Popen([sys.executable, "-c", script], cwd=config.project_root(), env=env, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in both]
    assert [p.returncode for p in both] == [0, 0], [err[-2000:] for _, err in outs]
    assert sum(out.count("making it") for out, _ in outs) == 1  # the second waited at the lock, then read it
    folders = {line for out, _ in outs for line in out.splitlines() if line.startswith("folder ")}
    assert len(folders) == 1 and Path(folders.pop().split(" ", 1)[1], "model.safetensors").exists()


def test_a_notebook_refuses_a_setting_its_page_would_ignore_and_writes_nothing(tmp_path):
    run = tmp_path / "run"  # 04's TrainingArguments take no max_steps: set in a notebook, it would be recorded, not applied
    with pytest.raises(config.SettingsError, match=r"without \['max_steps'\].*python -m helpers.train"):
        steps.start("tiny", "blocks", max_steps=5, run_dir=str(run))
    assert not run.exists()
    assert steps.start("tiny", max_steps=None, run_dir=str(run))[0].max_steps is None  # None: not given, as everywhere


def test_an_edited_corpus_is_tokenized_again_not_served_from_the_old_blocks(tmp_path, capsys):
    from helpers import assets

    corpus = tmp_path / "corpus.txt"
    corpus.write_text("".join(f"Record {i} says that the river is blue.\n" for i in range(80)))
    s = config.make_settings("tiny", source=str(corpus), block_size=16, general_stage=False, run_dir=str(tmp_path / "run"))
    before, _ = steps.load("blocks", s)
    corpus.write_text(corpus.read_text().replace("blue", "green"))
    capsys.readouterr()
    after, _ = steps.load("blocks", s)
    assert "splits was made from other inputs" in capsys.readouterr().out
    green = assets.load_tokenizer("splade-tiny").convert_tokens_to_ids("green")
    assert green in sum(after["train"]["input_ids"], []) and green not in sum(before["train"]["input_ids"], [])


def test_a_finished_run_is_not_resumed_on_an_edited_corpus(tmp_path, capsys):
    from safetensors.torch import load_file

    corpus = tmp_path / "corpus.txt"
    corpus.write_text("".join(f"Record {i} says that the river is blue and wide.\n" for i in range(200)))
    s = config.make_settings("tiny", source=str(corpus), block_size=32, max_steps=2, general_stage=False,
                             run_dir=str(tmp_path / "run"))
    folder, _ = steps.train_model(s)
    first = load_file(f"{folder}/model.safetensors")
    corpus.write_text(corpus.read_text().replace("blue", "green"))
    steps.load("eval_masks", s)  # 01-03 again, on the edited corpus
    with pytest.raises(config.SettingsError, match="model was trained on other blocks .* rerun 04_train"):
        steps.load("model", s)  # 05 refuses the old model, with the fix
    capsys.readouterr()
    steps.train_model(s)
    assert "resuming from" not in capsys.readouterr().out
    second = load_file(f"{folder}/model.safetensors")
    assert max(float((first[k] - second[k]).abs().max()) for k in first) > 0
    assert steps.load("model", s)[0] == folder


def test_05_reads_the_base_the_model_started_from_after_a_code_change_or_says_it_is_gone(tmp_path, monkeypatch, capsys):
    import shutil

    from helpers import assets, domain

    monkeypatch.setattr(assets, "CACHE", tmp_path / "cache")
    monkeypatch.setitem(domain.GENERAL, "num_train_epochs", 0.02)  # 3 steps
    given = dict(num_examples=200, run_dir=str(tmp_path / "run"))
    folder, s = steps.train_model(config.make_settings("tiny", max_steps=2, **given))
    base = steps.base_model(s)
    assert runs.record(s, "model")["inputs"]["base"] == base  # the record names the base it started from
    monkeypatch.setattr(runs, "CODE", {**runs.CODE, "helpers": "other"})  # any edit of helpers/*.py
    assert steps.general_folder(s) != Path(base)  # today's code would make another general model
    capsys.readouterr()
    _, model, started = steps.start("tiny", "model", "base_model", **given)
    assert started == base and "the one the fine-tuned model started from" in capsys.readouterr().out
    assert not steps.general_folder(s).exists()  # nothing trained: 05 compares the model with its own base
    shutil.rmtree(base)
    with pytest.raises(config.SettingsError, match="changed or gone since: rerun 04_train"):
        steps.start("tiny", "model", "base_model", **given)


def test_a_second_writer_of_an_artifact_waits_and_neither_loses_its_work(tmp_path):
    import threading
    import time

    target, started, order = tmp_path / "run" / "blocks", threading.Event(), []

    def write(who: str) -> None:
        with runs.atomic(target) as scratch:
            scratch.mkdir()
            started.set()
            time.sleep(0.5)  # the other writer starts meanwhile
            (scratch / "who").write_text(who)
            order.append(who)

    second = threading.Thread(target=lambda: started.wait() and write("second"))
    second.start()
    write("first")
    second.join()
    assert order == ["first", "second"] and (target / "who").read_text() == "second"
    assert not [p for p in target.parent.iterdir() if p.name.startswith(".blocks.")]  # no temporary folder left
