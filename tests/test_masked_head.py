"""The head only at the masks, as a model class: each test holds it against something independent of it (the
family's standard class, a hand computation, a reload, a second library's wrapper)."""

import io
import json

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from transformers import (AutoModelForMaskedLM, BartConfig, BertConfig, BertForMaskedLM, DistilBertConfig,
                          DistilBertForMaskedLM, RobertaConfig, RobertaForMaskedLM, Trainer, TrainingArguments)

from helpers import assets, masked_head


class HeadRows:
    """Counts the rows the vocabulary head scores and the positions the encoder reads: how a test sees where it ran."""

    def __init__(self, model):
        encoder, head = masked_head.parts(model)
        self.head_rows, self.positions = 0, 0
        head.register_forward_hook(lambda _m, _i, out: setattr(self, "head_rows", self.head_rows + out.shape[:-1].numel()))
        encoder.register_forward_pre_hook(self._count_input, with_kwargs=True)

    def _count_input(self, _module, args, kwargs):
        ids = kwargs.get("input_ids", args[0] if args else None)
        self.positions += ids.numel()

    def share(self):
        return self.head_rows / self.positions

VOCAB, LENGTH = 100, 16
SHAPE = dict(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)


def make_config(family: str, dropout: float = 0.1):
    drop = dict(hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout)
    if family == "bert":
        return BertConfig(**SHAPE, **drop, max_position_embeddings=64)
    return RobertaConfig(**SHAPE, **drop, max_position_embeddings=64 + 2, type_vocab_size=1, pad_token_id=1)


def pair(family: str, dropout: float = 0.1):
    """The family's standard model and its AtMasks model with the very same weights."""
    torch.manual_seed(0)
    standard = (BertForMaskedLM if family == "bert" else RobertaForMaskedLM)(make_config(family, dropout))
    at_masks = masked_head.CLASSES[family](make_config(family, dropout))
    at_masks.load_state_dict(standard.state_dict())
    return standard, at_masks


def batch_of(rows=8, length=LENGTH, probability=0.15, seed=0):
    generator = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(5, VOCAB - 1, (rows, length), generator=generator)
    picked = torch.rand(rows, length, generator=generator) < probability
    picked[0, 1] = True  # at least one labelled token
    labels = torch.where(picked, input_ids, torch.full_like(input_ids, -100))
    return {"input_ids": input_ids.masked_fill(picked, VOCAB - 1), "attention_mask": torch.ones_like(input_ids),
            "labels": labels}


def loss_and_grads(model, batch):
    torch.manual_seed(1)  # dropout on: both classes draw the same dropout masks from the same seed
    loss = model(**batch).loss
    loss.backward()
    got = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad(set_to_none=True)
    return loss.detach(), got


FAMILIES = ["bert", "roberta"]


@pytest.mark.parametrize("family", FAMILIES)
def test_the_loss_and_gradients_are_the_standard_classs(family):
    standard, at_masks = pair(family)
    batch = batch_of()
    expected_loss, expected = loss_and_grads(standard.train(), batch)
    count = HeadRows(at_masks)
    got_loss, got = loss_and_grads(at_masks.train(), batch)
    assert count.head_rows == int((batch["labels"] != -100).sum())  # the head ran at the masks only
    assert torch.allclose(expected_loss, got_loss, rtol=1e-5), (expected_loss.item(), got_loss.item())
    assert expected.keys() == got.keys()
    for name in expected:
        assert torch.allclose(expected[name], got[name], rtol=1e-4, atol=1e-6), name


@pytest.mark.parametrize("family", FAMILIES)
def test_with_labels_the_logits_are_the_standard_logits_at_the_labelled_positions(family):
    standard, at_masks = pair(family)
    batch = batch_of()
    picked = batch["labels"] != -100
    with torch.no_grad():
        full = standard.eval()(**batch).logits
        out = at_masks.eval()(**batch)
    assert out.logits.shape == (int(picked.sum()), VOCAB)
    assert torch.allclose(out.logits, full[picked], atol=1e-5)
    # the rows follow labels[labels != -100]: the standard cross-entropy over them is the loss
    assert torch.allclose(F.cross_entropy(out.logits, batch["labels"][picked]), out.loss, rtol=1e-6)


@pytest.mark.parametrize("family", FAMILIES)
def test_without_labels_the_logits_are_the_parent_classs_from_the_same_checkpoint(family, tmp_path):
    standard, _ = pair(family)
    standard.save_pretrained(tmp_path)
    parent = type(standard).from_pretrained(tmp_path).eval()
    at_masks = masked_head.CLASSES[family].from_pretrained(tmp_path).eval()
    batch = {k: v for k, v in batch_of().items() if k != "labels"}
    with torch.no_grad():
        expected, got = parent(**batch).logits, at_masks(**batch).logits
    assert got.shape == (8, LENGTH, VOCAB)
    assert torch.equal(got, expected)


def test_return_dict_false_gives_the_parents_kind_of_tuple():
    standard, at_masks = pair("bert")
    batch = batch_of()
    with torch.no_grad():
        as_dict = at_masks.eval()(**batch)
        as_tuple = at_masks(**batch, return_dict=False)
        parent_tuple = standard.eval()(**batch, return_dict=False)
        no_labels = at_masks(input_ids=batch["input_ids"], return_dict=False)
    assert isinstance(as_tuple, tuple) and len(as_tuple) == len(parent_tuple) == 2  # (loss, logits)
    assert torch.equal(as_tuple[0], as_dict.loss) and torch.equal(as_tuple[1], as_dict.logits)
    assert torch.allclose(as_tuple[0], parent_tuple[0], rtol=1e-5)
    assert isinstance(no_labels, tuple) and len(no_labels) == 1 and no_labels[0].shape == (8, LENGTH, VOCAB)


def test_unknown_keywords_are_refused_and_the_encoders_are_passed_on():
    standard, at_masks = pair("bert")
    for model in (standard, at_masks):
        model.set_attn_implementation("eager")  # sdpa returns no attention weights
    batch = batch_of()
    with pytest.raises(TypeError, match="not_an_argument"):
        at_masks(**batch, not_an_argument=1)
    with pytest.raises(TypeError, match="special_tokens_mask"):
        at_masks(**batch, special_tokens_mask=torch.zeros_like(batch["labels"]))
    with torch.no_grad():
        got = at_masks.eval()(**batch, output_hidden_states=True, output_attentions=True)
        expected = standard.eval()(**batch, output_hidden_states=True, output_attentions=True)
    assert len(got.hidden_states) == len(expected.hidden_states) == 3  # embeddings and 2 layers: passed on
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(got.hidden_states, expected.hidden_states))
    assert len(got.attentions) == 2 and torch.allclose(got.attentions[-1], expected.attentions[-1], atol=1e-6)


def test_num_items_in_batch_divides_the_sum_of_the_standard_cross_entropy():
    standard, at_masks = pair("bert")
    batch = batch_of()
    picked = batch["labels"] != -100
    n = int(picked.sum())
    with torch.no_grad():
        logits = standard.eval()(**batch).logits[picked]
        by_hand = F.cross_entropy(logits, batch["labels"][picked], reduction="sum") / (3 * n)
        share = at_masks.eval()(**batch, num_items_in_batch=torch.tensor(3 * n)).loss  # a third of the step's tokens
    assert torch.allclose(share, by_hand, rtol=1e-5)


def test_a_batch_with_no_masked_token_gives_zero_not_nan():
    _, at_masks = pair("bert")
    batch = batch_of()
    batch["labels"] = torch.full_like(batch["labels"], -100)
    out = at_masks.train()(**batch)
    assert out.loss.item() == 0.0 and out.logits.shape == (0, VOCAB)
    out.loss.backward()  # and it backpropagates zeros rather than NaN
    assert all(torch.isfinite(p.grad).all() for p in at_masks.parameters() if p.grad is not None)


def train_with_trainer(model, rows, tmp_path, batch_size, accumulation, steps):
    """Trainer built here (not helpers.train, which is being rewritten): plain SGD, so a wrong loss scale shows."""
    from datasets import Dataset

    args = TrainingArguments(output_dir=str(tmp_path / f"out-{id(model)}"), per_device_train_batch_size=batch_size,
                             gradient_accumulation_steps=accumulation, max_steps=steps, learning_rate=0.5, optim="sgd",
                             lr_scheduler_type="constant", weight_decay=0.0, max_grad_norm=0.0, logging_steps=1,
                             save_strategy="no", report_to="none", use_cpu=True, seed=0,
                             train_sampling_strategy="sequential", dataloader_drop_last=True, disable_tqdm=True)
    trainer = Trainer(model=model, args=args, train_dataset=Dataset.from_dict(rows))
    trainer.train()
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    return trainer, {n: p.detach().clone() for n, p in model.named_parameters()}, losses


def masked_rows(counts: list[int], seed=0) -> dict[str, list]:
    """One row per count, with exactly that many labelled tokens."""
    generator = torch.Generator().manual_seed(seed)
    rows = {"input_ids": [], "attention_mask": [], "labels": []}
    for count in counts:
        ids = torch.randint(5, VOCAB - 1, (LENGTH,), generator=generator)
        where = torch.randperm(LENGTH, generator=generator)[:count]
        labels = torch.full_like(ids, -100)
        labels[where] = ids[where]
        ids[where] = VOCAB - 1
        rows["input_ids"].append(ids.tolist())
        rows["attention_mask"].append([1] * LENGTH)
        rows["labels"].append(labels.tolist())
    return rows


def close(a: dict, b: dict, atol=1e-5) -> bool:
    return a.keys() == b.keys() and all(torch.allclose(a[k], b[k], atol=atol, rtol=1e-4) for k in a)


def test_under_accumulation_trainer_trains_it_as_it_trains_the_standard_class(tmp_path):
    """Micro-batches of 2, 3 of them a step, 2 steps, dropout off, the same seed and batches; tolerance 1e-5
    on the weights and 1e-5 relative on the logged losses. Each micro-batch holds 4 labelled tokens, so the
    standard class's per-batch means (Trainer divides each by 3) weigh every token as the course's per-token sum does."""
    standard, at_masks = pair("bert", dropout=0.0)
    standard.accepts_loss_kwargs = False  # as train.make_trainer sets for a standard model
    rows = masked_rows([1, 3, 2, 2, 4, 0] * 2)  # 4 labelled tokens in each micro-batch of two rows
    standard_trainer, expected, expected_losses = train_with_trainer(standard, rows, tmp_path, 2, 3, 2)
    at_masks_trainer, got, got_losses = train_with_trainer(at_masks, rows, tmp_path, 2, 3, 2)
    assert not standard_trainer.model_accepts_loss_kwargs and at_masks_trainer.model_accepts_loss_kwargs
    assert len(got_losses) == 2 and got_losses == pytest.approx(expected_losses, rel=1e-5)
    start = pair("bert", dropout=0.0)[0].state_dict()
    assert not torch.allclose(got["bert.embeddings.word_embeddings.weight"], start["bert.embeddings.word_embeddings.weight"])
    assert close(got, expected)


def test_accumulated_micro_batches_weigh_every_masked_token_as_one_big_batch(tmp_path):
    """With unequal labelled counts, 3 accumulated micro-batches of 2 train like the standard class on batches
    of 6 (token-weighted), and not like the standard class accumulated (batch-weighted): tolerance 1e-5."""
    rows = masked_rows([1, 0, 5, 6, 1, 1] * 2)  # micro-batches with 1, 11 and 2 labelled tokens
    standard, at_masks = pair("bert", dropout=0.0)
    standard.accepts_loss_kwargs = False
    _, big_batch, _ = train_with_trainer(standard, rows, tmp_path, 6, 1, 2)
    _, accumulated, _ = train_with_trainer(at_masks, rows, tmp_path, 2, 3, 2)
    assert close(accumulated, big_batch)
    batch_weighted, _ = pair("bert", dropout=0.0)
    batch_weighted.accepts_loss_kwargs = False
    _, standard_accumulated, _ = train_with_trainer(batch_weighted, rows, tmp_path, 2, 3, 2)
    assert not close(accumulated, standard_accumulated)  # the test can tell the two weightings apart


@pytest.mark.parametrize("family", FAMILIES)
def test_it_loads_a_standard_checkpoint_and_saves_a_standard_one(family, tmp_path):
    standard, _ = pair(family, dropout=0.0)
    standard.save_pretrained(tmp_path / "standard")
    at_masks_class = masked_head.CLASSES[family]
    model, info = at_masks_class.from_pretrained(tmp_path / "standard", output_loading_info=True)
    assert type(model) is at_masks_class and not any(info.values())  # nothing missing, unexpected or mismatched
    batch = batch_of()
    with torch.no_grad():
        expected = standard.eval()(**batch).loss
        assert torch.allclose(model.eval()(**batch).loss, expected, rtol=1e-5)
    model.save_pretrained(tmp_path / "saved")
    assert type(model) is at_masks_class  # still the class it was, after saving
    written = json.loads((tmp_path / "saved" / "config.json").read_text())
    assert written["architectures"] == [type(standard).__name__]
    reloaded = AutoModelForMaskedLM.from_pretrained(tmp_path / "saved")
    assert type(reloaded) is type(standard)
    with torch.no_grad():
        assert torch.allclose(reloaded.eval()(**batch).loss, expected, rtol=1e-5)
    head = reloaded.get_output_embeddings().weight
    assert head.data_ptr() == reloaded.get_input_embeddings().weight.data_ptr()  # still tied


def test_assets_load_model_with_at_masks(tmp_path, capsys):
    standard, _ = pair("bert", dropout=0.0)
    standard.save_pretrained(tmp_path / "bert")
    assert type(assets.load_model(str(tmp_path / "bert"))) is BertForMaskedLM
    assert type(assets.load_model(str(tmp_path / "bert"), at_masks=True)) is masked_head.BertForMaskedLMAtMasks
    DistilBertForMaskedLM(DistilBertConfig(vocab_size=VOCAB, dim=32, n_layers=1, n_heads=2, hidden_dim=64)).save_pretrained(tmp_path / "distil")
    capsys.readouterr()
    other = assets.load_model(str(tmp_path / "distil"), at_masks=True)
    assert type(other) is DistilBertForMaskedLM
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "this distilbert keeps its own" in out
    (tmp_path / "empty").mkdir()
    with pytest.raises(assets.AssetError, match="could not load AutoModelForMaskedLM from the folder"):
        assets.load_model(str(tmp_path / "empty"), at_masks=True)


def test_torch_save_and_load_round_trip_gives_the_same_loss():
    _, at_masks = pair("roberta", dropout=0.0)
    batch = batch_of()
    buffer = io.BytesIO()
    torch.save(at_masks, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=False)
    assert type(loaded) is masked_head.RobertaForMaskedLMAtMasks
    with torch.no_grad():
        assert torch.equal(loaded.eval()(**batch).loss, at_masks.eval()(**batch).loss)


def test_under_accelerate_bf16_the_head_still_runs_at_the_masks_only():
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState

    standard, at_masks = pair("bert", dropout=0.0)
    batch = batch_of(probability=0.15)
    AcceleratorState._reset_state(reset_partial_state=True)  # a Trainer earlier in the session set it up in fp32
    try:
        prepared = Accelerator(mixed_precision="bf16", cpu=True).prepare(at_masks.eval())
        assert "forward" in vars(prepared)  # accelerate wrapped this instance's forward in autocast
        count = HeadRows(prepared)
        dtypes = []
        hook = masked_head.parts(prepared)[1].register_forward_hook(lambda _m, _i, out: dtypes.append(out.dtype))
        with torch.no_grad():
            got = prepared(**batch).loss
        hook.remove()
    finally:
        AcceleratorState._reset_state(reset_partial_state=True)
    mlm_share = float((batch["labels"] != -100).float().mean())
    assert count.share() == pytest.approx(mlm_share) and count.share() < 0.5  # not 1.0: the head at the masks
    assert dtypes == [torch.bfloat16]  # and it ran under autocast
    with torch.no_grad():
        expected = standard.eval()(**batch).loss
    assert got.dtype == torch.float32 and abs(got.item() - expected.item()) < 0.05 * expected.item()  # bf16 rounding


def test_a_compiled_model_gives_the_same_loss():
    standard, at_masks = pair("bert", dropout=0.0)
    batch = batch_of()
    count = HeadRows(at_masks)
    compiled = torch.compile(at_masks.eval(), backend="eager")  # the graph capture without a C++ build
    with torch.no_grad():
        got, expected = compiled(**batch).loss, standard.eval()(**batch).loss
    assert torch.allclose(got, expected, rtol=1e-5)
    assert count.head_rows == int((batch["labels"] != -100).sum())


def test_ddp_runs_the_classs_forward(monkeypatch):
    import os

    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    standard, at_masks = pair("bert", dropout=0.0)
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("MASTER_PORT", str(29500 + os.getpid() % 1000))
    dist.init_process_group("gloo", rank=0, world_size=1)
    try:
        batch = batch_of()
        count = HeadRows(at_masks)
        got = DistributedDataParallel(at_masks.train())(**batch).loss
        got.backward()
    finally:
        dist.destroy_process_group()
    assert count.head_rows == int((batch["labels"] != -100).sum())
    assert torch.allclose(got, standard.train()(**batch).loss, rtol=1e-5)


@pytest.mark.gpu
def test_data_parallel_replicas_run_the_classs_forward():
    standard, at_masks = pair("bert", dropout=0.0)
    batch = {k: v.cuda() for k, v in batch_of(rows=8 * max(1, torch.cuda.device_count())).items()}
    standard, at_masks = standard.cuda().eval(), at_masks.cuda().eval()
    count = HeadRows(at_masks)
    n = int((batch["labels"] != -100).sum())
    with torch.no_grad():
        out = nn.DataParallel(at_masks)(**batch, num_items_in_batch=n)  # an int: every replica gets the whole count
        expected = standard(**batch).loss
    assert count.head_rows == n  # every replica's head ran at its masks only
    assert torch.allclose(out.loss.sum(), expected, rtol=1e-4)  # the replicas' shares add up to the mean


def test_at_masks_switches_a_bert_or_roberta_model_in_place_and_leaves_others():
    standard, _ = pair("bert", dropout=0.0)
    batch = batch_of()
    with torch.no_grad():
        expected = standard.eval()(**batch).loss
    switched = masked_head.at_masks(standard)
    assert switched is standard and type(switched) is masked_head.BertForMaskedLMAtMasks
    with torch.no_grad():
        assert torch.allclose(switched(**batch).loss, expected, rtol=1e-5)
    assert masked_head.at_masks(switched) is switched  # twice is once
    assert issubclass(masked_head.RobertaForMaskedLMAtMasks, RobertaForMaskedLM)
    distil = DistilBertForMaskedLM(DistilBertConfig(vocab_size=VOCAB, dim=32, n_layers=1, n_heads=2, hidden_dim=64))
    assert type(masked_head.at_masks(distil)) is DistilBertForMaskedLM


def test_bart_keeps_its_own_forward_though_its_layout_looks_like_robertas():
    from transformers import BartForConditionalGeneration

    bart = BartForConditionalGeneration(BartConfig(vocab_size=100, d_model=16, encoder_layers=1, decoder_layers=1,
                                                   encoder_attention_heads=2, decoder_attention_heads=2,
                                                   encoder_ffn_dim=32, decoder_ffn_dim=32, max_position_embeddings=32))
    assert hasattr(bart, "model") and hasattr(bart, "lm_head")  # the layout alone would pass for RoBERTa's
    assert masked_head.parts(bart) is None and type(masked_head.at_masks(bart)) is BartForConditionalGeneration


def test_standard_forward_is_the_parents_for_an_at_masks_model():
    standard, at_masks = pair("roberta", dropout=0.0)
    batch = batch_of()
    with torch.no_grad():
        got = masked_head.standard_forward(at_masks.eval(), **batch)
        expected = standard.eval()(**batch)
    assert got.logits.shape == (8, LENGTH, VOCAB) and torch.allclose(got.logits, expected.logits, atol=1e-6)
    assert torch.allclose(at_masks(**batch).loss, expected.loss, rtol=1e-5)
