"""The vocabulary head only at the picked positions, as a model class (04 train, 05 evaluate, 06 infer).

The loss reads about 15% of the positions, yet the standard forward scores every one against the whole vocabulary.
The encoder on every token and the head only where ``labels != -100`` give the same loss for a fraction of the work
(as ModernBERT's ``sparse_prediction``). ``BertForMaskedLMAtMasks`` and ``RobertaForMaskedLMAtMasks`` change only the
forward, so a checkpoint stays standard and whatever wraps the forward (Trainer, autocast, DDP) goes through it.
"""

from __future__ import annotations

import inspect

import torch
import torch.nn.functional as F
from transformers import BertForMaskedLM, RobertaForMaskedLM
from transformers.modeling_outputs import MaskedLMOutput
from transformers.utils import TransformersKwargs, can_return_tuple

IGNORE = -100  # the label PyTorch's cross-entropy skips

HEADS = {"bert": "cls", "roberta": "lm_head"}  # model_type -> the head's attribute; the encoder is base_model_prefix
ENCODER_INPUTS = ("input_ids", "attention_mask", "token_type_ids", "position_ids", "inputs_embeds")


def parts(model) -> tuple[torch.nn.Module, torch.nn.Module] | None:
    """(encoder, head) of a BERT or RoBERTa masked LM, or None: another family keeps its own forward."""
    head = HEADS.get(getattr(getattr(model, "config", None), "model_type", None))
    return None if head is None else (getattr(model, model.base_model_prefix), getattr(model, head))


def logits_at(model, batch: dict[str, torch.Tensor], positions: torch.Tensor) -> torch.Tensor:
    """Vocabulary logits at ``positions`` (a boolean mask shaped like ``input_ids``) only: (picked, vocab)."""
    encoder, head = parts(model)
    hidden = encoder(**{k: v for k, v in batch.items() if k in ENCODER_INPUTS}).last_hidden_state
    return head(hidden[positions.to(hidden.device)])


def mean_loss(logits: torch.Tensor, targets: torch.Tensor, num_items_in_batch=None) -> torch.Tensor:
    """Cross-entropy in fp32 over ``num_items_in_batch`` (Trainer's count) or the rows; 0, not NaN, with none picked."""
    total = F.cross_entropy(logits.float(), targets, reduction="sum")
    count = num_items_in_batch if num_items_in_batch is not None else targets.numel()
    return total / torch.clamp(torch.as_tensor(count, device=total.device), min=1)


class _AtMasks:
    """The forward of the ``...AtMasks`` classes; ``standard_class`` is the family's own."""

    standard_class: type
    accepts_loss_kwargs = True  # Trainer passes num_items_in_batch, and this forward scales the loss with it

    @can_return_tuple
    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, inputs_embeds=None,
                encoder_hidden_states=None, encoder_attention_mask=None, labels=None, num_items_in_batch=None,
                **kwargs) -> MaskedLMOutput:
        """The parent's forward; with labels, the head only where ``labels != -100``: the same loss, and ``logits``
        of shape **(n_labelled, vocab)** in the order of ``labels[labels != -100]``."""
        encoder, head = parts(self)
        unknown = set(kwargs) - _keywords(type(encoder))
        if unknown:
            raise TypeError(f"{type(self).__name__}.forward() got unexpected keyword argument(s): {', '.join(sorted(unknown))}")
        outputs = encoder(input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids,
                          position_ids=position_ids, inputs_embeds=inputs_embeds, encoder_hidden_states=encoder_hidden_states,
                          encoder_attention_mask=encoder_attention_mask, return_dict=True, **kwargs)
        hidden, loss = outputs[0], None
        if labels is None:
            logits = head(hidden)
        else:
            picked = labels.to(hidden.device) != IGNORE
            logits = head(hidden[picked])
            loss = mean_loss(logits, labels.to(hidden.device)[picked], num_items_in_batch)
        return MaskedLMOutput(loss=loss, logits=logits, hidden_states=outputs.hidden_states, attentions=outputs.attentions)

    def save_pretrained(self, save_directory, *args, **kwargs):
        """The parent's, with config.json naming the parent class: a standard checkpoint every loader reads."""
        super().save_pretrained(save_directory, *args, **kwargs)
        self.config.architectures = [self.standard_class.__name__]
        self.config.save_pretrained(save_directory)


def _keywords(encoder_class: type) -> set[str]:
    """The keyword arguments the encoder's forward takes, named or among Transformers' common ones."""
    named = {n for n, p in inspect.signature(encoder_class.forward).parameters.items() if p.kind is not p.VAR_KEYWORD}
    return (named | set(TransformersKwargs.__annotations__)) - {"self", "return_dict", "num_items_in_batch"}


class BertForMaskedLMAtMasks(_AtMasks, BertForMaskedLM):
    """``BertForMaskedLM`` with the vocabulary head only at the labelled positions."""

    standard_class = BertForMaskedLM


class RobertaForMaskedLMAtMasks(_AtMasks, RobertaForMaskedLM):
    """``RobertaForMaskedLM`` with the vocabulary head only at the labelled positions."""

    standard_class = RobertaForMaskedLM


CLASSES = {"bert": BertForMaskedLMAtMasks, "roberta": RobertaForMaskedLMAtMasks}


def at_masks(model):
    """``model`` as its family's AtMasks class, in place (no new weights); another family's keeps its forward, said."""
    cls = CLASSES.get(model.config.model_type)
    if cls is None:
        print(f"the head at the picked positions is for BERT and RoBERTa only: this {model.config.model_type} keeps its own")
    elif type(model) in (cls.standard_class, cls):
        model.__class__ = cls
    return model


def standard_forward(model, **batch: torch.Tensor) -> MaskedLMOutput:
    """The family's own forward, the head at every position, for an AtMasks model too (the baseline to compare)."""
    return getattr(type(model), "standard_class", type(model)).forward(model, **batch)
