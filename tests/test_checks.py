"""The checks of the learner's code: a right answer is right, each kind of wrong answer is wrong, none is unwritten."""

import pytest
import torch
from datasets import Dataset

from helpers import checks, collate, config


def right_masking(input_ids, tokenizer, probability, generator):
    """80/10/10 by hand, the way BERT's paper describes it."""
    labels = input_ids.clone()
    special = torch.isin(input_ids, torch.tensor(tokenizer.all_special_ids))
    picked = (torch.rand(input_ids.shape, generator=generator) < probability) & ~special
    labels[~picked] = -100
    inputs = input_ids.clone()
    masked = picked & (torch.rand(input_ids.shape, generator=generator) < 0.8)
    inputs[masked] = tokenizer.mask_token_id
    replaced = picked & ~masked & (torch.rand(input_ids.shape, generator=generator) < 0.5)
    inputs[replaced] = torch.randint(len(tokenizer), input_ids.shape, generator=generator)[replaced]
    return inputs, labels


def all_masked(input_ids, tokenizer, probability, generator):
    """Wrong: every picked token becomes the mask token."""
    inputs, labels = right_masking(input_ids, tokenizer, probability, generator)
    inputs[labels != -100] = tokenizer.mask_token_id
    return inputs, labels


def specials_too(input_ids, tokenizer, probability, generator):
    """Wrong: special tokens may be picked."""
    labels = input_ids.clone()
    picked = torch.rand(input_ids.shape, generator=generator) < probability
    picked[:, 0] = True
    labels[~picked] = -100
    inputs = input_ids.clone()
    inputs[picked] = tokenizer.mask_token_id
    return inputs, labels


def unwritten(*_):
    raise NotImplementedError


@pytest.fixture(scope="module")
def blocks(tokenizer):
    text = " ".join(f"The {w} of a star is measured in kelvin and its light is split by a prism." for w in range(400))
    ids = tokenizer(text)["input_ids"][1:-1]
    rows = [[tokenizer.cls_token_id, *ids[i:i + 126], tokenizer.sep_token_id] for i in range(0, len(ids) - 126, 126)]
    return Dataset.from_dict({"input_ids": rows})


def test_the_masking_check(tokenizer, blocks):
    s = config.make_settings("tiny")
    assert checks.masking(right_masking, tokenizer, s, blocks).ok is True
    wrong = checks.masking(all_masked, tokenizer, s, blocks)
    assert wrong.ok is False and "masked" in wrong.why and "kept" in wrong.why
    assert "special token" in checks.masking(specials_too, tokenizer, s, blocks).why
    assert repr(checks.masking(unwritten, tokenizer, s, blocks)).startswith("not written yet")
    assert checks.masking(lambda *a: 1 / 0, tokenizer, s, blocks).why == "it raised ZeroDivisionError: division by zero"


def right_step(model, batch, optimizer):
    loss = model(**batch).loss
    loss.backward()
    optimizer.step()
    optimizer.zero_grad()
    return loss.item()


def no_zero_grad(model, batch, optimizer):
    loss = model(**batch).loss
    loss.backward()
    optimizer.step()
    return loss.item()


def step_before_backward(model, batch, optimizer):
    loss = model(**batch).loss
    optimizer.step()
    loss.backward()
    optimizer.zero_grad()
    return loss.item()


def test_the_training_step_check(model, tokenizer, blocks):
    s = config.make_settings("tiny")
    batch = collate.make_collator(tokenizer, s, seed=0)([blocks[i] for i in range(4)])
    assert checks.training_step(right_step, model, batch).ok is True
    assert "gradients are still there" in checks.training_step(no_zero_grad, model, batch).why
    assert "differ from the loop's" in checks.training_step(step_before_backward, model, batch).why
    assert checks.training_step(unwritten, model, batch).ok is None
    assert all(p.grad is None for p in model.parameters())  # the model handed in is left as it was


def right_top_k(text, model, tokenizer, k):
    inputs = tokenizer(text, return_tensors="pt")
    positions = (inputs["input_ids"][0] == tokenizer.mask_token_id).nonzero()[:, 0]
    with torch.no_grad():
        logits = model(**inputs).logits[0, positions]
    return [[tokenizer.decode(int(i)) for i in row] for row in logits.softmax(-1).topk(k).indices]


def top_k_first_mask_only(text, model, tokenizer, k):
    """Wrong: the first mask's tokens alone, as 06's cells above take them."""
    inputs = tokenizer(text, return_tensors="pt")
    position = (inputs["input_ids"][0] == tokenizer.mask_token_id).nonzero()[0, 0]
    with torch.no_grad():
        logits = model(**inputs).logits[0, position]
    return [[tokenizer.decode(int(i)) for i in logits.topk(k).indices]]


def test_the_top_k_check(model, tokenizer):
    two = "Water is made of hydrogen and [MASK], and ice is its [MASK] form."
    assert checks.top_k(right_top_k, two, model, tokenizer).ok is True
    assert checks.top_k(right_top_k, "The Milky Way is a [MASK] galaxy.", model, tokenizer).ok is True
    assert checks.top_k(top_k_first_mask_only, two, model, tokenizer).ok is False
    assert checks.top_k(lambda *a: ["a", "b"], two, model, tokenizer).ok is False
    assert checks.top_k(lambda *a: None, two, model, tokenizer).ok is None
