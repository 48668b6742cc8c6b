"""PNG checks before decoding: declared size, chunk bounds, CRCs and a zlib-bomb-safe inflate."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

from upres.core.errors import ImageError
from upres.imageio.checks import _PNG_MAGIC, _check_pixels
from upres.imageio.metadata import PNG_KEPT_CHUNKS, PngAncillary, _png_collect

# Samples per pixel by PNG colour type, and the Adam7 passes (x0, y0, dx, dy).
_PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
_ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))
_INFLATE_STEP = 1 << 20  # bytes inflated at a time when checking PNG data: a zlib bomb stays small


def _png_raw_size(width: int, height: int, depth: int, color_type: int, interlace: int) -> int:
    """Bytes the IDAT stream must inflate to: filter byte + packed samples per row (per pass)."""
    bits = depth * _PNG_CHANNELS[color_type]

    def rows(w: int, h: int) -> int:
        return h * (1 + (w * bits + 7) // 8) if w > 0 and h > 0 else 0

    if not interlace:
        return rows(width, height)
    return sum(rows(-(-(width - x0) // dx), -(-(height - y0) // dy)) for x0, y0, dx, dy in _ADAM7)


def _bad_png(path: Path, detail: str) -> ImageError:
    return ImageError(path, f"truncated or corrupt PNG data ({detail})")


def _png_ihdr(path: Path, data: bytes, max_pixels: int) -> int:
    """Validate an IHDR body (size against ``max_pixels`` first); return the raw data size."""
    if len(data) != 13:
        raise _bad_png(path, "malformed IHDR chunk")
    width, height, depth, color_type, _, _, interlace = struct.unpack(">IIBBBBB", data)
    _check_pixels(path, width, height, max_pixels)
    if color_type not in _PNG_CHANNELS or depth not in (1, 2, 4, 8, 16) or interlace > 1:
        raise _bad_png(path, f"invalid IHDR: colour type {color_type}, bit depth {depth}, "
                                  f"interlace {interlace}")
    return _png_raw_size(width, height, depth, color_type, interlace)


class _PngData:
    """Counts the bytes the IDAT stream inflates to, a step at a time (a zlib bomb stays small),
    stopping once the image is complete."""

    def __init__(self, path: Path, expected: int) -> None:
        self.path, self.expected, self.size = path, expected, 0
        self._inflater = zlib.decompressobj()

    def feed(self, data: bytes | memoryview) -> None:
        try:
            while data and self.size <= self.expected and not self._inflater.eof:
                self.size += len(self._inflater.decompress(data, _INFLATE_STEP))
                data = self._inflater.unconsumed_tail
        except zlib.error as exc:
            raise _bad_png(self.path, f"zlib: {exc}") from None


def _check_png(path: Path, data: bytes, max_pixels: int) -> PngAncillary:
    """Walk a PNG's chunks before decoding it: the declared size (refused above ``max_pixels``
    before anything is inflated), chunks cut off by the end of the file, every chunk's CRC and
    whether the image data inflates to the full image. Pillow fills a short zlib stream with
    black rows and ignores IDAT CRCs, so without this a damaged scan would silently become a
    damaged output; a bad CRC in a chunk Pillow reads made it call the file "not a recognised
    image format". Returns the ancillary chunks an output keeps (from anywhere in the file)."""
    view = memoryview(data)
    size, offset = len(data), len(_PNG_MAGIC)
    image: _PngData | None = None
    found: list[tuple[bytes, bytes]] = []
    while offset + 8 <= size:
        length, kind = struct.unpack(">I4s", view[offset : offset + 8])
        body_start = offset + 8
        name = repr(kind)[2:-1]
        if body_start + length + 4 > size:
            raise _bad_png(path, f"the {name} chunk ends past the end of the file")
        if image is None and kind != b"IHDR":
            raise _bad_png(path, "the first chunk is not IHDR")
        body = view[body_start : body_start + length]
        stored = struct.unpack(">I", view[body_start + length : body_start + length + 4])[0]
        crc = zlib.crc32(body, zlib.crc32(kind))
        offset = body_start + length + 4
        if kind[0] & 0x20:  # ancillary
            if crc != stored:
                raise ImageError(path, f"corrupt PNG: bad CRC in {name} chunk")
            if kind == b"eXIf" or kind in PNG_KEPT_CHUNKS:
                found.append((bytes(kind), bytes(body)))
            continue
        inflate_error: ImageError | None = None
        if kind == b"IDAT" and image is not None:
            try:
                image.feed(body)
            except ImageError as exc:
                inflate_error = exc  # a CRC mismatch, if there is one, is the better reason
        if crc != stored:
            raise _bad_png(path, f"CRC mismatch in the {name} chunk")
        if inflate_error is not None:
            raise inflate_error
        if kind == b"IHDR":
            image = _PngData(path, _png_ihdr(path, bytes(body), max_pixels))
        elif kind == b"IEND":
            break
    else:
        if offset != size:
            raise _bad_png(path, "the file ends inside a chunk header")
    if image is None:
        raise _bad_png(path, "no IHDR chunk")
    if image.size < image.expected:
        raise _bad_png(path, f"the image data inflates to {image.size} of {image.expected} bytes")
    return _png_collect(found)
