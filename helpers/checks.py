"""The code a learner writes in the ``## Try it`` sections, judged against the course's own: right, or wrong and why, or
not written yet (the notebook runs on, as papermill and nbval run it).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any, Callable

import torch

from . import collate, infer
from .lesson import without_dropout


@dataclass(frozen=True)
class Verdict:
    """A check's answer: ``ok`` is True (right), False (wrong) or None (not written yet), with the reason."""

    ok: bool | None
    why: str

    def __repr__(self) -> str:
        return f"{VERDICTS[self.ok]}: {self.why}"


VERDICTS = {True: "right", False: "wrong", None: "not written yet"}


def _run(function: Callable[..., Any], *args: Any) -> tuple[Any, Verdict | None]:
    """The learner's result, or the verdict when there is none: unwritten, or failing with an error."""
    try:
        result = function(*args)
    except NotImplementedError:
        return None, Verdict(None, "fill in the function above, run its cell, then this one")
    except Exception as err:  # the learner's code failed: say how, and go on with the notebook
        return None, Verdict(False, f"it raised {type(err).__name__}: {err}")
    if result is None:
        return None, Verdict(None, "the function returns nothing yet")
    return result, None


def masking(mask_by_hand: Callable, tokenizer, settings, blocks) -> Verdict:
    """03: ``mask_by_hand(input_ids, tokenizer, probability, generator) -> (inputs, labels)``, judged by the rates
    the course measures (``collate.masking_rates``) against the collator's targets, on ``blocks``.

    A rate may miss its target by four standard deviations of a share of that many draws: chance, not a mistake.
    """
    original = torch.tensor(blocks["input_ids"])
    result, verdict = _run(mask_by_hand, original.clone(), tokenizer, settings.mlm_probability,
                           torch.Generator().manual_seed(settings.seed))
    if verdict:
        return verdict
    inputs, labels = result
    if inputs.shape != original.shape or labels.shape != original.shape:
        return Verdict(False, f"inputs and labels must have the blocks' shape {tuple(original.shape)}")
    picked = labels != collate.IGNORE
    special = torch.isin(original, torch.tensor(tokenizer.all_special_ids))
    if (picked & special).any():
        return Verdict(False, "a special token was picked: [CLS], [SEP] and the like are never picked")
    if not picked.any():
        return Verdict(False, "nothing was picked: every label is -100")
    if not torch.equal(labels[picked], original[picked]):
        return Verdict(False, "a picked position's label must be the original token")
    if not torch.equal(inputs[~picked], original[~picked]):
        return Verdict(False, "a position that was not picked must keep its token")
    rates, expected = collate.masking_rates(original, inputs, labels, tokenizer), collate.expected_rates(settings)
    draws = {"picked": int((~special).sum()), **dict.fromkeys(("masked", "replaced", "kept"), int(picked.sum()))}
    allowed = {k: 4 * math.sqrt(expected[k] * (1 - expected[k]) / draws[k]) for k in expected}
    far = {k: round(rates[k], 3) for k in expected if abs(rates[k] - expected[k]) > allowed[k]}
    if far:
        return Verdict(False, f"rates {far} are too far from their targets {expected} to be chance, "
                       f"over {draws['picked']:,} tokens")
    shown = ", ".join(f"{k} {rates[k]:.3f}" for k in expected)
    return Verdict(True, f"{shown}: each within chance of its target {expected}, over {draws['picked']:,} tokens")


def training_step(one_step: Callable, model, batch: dict[str, torch.Tensor], learning_rate: float = 1e-3) -> Verdict:
    """04: ``one_step(model, batch, optimizer) -> loss`` against a step written out here: loss, weights, cleared grads."""
    # two copies of the same model, dropout off: the two steps then see the same arithmetic
    theirs, ours = (without_dropout(copy.deepcopy(model)).train() for _ in range(2))
    optimizer = torch.optim.AdamW(theirs.parameters(), lr=learning_rate)
    result, verdict = _run(one_step, theirs, batch, optimizer)
    if verdict:
        return verdict
    reference = torch.optim.AdamW(ours.parameters(), lr=learning_rate)
    loss = ours(**batch).loss  # the loop's step, clipping aside
    loss.backward()
    reference.step()
    reference.zero_grad()
    if abs(float(result) - loss.item()) > 1e-5:
        return Verdict(False, f"the loss returned, {float(result):.5f}, is not the batch's loss before the step, {loss.item():.5f}")
    if any(p.grad is not None and p.grad.abs().sum() > 0 for p in theirs.parameters()):
        return Verdict(False, "the gradients are still there after the step: the next one would add to them (zero_grad)")
    moved = [torch.allclose(a, b, atol=1e-6) for a, b in zip(theirs.parameters(), ours.parameters())]
    if not all(moved):
        return Verdict(False, f"{moved.count(False)} of {len(moved)} weight tensors differ from the loop's after one "
                       f"update: was loss.backward() called before optimizer.step()?")
    return Verdict(True, f"loss {loss.item():.4f}, and every weight as the loop's step leaves it")


def top_k(my_top_k: Callable, text: str, model, tokenizer, k: int = 5) -> Verdict:
    """06: ``my_top_k(text, model, tokenizer, k) -> a list of token strings per mask``, judged against ``infer.fill_mask``."""
    result, verdict = _run(my_top_k, text, model, tokenizer, k)
    if verdict:
        return verdict
    filled = infer.fill_mask(text, model, tokenizer, k)
    expected = [[r["token_str"].strip() for r in rows] for rows in (filled if isinstance(filled[0], list) else [filled])]
    try:
        found = [[str(t).strip() for t in row] for row in result]
    except TypeError:
        return Verdict(False, f"got {result!r}: give a list of tokens for each mask, e.g. {expected}")
    if found != expected:
        return Verdict(False, f"got {found}, expected {expected}: topk over the logits at each mask's position")
    return Verdict(True, f"{found}, as fill-mask gives them")
