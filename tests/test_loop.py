"""04's plain PyTorch loop: on the same batches, the losses Trainer logs; under torchrun, one model."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import small_run

from helpers import assets, collate, lesson, steps, train


def start(s):
    """The same starting model for both sides, dropout off (the one randomness the two do not share)."""
    return lesson.without_dropout(assets.load_model(s.model, at_masks=s.masked_head))


def trainer_losses(s, tokenizer, blocks, n_steps: int) -> list[float]:
    """Trainer's own losses, logged at every step of a short run (04's comparison)."""
    trainer = train.make_trainer(s, start(s), tokenizer, blocks, None, max_steps=n_steps, logging_steps=1,
                                 eval_strategy="no", save_strategy="no", disable_tqdm=True)
    trainer.train()
    return [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]


@pytest.mark.parametrize("masked_head", [True, False])
def test_the_plain_loop_gives_trainers_losses_on_the_same_batches(tmp_path, tokenizer, masked_head):
    s = small_run(tmp_path, batch_size=8, masked_head=masked_head)
    blocks = steps.load("blocks", s)[0]["train"].select(range(36))  # 5 batches an epoch, the last one short
    n_steps = 12  # across two epoch boundaries: the sampler's order is drawn again each epoch
    expected = trainer_losses(s, tokenizer, blocks, n_steps)

    def plain(seed):
        masks = collate.SeededMasks(collate.make_collator(tokenizer, s), seed=s.seed)
        return lesson.train_loop(start(s), blocks, masks, steps=n_steps, batch_size=s.batch_size,
                               learning_rate=s.learning_rate, weight_decay=s.weight_decay, seed=seed)

    found = plain(s.seed)
    assert len(found) == len(expected) == n_steps
    assert found == pytest.approx(expected, abs=1e-4)  # float arithmetic in another order, no more
    assert expected[-1] < expected[0]  # it trained
    # the comparison can fail: batches in another order give other losses from the second step on
    assert plain(s.seed + 1)[1:] != pytest.approx(expected[1:], abs=1e-4)


def test_without_dropout_turns_every_dropout_off():
    import torch

    small = lesson.without_dropout(assets.load_model(assets.TINY_MODEL)).train()
    ids = torch.tensor([[101, 2023, 2003, 1037, 3231, 102]])
    assert torch.equal(small(input_ids=ids).logits, small(input_ids=ids).logits)  # training mode, yet the same twice


TWO_PROCESSES = """
import os, sys
from helpers import assets, collate, config, lesson, steps
s = config.make_settings("tiny", run_dir=sys.argv[1], batch_size=8)
blocks = steps.load("blocks", s)[0]["train"].select(range(32))
masks = collate.SeededMasks(collate.make_collator(assets.load_tokenizer(s.model), s), seed=s.seed)
masks.rank = int(os.environ["RANK"])
model = assets.load_model(s.model, at_masks=True)
losses = lesson.train_loop(model, blocks, masks, steps=4, batch_size=8, learning_rate=s.learning_rate, seed=s.seed)
weights = sum(float(p.detach().double().sum()) for p in model.parameters())
print(f"rank {masks.rank}: {len(losses)} steps, first loss {losses[0]:.6f}, weights {weights:.6f}", flush=True)
"""


@pytest.mark.slow
def test_the_loop_runs_under_torchrun_each_process_its_batches_one_model(tmp_path):
    s = small_run(tmp_path, batch_size=8)
    script = tmp_path / "two.py"
    script.write_text(TWO_PROCESSES)
    root = Path(__file__).resolve().parents[1]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(root))
    ran = subprocess.run([str(Path(sys.executable).parent / "torchrun"), "--standalone", "--nproc_per_node", "2",
                          str(script), s.run_dir], cwd=root, env=env, capture_output=True, text=True, timeout=300)
    assert ran.returncode == 0, ran.stderr[-3000:]
    # the two processes share one stdout, so a line of one may run into the other's: read the figures wherever they are
    found = sorted(re.findall(r"rank (\d): (\d+) steps, first loss ([\d.]+), weights ([\d.]+)", ran.stdout))
    assert [(rank, n) for rank, n, _, _ in found] == [("0", "4"), ("1", "4")], ran.stdout[-2000:]
    first = [loss for _, _, loss, _ in found]
    weights = [w for _, _, _, w in found]
    assert first[0] != first[1]  # each process its own share of the batches
    assert weights[0] == weights[1]  # gradients averaged across the two: one model
