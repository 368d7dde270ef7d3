"""What a notebook shows besides tables and figures: the course's own code, and text written from measured figures."""

from __future__ import annotations

import inspect
from typing import Any, Callable


class Markdown:
    """Markdown rendered in a notebook, and plain text elsewhere (a console, a text diff of the notebook).

    IPython's own ``Markdown`` prints as ``<IPython.core.display.Markdown object>`` outside a notebook.
    """

    def __init__(self, text: str, plain: str | None = None) -> None:
        self.text = text
        self.plain = text if plain is None else plain

    def _repr_markdown_(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return self.plain


def markdown(text: str) -> Markdown:
    """``text`` as markdown in a notebook, as itself anywhere else."""
    return Markdown(text)


def source(*functions: Callable[..., Any]) -> Markdown:
    """The source of ``functions``, read from the package so the page never drifts from the code that runs.

    A fenced markdown block: JupyterLab, Colab and GitHub highlight it, with no style sheet of its own.
    """
    code = "\n\n\n".join(inspect.getsource(f).rstrip() for f in functions)
    return Markdown(f"```python\n{code}\n```", plain=code)
