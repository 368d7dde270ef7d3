import math

import torch
import torch.nn.functional as F
from datasets import Dataset

from helpers import collate, evaluate


def eval_set(tokenizer, settings, n_blocks=12):
    generator = torch.Generator().manual_seed(1)
    ids = torch.randint(2000, 20000, (n_blocks, 32), generator=generator)
    return collate.make_eval_masks(Dataset.from_dict({"input_ids": ids.tolist()}), tokenizer, settings)


def test_mean_loss_counts_every_masked_token_once(model, tokenizer, settings):
    masks = eval_set(tokenizer, settings)
    batch = masks.with_format("torch")[:]
    with torch.no_grad():
        logits = model.eval()(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    expected = F.cross_entropy(logits.flatten(0, 1), batch["labels"].flatten(), ignore_index=collate.IGNORE).item()
    # batches of 5 over 12 rows: unequal batches, where a mean of batch means would differ
    assert math.isclose(evaluate.mean_loss(model, masks, batch_size=5), expected, rel_tol=1e-5)
    assert evaluate.masked_tokens(masks) == int((batch["labels"] != collate.IGNORE).sum())


def test_perplexity_is_the_same_at_every_call(model, tokenizer, settings):
    masks = eval_set(tokenizer, settings)
    first = evaluate.perplexity(model, masks, batch_size=4)
    assert first == evaluate.perplexity(model, masks, batch_size=4)
    assert first == math.exp(evaluate.mean_loss(model, masks, batch_size=4))


def test_a_batch_with_no_masked_token_is_skipped_not_nan_both_ways(model, tokenizer, settings):
    masks = eval_set(tokenizer, settings)
    with_empty = masks.to_dict()
    with_empty["labels"][:4] = [[collate.IGNORE] * 32] * 4  # the first batch of 4 has nothing to score
    empty_first = Dataset.from_dict(with_empty)
    for at_masks in (True, False):
        loss = evaluate.mean_loss(model, empty_first, batch_size=4, head_only_at_masks=at_masks)
        assert math.isfinite(loss)
    assert math.isclose(evaluate.mean_loss(model, empty_first, 4, True), evaluate.mean_loss(model, empty_first, 4, False), rel_tol=1e-5)
