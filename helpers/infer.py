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


# Sentences from the corpus's domain whose blank has one right word (a single token in BERT's and RoBERTa's vocabularies).
PROBES = (
    ("The Milky Way is a {mask} galaxy.", "spiral"),
    ("Water is made of hydrogen and {mask}.", "oxygen"),
    ("The Earth orbits the {mask}.", "sun"),
    ("An atom has a nucleus surrounded by {mask}.", "electrons"),
    ("The heart pumps {mask} through the body.", "blood"),
    ("The speed of {mask} in a vacuum is a universal constant.", "light"),
    ("DNA carries the {mask} information of living things.", "genetic"),
)


def answer_id(word: str, tokenizer) -> int:
    """The single token that spells ``word`` where a blank stands after a space; an error if it takes several."""
    ids = tokenizer(" " + word, add_special_tokens=False)["input_ids"]
    if len(ids) != 1:
        pieces = tokenizer.convert_ids_to_tokens(ids)
        raise ValueError(f"{word!r} is {len(ids)} tokens for this tokenizer ({' '.join(pieces)}): a blank holds one token")
    return ids[0]


@torch.no_grad()
def rank_of(text: str, word: str, model, tokenizer) -> tuple[int, float]:
    """Where ``word`` ranks among the model's guesses for the text's one mask (1: the first guess), and its probability."""
    check_text(text, tokenizer, top_k=1)
    model.eval()
    inputs = tokenizer([text], return_tensors="pt").to(next(model.parameters()).device)
    at_mask = inputs["input_ids"] == tokenizer.mask_token_id
    if int(at_mask.sum()) != 1:
        raise ValueError(f"the text has {int(at_mask.sum())} mask tokens: ranking an answer needs exactly one")
    probabilities = mask_logits(model, inputs, at_mask)[0].float().softmax(dim=-1)
    target = answer_id(word, tokenizer)
    return int((probabilities > probabilities[target]).sum()) + 1, float(probabilities[target])


def probe_table(models: dict, tokenizer, probes=PROBES):
    """Each probe's expected word, its rank under each model (empty where the word is not one token), each model's first guess."""
    import pandas as pd

    rows = []
    for template, word in probes:
        text = with_mask(template, tokenizer)
        row = {"sentence": template.replace("{mask}", "___"), "expected": word}
        try:
            answer_id(word, tokenizer)
        except ValueError:
            rows.append(row)  # not one token for this tokenizer: no rank to show
            continue
        for name, model in models.items():
            row[f"rank, {name}"] = rank_of(text, word, model, tokenizer)[0]
        for name, model in models.items():
            row[f"first guess, {name}"] = fill_mask(text, model, tokenizer, top_k=1)[0]["token_str"].strip()
        rows.append(row)
    table = pd.DataFrame(rows)
    ranks = [c for c in table.columns if c.startswith("rank, ")]
    return table.astype({c: "Int64" for c in ranks}).fillna({c: "" for c in table.columns if c.startswith("first guess")})


COMMON_WORDS = frozenset("a an and are as at by for from in is it its of on or that the to with".split())


def copied(guess: str, sentence: str) -> bool:
    """True when ``guess`` is a word of ``sentence`` other than a common one (the, of, and...)."""
    guess = guess.strip().lower()
    return guess not in COMMON_WORDS and guess in {w.strip(".,;:") for w in sentence.lower().split()}


def probe_reading(table, before: str = "base", after: str = "fine-tuned") -> str:
    """Two or three sentences on the probe table, built from its figures."""
    columns = [f"rank, {before}", f"rank, {after}"]
    if not set(columns) <= set(table.columns) or table.dropna(subset=columns).empty:
        return "No expected word is a single token for this tokenizer, so no rank can be read."
    ranked = table.dropna(subset=columns)
    b, a = ranked[columns[0]].astype(int), ranked[columns[1]].astype(int)
    n, up, firsts = len(ranked), int((a < b).sum()), int((a == 1).sum())
    now_first = "none is the first guess yet" if firsts == 0 else f"{firsts} of {n} {'is' if firsts == 1 else 'are'} now the first guess"
    reading = (f"Fine-tuning moved the expected word up for {up} of {n} probes: the median rank went from "
               f"{b.median():,g} to {a.median():,g}, and {now_first}.")
    copies = [g for g, sentence in zip(ranked[f"first guess, {after}"], ranked["sentence"]) if copied(g, sentence)]
    if copies:
        reading += (f" In {len(copies)} of {n}, the {after} model's first guess repeats a word of the sentence itself "
                    f"({', '.join(copies)}).")
    return reading


def answer_table(text: str, word: str, models: dict, tokenizer):
    """Where each model ranks the expected ``word`` for the text's mask, and the probability it gives it.

    Empty where ``word`` is several tokens for this tokenizer: a blank holds one token, so it has no rank.
    """
    import pandas as pd

    rows = {}
    try:
        answer_id(word, tokenizer)
    except ValueError:
        rows = {name: {"rank": None, "probability": None} for name in models}
    else:
        for name, model in models.items():
            rank, probability = rank_of(text, word, model, tokenizer)
            rows[name] = {"rank": rank, "probability": probability}
    return pd.DataFrame(rows).T.astype({"rank": "Int64", "probability": "Float64"})


def ranks(table) -> dict[str, int | None]:
    """``answer_table``'s ranks as plain numbers (None: no rank), for ``metrics.json``."""
    import pandas as pd

    return {name: None if pd.isna(rank) else int(rank) for name, rank in table["rank"].items()}


def answer_reading(text: str, word: str, table, first_guesses: dict[str, str]) -> str:
    """A sentence or two on ``answer_table``'s figures, naming a first guess that repeats a word of the text."""
    names = list(table.index)
    if table["rank"].isna().all():
        return (f'"{word}" is several tokens for this tokenizer, so it has no single rank: set fill_mask_answer '
                f"to a word that is one token.")
    said = " and ".join(f"{table.loc[n, 'rank']:,} under the {n} model (probability {table.loc[n, 'probability']:.2g})"
                        for n in names)
    reading = f'"{word}" ranks {said}.'
    last, guess = names[-1], first_guesses[names[-1]].strip()
    if copied(guess, text) and guess.lower() != word.lower():
        reading += f' The {last} model\'s first guess, "{guess}", repeats a word of the sentence.'
    return reading


def moved_up(answer, probes, before: str = "base", after: str = "fine-tuned") -> dict[str, bool | None]:
    """06's checks: fine-tuning moved the guide's answer up, and the expected word up for most probes (None: no rank)."""
    first = ranks(answer)
    columns = [f"rank, {before}", f"rank, {after}"]
    ranked = probes.dropna(subset=columns) if set(columns) <= set(probes.columns) else probes.iloc[0:0]
    return {
        "answer moved up": None if first[after] is None else first[after] < first[before],
        "most probes moved up": None if ranked.empty else bool((ranked[columns[1]] < ranked[columns[0]]).sum() > len(ranked) / 2),
    }
