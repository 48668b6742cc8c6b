"""Calibration data: LR crops of real photos, cut the way the runtime cuts tiles.

The quantizer learns activation ranges from whatever it is fed, so it must see what the model sees
in use: LR images made with the same bicubic downscale as training and evaluation (`bicubic_down`),
float32 in [0, 1], NCHW, tile-sized (a core of 64-128 px plus the receptive-field halo, clipped at
the image border exactly as `plan_grid` clips). Crops are drawn with a fixed seed, so the same
folder and seed give the same calibration, and the same quantized model.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from upres.calibration.images import CalibrationError, ImageSet, image_size, load_rgb
from upres.calibration.model import ModelSpec
from upres.kernels.resize import bicubic_down, mod_crop
from upres.runtime.tiling import Rect

# LR core sizes of the tiles drawn (the halo is added around them); the planner's tiles for
# photos on CPU are of this order, and small enough that many distinct crops fit a budget.
CORE_SIZES = (64, 96, 128)

Feed = dict[str, np.ndarray]


@runtime_checkable
class CalibrationDataReader(Protocol):
    """What ONNX Runtime's calibrators consume: `get_next()` until it returns None.

    Structural, so a plain iterator class satisfies it without inheriting from onnxruntime.
    """

    def get_next(self) -> Feed | None: ...

    def __iter__(self) -> Iterator[Feed]: ...


@dataclass(frozen=True)
class CropSpot:
    """One tile-like crop: which image, the core it stands for and the padded region fed (LR px)."""

    image: int
    core: Rect
    padded: Rect


def _lr_size(hr_size: tuple[int, int], scale: int) -> tuple[int, int]:
    return hr_size[0] // scale, hr_size[1] // scale


def plan_crops(
    images: ImageSet, scale: int, halo: int, count: int, seed: int,
    cores: Sequence[int] = CORE_SIZES,
) -> list[CropSpot]:
    """`count` crops; images are picked in proportion to their LR area (as pixels come in use),
    crops sorted by image so each image is decoded once."""
    if count < 1:
        raise CalibrationError(f"need at least one calibration sample, got {count}")
    sizes = [_lr_size(image_size(p), scale) for p in images.files]
    for (h, w), path in zip(sizes, images.files, strict=True):
        if h < 1 or w < 1:
            raise CalibrationError(f"calibration image {path} is smaller than the x{scale} scale")
    area = np.array([h * w for h, w in sizes], dtype=np.float64)
    rng = np.random.default_rng(seed)
    picks = rng.choice(len(sizes), size=count, p=area / area.sum())
    spots = []
    for i in picks.tolist():
        h, w = sizes[i]
        c = int(rng.choice(np.asarray(cores)))
        ch, cw = min(c, h), min(c, w)
        y0, x0 = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
        core = Rect(y0, y0 + ch, x0, x0 + cw)
        padded = Rect(max(0, y0 - halo), min(h, y0 + ch + halo), max(0, x0 - halo), min(w, x0 + cw + halo))
        spots.append(CropSpot(i, core, padded))
    # Stable sort keeps the random order within an image: the same seed gives the same sequence.
    return sorted(spots, key=lambda s: s.image)


def to_nchw(lr_u8: np.ndarray) -> np.ndarray:
    """uint8 HWC -> float32 NCHW in [0, 1], as the runtime feeds tiles (x / 255)."""
    return np.ascontiguousarray(lr_u8.transpose(2, 0, 1)[None], dtype=np.float32) / np.float32(255.0)


class _ImageCache:
    """The last image decoded, as (HR mod-cropped, LR); crops come sorted by image."""

    def __init__(self, images: ImageSet, scale: int) -> None:
        self.images, self.scale = images, scale
        self.index = -1
        self.hr = self.lr = np.empty((0, 0, 3), np.uint8)

    def get(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        if index != self.index:
            self.hr = mod_crop(load_rgb(self.images.files[index]), self.scale)
            self.lr = bicubic_down(self.hr, self.scale)
            self.index = index
        return self.hr, self.lr


def _check_rgb_model(spec: ModelSpec) -> None:
    if spec.channels != 3:
        raise CalibrationError(
            f"{spec.path} takes {spec.channels} input channels; calibration crops are RGB, so only "
            "3-channel SR models (coarse-x2, coarse-x4, foreign RGB models) can be calibrated")


class _FeedIterator:
    """`get_next()` (onnxruntime's reader call) also usable as a plain Python iterator."""

    def get_next(self) -> Feed | None:
        raise NotImplementedError

    def __iter__(self) -> Iterator[Feed]:
        return self

    def __next__(self) -> Feed:
        feed = self.get_next()
        if feed is None:
            raise StopIteration
        return feed


class TileCropReader(_FeedIterator):
    """Iterator of `{input_name: (1, 3, h, w) float32}` over tile-like LR crops.

    `on_sample` is called after each crop is handed out (drives a progress bar). Single pass, like
    onnxruntime's readers; `chunk(n)` hands out the next n crops as a reader of their own, so a
    histogram calibrator can digest them a few at a time instead of holding every activation.
    """

    def __init__(
        self, images: ImageSet, spec: ModelSpec, samples: int, seed: int = 0,
        cores: Sequence[int] = CORE_SIZES, on_sample: Callable[[], None] | None = None,
    ) -> None:
        _check_rgb_model(spec)
        self.input_name = spec.input_name
        self.spots = plan_crops(images, spec.scale, spec.halo, samples, seed, cores)
        self.on_sample = on_sample
        self._cache = _ImageCache(images, spec.scale)
        self._next = 0

    def __len__(self) -> int:
        return len(self.spots)

    def get_next(self) -> Feed | None:
        if self._next >= len(self.spots):
            return None
        spot = self.spots[self._next]
        self._next += 1
        _, lr = self._cache.get(spot.image)
        p = spot.padded
        feed = {self.input_name: to_nchw(lr[p.y0 : p.y1, p.x0 : p.x1])}
        if self.on_sample:
            self.on_sample()
        return feed

    @property
    def exhausted(self) -> bool:
        return self._next >= len(self.spots)

    def chunk(self, size: int) -> ListReader:
        feeds: list[Feed] = []
        while len(feeds) < size and (feed := self.get_next()) is not None:
            feeds.append(feed)
        return ListReader(feeds)


class ListReader(_FeedIterator):
    """A CalibrationDataReader over feeds already in memory."""

    def __init__(self, feeds: Sequence[Feed]) -> None:
        self._feeds = list(feeds)
        self._next = 0

    def __len__(self) -> int:
        return len(self._feeds)

    def get_next(self) -> Feed | None:
        if self._next >= len(self._feeds):
            return None
        self._next += 1
        return self._feeds[self._next - 1]


@dataclass(frozen=True)
class EvalCrop:
    """A held-out crop: the LR tile fed (halo included) and the HR truth of its core.

    `core` is the core's position inside the fed tile, in LR pixels; only the core's output is
    scored, as only the core's output is kept by the tiled runtime.
    """

    lr: np.ndarray  # (1, 3, h, w) float32
    hr_core: np.ndarray  # (core_h * s, core_w * s, 3) uint8
    core: Rect
    scale: int

    def output_core(self, out_nchw: np.ndarray) -> np.ndarray:
        """The core of a model output as uint8 HWC, rounded the way the runtime writes images."""
        s, c = self.scale, self.core
        hwc = out_nchw[0, :, c.y0 * s : c.y1 * s, c.x0 * s : c.x1 * s].transpose(1, 2, 0)
        return np.clip(np.rint(hwc * 255.0), 0, 255).astype(np.uint8)


def heldout_crops(
    images: ImageSet, spec: ModelSpec, count: int, seed: int, cores: Sequence[int] = CORE_SIZES,
) -> list[EvalCrop]:
    _check_rgb_model(spec)
    s = spec.scale
    cache = _ImageCache(images, s)
    crops = []
    for spot in plan_crops(images, s, spec.halo, count, seed, cores):
        hr, lr = cache.get(spot.image)
        p, c = spot.padded, spot.core
        crops.append(EvalCrop(
            lr=to_nchw(lr[p.y0 : p.y1, p.x0 : p.x1]),
            hr_core=np.ascontiguousarray(hr[c.y0 * s : c.y1 * s, c.x0 * s : c.x1 * s]),
            core=c.relative_to(p), scale=s))
    return crops


# A step's progress display: given the step's total and name, a context that yields the function
# advancing it by one. The CLI passes a progress bar (`upres.cli.render_calibration`); the default
# shows nothing, so the library prints nothing.
ProgressFactory = Callable[[int, str], AbstractContextManager[Callable[[], None]]]


@contextmanager
def no_progress(total: int, description: str) -> Iterator[Callable[[], None]]:
    yield lambda: None
