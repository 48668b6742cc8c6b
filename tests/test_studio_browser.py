"""`upres studio` in a real browser: Debian's chromium driven by Playwright opens the page,
paints a stroke, previews a fill and accepts. Skips where no chromium or Playwright is installed."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from studio_support import live_server, scan_folder

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
sync_api = pytest.importorskip("playwright.sync_api")

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Without the background-networking flags chromium waits on services a closed network never answers.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
TIMEOUT_MS = 600_000  # an upper bound for a loaded machine; the waits end on conditions


@pytest.fixture()
def browser():
    if not Path(CHROMIUM).is_file():
        pytest.skip("no chromium installed (.ci/run installs Debian's)")
    with sync_api.sync_playwright() as pw:
        try:
            launched = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        except sync_api.Error as exc:
            pytest.skip(f"chromium does not start here: {exc}")
        yield launched
        launched.close()


def paint(page, points: list[tuple[float, float]]) -> None:
    box = page.locator("#canvas").bounding_box()
    page.mouse.move(box["x"] + points[0][0], box["y"] + points[0][1])
    page.mouse.down()
    for x, y in points[1:]:
        page.mouse.move(box["x"] + x, box["y"] + y, steps=8)
    page.mouse.up()


def test_paint_preview_accept_in_chromium(tmp_path: Path, browser) -> None:
    folder = scan_folder(tmp_path)
    with live_server(folder) as url:
        # The page's CSP forbids eval, which Playwright's wait_for_function uses: the test's
        # context bypasses it (the page itself runs under it).
        context = browser.new_context(viewport={"width": 1280, "height": 800}, bypass_csp=True)
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        requested: list[str] = []
        page.on("request", lambda r: requested.append(r.url))
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(url + "/")
        page.wait_for_function("window.studio.ready && window.studio.busy === 0")
        assert page.evaluate("window.studio.image") == "a.png"  # the first image not yet accepted
        before = page.evaluate("[window.studio.revision, window.studio.maskPixels]")

        page.fill("#size", "20")
        paint(page, [(300, 200), (420, 220), (520, 260)])
        page.wait_for_function(f"window.studio.revision > {before[0]} && window.studio.busy === 0")
        painted = page.evaluate("window.studio.maskPixels")
        assert painted > before[1]
        page.click("#undo")
        page.wait_for_function(f"window.studio.revision > {before[0] + 1} && window.studio.busy === 0")
        assert page.evaluate("window.studio.maskPixels") == before[1]
        page.click("#redo")
        page.wait_for_function(f"window.studio.revision > {before[0] + 2} && window.studio.busy === 0")
        assert page.evaluate("window.studio.maskPixels") == painted

        page.select_option("#s-fill", "telea")
        page.click("#preview-clean")
        page.wait_for_function("window.studio.previews >= 1 && window.studio.busy === 0")
        page.click("#accept")
        page.wait_for_function("window.studio.accepted !== null && window.studio.busy === 0")
        assert page.evaluate("window.studio.error") is None
        done = page.evaluate("window.studio.accepted")
        page.wait_for_selector("#image-list li[data-image='a.png'] .badge.accepted")
        context.close()
    assert not errors
    assert all(u.startswith(url) or u.startswith("blob:") for u in requested), requested
    out = folder / "cleaned"
    assert done["output"] == "a.png" and "--fill" in done["command"]
    final = np.asarray(Image.open(out / "a.mask.png")) > 0
    assert final.sum() >= painted  # the painted stroke is in the final mask
    with Image.open(out / "a.png") as im:
        assert im.size == (240 * 4, 160 * 4)  # then upscaled x4, the default
    assert (out / "a.png.json").is_file()
