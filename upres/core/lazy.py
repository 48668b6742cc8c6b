"""A module imported on first use: what a plain PNG run never touches (tifffile) stays out of
start-up, and every caller keeps writing ``tifffile.imwrite`` as if it were imported."""

from __future__ import annotations

import importlib
from typing import Any


class LazyModule:
    """Stands for the module ``name``; the first attribute read imports it.

    Each read goes through ``importlib.import_module`` (a dict lookup once imported), which holds
    the import lock: unlike ``importlib.util.LazyLoader`` on Python 3.11, two threads reading it
    first at once both see the whole module.
    """

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attribute: str) -> Any:
        return getattr(importlib.import_module(self._name), attribute)

    def __repr__(self) -> str:
        return f"<module {self._name!r}, imported on first use>"
