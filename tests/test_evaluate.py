import itertools
import math
import os

import pytest
import torch
import torch.nn.functional as F
from datasets import Dataset
from transformers import BertConfig, BertForMaskedLM

from helpers import collate, evaluate


def eval_set(tokenizer, settings, n_blocks=12):
    generator = torch.Generator().manual_seed(1)
    ids = torch.randint(2000, 20000, (n_blocks, 32), generator=generator)
    return collate.make_eval_masks(Dataset.from_dict({"input_ids": ids.tolist()}), tokenizer, settings)


def small_model(seed=0):
    """A small random BertForMaskedLM over the tiny model's vocabulary: the plain class, with dropout on by default."""
    torch.manual_seed(seed)
    return BertForMaskedLM(BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                      intermediate_size=64))


@torch.no_grad()
def hand_perplexity(model, masks) -> float:
    """exp(summed cross-entropy over the labelled tokens / their count), through the plain class's standard forward."""
    model.eval()
    total, count = 0.0, 0
    for row in masks.with_format("torch"):
        logits = BertForMaskedLM.forward(model, input_ids=row["input_ids"][None], attention_mask=row["attention_mask"][None]).logits[0]
        picked = row["labels"] != collate.IGNORE
        total += F.cross_entropy(logits[picked], row["labels"][picked], reduction="sum").item()
        count += int(picked.sum())
    return math.exp(total / count)


def test_mean_loss_counts_every_masked_token_once(model, tokenizer, settings):
    masks = eval_set(tokenizer, settings)
    batch = masks.with_format("torch")[:]
    with torch.no_grad():
        logits = model.eval()(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    expected = F.cross_entropy(logits.flatten(0, 1), batch["labels"].flatten(), ignore_index=collate.IGNORE).item()
    # batches of 5 over 12 rows: unequal batches, where a mean of batch means would differ
    assert math.isclose(evaluate.mean_loss(model, masks, batch_size=5), expected, rel_tol=1e-5)
    assert evaluate.masked_tokens(masks) == int((batch["labels"] != collate.IGNORE).sum())


def test_perplexity_is_a_hand_loop_over_the_standard_forward_even_from_a_model_left_in_training_mode(tokenizer, settings):
    masks = eval_set(tokenizer, settings)
    small = small_model()
    expected = hand_perplexity(small, masks)  # a row at a time: no batching to get wrong
    for at_masks in (True, False):
        for _call in range(2):  # dropout on at every call: the evaluation must switch it off itself
            small.train()
            assert evaluate.perplexity(small, masks, batch_size=5, head_only_at_masks=at_masks) == pytest.approx(expected, rel=1e-5)
            small.train()
            assert evaluate.score(small, masks, batch_size=5, head_only_at_masks=at_masks).perplexity == pytest.approx(expected, rel=1e-5)


def test_a_batch_with_no_masked_token_is_skipped_not_nan_both_ways(model, tokenizer, settings):
    masks = eval_set(tokenizer, settings)
    with_empty = masks.to_dict()
    with_empty["labels"][:4] = [[collate.IGNORE] * 32] * 4  # the first batch of 4 has nothing to score
    empty_first = Dataset.from_dict(with_empty)
    batch = empty_first.with_format("torch")[:]
    with torch.no_grad():
        logits = model.eval()(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    # the mean over the other 8 rows' masked tokens, by hand
    expected = F.cross_entropy(logits.flatten(0, 1), batch["labels"].flatten(), ignore_index=collate.IGNORE).item()
    for at_masks in (True, False):
        loss = evaluate.mean_loss(model, empty_first, batch_size=4, head_only_at_masks=at_masks)
        assert math.isclose(loss, expected, rel_tol=1e-5)


def test_score_counts_top_k_hits_as_the_logits_rank_them_both_ways(model, tokenizer, settings):
    masks = eval_set(tokenizer, settings)
    batch = masks.with_format("torch")[:]
    with torch.no_grad():
        logits = model.eval()(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    picked = batch["labels"] != collate.IGNORE
    top5 = logits[picked].topk(5).indices
    labels = batch["labels"][picked]
    expected = {1: (top5[:, 0] == labels).float().mean().item(), 5: (top5 == labels[:, None]).any(1).float().mean().item()}
    expected_perplexity = math.exp(F.cross_entropy(logits[picked], labels).item())  # every masked token weighs the same
    for at_masks in (True, False):
        scores = evaluate.score(model, masks, batch_size=5, head_only_at_masks=at_masks)
        assert scores.tokens == int(picked.sum())
        assert scores.accuracy == pytest.approx(expected)
        assert scores.perplexity == pytest.approx(expected_perplexity, rel=1e-5)


def test_top_k_accuracy_counts_a_hit_at_any_place_up_to_k(tokenizer, settings):
    masks = eval_set(tokenizer, settings, n_blocks=4)
    labels = torch.tensor(masks["labels"])
    truth = labels[labels != collate.IGNORE]
    metric = evaluate.accuracy_metric()
    wrong = (truth + 1) % 30000
    metric.add_batch(predictions=torch.stack([wrong, truth, wrong, wrong, wrong], 1).tolist(), references=truth.tolist())
    assert metric.compute(k=(1, 2, 5)) == {"top1_accuracy": 0.0, "top2_accuracy": 1.0, "top5_accuracy": 1.0}


def test_the_accuracy_module_loads_with_no_network_and_an_empty_cache(tmp_path):
    import subprocess
    import sys

    env = {**os.environ, "HF_HOME": str(tmp_path / "hf"), "HF_EVALUATE_OFFLINE": "1", "HF_HUB_OFFLINE": "1"}
    code = "from helpers import evaluate; print(evaluate.accuracy_metric().compute(predictions=[[3, 7]], references=[7], k=(1, 2)))"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "{'top1_accuracy': 0.0, 'top2_accuracy': 1.0}" in out.stdout


def test_the_accuracy_module_refuses_too_few_guesses():
    metric = evaluate.accuracy_metric()
    with pytest.raises(ValueError, match="top-5 accuracy needs at least 5 guesses"):
        metric.compute(predictions=[[1, 2]], references=[1], k=(1, 5))


def test_the_unigram_table_is_smoothed_counts_without_special_tokens(tokenizer):
    vocab = 50
    blocks = Dataset.from_dict({"input_ids": [[1, 10, 10, 11, 2], [1, 10, 12, 12, 2]]})

    class Tok:
        all_special_ids = [1, 2]

    probabilities = evaluate.unigram(blocks, Tok(), vocab)
    assert probabilities.sum().item() == pytest.approx(1.0)
    assert probabilities[10].item() == pytest.approx((3 + 1) / (6 + vocab))  # 6 ordinary tokens, add-one
    assert probabilities[1].item() == pytest.approx(1 / (6 + vocab))  # special: never picked, not counted
    masks = Dataset.from_dict({"labels": [[-100, 10, -100, 12, -100]]})
    scores = evaluate.table_scores(probabilities, masks)
    expected = math.exp(-(math.log(probabilities[10]) + math.log(probabilities[12])) / 2)
    assert scores.perplexity == pytest.approx(expected)
    assert scores.accuracy == {1: 0.5, 5: 1.0}  # its guesses, most frequent first: 10, 12, ...


def test_uniform_scores_are_what_a_model_with_flat_logits_scores(tokenizer, settings):
    masks = eval_set(tokenizer, settings, n_blocks=2)
    flat = small_model()
    with torch.no_grad():  # every vocabulary logit 0 at every position: a model that guesses uniformly
        flat.cls.predictions.decoder.weight.zero_()
        flat.cls.predictions.bias.zero_()
    measured = evaluate.score(flat, masks, batch_size=4, top_k=())
    uniform = evaluate.uniform_scores(30522, masks)
    assert uniform.perplexity == pytest.approx(measured.perplexity, rel=1e-5)
    assert uniform.tokens == measured.tokens


def test_uniform_top_k_accuracy_is_the_mean_over_every_ordering_of_the_vocabulary(tokenizer, settings):
    masks = eval_set(tokenizer, settings, n_blocks=2)
    vocab, top_k = 5, (1, 2, 5)
    orders = [list(o) for o in itertools.permutations(range(vocab))]  # uniform guessing: each ordering equally likely
    metric = evaluate.accuracy_metric()
    for truth in range(vocab):
        metric.add_batch(predictions=orders, references=[truth] * len(orders))
    over_every_order = metric.compute(k=top_k)
    assert evaluate.uniform_scores(vocab, masks, top_k).accuracy == pytest.approx(
        {k: over_every_order[f"top{k}_accuracy"] for k in top_k})


def _scores(base_ppl):
    s = evaluate.Scores
    return {"uniform": s(math.log(30522), 10, {1: 0.0, 5: 0.0}), "unigram": s(math.log(1185.6), 10, {1: 0.055, 5: 0.2}),
            "base": s(math.log(base_ppl), 10, {1: 0.052, 5: 0.085}), "fine-tuned": s(math.log(50.0), 10, {1: 0.35, 5: 0.54})}


def test_the_reading_is_written_from_the_figures_either_way_round():
    worse = evaluate.reading(_scores(3524.5))
    assert "does worse than the unigram table" in worse and "3,524.5" in worse and "1,185.6" in worse and "35.0%" in worse
    assert "70.5x lower than before" in worse and "23.7x below the unigram table" in worse  # 3524.5 / 50, 1185.6 / 50
    assert "the first 3.0x only brings it level" in worse
    better = evaluate.reading(_scores(400.0))
    assert "beats the unigram table" in better and "8.0x lower" in better and "level" not in better


def test_the_reading_says_so_when_fine_tuning_did_not_beat_the_references():
    scores = _scores(3524.5)
    scores["fine-tuned"] = evaluate.Scores(math.log(4000.0), 10, {1: 0.01, 5: 0.02})
    scores["base"] = evaluate.Scores(math.log(40000.0), 10, {1: 0.0, 5: 0.0})
    reading = evaluate.reading(scores)
    assert "10.0x lower than before" in reading and "3.4x above the unigram table" in reading
    assert "the base model is 1.3x above that" in reading and "level" not in reading


def test_metrics_keep_the_unigram_perplexity_and_both_accuracies():
    m = evaluate.metrics(_scores(3524.5))
    assert set(m) == {"perplexity_before", "perplexity_after", "perplexity_unigram", "top1_accuracy_before",
                      "top1_accuracy_after", "top5_accuracy_before", "top5_accuracy_after"}
    assert m["perplexity_unigram"] == pytest.approx(1185.6) and m["top1_accuracy_after"] == 0.35
