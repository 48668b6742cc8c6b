"""Per-tile processing chains for each mode; each stage knows its scale and receptive field."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import cv2
import numpy as np

from upres.core.parallel import in_row_parts
from upres.kernels import deterministic
from upres.kernels.edges import (
    SOBEL_RADIUS,
    edge_gate,
    gradient_magnitude,
    luma_planes,
    sobel_gradients,
)
from upres.runtime.backends.base import Backend
from upres.runtime.chain import TileChain
from upres.runtime.memory import MemoryModel
from upres.runtime.tail import TailPlanes, TailSession

# The contract every chain implements (kept under its old name for the tiler's callers).
TileFn = TileChain


def _to_nchw(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None])


def _to_hwc(x: np.ndarray, clip: bool = False) -> np.ndarray:
    # Into a preallocated HWC array with `out=`: 4x faster than np.ascontiguousarray of the
    # transposed view (measured, 2560x1920x3), and a clip costs no extra pass.
    out = np.empty((x.shape[2], x.shape[3], x.shape[1]), np.float32)
    if clip:
        np.clip(x[0].transpose(1, 2, 0), 0.0, 1.0, out=out)
    else:
        np.copyto(out, x[0].transpose(1, 2, 0))
    return out


def run_hwc(model: Backend, x: np.ndarray, clip: bool = False) -> np.ndarray:
    """``model`` on one (H, W, C) float32 image: (H*s, W*s, C') float32, clipped to [0, 1] if
    asked."""
    return _to_hwc(model.run(_to_nchw(x)), clip)


def run_hwc_view(model: Backend, x: np.ndarray) -> np.ndarray:
    """``model`` on one (H, W, C) image as an (H*s, W*s, C') view of its NCHW output: no copy,
    no clip (a TileFn's output; see TileFn)."""
    return model.run(_to_nchw(x))[0].transpose(1, 2, 0)


@dataclass
class DeterministicChain(TileChain):
    scale: int

    @property
    def halo(self) -> int:
        return deterministic.receptive_field(self.scale)

    def host_memory_model(self) -> list[tuple[MemoryModel, int]]:
        # No network: Lanczos + sharpening buffers, a handful of float32 output planes.
        s = self.scale
        return [(MemoryModel(0.0, 6 * 3 * 4 * s * s, ()), 1)]

    def __call__(self, tile: np.ndarray) -> np.ndarray:
        return deterministic.upscale(tile, self.scale)


class _CoarseAlone:
    """The halo of a chain that runs the coarse network alone: its receptive field."""

    coarse_rf: int

    @property
    def halo(self) -> int:
        return self.coarse_rf


@dataclass
class FaithfulChain(_CoarseAlone, TileChain):
    coarse: Backend
    scale: int
    coarse_rf: int

    def __call__(self, tile: np.ndarray) -> np.ndarray:
        return run_hwc_view(self.coarse, tile)


@dataclass
class FaithfulTailChain(_CoarseAlone, TileChain):
    """faithful on ONNX Runtime's CPU provider, the network's last steps on the host
    (upres.runtime.tail): the batch quantises its tiles in that pass, others get the pixels."""

    session: TailSession
    scale: int
    coarse_rf: int

    def __call__(self, tile: np.ndarray) -> np.ndarray:
        return np.asarray(self.session.run(_to_nchw(tile)))

    def map_tiles_deferred(self, tiles: Iterable[np.ndarray]) -> Iterator[np.ndarray | TailPlanes]:
        for tile in tiles:
            yield self.session.run(_to_nchw(tile))


@dataclass
class HybridChain(TileChain):
    """coarse -> sobel -> refine -> gated compose; halos of both stages add up."""

    coarse: Backend
    refine: Backend
    scale: int
    coarse_rf: int
    refine_rf: int
    strength: float  # the texture strength, read back as TileChain.texture

    @property
    def texture(self) -> float:
        return self.strength

    @property
    def halo(self) -> int:
        return self.coarse_rf + math.ceil(refine_halo(self.refine_rf) / self.scale)

    def __call__(self, tile: np.ndarray) -> np.ndarray:
        coarse = self.coarse.run(_to_nchw(tile))
        np.clip(coarse, 0.0, 1.0, out=coarse)
        if self.texture != 0:
            add_texture(self.refine, coarse, self.texture)
        return coarse[0].transpose(1, 2, 0)


def refine_halo(refine_rf: int) -> int:
    """Pixels of context the refine stage needs around its output (its own reach plus Sobel's)."""
    return refine_rf + SOBEL_RADIUS


def refine_texture(refine: Backend, image: np.ndarray, texture: float) -> np.ndarray:
    """The refine stage: ``image`` plus the edge-gated texture residual that the refine network
    predicts from it and its Sobel edge map. (H, W, 3) float32 [0, 1] in and out."""
    planes = _to_nchw(image)
    add_texture(refine, planes, texture)
    return _to_hwc(planes)


# Rows per part at the least: a small tile's passes cost less than handing them to a thread.
_MIN_ROWS = 64


def add_texture(refine: Backend, planes: np.ndarray, texture: float) -> None:
    """:func:`refine_texture` in place on (1, 3, H, W) planes in [0, 1].

    On planes, at output resolution, every full-size temporary is one more 4-byte-per-sample
    pass over memory: the network's input is filled once and the compose runs in place. The
    element-wise passes run in rows split among the cores (upres.core.parallel: the same values
    on any number of cores); the Sobel filter reads across rows and runs whole.
    """
    rgb = planes[0]
    height = rgb.shape[1]
    y = np.empty(rgb.shape[1:], np.float32)

    def luma_rows(a: int, b: int) -> None:
        y[a:b] = luma_planes(rgb[:, a:b])

    in_row_parts(height, luma_rows, min_rows=_MIN_ROWS)
    gx, gy = sobel_gradients(y)
    x = np.empty((1, 4, *y.shape), np.float32)
    edge = x[0, 3]

    def input_rows(a: int, b: int) -> None:
        x[0, :3, a:b] = rgb[:, a:b]
        edge[a:b] = gradient_magnitude(gx[a:b], gy[a:b])

    in_row_parts(height, input_rows, min_rows=_MIN_ROWS)
    residual = refine.run(x)[0]

    def compose_rows(a: int, b: int) -> None:
        part = residual[:, a:b]
        part *= np.float32(texture) * edge_gate(edge[a:b])
        rgb[:, a:b] += part
        np.clip(rgb[:, a:b], 0.0, 1.0, out=rgb[:, a:b])

    in_row_parts(height, compose_rows, min_rows=_MIN_ROWS)



def resize_alpha(alpha: np.ndarray, scale: int) -> np.ndarray:
    """Alpha is not a photo: a plain bicubic resize, clipped."""
    h, w = alpha.shape[:2]
    up = cv2.resize(alpha, (w * scale, h * scale), interpolation=cv2.INTER_CUBIC)
    return np.clip(up, 0.0, 1.0).astype(np.float32)


ALPHA_HALO = 2  # INTER_CUBIC reads 2 input pixels each side
