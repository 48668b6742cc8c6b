"""Screenshots of `upres studio` for docs/STUDIO.md, taken by Playwright driving Debian's chromium.

    PYTHONPATH=. python scripts/studio_screenshots.py docs/

Opens a folder made of the bundled sample (tests/studio_support.py), paints a stroke, previews the
clean and the x4 upscale of the area in view, and saves what the page shows at each step.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[1] / "tests")]

from playwright.sync_api import sync_playwright  # noqa: E402
from studio_support import live_server, scan_folder  # noqa: E402
from test_studio_browser import CHROMIUM, CHROMIUM_ARGS, paint  # noqa: E402

# No request in flight and every tile in view drawn: what a screenshot should show.
SETTLED = "window.studio.busy === 0 && window.studio.loading === 0"


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp, live_server(scan_folder(Path(tmp))) as url, \
            sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1400, "height": 820}, bypass_csp=True)
        page = context.new_page()
        page.set_default_timeout(600_000)
        page.goto(url + "/")
        page.wait_for_function("window.studio.ready && window.studio.busy === 0")
        # Brush over the caption bar where the detector missed it (image rows 120-127).
        page.fill("#size", "12")
        paint(page, [(125, 535), (350, 535), (575, 535)])
        page.wait_for_function("window.studio.revision > 0 && " + SETTLED)
        page.screenshot(path=str(out / "studio_mask.png"))
        page.click("#preview-clean")
        page.wait_for_function("window.studio.previews >= 1 && " + SETTLED)
        page.screenshot(path=str(out / "studio_clean_preview.png"))
        for _ in range(4):
            page.click("#zoom-in")
        page.click("#preview-upscale")
        page.wait_for_function("window.studio.previews >= 2 && " + SETTLED)
        page.screenshot(path=str(out / "studio_upscale_preview.png"))
        page.click("#accept")
        page.wait_for_function("window.studio.accepted !== null && window.studio.busy === 0")
        page.screenshot(path=str(out / "studio_accepted.png"))
        browser.close()


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs"))
