"""Arrays in, arrays out: a caller's ndarray as the float32 pixels the tile chain takes, and the
chain's strips back as samples of the caller's own layout and dtype.

The conversions are the decoder's and the encoder's (``upres.imageio.samples``): integer samples
divided by their maximum in float32, gray replicated to RGB and written back as BT.601 luma,
alpha carried as a fourth channel; so an array gives the pixels `upres run` gives its file.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from upres.api.errors import ArrayError
from upres.imageio.metadata import Mode
from upres.imageio.samples import _BT601, NonFiniteError, _unit_float
from upres.runtime.tail import TailPlanes, into_samples

_MAXVAL = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}
_DTYPES = "uint8, uint16 or float32"


@dataclass(frozen=True)
class ArrayLayout:
    """How a caller's array is laid out: what its output must look like too."""

    height: int
    width: int
    channels: int  # 1 (gray), 2 (gray + alpha), 3 (RGB), 4 (RGBA)
    squeezed: bool  # HxW: no channel axis, given or returned
    dtype: np.dtype

    @classmethod
    def of(cls, image: np.ndarray) -> ArrayLayout:
        if not isinstance(image, np.ndarray):
            raise ArrayError(f"expected a numpy array, got {type(image).__name__}")
        if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 2, 3, 4)):
            raise ArrayError(f"expected an HxW, HxWx1, HxWx2, HxWx3 or HxWx4 image, got shape "
                             f"{image.shape}")
        if image.dtype not in _MAXVAL and image.dtype != np.float32:
            raise ArrayError(f"samples must be {_DTYPES}, got {image.dtype}")
        height, width = image.shape[:2]
        if height == 0 or width == 0:
            raise ArrayError(f"the image is empty ({width}x{height})")
        channels = 1 if image.ndim == 2 else image.shape[2]
        return cls(height, width, channels, image.ndim == 2, image.dtype)

    @property
    def mode(self) -> Mode:
        return "gray" if self.channels <= 2 else "rgb"

    @property
    def has_alpha(self) -> bool:
        return self.channels in (2, 4)

    @property
    def bit_depth(self) -> int:
        """What the planner counts per output sample: 8, 16, or 32 for float32."""
        return {np.dtype(np.uint8): 8, np.dtype(np.uint16): 16}.get(self.dtype, 32)

    def pixels(self, image: np.ndarray) -> np.ndarray:
        """(H, W, 3 or 4) float32 in [0, 1]: RGB (gray replicated), alpha last."""
        samples = image[..., None] if self.squeezed else image
        if self.dtype == np.float32:
            if not np.isfinite(samples).all():
                raise ArrayError("floating-point samples contain NaN or infinite values")
            low, high = float(samples.min()), float(samples.max())
            if low < 0.0 or high > 1.0:
                raise ArrayError(f"floating-point samples range from {low:.6g} to {high:.6g}, "
                                 "outside 0..1: rescale the image into 0..1 first")
            values = samples.astype(np.float32)  # a copy: the caller's array is never touched
        else:
            values = _unit_float(samples, _MAXVAL[self.dtype])
        colour = 1 if self.mode == "gray" else 3
        if colour == 3:
            return np.ascontiguousarray(values)
        rgb = np.repeat(values[..., :1], 3, axis=2)
        return np.concatenate([rgb, values[..., 1:]], axis=2) if self.has_alpha else rgb

    def output(self, scale: int) -> np.ndarray:
        """The empty output, (H*s, W*s, channels) of this dtype."""
        return np.empty((self.height * scale, self.width * scale, self.channels), self.dtype)

    def put(self, pixels: np.ndarray | TailPlanes, out: np.ndarray) -> None:
        """Float (h, w, 3 or 4) pixels (any strides, values not yet clipped), or a tile before
        its network's last steps, into ``out`` rows."""
        try:
            if self.dtype != np.float32:
                into_samples(pixels, out, self.mode)
                return
            _float_into(np.asarray(pixels), out, self.mode)
        except NonFiniteError as exc:
            raise ArrayError(str(exc)) from None

    def returned(self, out: np.ndarray) -> np.ndarray:
        return out[..., 0] if self.squeezed else out


def _float_into(pixels: np.ndarray, out: np.ndarray, mode: Mode) -> None:
    """``samples_into`` for float32 samples: clipped to [0, 1], not quantised."""
    if not np.isfinite(pixels).all():
        raise NonFiniteError("output pixels contain NaN or infinite values")
    colour = out.shape[2] - (1 if out.shape[2] in (2, 4) else 0)
    if mode == "gray":
        red, green, blue = (np.clip(pixels[..., i], 0.0, 1.0) for i in range(3))
        luma = red * np.float32(_BT601[0]) + green * np.float32(_BT601[1])
        luma += blue * np.float32(_BT601[2])
        np.clip(luma, 0.0, 1.0, out=out[..., 0])
    else:
        np.clip(pixels[..., :3], 0.0, 1.0, out=out[..., :3])
    if colour < out.shape[2]:
        np.clip(pixels[..., 3], 0.0, 1.0, out=out[..., colour])
