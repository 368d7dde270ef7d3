"""The MLM head applied only where the masks are, as a model class (04 train, 05 evaluate, 06 infer).

A masked LM's loss looks at about 15% of the positions, yet the standard forward projects every
position onto the whole vocabulary (30,522 or 50,265 columns), most of a small model's arithmetic.
Running the encoder on every token and the head only on the labelled positions gives the same loss,
exactly, for a fraction of the work (Transformers' ModernBERT does the same with ``sparse_prediction``).

``BertForMaskedLMAtMasks`` and ``RobertaForMaskedLMAtMasks`` are their families' ``...ForMaskedLM`` with that
forward. Being a class (not a patched instance), whatever wraps the forward goes through it: Trainer's loss,
accelerate's autocast (bf16, fp16), DDP under ``torchrun``, nn.DataParallel's replicas, ``torch.compile``;
and the model pickles whole. The weights are the parent's: ``from_pretrained`` reads any standard checkpoint
and ``save_pretrained`` writes a standard one (config.json names the parent class), so
``AutoModelForMaskedLM`` and ``pipeline("fill-mask")`` load it as usual. ``model_class`` picks the class for
a family (``assets.load_model(name, at_masks=True)`` loads with it); any other family keeps its own forward.
"""

from __future__ import annotations

import inspect

import torch
import torch.nn.functional as F
from torch import nn
from transformers import BertForMaskedLM, RobertaForMaskedLM
from transformers.modeling_outputs import MaskedLMOutput
from transformers.utils import TransformersKwargs, can_return_tuple

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


def _mean_at_masks(logits: torch.Tensor, targets: torch.Tensor, num_items_in_batch: int | torch.Tensor | None,
                   reduction: str = "mean") -> torch.Tensor:
    """Cross-entropy of the picked rows' ``logits`` (picked, vocab) against ``targets`` (picked,), in fp32: the sum,
    or the sum over ``num_items_in_batch`` (else over the picked count; 0, not NaN, when nothing is picked)."""
    total = F.cross_entropy(logits.float(), targets, reduction="sum")
    if reduction == "sum":
        return total
    count = num_items_in_batch if num_items_in_batch is not None else targets.numel()
    return total / torch.clamp(torch.as_tensor(count, device=total.device), min=1)


def logits_at(model, batch: dict[str, torch.Tensor], positions: torch.Tensor) -> torch.Tensor:
    """Vocabulary logits at the ``positions`` (a boolean mask shaped like ``input_ids``) only: (picked, vocab)."""
    encoder, head = parts(model)
    inputs = {k: v for k, v in batch.items() if k in ENCODER_INPUTS}
    hidden = encoder(**inputs).last_hidden_state
    return head(hidden[positions.to(hidden.device)])


def loss_at_masks(model, labels: torch.Tensor, num_items_in_batch: int | torch.Tensor | None = None,
                  reduction: str = "mean", **inputs: torch.Tensor) -> torch.Tensor:
    """Cross-entropy over the labelled positions, the head only there, for any model of a listed family.

    ``num_items_in_batch`` (Trainer passes it under gradient accumulation) divides the sum instead of this
    batch's own count, so every picked token of an accumulated step weighs the same. A batch with no
    labelled token gives 0, not NaN.
    """
    picked = labels != IGNORE
    logits = logits_at(model, inputs, picked)
    return _mean_at_masks(logits, labels[picked].to(logits.device), num_items_in_batch, reduction)


def loss(model, batch: dict[str, torch.Tensor], reduction: str = "mean") -> torch.Tensor:
    """What ``model(**batch).loss`` computes, the head only where the labels are."""
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    return loss_at_masks(model, batch["labels"], reduction=reduction, **inputs)


class _AtMasks:
    """The forward of the ``...ForMaskedLMAtMasks`` classes; ``standard_class`` is the family's own class."""

    standard_class: type
    accepts_loss_kwargs = True  # Trainer then passes num_items_in_batch and leaves the scaling to this forward

    @can_return_tuple
    def forward(self, input_ids: torch.Tensor | None = None, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None, position_ids: torch.Tensor | None = None,
                inputs_embeds: torch.Tensor | None = None, encoder_hidden_states: torch.Tensor | None = None,
                encoder_attention_mask: torch.Tensor | None = None, labels: torch.Tensor | None = None,
                num_items_in_batch: int | torch.Tensor | None = None, **kwargs) -> tuple[torch.Tensor] | MaskedLMOutput:
        """The parent's forward, with the vocabulary head only at the labelled positions when there are labels.

        Without ``labels``: exactly the parent's output, ``logits`` of shape (batch, length, vocab_size).

        With ``labels``: the encoder runs on every token, the head only where ``labels != -100``, and
        ``logits`` has shape **(n_labelled, vocab_size)**, its rows in the order of ``labels[labels != -100]``
        (row-major over batch and length). ``loss`` is the cross-entropy summed over those rows (in fp32) and
        divided by ``num_items_in_batch`` when given (Trainer's count over an accumulated step), else by
        ``n_labelled``; a batch with no labelled token gives 0, not NaN. It equals the parent's loss.

        ``return_dict=False`` returns the tuple ``(loss, logits, ...)`` without the Nones, as the parent does.
        Other keyword arguments the encoder accepts (``output_hidden_states``, ``output_attentions``, ...) go
        on to it; any other raises TypeError rather than being dropped.
        """
        encoder, head = parts(self)
        unknown = sorted(set(kwargs) - _encoder_keywords(type(encoder)))
        if unknown:
            raise TypeError(f"{type(self).__name__}.forward() got unexpected keyword argument(s): {', '.join(unknown)}")
        outputs = encoder(input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids,
                          position_ids=position_ids, inputs_embeds=inputs_embeds,
                          encoder_hidden_states=encoder_hidden_states, encoder_attention_mask=encoder_attention_mask,
                          return_dict=True, **kwargs)
        hidden = outputs[0]
        if labels is None:
            logits, masked_lm_loss = head(hidden), None
        else:
            labels = labels.to(hidden.device)
            picked = labels != IGNORE
            logits = head(hidden[picked])
            masked_lm_loss = _mean_at_masks(logits, labels[picked], num_items_in_batch)
        return MaskedLMOutput(loss=masked_lm_loss, logits=logits, hidden_states=outputs.hidden_states,
                              attentions=outputs.attentions)

    def save_pretrained(self, save_directory, *args, **kwargs):
        """The parent's ``save_pretrained``, then config.json rewritten to name the parent class
        (``BertForMaskedLM`` / ``RobertaForMaskedLM``): a standard checkpoint, which every loader reads."""
        super().save_pretrained(save_directory, *args, **kwargs)
        self.config.architectures = [self.standard_class.__name__]
        self.config.save_pretrained(save_directory)


_KEYWORDS: dict[type, frozenset[str]] = {}


def _encoder_keywords(encoder_class: type) -> frozenset[str]:
    """The keyword arguments the encoder's forward takes (named, and Transformers' common ``**kwargs``)."""
    cls = encoder_class
    if cls not in _KEYWORDS:
        named = {name for name, p in inspect.signature(encoder_class.forward).parameters.items()
                 if p.kind is not inspect.Parameter.VAR_KEYWORD and name != "self"}
        _KEYWORDS[cls] = frozenset(named | set(TransformersKwargs.__annotations__)) - {"return_dict", "num_items_in_batch"}
    return _KEYWORDS[cls]


class BertForMaskedLMAtMasks(_AtMasks, BertForMaskedLM):
    """``BertForMaskedLM`` with the vocabulary head only at the labelled positions (see ``_AtMasks.forward``)."""

    standard_class = BertForMaskedLM


class RobertaForMaskedLMAtMasks(_AtMasks, RobertaForMaskedLM):
    """``RobertaForMaskedLM`` with the vocabulary head only at the labelled positions (see ``_AtMasks.forward``)."""

    standard_class = RobertaForMaskedLM


CLASSES = {"bert": BertForMaskedLMAtMasks, "roberta": RobertaForMaskedLMAtMasks}


def model_class(config_or_model_type) -> type | None:
    """The AtMasks class for a config, a model or a ``model_type`` string of a listed family; None for any other."""
    if isinstance(config_or_model_type, str):
        model_type = config_or_model_type
    else:
        config_ = getattr(config_or_model_type, "config", config_or_model_type)  # a model: its config
        model_type = getattr(config_, "model_type", None)
    return CLASSES.get(model_type)


def standard_forward(model, **batch: torch.Tensor) -> MaskedLMOutput:
    """The family's own forward, the head at every position, for an AtMasks model too (the baseline)."""
    cls = type(model)
    return getattr(cls, "standard_class", cls).forward(model, **batch)


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
