"""Every figure the notebooks show. Each returns a closed ``Figure``: the notebook displays it once."""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
from matplotlib.figure import Figure


def _done(fig: Figure) -> Figure:
    fig.tight_layout()
    plt.close(fig)
    return fig


def lengths(doc_tokens: list[int], block_size: int) -> Figure:
    """02: how long the documents are, in tokens, against the block size they are cut into."""
    fig, ax = plt.subplots(figsize=(7, 3.2))
    ax.hist(doc_tokens, bins=40, color="#4C72B0")
    ax.axvline(block_size, color="#C44E52", linestyle="--", label=f"block_size = {block_size}")
    ax.set(xlabel="tokens per document", ylabel="documents", title="Document lengths before grouping")
    ax.legend()
    return _done(fig)


def loss_curves(history: dict[str, list[dict[str, float]]]) -> Figure:
    """04: training loss against step, with the evaluation loss at the start and after each epoch."""
    fig, ax = plt.subplots(figsize=(7, 3.5))
    train, evals = history["train"], history["eval"]
    ax.plot([e["step"] for e in train], [e["loss"] for e in train], label="training loss (fresh masks)")
    ax.plot([e["step"] for e in evals], [e["loss"] for e in evals], "o-", label="evaluation loss (fixed masks)")
    ax.set(xlabel="step", ylabel="cross-entropy per masked token", title="Fine-tuning")
    ax.legend()
    return _done(fig)


def perplexities(values: dict[str, float]) -> Figure:
    """05: perplexity per model on the same evaluation masks (log scale: the drop spans decades)."""
    fig, ax = plt.subplots(figsize=(5, 3.2))
    bars = ax.bar(list(values), list(values.values()), color=["#8C8C8C", "#55A868"][: len(values)])
    ax.bar_label(bars, fmt="%.1f")
    ax.set(ylabel="perplexity (lower is better)", yscale="log", title="Same masks, before and after")
    return _done(fig)


def top_k(results: dict[str, list[dict[str, Any]]], text: str) -> Figure:
    """06: each model's top-k tokens for the mask, as probability bars."""
    fig, axes = plt.subplots(1, len(results), figsize=(4 * len(results), 2.8), sharex=True)
    axes = [axes] if len(results) == 1 else list(axes)
    for ax, (name, rows) in zip(axes, results.items()):
        ax.barh([r["token_str"] for r in rows][::-1], [r["score"] for r in rows][::-1], color="#4C72B0")
        ax.set(title=name, xlabel="probability")
    fig.suptitle(text)
    return _done(fig)
