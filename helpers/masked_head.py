"""The MLM head applied only where the masks are, inside the model's own forward (04 train, 05 evaluate, 06 infer).

A masked LM's loss looks at about 15% of the positions, yet the standard forward projects every
position onto the whole vocabulary (30,522 or 50,265 columns), most of a small model's arithmetic.
Running the encoder on every token and the head only on the labelled positions gives the same loss,
exactly, for a fraction of the work.

``install`` puts that path in the model's own ``forward``, so whatever wraps the forward goes through it:
Trainer's loss, accelerate's autocast (bf16, fp16), DDP under ``torchrun``, ``torch.compile``. Only for the
families listed in ``FAMILIES``, whose standard forward it reproduces (tests check loss and gradients);
any other model keeps its own forward. The weights are untouched: the model saves as a standard checkpoint
(with ``save_pretrained``; a model pickled whole with ``torch.save`` would carry the bound forward, so don't).
"""

from __future__ import annotations

import types

import torch
import torch.nn.functional as F
from torch import nn
from transformers.modeling_outputs import MaskedLMOutput

IGNORE = -100
# model_type -> the head's attribute; the encoder is the model's base_model_prefix (bert, roberta)
FAMILIES = {"bert": "cls", "roberta": "lm_head"}
ENCODER_INPUTS = ("input_ids", "attention_mask", "token_type_ids", "position_ids", "inputs_embeds")


def parts(model) -> tuple[nn.Module, nn.Module] | None:
    """(encoder, head) of a model of a listed family, or None: another family keeps its own forward.

    A family is listed only once its standard forward is reproduced exactly; BART-style models, for
    one, also have ``model`` and ``lm_head`` but add a bias and scale their logits, so they are not.
    """
    head_name = FAMILIES.get(getattr(getattr(model, "config", None), "model_type", None))
    if head_name is None:
        return None
    encoder = getattr(model, model.base_model_prefix, None)
    head = getattr(model, head_name, None)
    return (encoder, head) if encoder is not None and head is not None else None


def supported(model) -> bool:
    return parts(model) is not None


def logits_at(model, batch: dict[str, torch.Tensor], positions: torch.Tensor) -> torch.Tensor:
    """Vocabulary logits at the ``positions`` (a boolean mask shaped like ``input_ids``) only: (picked, vocab)."""
    encoder, head = parts(model)
    inputs = {k: v for k, v in batch.items() if k in ENCODER_INPUTS}
    hidden = encoder(**inputs).last_hidden_state
    return head(hidden[positions])


def loss_at_masks(model, labels: torch.Tensor, num_items_in_batch: int | torch.Tensor | None = None,
                  reduction: str = "mean", **inputs: torch.Tensor) -> torch.Tensor:
    """Cross-entropy over the labelled positions, the head only there.

    ``num_items_in_batch`` (Trainer passes it under gradient accumulation) divides the sum instead of this
    batch's own count, so every masked token of an accumulated step weighs the same. A batch with no
    labelled token gives 0, not NaN.
    """
    picked = labels != IGNORE
    logits = logits_at(model, inputs, picked)
    total = F.cross_entropy(logits.float(), labels[picked], reduction="sum")
    if reduction == "sum":
        return total
    count = num_items_in_batch if num_items_in_batch is not None else picked.sum()
    return total / torch.clamp(torch.as_tensor(count, device=total.device), min=1)


def loss(model, batch: dict[str, torch.Tensor], reduction: str = "mean") -> torch.Tensor:
    """What ``model(**batch).loss`` computes, the head only where the labels are."""
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    return loss_at_masks(model, batch["labels"], reduction=reduction, **inputs)


def _forward_at_masks(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None,
                      inputs_embeds=None, labels=None, num_items_in_batch=None, **kwargs):
    """The model's forward, with the head only at the labelled positions whenever there are labels."""
    inputs = dict(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids,
                  position_ids=position_ids, inputs_embeds=inputs_embeds)
    inputs = {k: v for k, v in inputs.items() if v is not None}
    if labels is None or kwargs.get("output_hidden_states") or kwargs.get("output_attentions"):
        return type(self).forward(self, labels=labels, **inputs, **kwargs)  # the standard forward
    return MaskedLMOutput(loss=loss_at_masks(self, labels, num_items_in_batch, **inputs))


def standard_forward(model, **batch: torch.Tensor) -> MaskedLMOutput:
    """The model class's own forward, the head at every position, whether or not ``install`` ran (the baseline)."""
    return type(model).forward(model, **batch)


def install(model) -> bool:
    """Make ``model.forward`` run the head only at the labelled positions; False (and a line) if not a listed family."""
    if not supported(model):
        model.accepts_loss_kwargs = False  # its own loss is a per-batch mean: Trainer scales it for accumulation
        family = getattr(getattr(model, "config", None), "model_type", type(model).__name__)
        print(f"the head at the masks is for the {' and '.join(FAMILIES)} families only, not {family}: "
              f"training runs the model's standard forward")
        return False
    model.forward = types.MethodType(_forward_at_masks, model)
    model.accepts_loss_kwargs = True  # Trainer then passes num_items_in_batch and leaves the scaling to this forward
    return True


def installed(model) -> bool:
    return getattr(model.forward, "__func__", None) is _forward_at_masks


def uninstall(model) -> None:
    """Back to the model's own forward, whose loss is a per-batch mean that Trainer must scale itself."""
    if "forward" in vars(model):
        del model.forward
    model.accepts_loss_kwargs = False


class HeadCount:
    """Counts the positions the vocabulary head runs at against those the encoder reads, while attached:
    how a run shows that the head ran at the masks only (about ``mlm_probability``) or everywhere (1.0)."""

    def __init__(self, model):
        encoder, head = parts(model)
        self.head_rows, self.positions = 0, 0
        self._hooks = [head.register_forward_hook(self._count_head),
                       encoder.register_forward_pre_hook(self._count_input, with_kwargs=True)]

    def _count_head(self, _module, _args, output: torch.Tensor) -> None:
        self.head_rows += output.shape[:-1].numel()

    def _count_input(self, _module, args, kwargs) -> None:
        ids = kwargs.get("input_ids", args[0] if args else None)
        self.positions += ids.numel() if ids is not None else 0

    def share(self) -> float | None:
        return self.head_rows / self.positions if self.positions else None

    def remove(self) -> None:
        for hook in self._hooks:
            hook.remove()
