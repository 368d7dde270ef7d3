"""Every figure the notebooks show. Each returns a closed ``Figure``: the notebook displays it once."""

from __future__ import annotations

import warnings
from typing import Any

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

BAR_COLOUR = "#4C72B0"
# A random replacement (03) can be any token of the vocabulary, some in scripts the font lacks: matplotlib draws a
# box for each, and says so on stderr every time the figure is drawn.
warnings.filterwarnings("ignore", message=r"Glyph \d+ .* missing from font", category=UserWarning)


def _done(fig: Figure) -> Figure:
    fig.tight_layout()
    plt.close(fig)
    return fig


def lengths(doc_tokens: list[int], block_tokens: list[int], block_size: int) -> Figure:
    """02: document lengths before grouping beside block lengths after it, on one token axis."""
    fig, (docs, blocks) = plt.subplots(1, 2, figsize=(9, 3.2), sharex=True)
    docs.hist(doc_tokens, bins=40, color=BAR_COLOUR)
    docs.axvline(block_size, color="#C44E52", linestyle="--", label=f"block_size = {block_size}")
    docs.set(xlabel="tokens per document", ylabel="documents", title=f"{len(doc_tokens):,} documents, every length")
    docs.legend()
    blocks.hist(block_tokens, bins=40, range=docs.get_xlim(), color="#55A868")
    blocks.set(xlabel="tokens per block", ylabel="blocks", title=f"{len(block_tokens):,} blocks, all {block_size} tokens")
    return _done(fig)


MASK_COLOURS = {"masked": "#C44E52", "replaced": "#DD8452", "kept": "#55A868"}
MASK_LEGEND = {"masked": "masked: the mask token", "replaced": "replaced: a random token", "kept": "kept: unchanged, still scored"}
CHAR_INCHES = 0.6 * 9 / 72  # the width of one monospace character at 9 points


def masked_block(rows: list[dict[str, str]], width: int = 100, title: str | None = None) -> Figure:
    """03: one block as the model sees it, each picked token coloured: masked, replaced or kept.

    ``rows`` are ``collate.token_table`` records (``model sees`` and ``what`` per token). One x unit is
    one monospace character, so tokens are laid out like text, ``width`` characters a line.
    """
    lines: list[list[dict[str, str]]] = [[]]
    used = 0
    for row in rows:
        if used + len(row["model sees"]) + 1 > width and lines[-1]:
            lines.append([])
            used = 0
        lines[-1].append(row)
        used += len(row["model sees"]) + 1
    line_inches, legend_inches, margin = 0.3, 0.45, 0.15
    text_inches = len(lines) * line_inches
    fig = plt.figure(figsize=(width * CHAR_INCHES + 2 * margin, text_inches + legend_inches + margin))
    fig_w, fig_h = fig.get_size_inches()
    ax = fig.add_axes((margin / fig_w, margin / fig_h, width * CHAR_INCHES / fig_w, text_inches / fig_h))
    ax.set(xlim=(0, width), ylim=(len(lines) - 0.5, -0.5))
    ax.axis("off")
    for y, line in enumerate(lines):
        x = 0
        for row in line:
            colour = MASK_COLOURS.get(row["what"])
            box = dict(boxstyle="round,pad=0.12", facecolor=colour, edgecolor="none") if colour else None
            ax.text(x, y, row["model sees"], family="monospace", fontsize=9, va="center",
                    color="white" if colour else "#333333", bbox=box)
            x += len(row["model sees"]) + 1
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in MASK_COLOURS.values()]
    fig.legend(handles, list(MASK_LEGEND.values()), loc="upper center", ncol=3, frameon=False,
               title=title, title_fontproperties={"weight": "bold"})
    plt.close(fig)  # laid out by hand: no tight_layout
    return fig


def loss_curves(log_history: list[dict[str, float]], base_loss: float) -> Figure:
    """04: Trainer's training loss against step (where it logged one), and the evaluation loss before training and
    after each evaluation."""
    fig, ax = plt.subplots(figsize=(7, 3.5))
    train = [(e["step"], e["loss"]) for e in log_history if "loss" in e]
    evals = [(0, base_loss)] + [(e["step"], e["eval_loss"]) for e in log_history if "eval_loss" in e]
    if train:
        ax.plot(*zip(*train), label="training loss")
    ax.plot(*zip(*evals), "o", markersize=7, label="evaluation loss")  # points: nothing measured between
    ax.set(xlabel="step", ylabel="cross-entropy per picked token", title="Fine-tuning")
    ax.legend()
    return _done(fig)


REFERENCE_COLOURS = {"uniform": "#C8C8C8", "unigram": "#8C8C8C", "base": "#4C72B0", "fine-tuned": "#55A868"}


def reference_points(values: dict[str, float]) -> Figure:
    """05: perplexity of the reference points and the models on the same masks (log scale: they span decades)."""
    fig, ax = plt.subplots(figsize=(6, 3.4))
    bars = ax.bar(list(values), list(values.values()), color=[REFERENCE_COLOURS.get(k, BAR_COLOUR) for k in values])
    ax.bar_label(bars, labels=[f"{v:,.1f}" for v in values.values()])
    ax.set(ylabel="perplexity (lower is better)", yscale="log", title="Same masks: reference points and models")
    ax.margins(y=0.15)
    return _done(fig)


def top_k(results: dict[str, list[dict[str, Any]]], text: str) -> Figure:
    """06: each model's top-k tokens for the mask, as probability bars."""
    fig, axes = plt.subplots(1, len(results), figsize=(4 * len(results), 2.8), sharex=True)
    axes = [axes] if len(results) == 1 else list(axes)
    for ax, (name, rows) in zip(axes, results.items()):
        ax.barh([r["token_str"] for r in rows][::-1], [r["score"] for r in rows][::-1], color=BAR_COLOUR)
        ax.set(title=name, xlabel="probability")
    fig.suptitle(text)
    return _done(fig)


def domain_perplexity(in_domain: dict[str, float], out_of_domain: dict[str, float]) -> Figure:
    """05: perplexity before and after fine-tuning, on held-out text of the domain and on text from outside it."""
    fig, ax = plt.subplots(figsize=(6, 3.4))
    width, kinds = 0.38, {"in-domain": in_domain, "out-of-domain": out_of_domain}
    for i, (model, colour) in enumerate((("base", REFERENCE_COLOURS["base"]), ("fine-tuned", REFERENCE_COLOURS["fine-tuned"]))):
        values = [figures[model] for figures in kinds.values()]
        bars = ax.bar([x + (i - 0.5) * width for x in range(len(kinds))], values, width, label=model, color=colour)
        ax.bar_label(bars, labels=[f"{v:,.1f}" for v in values])
    ax.set_xticks(range(len(kinds)), [f"{kind} text" for kind in kinds])
    ax.set(ylabel="perplexity (lower is better)", yscale="log", title="Both models, in the domain and outside it")
    top = max(max(in_domain.values()), max(out_of_domain.values()))
    ax.set_ylim(top=top * 30)  # room above the bars for the legend, on the log axis
    ax.legend(loc="upper center", ncol=2, frameon=False)
    return _done(fig)


def classifier_spread(macro_f1: dict[str, list[float]]) -> Figure:
    """05: each seed's macro-F1 for a classifier fine-tuned from each encoder, the seeds joined, the mean as a line."""
    fig, ax = plt.subplots(figsize=(4.5, 3.2))
    for pair in zip(*macro_f1.values()):  # one seed, every encoder
        ax.plot(range(len(pair)), pair, color="#BBBBBB", linewidth=0.8, zorder=1)
    for x, (name, values) in enumerate(macro_f1.items()):
        ax.scatter([x] * len(values), values, color=REFERENCE_COLOURS.get(name, "#C44E52"), zorder=3, alpha=0.8)
        ax.hlines(sum(values) / len(values), x - 0.25, x + 0.25, color="#333333")
    ax.set_xticks(range(len(macro_f1)), list(macro_f1))
    ax.set(ylabel="macro-F1 on the test split", xlim=(-0.6, len(macro_f1) - 0.4),
           title="One point a seed, joined across encoders; a line at the mean")
    return _done(fig)


def loss_pair(trainer: list[float], loop: list[float]) -> Figure:
    """04: the training loss at each step, from ``Trainer`` and from the plain loop, on the same batches."""
    fig, ax = plt.subplots(figsize=(7, 3.2))
    steps = range(1, len(trainer) + 1)
    ax.plot(steps, trainer, linewidth=3, alpha=0.5, label="Trainer")
    ax.plot(steps, loop, "o", markersize=3, label="the plain loop")
    ax.set(xlabel="step", ylabel="training loss", title="The same recipe, two ways")
    ax.legend()
    return _done(fig)
