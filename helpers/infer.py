"""06 infer: fill in the mask, with ``pipeline("fill-mask")`` and by hand with ``torch.topk``.

``fill_mask`` is the by-hand version: tokenize, find the mask, softmax the logits there, take
the top k. It returns exactly what the pipeline returns, so the two can be compared entry by entry.
"""

from __future__ import annotations

from typing import Any

import torch

from . import masked_head

OTHER_MASKS = ("<mask>", "[MASK]")  # RoBERTa's and BERT's; a text written for one fails on the other


def with_mask(template: str, tokenizer) -> str:
    """Put the tokenizer's own mask token where the template says ``{mask}``."""
    return template.replace("{mask}", tokenizer.mask_token)


def check_text(text: str, tokenizer, top_k: int) -> None:
    """Errors for text the model cannot fill: no mask, another family's mask, too long; and a bad top_k."""
    if not text.strip():
        raise ValueError(f"the text is empty: write a sentence with {tokenizer.mask_token} where the word goes")
    if tokenizer.mask_token not in text:
        foreign = [m for m in OTHER_MASKS if m in text and m != tokenizer.mask_token]
        hint = f" ({foreign[0]} is another model family's mask token)" if foreign else ""
        raise ValueError(f"the text has no mask token{hint}: this tokenizer's mask token is {tokenizer.mask_token}")
    n_tokens = len(tokenizer(text)["input_ids"])
    if n_tokens > tokenizer.model_max_length:
        raise ValueError(f"the text is {n_tokens} tokens; this model reads at most {tokenizer.model_max_length}")
    if not 1 <= top_k <= len(tokenizer):
        raise ValueError(f"top_k={top_k}: must be between 1 and the vocabulary size, {len(tokenizer)}")


@torch.no_grad()
def fill_mask(text: str, model, tokenizer, top_k: int = 3) -> list[dict[str, Any]] | list[list[dict[str, Any]]]:
    """The ``top_k`` likeliest tokens for the mask, each ``{score, token, token_str, sequence}``.

    As ``pipeline("fill-mask")`` does: one list for one mask, a list of lists for several.
    """
    return fill_masks([text], model, tokenizer, top_k)[0]


@torch.no_grad()
def fill_masks(texts: list[str], model, tokenizer, top_k: int = 3) -> list:
    """``fill_mask`` for many texts in one padded batch: one forward, the head only at the masks."""
    for text in texts:
        check_text(text, tokenizer, top_k)
    model.eval()
    inputs = tokenizer(texts, return_tensors="pt", padding=True).to(next(model.parameters()).device)
    at_mask = inputs["input_ids"] == tokenizer.mask_token_id
    scores, token_ids = torch.topk(mask_logits(model, inputs, at_mask).softmax(dim=-1), top_k)
    scores, token_ids = scores.tolist(), token_ids.tolist()
    results, row = [], 0  # the logits' rows are the masks in reading order, text after text
    for ids, attention, masks in zip(inputs["input_ids"], inputs["attention_mask"], at_mask):
        ids = ids[attention.bool()]  # without the padding, as the pipeline decodes
        positions = torch.where(masks[: len(ids)])[0].tolist()
        single = len(positions) == 1
        per_mask = []
        for position in positions:
            per_mask.append([_proposal(ids, position, t, sc, tokenizer, single) for sc, t in zip(scores[row], token_ids[row])])
            row += 1
        results.append(per_mask[0] if single else per_mask)
    return results


def mask_logits(model, inputs, at_mask: torch.Tensor) -> torch.Tensor:
    """Vocabulary logits at the mask positions: the head only there where the model allows it."""
    if masked_head.supported(model):
        return masked_head.logits_at(model, inputs, at_mask)
    return model(**inputs).logits[at_mask]


def _proposal(ids: torch.Tensor, position: int, token: int, score: float, tokenizer, single: bool) -> dict[str, Any]:
    filled = ids.clone()
    filled[position] = token
    sequence = tokenizer.decode(filled, skip_special_tokens=single)
    return {"score": score, "token": token, "token_str": tokenizer.decode([token]), "sequence": sequence}


def fill_mask_pipeline(text: str, model, tokenizer, top_k: int = 3):
    """The same through ``pipeline("fill-mask")``, the way the guide does it."""
    from transformers import pipeline

    check_text(text, tokenizer, top_k)
    device = next(model.parameters()).device
    return pipeline("fill-mask", model=model, tokenizer=tokenizer, device=device)(text, top_k=top_k)


def agree(a: list[dict[str, Any]], b: list[dict[str, Any]], tolerance: float = 1e-4) -> bool:
    """True when two top-k lists name the same tokens in the same order with scores within ``tolerance``."""
    return len(a) == len(b) and all(
        x["token"] == y["token"] and x["sequence"] == y["sequence"] and abs(x["score"] - y["score"]) <= tolerance
        for x, y in zip(a, b)
    )


def side_by_side(results: dict[str, list[dict[str, Any]]]):
    """A table of top-k lists, one pair of columns (token, score) per model."""
    import pandas as pd

    columns = {}
    for name, rows in results.items():
        columns[(name, "token")] = [r["token_str"] for r in rows]
        columns[(name, "score")] = [round(r["score"], 3) for r in rows]
    table = pd.DataFrame(columns)
    table.index = range(1, len(table) + 1)
    table.index.name = "rank"
    return table
