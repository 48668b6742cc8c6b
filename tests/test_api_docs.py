"""docs/API.md's examples run as they are: each ```python block, in a folder holding photo.png
and scans/ (small crops of the bundled photo, so the examples stay quick)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from PIL import Image
from support import SAMPLE

DOC = Path(__file__).resolve().parents[1] / "docs" / "API.md"
BLOCKS = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)


def test_the_page_has_its_examples() -> None:
    text = "\n".join(BLOCKS)
    for needed in ("def upscale_endpoint", "cv2.imread", ".map(", "upscale_file", "Cleaner"):
        assert needed in text, needed


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_example_runs(index: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with Image.open(SAMPLE) as im:
        photo = im.convert("RGB")
        photo.crop((40, 30, 104, 78)).save(tmp_path / "photo.png")
        (tmp_path / "scans").mkdir()
        photo.crop((0, 0, 40, 32)).save(tmp_path / "scans" / "a.png")
        photo.crop((100, 60, 132, 100)).save(tmp_path / "scans" / "b.jpg", quality=92)
    monkeypatch.chdir(tmp_path)
    exec(compile(BLOCKS[index], f"{DOC.name} example {index + 1}", "exec"), {"__name__": "__example__"})
