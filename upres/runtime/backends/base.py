"""The interface every backend implements: NCHW float32 in, NCHW float32 out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np


class BackendUnavailable(RuntimeError):
    """The requested backend cannot run on this machine (missing library, provider or GPU)."""


@dataclass(frozen=True)
class BackendChoice:
    name: str
    reason: str


class Backend(Protocol):
    name: str

    def run(self, batch: np.ndarray) -> np.ndarray:
        """Run the model on an (N, C, H, W) float32 batch; returns (N, C', H*s, W*s) float32."""
        ...
