"""06 infer, hands on: a text box and a top-k slider over fill-mask (JupyterLab, Colab); a static view where no widget
renders, printed answers without ipywidgets.
"""

from __future__ import annotations

import base64
import html
import io
from typing import Any

from . import infer, plots


def answers(text: str, models: dict[str, Any], tokenizer, top_k: int) -> dict[str, list[dict[str, Any]]]:
    """Each model's top-k for the text's (first) mask."""
    results = {}
    for name, model in models.items():
        rows = infer.fill_mask(text, model, tokenizer, top_k)
        results[name] = rows[0] if rows and isinstance(rows[0], list) else rows  # several masks: the first
    return results


def describe(results: dict[str, list[dict[str, Any]]]) -> str:
    """One line per model: its tokens and their probabilities."""
    return "\n".join(
        f"{name}: " + ", ".join(f"{r['token_str']} {r['score']:.3f}" for r in rows) for name, rows in results.items()
    )


def png_bytes(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    return buffer.getvalue()


def png(fig):
    """A figure as a PNG image for a widget's output: rendered here, so any frontend shows it."""
    from IPython.display import Image

    return Image(png_bytes(fig))


def static_view(results: dict[str, list[dict[str, Any]]], text: str, hint: str) -> dict[str, str]:
    """What a page without a kernel shows instead of the box (GitHub, nbconvert): the bars and the answers."""
    image = base64.b64encode(png_bytes(plots.top_k(results, text))).decode()
    answers_html = html.escape(describe(results))
    return {
        "text/plain": f"fill-mask box for {text!r} (live in JupyterLab or Colab)\n{describe(results)}",
        "text/html": (f"<p>{html.escape(hint)} The box answers live in JupyterLab or Colab; "
                      f"this is its first answer.</p><img src='data:image/png;base64,{image}'/><pre>{answers_html}</pre>"),
    }


def widgets_available() -> bool:
    """ipywidgets installed and an IPython kernel to talk to."""
    try:
        import ipywidgets  # noqa: F401
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def fill_mask_box(models: dict[str, Any], tokenizer, text: str, top_k: int = 3):
    """The interactive box (returned, so the cell shows it), or the answers printed where it cannot show."""
    if not widgets_available():
        print(describe(answers(text, models, tokenizer, top_k)))
        return None
    import ipywidgets as widgets

    FillMaskBox = _fill_mask_box_class()
    text_box = widgets.Text(value=text, description="text", continuous_update=False,
                            layout=widgets.Layout(width="70%"))
    slider = widgets.IntSlider(value=top_k, min=1, max=10, description="top k", continuous_update=False)
    output = widgets.Output()

    def redraw(_change=None) -> None:
        output.outputs = ()  # set from the kernel, so it works without a frontend capturing output
        try:
            results = answers(text_box.value, models, tokenizer, slider.value)
        except ValueError as err:  # no mask, an empty text, ...: say so in the box, not as a traceback
            output.append_stdout(f"{err}\n")
            return
        output.append_display_data(png(plots.top_k(results, text_box.value)))

    text_box.observe(redraw, names="value")
    slider.observe(redraw, names="value")
    redraw()
    hint = f"Write {tokenizer.mask_token} where the word goes; press Enter to ask again."
    box = FillMaskBox([widgets.HTML(hint), widgets.HBox([text_box, slider]), output])
    box.static = static_view(answers(text, models, tokenizer, top_k), text, hint)
    return box


def _fill_mask_box_class():
    import ipywidgets as widgets

    class FillMaskBox(widgets.VBox):
        """A VBox that a static page shows as bars and answers, not as ``VBox(children=(HTML(value=...``."""

        static: dict[str, str] = {}

        def _repr_mimebundle_(self, **kwargs):
            bundle = super()._repr_mimebundle_(**kwargs) or {}
            return {**bundle, **self.static}  # the widget view where a kernel renders it, the rest elsewhere

    return FillMaskBox
