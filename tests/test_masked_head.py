"""The head only at the masks: exactly the standard loss and gradients, for both model families."""

import pytest
import torch
from transformers import DataCollatorForLanguageModeling, RobertaConfig, RobertaForMaskedLM

from helpers import masked_head


@pytest.fixture(scope="module")
def roberta():
    torch.manual_seed(0)
    shape = RobertaConfig(vocab_size=1000, hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                          intermediate_size=128, max_position_embeddings=130, type_vocab_size=1, pad_token_id=1)
    return RobertaForMaskedLM(shape)


def bert_batch(tokenizer, rows=8, length=64):
    ids = torch.randint(1000, len(tokenizer), (rows, length), generator=torch.Generator().manual_seed(0))
    return DataCollatorForLanguageModeling(tokenizer, seed=0)([{"input_ids": x} for x in ids.tolist()])


def roberta_batch(rows=8, length=64):
    generator = torch.Generator().manual_seed(0)
    input_ids = torch.randint(5, 999, (rows, length), generator=generator)
    picked = torch.rand(rows, length, generator=generator) < 0.15
    labels = torch.where(picked, input_ids, torch.full_like(input_ids, -100))
    return {"input_ids": input_ids.masked_fill(picked, 999), "attention_mask": torch.ones_like(input_ids), "labels": labels}


def grads(model):
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("family", ["bert", "roberta"])
def test_same_loss_and_gradients_as_the_standard_forward(family, model, tokenizer, roberta):
    net, batch = (model, bert_batch(tokenizer)) if family == "bert" else (roberta, roberta_batch())
    assert masked_head.supported(net)
    net.train()  # dropout on: both paths draw the same dropout masks from the same seed
    torch.manual_seed(1)
    standard = net(**batch).loss
    standard.backward()
    expected = grads(net)
    net.zero_grad(set_to_none=True)
    torch.manual_seed(1)
    course = masked_head.loss(net, batch)
    course.backward()
    got = grads(net)
    net.zero_grad(set_to_none=True)
    net.eval()
    assert torch.allclose(standard, course, rtol=1e-5), (standard.item(), course.item())
    assert expected.keys() == got.keys()
    for name in expected:
        assert torch.allclose(expected[name], got[name], rtol=1e-4, atol=1e-6), name


def test_summed_loss_counts_each_masked_token(model, tokenizer):
    batch = bert_batch(tokenizer)
    with torch.no_grad():
        mean = masked_head.loss(model.eval(), batch)
        total = masked_head.loss(model, batch, reduction="sum")
    assert torch.allclose(total, mean * (batch["labels"] != -100).sum(), rtol=1e-5)


def test_other_layouts_are_not_claimed():
    class NotAnMLM(torch.nn.Module):
        base_model_prefix = "encoder"

    assert not masked_head.supported(NotAnMLM())
