"""05 evaluate: each figure against an independent computation (a hand loop over the standard forward, numpy, counts)."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from datasets import Dataset

from helpers import assets, collate, config, evaluate, lesson


@pytest.fixture(scope="module")
def masks(tokenizer):
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(1000, len(tokenizer), (24, 32), generator=generator)
    ids[:, 0], ids[:, -1] = tokenizer.cls_token_id, tokenizer.sep_token_id
    s = config.make_settings("tiny", run_dir="/tmp/unused")
    return collate.make_eval_masks(Dataset.from_dict({"input_ids": ids.tolist()}), tokenizer, s)


def by_hand(model, masks):
    """The standard forward, one row at a time: the summed cross-entropy and the count of picked tokens, and each
    picked token's rank of the right answer."""
    model.eval()
    total, count, ranks = 0.0, 0, []
    with torch.no_grad():
        for row in masks:
            ids, labels = torch.tensor([row["input_ids"]]), torch.tensor([row["labels"]])
            logits = model(input_ids=ids, attention_mask=torch.tensor([row["attention_mask"]])).logits[0]
            for position in (labels[0] != -100).nonzero().flatten().tolist():
                target = labels[0, position]
                total += float(F.cross_entropy(logits[position], target))
                ranks.append(int((logits[position] > logits[position, target]).sum()))
                count += 1
    return total, count, np.array(ranks)


def test_score_is_the_token_weighted_loss_and_top_k_a_hand_loop_gives(model, masks):
    total, count, ranks = by_hand(model, masks)
    for fast in (True, False):
        scores = evaluate.score(assets.load_model(assets.TINY_MODEL, at_masks=fast), masks, batch_size=5)
        assert scores.tokens == count and scores.perplexity == pytest.approx(math.exp(total / count), rel=1e-5)
        assert scores.accuracy == {1: pytest.approx((ranks < 1).mean()), 5: pytest.approx((ranks < 5).mean())}


def test_the_pages_perplexity_weighting_each_batch_by_its_picked_tokens_gives_the_per_token_figure(masks):
    """05's perplexity (a mean per batch, weighted by its count) against the hand loop, one token at a time."""
    from torch.utils.data import DataLoader

    model = assets.load_model(assets.TINY_MODEL, at_masks=True).eval()
    total, count, _ = by_hand(assets.load_model(assets.TINY_MODEL), masks)
    assert lesson.perplexity(model, masks, batch_size=7) == pytest.approx(math.exp(total / count), rel=1e-5)
    mean_of_means = np.mean([model(**b).loss.item() for b in DataLoader(masks.with_format("torch"), batch_size=7)])
    assert not math.isclose(mean_of_means, total / count, rel_tol=1e-6)  # the guide's way is another figure


def test_the_kinds_of_picked_positions_by_hand(tokenizer):
    m = tokenizer.mask_token_id
    ids = torch.tensor([[101, m, 2000, 2001, 2002, 102]])
    labels = torch.tensor([[-100, 2003, 2000, 2005, -100, -100]])
    kinds = evaluate.kinds(ids, labels, m)
    assert [kinds[k][0].nonzero().flatten().tolist() for k in evaluate.KINDS] == [[1], [3], [2]]


def test_accuracy_by_kind_adds_up_to_the_accuracy_over_every_picked_token(model, masks, tokenizer):
    scores = evaluate.score(model, masks, mask_token_id=tokenizer.mask_token_id)
    counts = {k: int(v.sum()) for k, v in evaluate.kinds(torch.tensor(masks["input_ids"]), torch.tensor(masks["labels"]),
                                                          tokenizer.mask_token_id).items()}
    weighted = sum(counts[k] * scores.by_kind[k][1] for k in scores.by_kind) / sum(counts.values())
    assert weighted == pytest.approx(scores.accuracy[1])
    assert scores.by_kind["kept"][1] > scores.by_kind["masked"][1]  # the answer in view is easier


def test_the_unigram_table_is_counts_by_hand(tokenizer, masks):
    blocks = {"input_ids": [[101, 2000, 2000, 2001, 102], [101, 2001, 2000, 2002, 102]]}
    table = lesson.unigram(blocks, tokenizer, len(tokenizer))
    total = 6 + len(tokenizer)  # six ordinary tokens, add-one smoothing; [CLS] and [SEP] are not counted
    assert float(table[2000]) == pytest.approx(4 / total) and float(table[101]) == pytest.approx(1 / total)


def test_the_top_k_module_by_hand():
    metric = evaluate.accuracy_metric()
    assert metric.compute(predictions=[[3, 7], [5, 2], [1, 9]], references=[7, 5, 4], k=(1, 2)) == \
        {"top1_accuracy": pytest.approx(1 / 3), "top2_accuracy": pytest.approx(2 / 3)}
    with pytest.raises(ValueError, match="needs at least 5 guesses"):
        metric.compute(predictions=[[1, 2]], references=[1], k=(1, 5))
