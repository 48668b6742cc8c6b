"""Plain TIFFs read a band of rows at a time, for scans too large to decode beside the tiles.

Only layouts whose rows decode on their own qualify: gray or RGB without alpha, chunky, unrotated,
integer or float samples, stored either as one contiguous uncompressed block (rows are read
straight from the file, never memory-mapped: mapped pages would count in the process's RSS) or in
strips/tiles of at most `STREAM_CHUNK_ROWS` rows, uncompressed or Deflate (only the strips a band
touches are decoded). Anything else is decoded whole by `read_image`. The values are
`read_image`'s, bit for bit.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import tifffile

from upres.imageio.checks import DEFAULT_MAX_PIXELS, ImageError, _check_file, _corrupt, _is_tiff
from upres.imageio.metadata import ImageMeta
from upres.imageio.samples import _to_rgb
from upres.imageio.tiff_decode import (
    _check_segments,
    _plain_tiff,
    _region_from_segments,
    _tiff_color,
    _tiff_meta,
    _TiffLayout,
)

# Strips or tiles taller than this are not streamed: the planner counts one of them beyond the band.
STREAM_CHUNK_ROWS = 256


class TiffRows:
    """An open plain TIFF; `read(y0, y1)` decodes rows y0:y1 as float32 RGB in [0, 1]."""

    def __init__(self, path: Path, tif: Any, page: Any, meta: ImageMeta, layout: _TiffLayout,
                 contiguous: bool) -> None:
        self.path = path
        self.meta = meta
        self._tif = tif
        self._page = page
        self._layout = layout
        self._contiguous = contiguous

    def _contiguous_rows(self, y0: int, y1: int) -> np.ndarray:
        page = self._page
        width, samples = int(page.imagewidth), int(page.shaped[4])
        dtype = page.dtype.newbyteorder(self._tif.byteorder)
        row_bytes = width * samples * dtype.itemsize
        handle = self._tif.filehandle
        handle.seek(int(page.dataoffsets[0]) + y0 * row_bytes)
        data = handle.read((y1 - y0) * row_bytes)
        if len(data) != (y1 - y0) * row_bytes:
            raise ImageError(self.path, "truncated TIFF: image data ends early")
        return np.frombuffer(data, dtype).reshape(y1 - y0, width, samples)

    def read(self, y0: int, y1: int) -> np.ndarray:
        if not 0 <= y0 < y1 <= self.meta.height:
            raise ValueError(f"rows {y0}:{y1} are outside the {self.meta.height} rows of {self.path}")
        try:
            if self._contiguous:
                samples = self._contiguous_rows(y0, y1)
            else:
                samples = _region_from_segments(self._tif, self._page, y0, y1, 0, self.meta.width)
            color, _ = _tiff_color(self.path, self._page, self._layout, samples)
        except ImageError:
            raise
        except Exception as exc:
            raise _corrupt(self.path, "TIFF", exc) from None
        return np.ascontiguousarray(_to_rgb(color))

    def close(self) -> None:
        self._tif.close()

    def __enter__(self) -> TiffRows:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# Codecs tifffile decodes itself; others (LZW, JPEG, ...) need imagecodecs, and `read_image`
# says so when it is missing.
_CODECS = (tifffile.COMPRESSION.NONE, tifffile.COMPRESSION.ADOBE_DEFLATE, tifffile.COMPRESSION.DEFLATE)


def _streamable(page: Any, layout: _TiffLayout) -> tuple[bool, bool]:
    """(qualifies, contiguous)."""
    if (not _plain_tiff(page, layout) or layout.alpha_index is not None
            or page.compression not in _CODECS):
        return False, False
    contiguous = (bool(page.is_contiguous) and page.compression == tifffile.COMPRESSION.NONE
                  and int(page.bitspersample) == page.dtype.itemsize * 8)
    return contiguous or int(page.chunks[0]) <= STREAM_CHUNK_ROWS, contiguous


def open_tiff_rows(path: Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> TiffRows | None:
    """The TIFF at `path` open for reading by rows, or None when it is not a TIFF whose rows can
    be read on their own (decode it whole instead). Bad files raise `ImageError` as `read_image`
    would."""
    path = Path(path)
    if not _is_tiff(_check_file(path)):
        return None
    try:
        tif = tifffile.TiffFile(path)
    except tifffile.TiffFileError as exc:
        raise ImageError(path, f"invalid or corrupt TIFF ({exc})") from None
    except Exception as exc:
        raise _corrupt(path, "TIFF", exc) from None
    try:
        page = tif.pages.first
        meta, _, layout = _tiff_meta(path, tif, page, max_pixels)
        qualifies, contiguous = _streamable(page, layout)
        if qualifies:
            _check_segments(path, page)
            return TiffRows(path, tif, page, meta, layout, contiguous)
    except ImageError:
        tif.close()
        raise
    except Exception as exc:
        tif.close()
        raise _corrupt(path, "TIFF", exc) from None
    tif.close()
    return None
