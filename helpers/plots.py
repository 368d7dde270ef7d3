"""The figures the notebooks draw with more than a few lines of matplotlib. Each returns a closed ``Figure``: the
notebook displays it once."""

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


MASK_COLOURS = {"masked": "#C44E52", "replaced": "#DD8452", "kept": "#55A868"}
MASK_LEGEND = {"masked": "masked: the mask token", "replaced": "replaced: a random token", "kept": "kept: unchanged, still scored"}
CHAR_INCHES = 0.6 * 9 / 72  # the width of one monospace character at 9 points


def kind(seen: int, label: int, mask_token_id: int) -> str:
    """What a position shows the model: "" if not picked, else the mask token, another token, or itself."""
    return "" if label == -100 else "masked" if seen == mask_token_id else "kept" if seen == label else "replaced"


def masked_block(input_ids: list[int], labels: list[int], tokenizer, width: int = 100, title: str | None = None) -> Figure:
    """03: one block as the model sees it, each picked token coloured by its ``kind``; one x unit is one monospace
    character, so tokens are laid out like text, ``width`` characters a line."""
    rows = [{"model sees": token, "what": kind(seen, label, tokenizer.mask_token_id)}
            for token, seen, label in zip(tokenizer.convert_ids_to_tokens(input_ids), input_ids, labels)]
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


def top_k(results: dict[str, list[dict[str, Any]]], text: str) -> Figure:
    """06: each model's top-k tokens for the mask, as probability bars."""
    fig, axes = plt.subplots(1, len(results), figsize=(4 * len(results), 2.8), sharex=True)
    axes = [axes] if len(results) == 1 else list(axes)
    for ax, (name, rows) in zip(axes, results.items()):
        ax.barh([r["token_str"] for r in rows][::-1], [r["score"] for r in rows][::-1], color=BAR_COLOUR)
        ax.set(title=name, xlabel="probability")
    fig.suptitle(text)
    return _done(fig)
