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
