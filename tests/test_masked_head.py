"""The head only at the masks, inside the model's own forward: exactly the standard loss and gradients for both
families, and every wrapper of the forward (Trainer, autocast, DDP, torch.compile) goes through it."""

import os

import pytest
import torch
from transformers import BartConfig, BartForConditionalGeneration, DataCollatorForLanguageModeling, RobertaConfig, RobertaForMaskedLM

from helpers import config, masked_head, train


@pytest.fixture
def roberta():
    torch.manual_seed(0)
    shape = RobertaConfig(vocab_size=1000, hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                          intermediate_size=128, max_position_embeddings=130, type_vocab_size=1, pad_token_id=1)
    return RobertaForMaskedLM(shape)


@pytest.fixture
def bert(tokenizer):
    from helpers import assets

    return assets.load_model(assets.TINY_MODEL)  # a fresh copy: install() changes the instance


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


def loss_and_grads(model, batch):
    torch.manual_seed(1)  # dropout on: both paths draw the same dropout masks from the same seed
    loss = model(**batch).loss
    loss.backward()
    got = grads(model)
    model.zero_grad(set_to_none=True)
    return loss.detach(), got


def head_rows(model) -> list[tuple[int, torch.dtype]]:
    """Record (rows, dtype) of every call of the model's vocabulary head."""
    _, head = masked_head.parts(model)
    seen = []
    head.register_forward_hook(lambda _m, _i, out: seen.append((out.shape[0] if out.dim() == 2 else out.shape[0] * out.shape[1], out.dtype)))
    return seen


@pytest.mark.parametrize("family", ["bert", "roberta"])
def test_the_installed_forward_gives_the_standard_loss_and_gradients(family, bert, tokenizer, roberta):
    net, batch = (bert, bert_batch(tokenizer)) if family == "bert" else (roberta, roberta_batch())
    net.train()
    standard, expected = loss_and_grads(net, batch)
    assert masked_head.install(net) and masked_head.installed(net)
    seen = head_rows(net)
    course, got = loss_and_grads(net, batch)
    assert seen == [(int((batch["labels"] != -100).sum()), torch.float32)]  # the head ran at the masks only
    assert torch.allclose(standard, course, rtol=1e-5), (standard.item(), course.item())
    assert expected.keys() == got.keys()
    for name in expected:
        assert torch.allclose(expected[name], got[name], rtol=1e-4, atol=1e-6), name
    masked_head.uninstall(net)
    assert not masked_head.installed(net)


def test_without_labels_the_installed_forward_returns_the_standard_logits(bert, tokenizer):
    batch = {k: v for k, v in bert_batch(tokenizer).items() if k != "labels"}
    with torch.no_grad():
        standard = bert.eval()(**batch).logits
        masked_head.install(bert)
        assert torch.equal(bert(**batch).logits, standard)


def test_accumulated_micro_batches_weigh_every_masked_token_the_same(bert, tokenizer):
    batch = bert_batch(tokenizer)
    masked_head.install(bert.eval())
    n = int((batch["labels"] != -100).sum())
    with torch.no_grad():
        total = masked_head.loss(bert, batch, reduction="sum")
        share = bert(**batch, num_items_in_batch=torch.tensor(3 * n)).loss  # this micro-batch holds a third of the tokens
    assert torch.allclose(share, total / (3 * n), rtol=1e-6)


def test_a_batch_with_no_masked_token_gives_zero_not_nan(bert, tokenizer):
    batch = bert_batch(tokenizer)
    batch["labels"] = torch.full_like(batch["labels"], -100)
    masked_head.install(bert.eval())
    with torch.no_grad():
        assert bert(**batch).loss.item() == 0.0


def test_asked_for_bf16_on_the_cpu_trainer_runs_the_head_in_bf16_at_the_masks_only(tmp_path, bert, tokenizer):
    from datasets import Dataset

    s = config.make_settings("tiny", run_dir=str(tmp_path), precision="bf16", batch_size=4)
    rows = Dataset.from_dict({"input_ids": torch.randint(1000, len(tokenizer), (8, 32)).tolist()})
    trainer = train.make_trainer(s, bert, tokenizer, rows, rows, eval_on_start=False, eval_strategy="no",
                                 save_strategy="no", max_steps=1)
    assert trainer.args.bf16
    seen = head_rows(bert)
    trainer.train()
    assert len(seen) == 1
    rows_run, dtype = seen[0]
    assert dtype == torch.bfloat16 and 0 < rows_run < 4 * 32 * 0.5  # about 15% of 128 positions, in bf16


def test_torch_compile_runs_the_installed_forward(bert, tokenizer):
    batch = bert_batch(tokenizer)
    masked_head.install(bert.eval())
    seen = head_rows(bert)
    compiled = torch.compile(bert, backend="eager")  # the graph capture without a C++ build
    with torch.no_grad():
        assert torch.allclose(compiled(**batch).loss, masked_head.loss(bert, batch), rtol=1e-5)
    assert seen[0][0] == int((batch["labels"] != -100).sum())


def test_ddp_runs_the_installed_forward(bert, tokenizer, monkeypatch):
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("MASTER_PORT", str(29500 + os.getpid() % 1000))
    dist.init_process_group("gloo", rank=0, world_size=1)
    try:
        masked_head.install(bert.train())
        seen = head_rows(bert)
        batch = bert_batch(tokenizer)
        DistributedDataParallel(bert)(**batch).loss.backward()
        assert seen[0][0] == int((batch["labels"] != -100).sum())
    finally:
        dist.destroy_process_group()


def test_other_families_keep_their_own_forward(capsys):
    bart = BartForConditionalGeneration(BartConfig(vocab_size=100, d_model=16, encoder_layers=1, decoder_layers=1,
                                                   encoder_attention_heads=2, decoder_attention_heads=2,
                                                   encoder_ffn_dim=32, decoder_ffn_dim=32, max_position_embeddings=32))
    assert hasattr(bart, "model") and hasattr(bart, "lm_head")  # the layout alone would pass for RoBERTa's
    assert not masked_head.supported(bart) and not masked_head.install(bart)
    assert "not bart: training runs the model's standard forward" in capsys.readouterr().out
    assert not masked_head.installed(bart)
