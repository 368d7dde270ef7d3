"""06 infer: fill in the mask by hand, returning exactly what ``pipeline("fill-mask")`` returns, for several texts in
one batch; and where the expected word ranks.
"""

from __future__ import annotations

import re
from typing import Any

import pandas as pd
import torch

from . import masked_head

OTHER_MASKS = ("<mask>", "[MASK]")  # RoBERTa's and BERT's; a text written for one fails on the other


def with_mask(template: str, tokenizer) -> str:
    """The tokenizer's own mask token where the template says ``{mask}``."""
    return template.replace("{mask}", tokenizer.mask_token)


def check_text(text: str, tokenizer, top_k: int) -> None:
    """Errors for a text the model cannot fill: no mask, another family's mask, too long; and a bad top_k."""
    if tokenizer.mask_token not in text:
        foreign = [m for m in OTHER_MASKS if m in text]
        hint = f" ({foreign[0]} is another model family's)" if foreign else ""
        raise ValueError(f"the text has no mask token{hint}: write {tokenizer.mask_token} where the word is missing")
    n_tokens = len(tokenizer(text)["input_ids"])
    if n_tokens > tokenizer.model_max_length:
        raise ValueError(f"the text is {n_tokens} tokens; this model reads at most {tokenizer.model_max_length}")
    if not 1 <= top_k <= len(tokenizer):
        raise ValueError(f"top_k={top_k}: must be between 1 and the vocabulary's size, {len(tokenizer)}")


@torch.no_grad()
def mask_logits(model, inputs, at_mask: torch.Tensor) -> torch.Tensor:
    """Vocabulary logits at the mask positions, the head only there where the model's family allows it."""
    if masked_head.parts(model) is not None:
        return masked_head.logits_at(model, inputs, at_mask)
    return model(**inputs).logits[at_mask]


@torch.no_grad()
def fill_masks(texts: list[str], model, tokenizer, top_k: int = 3) -> list:
    """``fill_mask`` for several texts in one padded batch: one list per text, a list of lists for several masks."""
    for text in texts:
        check_text(text, tokenizer, top_k)
    model.eval()
    inputs = tokenizer(texts, return_tensors="pt", padding=True).to(model.device)
    at_mask = inputs["input_ids"] == tokenizer.mask_token_id
    scores, token_ids = torch.topk(mask_logits(model, inputs, at_mask).float().softmax(dim=-1), top_k)
    results, row = [], 0  # the logits' rows are the masks in reading order, text after text
    for ids, attention, masks in zip(inputs["input_ids"], inputs["attention_mask"], at_mask):
        ids = ids[attention.bool()]  # without the padding, as the pipeline decodes
        per_mask = []
        for position in torch.where(masks[: len(ids)])[0].tolist():
            filled = []
            for score, token in zip(scores[row].tolist(), token_ids[row].tolist()):
                sequence = ids.clone()
                sequence[position] = token
                filled.append({"score": score, "token": token, "token_str": tokenizer.decode([token]),
                               "sequence": tokenizer.decode(sequence, skip_special_tokens=int(masks.sum()) == 1)})
            per_mask.append(filled)
            row += 1
        results.append(per_mask[0] if len(per_mask) == 1 else per_mask)
    return results


def fill_mask(text: str, model, tokenizer, top_k: int = 3) -> list[dict[str, Any]]:
    """The ``top_k`` likeliest tokens for the mask, each ``{score, token, token_str, sequence}``, as the pipeline gives."""
    return fill_masks([text], model, tokenizer, top_k)[0]


def agree(a: list[dict[str, Any]], b: list[dict[str, Any]], tolerance: float = 1e-4) -> bool:
    """Whether two top-k lists name the same tokens in the same order, with scores within ``tolerance``."""
    return len(a) == len(b) and all(x["token"] == y["token"] and x["sequence"] == y["sequence"]
                                    and abs(x["score"] - y["score"]) <= tolerance for x, y in zip(a, b))


def answer_id(word: str, tokenizer) -> int | None:
    """The one token that spells ``word`` after a space, or None when it takes several (a blank holds one token)."""
    ids = tokenizer(" " + word, add_special_tokens=False)["input_ids"]
    return ids[0] if len(ids) == 1 else None


@torch.no_grad()
def rank_of(text: str, word: str, model, tokenizer) -> tuple[int, float] | None:
    """Where ``word`` ranks among the model's guesses for the text's one mask (1: first), and its probability; None
    when the word is several tokens."""
    target = answer_id(word, tokenizer)
    if target is None:
        return None
    check_text(text, tokenizer, top_k=1)
    model.eval()
    inputs = tokenizer([text], return_tensors="pt").to(model.device)
    at_mask = inputs["input_ids"] == tokenizer.mask_token_id
    if int(at_mask.sum()) != 1:
        raise ValueError(f"the text has {int(at_mask.sum())} mask tokens: ranking an answer needs exactly one")
    probabilities = mask_logits(model, inputs, at_mask)[0].float().softmax(dim=-1)
    return int((probabilities > probabilities[target]).sum()) + 1, float(probabilities[target])


def probe_sentences(texts: list, tokenizer, n: int = 40) -> list[tuple[str, str]]:
    """06's rule, fixed before any answer is seen: each text's first sentence if it has 8 to 30 words, with its last
    lower-case word of at least 5 letters that is one token as the blank; the first ``n`` texts that give one."""
    found = []
    for text in texts:
        text = " ".join(text) if isinstance(text, list) else text  # ELI5's answers: a list
        words = re.split(r"(?<=[.!?])\s+", text.strip(), maxsplit=1)[0].split()
        for i in range(len(words) - 1, 0, -1) if 8 <= len(words) <= 30 else ():
            word = words[i].strip(".,;:()'\"")
            if re.fullmatch(r"[a-z]{5,}", word) and answer_id(word, tokenizer) is not None:
                found.append((" ".join([*words[:i], words[i].replace(word, "{mask}"), *words[i + 1:]]), word))
                break
        if len(found) == n:
            break
    return found


def probe_table(models: dict[str, Any], tokenizer, texts: list) -> pd.DataFrame:
    """For each of ``probe_sentences(texts)``: the expected word, and each model's first guess and rank for it (1: first)."""
    rows = []
    for template, word in probe_sentences(texts, tokenizer):
        text = with_mask(template, tokenizer)
        row = {"sentence": template.replace("{mask}", "___"), "expected": word}
        for name, model in models.items():
            row[f"first guess, {name}"] = fill_mask(text, model, tokenizer, 1)[0]["token_str"].strip()
            row[f"rank, {name}"] = rank_of(text, word, model, tokenizer)[0]
        rows.append(row)
    return pd.DataFrame(rows)
