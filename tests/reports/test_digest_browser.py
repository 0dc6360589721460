"""The HTML digest in a real browser: headless Chromium screenshots the file, and the picture must have the
window's size, not be blank, and show the inline SVG charts (their bar colour is on the screen)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

from reports.digest_charts import BAR
from reports.digest_html import render_html
from tests.reports.digest_sample import full_digest

WIDTH, HEIGHT = 1280, 2400


def _rgb(image: np.ndarray) -> np.ndarray:
    """Pixels as 0xRRGGBB integers (imread gives floats in 0..1 for PNG)."""
    rgb = np.rint(image[..., :3] * 255).astype(np.uint32)
    return (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]


@pytest.fixture(scope="module")
def screenshot(tmp_path_factory: pytest.TempPathFactory) -> np.ndarray:
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("chromium is not installed (no `chromium` on PATH), so the HTML cannot be rendered")
    folder = tmp_path_factory.mktemp("browser")
    page = folder / "digest.html"
    page.write_text(render_html(full_digest()), encoding="utf-8")
    shot = folder / "digest.png"
    subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    f"--user-data-dir={folder / 'profile'}", "--no-first-run", "--disable-extensions",
                    f"--screenshot={shot}", f"--window-size={WIDTH},{HEIGHT}", page.as_uri()],
                   capture_output=True, timeout=90, check=True)
    assert shot.exists(), "chromium wrote no screenshot"
    return imread(Path(shot), format="png")


def test_screenshot_has_the_window_size(screenshot: np.ndarray) -> None:
    assert screenshot.shape[:2] == (HEIGHT, WIDTH)


def test_screenshot_is_not_blank(screenshot: np.ndarray) -> None:
    colours = np.unique(_rgb(screenshot))
    assert len(colours) > 200, f"only {len(colours)} colours: the page did not render"


def test_screenshot_shows_the_inline_svg_charts(screenshot: np.ndarray) -> None:
    bar = int(BAR.lstrip("#"), 16)
    assert int((_rgb(screenshot) == bar).sum()) > 5_000  # the bars' interiors, in the charts' own colour
