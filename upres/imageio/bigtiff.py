"""BigTiffStripWriter: a tiled BigTIFF too large for RAM, written in strips from a thread."""

from __future__ import annotations

import dataclasses
import queue
import threading
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from upres.core.atomic import atomic_output
from upres.core.errors import ImageError
from upres.core.lazy import LazyModule
from upres.imageio.carry import Carried, carry
from upres.imageio.compression import Compression
from upres.imageio.encode import _tiff_options
from upres.imageio.metadata import ImageMeta, Mode

if TYPE_CHECKING:
    import tifffile
else:  # not imported by a run that reads and writes no TIFF
    tifffile = LazyModule("tifffile")


class _Abort(Exception):
    """Raised inside the tile generator to stop tifffile when the producer failed."""


_ABORT = object()


class BigTiffStripWriter:
    """Write an image too large for RAM as a tiled BigTIFF, fed top-to-bottom in strips.

    ``write_strip`` takes full-width strips of any height, already quantised to ``dtype``.
    A background thread runs ``tifffile.imwrite`` on a generator of tiles fed through a queue
    of one tile row, so memory stays O(width * tile) plus the strip being written. The file
    appears under ``path`` only after a clean exit; on any error the temporary file is removed.
    """

    def __init__(
        self,
        path: Path,
        height: int,
        width: int,
        channels: int,
        dtype: np.dtype[Any] | type,
        tile: int = 256,
        meta: ImageMeta | None = None,
        scale: int = 1,
        compression: Compression = Compression.DEFAULT,
    ) -> None:
        if channels not in (1, 2, 3, 4):
            raise ValueError(f"channels must be 1-4, got {channels}")
        if tile <= 0 or tile % 16:
            raise ValueError(f"tile must be a positive multiple of 16, got {tile}")
        if height <= 0 or width <= 0:
            raise ValueError(f"invalid image size {width}x{height}")
        self.path = Path(path)
        self.height, self.width, self.channels = height, width, channels
        self.dtype = np.dtype(dtype)
        self.tile = tile
        carried = Carried()
        if meta is not None:
            mode: Mode = "rgb" if channels >= 3 else "gray"
            carried = carry(dataclasses.replace(meta, mode=mode), "tiff", width, height, scale)
        self._options = _tiff_options(channels, carried, compression)
        self._pending: list[np.ndarray] = []
        self._pending_rows = 0
        self._rows_written = 0
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=1)
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        self._atomic: Any = None

    @property
    def rows_written(self) -> int:
        return self._rows_written

    def __enter__(self) -> BigTiffStripWriter:
        self._atomic = atomic_output(self.path)
        tmp = self._atomic.__enter__()
        self._thread = threading.Thread(target=self._run, args=(tmp,), daemon=True)
        self._thread.start()
        return self

    def _shape(self) -> tuple[int, ...]:
        if self.channels == 1:
            return (self.height, self.width)
        return (self.height, self.width, self.channels)

    def _run(self, tmp: Path) -> None:
        try:
            tifffile.imwrite(
                tmp,
                data=self._tiles(),
                shape=self._shape(),
                dtype=self.dtype,
                tile=(self.tile, self.tile),
                bigtiff=True,
                maxworkers=1,  # tifffile's worker pool would buffer many tiles ahead
                **self._options,
            )
        except BaseException as exc:
            self._error = exc

    def _tiles(self) -> Iterator[np.ndarray]:
        bands = -(-self.height // self.tile)
        for _ in range(bands):
            band = self._queue.get()
            if band is _ABORT:
                raise _Abort
            for left in range(0, self.width, self.tile):
                yield band[:, left : left + self.tile]

    def _put(self, item: Any) -> None:
        assert self._thread is not None
        while True:
            if self._error is not None or not self._thread.is_alive():
                raise ImageError(self.path, f"TIFF writer stopped: {self._error}")
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def write_strip(self, strip: np.ndarray) -> None:
        """Append the next ``strip`` (rows, width[, channels]) below what was written so far."""
        if self._thread is None:
            raise RuntimeError("BigTiffStripWriter must be used as a context manager")
        strip = np.asarray(strip)
        if strip.ndim == 2:
            strip = strip[..., None]
        if strip.ndim != 3 or strip.shape[1:] != (self.width, self.channels):
            raise ValueError(
                f"strip shape {strip.shape} does not match width {self.width} and "
                f"{self.channels} channel(s)"
            )
        if strip.dtype != self.dtype:
            raise ValueError(f"strip dtype {strip.dtype} does not match {self.dtype}")
        if self._rows_written + self._pending_rows + strip.shape[0] > self.height:
            raise ValueError(f"strips exceed the image height {self.height}")
        self._pending.append(strip)
        self._pending_rows += strip.shape[0]
        while self._pending_rows >= self.tile:
            self._emit(self.tile)

    def _emit(self, rows: int) -> None:
        buffer = self._pending[0] if len(self._pending) == 1 else np.concatenate(self._pending)
        band = np.ascontiguousarray(buffer[:rows])
        rest = buffer[rows:]
        self._pending = [rest.copy()] if len(rest) else []
        self._pending_rows = len(rest)
        if self.channels == 1:
            band = band[..., 0]
        self._put(band)
        self._rows_written += rows

    def _finish(self) -> None:
        if self._pending_rows:
            self._emit(self._pending_rows)
        if self._rows_written != self.height:
            raise ValueError(f"only {self._rows_written} of {self.height} rows were written")

    def _abort(self) -> None:
        assert self._thread is not None
        while self._thread.is_alive():
            try:
                self._queue.put(_ABORT, timeout=0.1)
                return
            except queue.Full:
                continue

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> Literal[False]:
        assert self._thread is not None
        failure: BaseException | None = exc
        if failure is None:
            try:
                self._finish()
            except BaseException as error:
                failure = error
        if failure is not None:
            self._abort()
        self._thread.join()
        if failure is None and self._error is not None:
            failure = ImageError(self.path, f"cannot write TIFF: {self._error}")
        if failure is None:
            self._atomic.__exit__(None, None, None)
            return False
        self._atomic.__exit__(type(failure), failure, failure.__traceback__)
        if exc is None:
            raise failure
        return False
