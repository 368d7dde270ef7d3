"""Progress bars on long work in JupyterLab and Colab; none in runs nobody watches (``TQDM_DISABLE=1``).

tqdm reads ``TQDM_DISABLE`` only in its console bar: the notebook bar that ``tqdm.auto`` picks in a kernel
ignores it, and its frozen "0%|" line was left in executed notebooks. So the switch is passed explicitly,
and ``datasets``' and ``transformers``' own bars are turned off with it.
"""

from __future__ import annotations

import os
from typing import Iterable, TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")


def enabled() -> bool:
    """Bars unless ``TQDM_DISABLE`` is set (as ``make`` and nbval do for unattended runs)."""
    return os.environ.get("TQDM_DISABLE", "").lower() not in {"1", "true", "yes"}


def bar(items: Iterable[T], desc: str, total: int | None = None) -> Iterable[T]:
    """``items`` with a progress bar that goes away when done, or bare where bars are off."""
    if not enabled():
        return items
    return tqdm(items, desc=desc, total=total, leave=False)


def quiet_libraries() -> None:
    """Turn off ``datasets``' and ``transformers``' bars where bars are off (their own switches, read once)."""
    if enabled():
        return
    import datasets
    import transformers

    datasets.disable_progress_bars()
    transformers.utils.logging.disable_progress_bar()
