"""04's plain PyTorch loop: on the same batches, the losses Trainer logs."""

import pytest
from conftest import prepare_run

from helpers import assets, collate, loop, runs, train


def start(s):
    """The same starting model for both sides, dropout off (the one randomness the two do not share)."""
    return loop.without_dropout(assets.load_model(s.model, at_masks=s.masked_head))


@pytest.mark.slow
@pytest.mark.parametrize("masked_head", [True, False])
def test_the_plain_loop_gives_trainers_losses_on_the_same_batches(tmp_path, tokenizer, masked_head):
    s = prepare_run(tmp_path, tokenizer, batch_size=8, masked_head=masked_head)
    blocks = runs.load_dataset(s, "blocks")["train"].select(range(36))  # 5 batches an epoch, the last one short
    steps = 12  # across two epoch boundaries: the sampler's order is drawn again each epoch
    expected = train.trainer_losses(s, start(s), tokenizer, blocks, steps)

    def plain(seed):
        return loop.train_loop(start(s), blocks, collate.TrainEvalCollator(tokenizer, s), steps=steps,
                               batch_size=s.batch_size, learning_rate=s.learning_rate, weight_decay=s.weight_decay, seed=seed)

    found = plain(s.seed)
    assert len(found) == len(expected) == steps
    assert found == pytest.approx(expected, abs=1e-4)  # float arithmetic in another order, no more
    assert expected[-1] < expected[0]  # it trained
    # the comparison can fail: batches in another order give other losses from the second step on
    assert plain(s.seed + 1)[1:] != pytest.approx(expected[1:], abs=1e-4)


def test_without_dropout_turns_every_dropout_off():
    import torch

    small = loop.without_dropout(assets.load_model(assets.TINY_MODEL)).train()
    ids = torch.tensor([[101, 2023, 2003, 1037, 3231, 102]])
    assert torch.equal(small(input_ids=ids).logits, small(input_ids=ids).logits)  # training mode, yet the same twice
