from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from support import SAMPLE


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    # Probe and memory caches go to a per-session temp dir, never the user's cache.
    monkeypatch.setenv("UPRES_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cache"))


@pytest.fixture(scope="session")
def photo() -> np.ndarray:
    """A real photo (the bundled sample), uint8 RGB."""
    with Image.open(SAMPLE) as im:
        return np.asarray(im.convert("RGB"))


@pytest.fixture
def photo_crops(tmp_path, photo: np.ndarray):
    """A folder of three 110x100 crops of the sample photo: a training set for a few steps."""
    folder = tmp_path / "photos"
    folder.mkdir()
    for i, (y, x) in enumerate([(0, 0), (30, 60), (60, 120)]):
        Image.fromarray(photo[y : y + 100, x : x + 110]).save(folder / f"p{i}.png")
    return folder
