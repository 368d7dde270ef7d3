"""The figures the notebooks show, and the interactive fill-mask box behind 06's last cell."""

import pytest
from matplotlib.colors import to_hex

from helpers import collate, infer, interactive, plots


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


def test_top_k_draws_a_bar_per_answer(model, tokenizer):
    rows = infer.fill_mask(infer.with_mask("The Milky Way is a {mask} galaxy.", tokenizer), model, tokenizer, top_k=4)
    fig = plots.top_k({"base": rows, "again": rows}, "text")
    assert [len(ax.patches) for ax in fig.axes] == [4, 4]


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
def models(model):
    return {"base": model, "fine-tuned": model}


def test_the_box_prints_its_answers_where_widgets_cannot_show(models, tokenizer, capsys):
    assert interactive.fill_mask_box(models, tokenizer, "The Milky Way is a [MASK] galaxy.", 2) is None  # no kernel here
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == ["base", "fine-tuned"] and len(lines[0].split(",")) == 2


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


def test_answers_take_the_first_of_several_masks(models, tokenizer):
    results = interactive.answers("The [MASK] Way is a [MASK] galaxy.", models, tokenizer, 2)
    assert results["base"] == infer.fill_mask("The [MASK] Way is a [MASK] galaxy.", models["base"], tokenizer, 2)[0]
