"""read_region: a rectangle of an image, decoding only the TIFF segments it touches."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from upres.core.errors import ImageError
from upres.core.lazy import LazyModule
from upres.imageio.checks import DEFAULT_MAX_PIXELS, _check_file, _corrupt, _is_tiff
from upres.imageio.decode import read_image
from upres.imageio.samples import _to_rgb
from upres.imageio.tiff_decode import (
    _check_segments,
    _plain_tiff,
    _region_from_segments,
    _tiff_color,
    _tiff_layout,
    _tiff_page,
    _tifffile_repairs,
)

if TYPE_CHECKING:
    import tifffile
else:  # not imported by a run that reads and writes no TIFF
    tifffile = LazyModule("tifffile")


def _tiff_region(path: Path, y0: int, y1: int, x0: int, x1: int) -> np.ndarray | None:
    """Region of a plain (gray/RGB, chunky, unrotated) TIFF without decoding the rest, or None
    when the layout needs the general decoder."""
    with _tifffile_repairs(path), tifffile.TiffFile(path) as tif:
        index, page = _tiff_page(path, tif)
        layout = _tiff_layout(path, page)
        if not _plain_tiff(page, layout):
            return None
        _check_bounds(path, y0, y1, x0, x1, int(page.imagelength), int(page.imagewidth))
        _check_segments(path, page, tif.filehandle.size)
        if page.is_contiguous and page.compression == tifffile.COMPRESSION.NONE:
            mapped = tifffile.memmap(path, page=index, mode="r")
            region = np.asarray(mapped[y0:y1, x0:x1]).reshape(y1 - y0, x1 - x0, -1)
            del mapped
        else:
            region = _region_from_segments(tif, page, y0, y1, x0, x1)
        color, _ = _tiff_color(path, page, layout, region)
    return np.ascontiguousarray(_to_rgb(color))


class _RegionBoundsError(ValueError):
    pass


def _check_bounds(path: Path, y0: int, y1: int, x0: int, x1: int, height: int, width: int) -> None:
    if not (0 <= y0 < y1 <= height and 0 <= x0 < x1 <= width):
        raise _RegionBoundsError(
            f"{path}: region [{y0}:{y1}, {x0}:{x1}] is outside the {height}x{width} image"
        )


def read_region(
    path: Path, y0: int, y1: int, x0: int, x1: int, max_pixels: int = DEFAULT_MAX_PIXELS
) -> np.ndarray:
    """Float32 RGB in [0, 1] of rows ``y0:y1`` and columns ``x0:x1`` (oriented coordinates).

    Uncompressed contiguous TIFFs are memory-mapped and tiled/stripped TIFFs decode only the
    intersecting segments; other files fall back to a full decode (cache the result if many
    regions of the same non-TIFF file are needed).
    """
    path = Path(path)
    head = _check_file(path)
    if _is_tiff(head):
        try:
            region = _tiff_region(path, y0, y1, x0, x1)
        except (ImageError, _RegionBoundsError):
            raise
        except Exception as exc:
            raise _corrupt(path, "TIFF", exc) from None
        if region is not None:
            return region
    image = read_image(path, max_pixels)
    _check_bounds(path, y0, y1, x0, x1, image.meta.height, image.meta.width)
    return np.ascontiguousarray(image.rgb[y0:y1, x0:x1])
