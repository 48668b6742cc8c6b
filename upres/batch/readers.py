"""Tile readers over an input: a decoded array, or a TIFF read a band of rows at a time."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from upres.imageio import DecodedImage, TiffRows
from upres.runtime.tiling import Rect

RegionReader = Callable[[Rect], np.ndarray]


def array_reader(image: DecodedImage) -> RegionReader:
    data = image.rgb if image.alpha is None else np.concatenate(
        [image.rgb, image.alpha[..., None]], axis=2)

    def read(r: Rect) -> np.ndarray:
        return data[r.y0 : r.y1, r.x0 : r.x1]

    return read


def band_reader(rows: TiffRows) -> RegionReader:
    """Tiles of one grid row share their rows: each band is decoded once, the previous dropped."""
    band: dict[str, Any] = {"rows": None, "pixels": None}

    def read(r: Rect) -> np.ndarray:
        if band["rows"] != (r.y0, r.y1):
            band["pixels"] = None  # freed before the next band is decoded
            band["pixels"] = rows.read(r.y0, r.y1)
            band["rows"] = (r.y0, r.y1)
        return band["pixels"][:, r.x0 : r.x1]

    return read


def reader_for(image: DecodedImage | TiffRows) -> RegionReader:
    return band_reader(image) if isinstance(image, TiffRows) else array_reader(image)
