"""Plain TIFFs read a band of rows at a time, for scans too large to decode beside the tiles.

Only layouts whose rows decode on their own qualify: gray or RGB without alpha, chunky, unrotated,
integer or float samples, stored either as one contiguous uncompressed block (rows are read
straight from the file, never memory-mapped: mapped pages would count in the process's RSS) or in
strips/tiles of at most `STREAM_CHUNK_ROWS` rows, uncompressed or Deflate (only the strips a band
touches are decoded). Anything else is decoded whole by `read_image`. The values are
`read_image`'s, bit for bit.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import numpy as np

from upres.core.errors import ImageError
from upres.core.lazy import LazyModule
from upres.imageio.checks import (
    _HASH_BLOCK,
    DEFAULT_MAX_PIXELS,
    _corrupt,
    _file_state,
    _is_tiff,
    _open_checked,
    _os_error,
    changed_error,
)
from upres.imageio.metadata import ImageMeta
from upres.imageio.samples import _to_rgb
from upres.imageio.tiff_decode import (
    _check_segments,
    _plain_tiff,
    _region_from_segments,
    _tiff_color,
    _tiff_meta,
    _tiff_page,
    _tifffile_repairs,
    _TiffLayout,
)

if TYPE_CHECKING:
    import tifffile
else:  # not imported by a run that reads and writes no TIFF
    tifffile = LazyModule("tifffile")

# Strips or tiles taller than this are not streamed: the planner counts one of them beyond the band.
STREAM_CHUNK_ROWS = 256


class TiffRows:
    """An open plain TIFF; `read(y0, y1)` decodes rows y0:y1 as float32 RGB in [0, 1]."""

    def __init__(self, path: Path, tif: Any, page: Any, meta: ImageMeta, layout: _TiffLayout,
                 contiguous: bool, handle: BinaryIO, state: tuple[int, int]) -> None:
        self.path = path
        self.meta = meta
        self._tif = tif
        self._page = page
        self._layout = layout
        self._contiguous = contiguous
        self._handle = handle  # the one descriptor every read (and the hash) goes through
        self._state = state  # size and mtime when opened: the file must not change after
        self._sha256: str | None = None

    def _check_unchanged(self) -> None:
        try:
            state = _file_state(os.fstat(self._handle.fileno()))
        except OSError as exc:
            raise _os_error(self.path, exc) from None
        if state != self._state:
            raise changed_error(self.path)

    @property
    def sha256(self) -> str:
        """SHA-256 of the file, read through the descriptor the rows are read from (on first
        use: planning a file never reads it whole). Every read after checks that its size and
        modification time are still those it had when opened, so the rows decoded are of the
        bytes hashed: a file rewritten meanwhile raises ImageError "changed while it was read"."""
        if self._sha256 is None:
            digest, offset, fd = hashlib.sha256(), 0, self._handle.fileno()
            try:
                while block := os.pread(fd, _HASH_BLOCK, offset):
                    digest.update(block)
                    offset += len(block)
            except OSError as exc:
                raise _os_error(self.path, exc) from None
            self._check_unchanged()
            if offset != self._state[0]:
                raise changed_error(self.path)
            self._sha256 = digest.hexdigest()
        return self._sha256

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
            self._check_unchanged()
            color, _ = _tiff_color(self.path, self._page, self._layout, samples)
        except ImageError:
            raise
        except Exception as exc:
            raise _corrupt(self.path, "TIFF", exc) from None
        return np.ascontiguousarray(_to_rgb(color))

    def close(self) -> None:
        try:
            self._tif.close()
        finally:
            self._handle.close()

    def __enter__(self) -> TiffRows:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# The codecs whose strips are streamed; files in other codecs (LZW, ZSTD, JPEG, ...) are decoded
# whole by `read_image`.
# TIFF tag 259 (compression): none, Adobe deflate, deflate; tifffile's COMPRESSION members equal these.
_NONE = 1
_CODECS = (_NONE, 8, 32946)


def _streamable(page: Any, layout: _TiffLayout) -> tuple[bool, bool]:
    """(qualifies, contiguous)."""
    if (not _plain_tiff(page, layout) or layout.alpha_index is not None
            or page.compression not in _CODECS):
        return False, False
    contiguous = (bool(page.is_contiguous) and page.compression == _NONE
                  and int(page.bitspersample) == page.dtype.itemsize * 8)
    return contiguous or int(page.chunks[0]) <= STREAM_CHUNK_ROWS, contiguous


def open_tiff_rows(path: Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> TiffRows | None:
    """The TIFF at `path` open for reading by rows, or None when it is not a TIFF whose rows can
    be read on their own (decode it whole instead). Bad files raise `ImageError` as `read_image`
    would."""
    path = Path(path)
    handle = _open_checked(path)
    try:
        state = _file_state(os.fstat(handle.fileno()))
        if not _is_tiff(handle.read(4)):
            handle.close()
            return None
        handle.seek(0)
        rows = _open_rows(path, handle, state, max_pixels)
    except BaseException:
        handle.close()
        raise
    if rows is None:
        handle.close()
    return rows


def _open_rows(path: Path, handle: BinaryIO, state: tuple[int, int],
               max_pixels: int) -> TiffRows | None:
    with _tifffile_repairs(path):
        try:
            tif = tifffile.TiffFile(handle, name=path.name)
        except tifffile.TiffFileError as exc:
            raise ImageError(path, f"invalid or corrupt TIFF ({exc})") from None
        except ImageError:
            raise
        except Exception as exc:
            raise _corrupt(path, "TIFF", exc) from None
        try:
            index, page = _tiff_page(path, tif)
            meta, _, layout = _tiff_meta(path, tif, page, max_pixels, index, handle)
            qualifies, contiguous = _streamable(page, layout)
            if qualifies:
                _check_segments(path, page, state[0])
                return TiffRows(path, tif, page, meta, layout, contiguous, handle, state)
        except ImageError:
            tif.close()
            raise
        except Exception as exc:
            tif.close()
            raise _corrupt(path, "TIFF", exc) from None
        tif.close()
        return None
