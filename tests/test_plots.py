"""The figures the notebooks show, and the interactive fill-mask box behind 06's last cell."""

import pytest
import torch
from matplotlib.colors import to_hex
from transformers import AutoModelForMaskedLM

from helpers import collate, infer, interactive, plots

TEXT = "The Milky Way is a [MASK] galaxy."


@pytest.fixture(scope="module")
def other(model):
    """A genuinely different model to set beside the tiny one: its architecture, freshly initialised (seed 1)."""
    torch.manual_seed(1)
    return AutoModelForMaskedLM.from_config(model.config).eval()


def test_lengths_puts_documents_beside_blocks():
    fig = plots.lengths([10, 200, 700], [128] * 6, 128)
    docs, blocks = fig.axes
    assert docs.get_title() == "3 documents, every length" and blocks.get_title() == "6 blocks, all 128 tokens"
    assert sum(p.get_height() for p in blocks.patches) == 6


def test_masked_block_colours_each_picked_token_by_what_happened(tokenizer):
    rows = [{"model sees": "the", "what": ""}, {"model sees": "[MASK]", "what": "masked"},
            {"model sees": "zebra", "what": "replaced"}, {"model sees": "sky", "what": "kept"}] * 30
    fig = plots.masked_block(rows, width=40)
    texts = fig.axes[0].texts
    assert len(texts) == len(rows)
    coloured = [to_hex(t.get_bbox_patch().get_facecolor()) for t in texts if t.get_bbox_patch() is not None]
    expected = [plots.MASK_COLOURS[r["what"]].lower() for r in rows if r["what"]]
    assert coloured == expected
    assert max(t.get_position()[0] + len(t.get_text()) for t in texts) <= 40  # wrapped at the width


def test_top_k_draws_each_models_own_answers_as_bars(model, other, tokenizer):
    results = {"base": infer.fill_mask(TEXT, other, tokenizer, top_k=4), "fine-tuned": infer.fill_mask(TEXT, model, tokenizer, top_k=3)}
    fig = plots.top_k(results, "text")
    assert [ax.get_title() for ax in fig.axes] == ["base", "fine-tuned"]
    assert [len(ax.patches) for ax in fig.axes] == [4, 3]
    for ax, rows in zip(fig.axes, results.values()):  # likeliest at the top: drawn last
        assert [t.get_text() for t in ax.get_yticklabels()] == [r["token_str"] for r in rows][::-1]
        assert [bar.get_width() for bar in ax.patches] == pytest.approx([r["score"] for r in rows][::-1])
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] != [t.get_text() for t in fig.axes[1].get_yticklabels()]


def test_reference_points_label_each_bar_on_a_log_scale():
    fig = plots.reference_points({"uniform": 30522.0, "unigram": 1185.6, "base": 3524.5, "fine-tuned": 49.9})
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.texts] == ["30,522.0", "1,185.6", "3,524.5", "49.9"]
    assert ax.get_yscale() == "log" and len(ax.patches) == 4


def test_evaluation_losses_are_points_not_a_line():
    history = {"train": [{"step": s, "loss": 5 - s / 10} for s in range(1, 9)],
               "eval": [{"step": 0, "loss": 8.0}, {"step": 4, "loss": 4.5}, {"step": 8, "loss": 4.2}]}
    train_line, eval_points = plots.loss_curves(history).axes[0].lines
    assert train_line.get_linestyle() == "-"
    assert eval_points.get_linestyle() == "None" and eval_points.get_marker() == "o"
    assert list(eval_points.get_xdata()) == [0, 4, 8]


@pytest.fixture
def models(model, other):
    return {"base": other, "fine-tuned": model}


def test_the_box_prints_each_models_answers_where_widgets_cannot_show(models, tokenizer, capsys):
    assert interactive.fill_mask_box(models, tokenizer, TEXT, 2) is None  # no kernel here
    lines = capsys.readouterr().out.splitlines()
    expected = [f"{name}: " + ", ".join(f"{r['token_str']} {r['score']:.3f}" for r in infer.fill_mask(TEXT, m, tokenizer, 2))
                for name, m in models.items()]
    assert lines == expected and expected[0].split(": ", 1)[1] != expected[1].split(": ", 1)[1]


def test_the_box_redraws_on_a_new_text_and_explains_a_bad_one(models, tokenizer, monkeypatch):
    pytest.importorskip("ipywidgets")
    monkeypatch.setattr(interactive, "widgets_available", lambda: True)
    box = interactive.fill_mask_box(models, tokenizer, "The Milky Way is a [MASK] galaxy.", 3)
    hint, (text_box, slider), output = box.children[0], box.children[1].children, box.children[2]
    assert "[MASK]" in hint.value and "image/png" in output.outputs[0]["data"]
    slider.value = 5
    assert len(output.outputs) == 1 and "image/png" in output.outputs[0]["data"]
    text_box.value = "No blank in this one."
    assert output.outputs[0]["text"].startswith("the text has no mask token")


def test_answers_take_the_first_of_several_masks_for_each_model(models, tokenizer):
    text = "The [MASK] Way is a [MASK] galaxy."
    results = interactive.answers(text, models, tokenizer, 2)
    for name, m in models.items():
        first, second = infer.fill_mask(text, m, tokenizer, 2)
        assert results[name] == first != second
    assert results["base"] != results["fine-tuned"]
