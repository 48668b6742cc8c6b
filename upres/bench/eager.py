"""The usual PyTorch eager tiling loop (Real-ESRGAN's `tile_process` pattern) as a contender.

Written from that description: split the input into tile x tile pieces, pad each with tile_pad
input pixels (clipped at the border), run, crop the padding off, paste; no blending. The benchmark
scripts under benchmarks/ use this same function. torch is imported only inside: the runtime never
needs it.
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from upres.bench.contender import SCALE, BaseContender
from upres.evaluate import to_u8

if TYPE_CHECKING:
    import torch

WEIGHTS = Path(__file__).resolve().parent.parent / "weights"


def tile_process(model: torch.nn.Module, img: np.ndarray, scale: int, tile: int = 256,
                 tile_pad: int = 10) -> np.ndarray:
    """(H, W, 3) float32 [0, 1] -> (H*s, W*s, 3) float32: tile, pad, run, crop, paste; no blending."""
    import torch

    with torch.inference_mode():
        x = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))[None]
        _, c, h, w = x.shape
        out = torch.zeros((1, c, h * scale, w * scale), dtype=x.dtype)
        for ty in range(math.ceil(h / tile)):
            for tx in range(math.ceil(w / tile)):
                y0, x0 = ty * tile, tx * tile
                y1, x1 = min(y0 + tile, h), min(x0 + tile, w)
                py0, px0 = max(y0 - tile_pad, 0), max(x0 - tile_pad, 0)
                py1, px1 = min(y1 + tile_pad, h), min(x1 + tile_pad, w)
                res = model(x[:, :, py0:py1, px0:px1])
                oy, ox = (y0 - py0) * scale, (x0 - px0) * scale
                out[:, :, y0 * scale : y1 * scale, x0 * scale : x1 * scale] = \
                    res[:, :, oy : oy + (y1 - y0) * scale, ox : ox + (x1 - x0) * scale]
        return out[0].clamp(0, 1).numpy().transpose(1, 2, 0)


def torch_missing() -> str | None:
    """Why torch cannot be used here, or None (checked without importing it: that takes seconds)."""
    if importlib.util.find_spec("torch") is None:
        return "torch is not installed (pip install 'upres[export]')"
    return None


class EagerContender(BaseContender):
    group = "eager"

    def __init__(self, threads: int, tile: int = 256, tile_pad: int = 10,
                 model: str = f"coarse-x{SCALE}") -> None:
        self.threads = threads
        self.tile = tile
        self.tile_pad = tile_pad
        self.weights = WEIGHTS / f"{model}.pt"
        self.onnx = WEIGHTS / f"{model}.onnx"  # same weights exported: where its FLOPs are recorded
        self.name = f"torch eager tile {tile} pad {tile_pad}"  # Real-ESRGAN tile_process
        self.model: Any = None

    def available(self) -> str | None:
        missing = torch_missing()
        if missing:
            return missing
        if not self.weights.is_file():
            return f"{self.weights.name} not found in upres/weights"
        return None

    def load(self) -> None:
        import torch

        from upres.models.train import load_model

        torch.set_num_threads(self.threads)
        self.model = load_model(self.weights)

    def _run(self, img: np.ndarray, tile: int) -> np.ndarray:
        assert self.model is not None, "load() first"
        return to_u8(tile_process(self.model, img.astype(np.float32) / 255.0, SCALE, tile,
                                  self.tile_pad))

    def upscale(self, img: np.ndarray) -> np.ndarray:
        return self._run(img, self.tile)

    def upscale_whole(self, img: np.ndarray) -> np.ndarray | None:
        return self._run(img, max(img.shape[:2]))  # one tile: the model's whole-image result

    def tiles(self, height: int, width: int) -> int:
        return math.ceil(height / self.tile) * math.ceil(width / self.tile)

    def flops_per_pixel(self) -> float | None:
        from upres.core.model import read_info

        info = read_info(self.onnx) if self.onnx.is_file() else None
        return info.flops_per_pixel if info else None

    def describe(self) -> str:
        import torch

        return f"torch {torch.__version__}, {self.threads} threads, {self.weights.name}"
