"""Shared test helpers (paths to bundled and optional shared data)."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared"
SAMPLE = Path(__file__).resolve().parents[1] / "upres" / "samples" / "sample.png"
# A memory target for batches of tiny images that test something else: the planner counts the
# process's resident memory as its baseline, and a test process that has loaded every network
# by then holds over 1 GiB.
AMPLE_MEMORY = 16 << 30


def dataset(name: str) -> Path:
    """A folder of ../shared/datasets, or skip when this checkout has none."""
    path = SHARED / "datasets" / name
    if not path.is_dir():
        pytest.skip(f"{path} not present")
    return path


def peer(name: str) -> Path:
    path = SHARED / "peers" / name
    if not path.is_file():
        pytest.skip(f"{path} not present")
    return path
