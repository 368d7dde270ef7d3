"""What a notebook shows besides tables and figures: the course's own code, and text written from measured figures."""

from __future__ import annotations

import inspect
from typing import Any, Callable

from IPython.display import Code


def source(*functions: Callable[..., Any]) -> Code:
    """The source of ``functions``, read from the package so the page never drifts from the code that runs."""
    return Code("\n\n".join(inspect.getsource(f).rstrip() for f in functions), language="python")


class Markdown:
    """Markdown rendered in a notebook and printed as is elsewhere (a console, a text diff of the notebook).

    IPython's own ``Markdown`` prints as ``<IPython.core.display.Markdown object>`` outside a notebook.
    """

    def __init__(self, text: str) -> None:
        self.text = text

    def _repr_markdown_(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return self.text


def markdown(text: str) -> Markdown:
    """``text`` as markdown in a notebook, as itself anywhere else."""
    return Markdown(text)
