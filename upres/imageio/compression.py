"""Deflate for the encoders: one `--compression` knob, PNG data compressed in parallel strips.

PNG holds one zlib stream, so strips cannot be compressed as separate streams the way TIFF strips
are. As pigz does, each strip is compressed as raw deflate on its own and all but the last end
on a full flush (byte-aligned, not final); their concatenation behind one zlib header, closed by
the Adler-32 of the whole (combined from the strips'), is one valid stream. Strip boundaries
depend on the image alone, never on the thread count, so the bytes are the same on any machine
with the same libraries.

Measured on x4 outputs of 10 BSD100 photos (docs/RUNTIME.md), against OpenCV's adaptive level-6
PNG (3.0 MP/s, upres's encoder before): fast = ISA-L level 1 on Up-filtered rows, 1.145x the size
at ~100 MP/s per core; default = ISA-L level 2 on Average-filtered rows, 1.117x at ~90 MP/s;
small = zlib-ng level 6 on Average-filtered rows, 0.975x at ~9 MP/s. TIFF strips are independent
streams: tifffile compresses them with libdeflate (through imagecodecs) on a worker pool.
"""

from __future__ import annotations

import contextlib
import enum
import os
import threading
import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from types import ModuleType

import numpy as np

from upres.core.parallel import available_cores

STRIP_BYTES = 1 << 20  # filtered bytes per compressed strip: larger strips gained < 0.3% in size
_ADLER_BASE = 65521


class Compression(enum.Enum):
    """The size/speed trade-off of lossless outputs (PNG and TIFF)."""

    FAST = "fast"
    DEFAULT = "default"
    SMALL = "small"

    @classmethod
    def parse(cls, value: str | Compression) -> Compression:
        if isinstance(value, Compression):
            return value
        try:
            return cls(value.lower())
        except ValueError:
            raise ValueError(f"--compression must be fast, default or small, got {value!r}") from None


@dataclass(frozen=True)
class DeflateCodec:
    """A deflate implementation and level, as recorded in an output's sidecar."""

    library: str  # "isal", "zlib-ng" or "zlib" (the fallback where the first two are missing)
    level: int
    module: ModuleType

    @property
    def label(self) -> str:
        return f"{self.library} {self.level}"


# (library, level) per setting, and the stdlib level used where that library is not installed.
_PNG_CODECS: dict[Compression, tuple[str, int, int]] = {
    Compression.FAST: ("isal", 1, 1),
    Compression.DEFAULT: ("isal", 2, 1),
    Compression.SMALL: ("zlib-ng", 6, 6),
}
# libdeflate levels for TIFF strips (tifffile + imagecodecs): 1 ~57 MP/s, 3 ~29, 8 ~8 per core.
TIFF_LEVELS = {Compression.FAST: 1, Compression.DEFAULT: 3, Compression.SMALL: 8}
# FLEVEL bits of the zlib header (informational only) for fastest / fast / default.
_ZLIB_FLG = {Compression.FAST: 0x01, Compression.DEFAULT: 0x5E, Compression.SMALL: 0x9C}


def _import(library: str) -> ModuleType | None:
    try:
        if library == "isal":
            from isal import isal_zlib

            return isal_zlib
        from zlib_ng import zlib_ng

        return zlib_ng
    except ImportError:
        return None


def png_codec(compression: Compression) -> DeflateCodec:
    library, level, fallback = _PNG_CODECS[compression]
    module = _import(library)
    if module is None:
        return DeflateCodec("zlib", fallback, zlib)
    return DeflateCodec(library, level, module)


def crc32(data: bytes | memoryview, value: int = 0) -> int:
    """zlib's CRC-32, by ISA-L where installed (a few times faster on large IDAT chunks)."""
    return _CRC32(data, value)


def _crc32_function() -> Callable[[bytes | memoryview, int], int]:
    module = _import("isal")
    return zlib.crc32 if module is None else module.crc32  # type: ignore[no-any-return]


_CRC32 = _crc32_function()


def adler32_combine(first: int, second: int, second_length: int) -> int:
    """Adler-32 of A + B from those of A and B (zlib's adler32_combine, which Python lacks)."""
    rem = second_length % _ADLER_BASE
    sum1 = first & 0xFFFF
    sum2 = (rem * sum1) % _ADLER_BASE
    sum1 += (second & 0xFFFF) + _ADLER_BASE - 1
    sum2 += ((first >> 16) & 0xFFFF) + ((second >> 16) & 0xFFFF) + _ADLER_BASE - rem
    return (sum1 % _ADLER_BASE) | ((sum2 % _ADLER_BASE) << 16)


def _compress_strip(codec: DeflateCodec, data: np.ndarray, last: bool) -> tuple[bytes, int]:
    """Raw deflate of one strip (non-final unless ``last``) and the strip's Adler-32."""
    module = codec.module
    compressor = module.compressobj(codec.level, module.DEFLATED, -15)
    body = compressor.compress(data)
    body += compressor.flush(module.Z_FINISH if last else module.Z_FULL_FLUSH)
    return body, codec.module.adler32(data.data)  # ISA-L's and zlib-ng's: SIMD, same value


def _filtered(rows: np.ndarray, start: int, stop: int, bpp: int, average: bool) -> np.ndarray:
    """PNG rows start..stop, filtered: Up (type 2, each byte minus the byte above) or Average
    (type 3, minus the floor of the mean of the bytes left and above), in uint8 arithmetic that
    wraps modulo 256 as PNG wants, the mean as (a & b) + ((a ^ b) >> 1) without widening. Read
    from views of ``rows`` and written into the output row by row: one pass per operation.

    Measured on x4 outputs of 10 BSD100 photos against OpenCV's adaptive level-6 PNG: with ISA-L
    level 2, Up 1.137x the size, Average 1.117x, Sub 1.226x; Paeth compresses like Average but
    costs ~30x the time in numpy. Up is one subtraction; Average five byte operations.
    """
    out = np.empty((stop - start, rows.shape[1] + 1), dtype=np.uint8)
    out[:, 0] = 3 if average else 2
    body = out[:, 1:]
    if start == 0:  # the image's first row has zeros above it
        _filter_first_row(rows[0], body[0], bpp, average)
        start, body = 1, body[1:]
    if start < stop:
        _filter_rows(rows[start:stop], rows[start - 1 : stop - 1], body, bpp, average)
    return out


def _filter_first_row(row: np.ndarray, out: np.ndarray, bpp: int, average: bool) -> None:
    out[:] = row
    if average:  # minus half the byte to the left
        np.subtract(row[bpp:], row[:-bpp] >> 1, out=out[bpp:])


def _filter_rows(current: np.ndarray, above: np.ndarray, out: np.ndarray, bpp: int,
                 average: bool) -> None:
    if not average:
        np.subtract(current, above, out=out)
        return
    # The first pixel has zeros to its left: its mean is half the byte above.
    np.right_shift(above[:, :bpp], 1, out=out[:, :bpp])
    np.subtract(current[:, :bpp], out[:, :bpp], out=out[:, :bpp])
    left, up, mean = current[:, :-bpp], above[:, bpp:], out[:, bpp:]
    np.bitwise_xor(left, up, out=mean)
    np.right_shift(mean, 1, out=mean)
    mean += np.bitwise_and(left, up)
    np.subtract(current[:, bpp:], mean, out=mean)


def _png_rows(samples: np.ndarray) -> np.ndarray:
    """(H, W, C) uint8/uint16 samples as PNG's rows of bytes (16-bit big-endian)."""
    if samples.dtype == np.uint16:
        samples = samples.astype(">u2")  # PNG is big-endian: one copy, only for 16-bit
    elif samples.dtype != np.uint8:
        raise ValueError(f"PNG samples must be uint8 or uint16, got {samples.dtype}")
    return np.ascontiguousarray(samples).view(np.uint8).reshape(samples.shape[0], -1)


def strip_bounds(height: int, row_bytes: int) -> list[tuple[int, int]]:
    rows_per_strip = max(1, STRIP_BYTES // max(1, row_bytes + 1))
    return [(y, min(height, y + rows_per_strip)) for y in range(0, height, rows_per_strip)]


def png_idat_stream(
    samples: np.ndarray, compression: Compression, pool: Executor | None = None
) -> Iterator[bytes]:
    """The PNG zlib stream of ``samples`` (filtered rows), as consecutive pieces (one IDAT chunk
    each), its strips filtered and compressed on ``pool`` when one is given."""
    codec = png_codec(compression)
    average = compression is not Compression.FAST  # the smaller filter, at a little more cost
    bpp = samples.shape[2] * samples.dtype.itemsize
    rows = _png_rows(samples)
    bounds = strip_bounds(rows.shape[0], rows.shape[1])

    def work(index: int) -> tuple[bytes, int, int]:
        start, stop = bounds[index]
        filtered = _filtered(rows, start, stop, bpp, average)
        body, adler = _compress_strip(codec, filtered, index == len(bounds) - 1)
        return body, adler, filtered.size

    results: Iterator[tuple[bytes, int, int]]
    if pool is None or len(bounds) == 1:
        results = map(work, range(len(bounds)))
    else:
        results = pool.map(work, range(len(bounds)))
    yield bytes((0x78, _ZLIB_FLG[compression]))
    adler = 1
    for body, strip_adler, length in results:
        adler = adler32_combine(adler, strip_adler, length)
        yield body
    yield adler.to_bytes(4, "big")


# ------------------------------------------------------------------------------------------
# The encoder pool


ENCODER_NICENESS = 10


def lower_thread_priority() -> None:
    """Make the calling thread yield to inference: encoding takes the cores that compute leaves
    free (between its operators, while it waits) instead of slowing every operator down; on a
    machine with idle cores, or a GPU host, it runs at full speed all the same. Linux takes a
    thread id here; elsewhere (or where refused) the thread keeps its priority."""
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), ENCODER_NICENESS)


_pool_lock = threading.Lock()
_pools: dict[int, ThreadPoolExecutor] = {}


def encoder_pool(threads: int = 0) -> ThreadPoolExecutor:
    """A process-wide pool of ``threads`` (0 = every core) for compressing strips: created once,
    shared by every encode, so concurrent images do not multiply the threads."""
    workers = threads or available_cores()
    with _pool_lock:
        pool = _pools.get(workers)
        if pool is None:
            pool = ThreadPoolExecutor(workers, thread_name_prefix="upres-encode",
                                      initializer=lower_thread_priority)
            _pools[workers] = pool
        return pool
