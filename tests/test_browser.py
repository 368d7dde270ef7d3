"""A real browser: headless Chromium renders notebook 06 as nbconvert writes it, and its plots are on screen.

Its own tier (``-m browser``), skipped where Chromium is missing: ``make test-browser`` installs Debian's
chromium and runs it. The screenshot stays in ``runs/browser/06_infer.png`` to look at.
"""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import plots

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

pytestmark = [pytest.mark.browser, pytest.mark.skipif(CHROMIUM is None, reason="needs Chromium: make test-browser")]


def rgb(hex_colour: str) -> tuple[int, int, int]:
    return tuple(int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))


def test_the_rendered_infer_notebook_shows_its_plots(tmp_path):
    from PIL import Image

    out = ROOT / "runs" / "browser"
    out.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "jupyter", "nbconvert", "--to", "html", "--output-dir", str(out),
                    str(ROOT / "notebooks" / "06_infer.ipynb")], check=True, capture_output=True, timeout=120)
    page = out / "06_infer.html"
    assert "data:image/png;base64" in page.read_text()  # the top-k bars, embedded in the page

    shot = out / "06_infer.png"
    shot.unlink(missing_ok=True)
    subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    f"--user-data-dir={tmp_path / 'profile'}", "--hide-scrollbars", "--window-size=1280,7000",
                    f"--screenshot={shot}", page.as_uri()], check=True, capture_output=True, timeout=120)
    image = Image.open(shot).convert("RGB")
    bar = rgb(plots.BAR_COLOUR)
    bar_pixels = sum(1 for pixel in image.getdata() if all(abs(a - b) <= 12 for a, b in zip(pixel, bar)))
    assert bar_pixels > 5_000, f"only {bar_pixels} pixels of the bars' colour on screen: the plots did not render"
