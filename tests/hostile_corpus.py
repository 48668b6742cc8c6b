"""A corpus of malformed and hostile inputs for `upres run`, each with the result it must get.

    python tests/hostile_corpus.py FOLDER      # write the corpus into FOLDER and list it

Every entry is one file system entry directly inside the folder. ``expect`` is "ok" (processed:
the output must decode at ``size`` times the scale) or "error" (a one-line per-file error that
contains ``reason``; no output and no temporary file). Names are bytes so that names which are
not UTF-8 can be written; every name starts with a two-digit token that is plain ASCII, which a
test can look for in the (escaped) error line.
"""

from __future__ import annotations

import io
import os
import struct
import sys
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import tifffile
from PIL import Image

SAMPLE = Path(__file__).resolve().parents[1] / "upres" / "samples" / "sample.png"
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True)
class Entry:
    name: bytes  # file name inside the corpus folder (os.fsencode form)
    expect: str  # "ok" or "error"
    reason: str = ""  # "error": a substring the error line must contain (case-insensitive)
    size: tuple[int, int] | None = None  # "ok": displayed (width, height) of the input
    note: str = ""
    shown: str = ""  # text the error line must show for the name; default: the 2-digit token

    @property
    def token(self) -> str:
        return self.shown or self.name[:3].decode("ascii")

    def path(self, folder: Path) -> Path:
        return Path(os.fsdecode(os.path.join(os.fsencode(folder), self.name)))


# -- pixel sources -------------------------------------------------------------------------------


def photo(width: int = 24, height: int = 16, mode: str = "RGB") -> Image.Image:
    """A crop of the bundled sample (real image content, deterministic)."""
    with Image.open(SAMPLE) as im:
        return im.convert("RGB").crop((0, 0, width, height)).convert(mode)


def _encoded(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def _tiff_bytes(array: np.ndarray, **options: object) -> bytes:
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, array, **options)
    return buffer.getvalue()


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png_chunks(data: bytes) -> list[tuple[int, bytes]]:
    """(offset, kind) of each chunk of a PNG file."""
    chunks, offset = [], len(_PNG_MAGIC)
    while offset + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[offset : offset + 8])
        chunks.append((offset, kind))
        offset += 12 + length
    return chunks


def _png_header_only(width: int, height: int, idat: bytes) -> bytes:
    """A PNG whose IHDR declares ``width`` x ``height`` (8-bit RGB) with the given IDAT body."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (_PNG_MAGIC + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat)
            + _png_chunk(b"IEND", b""))


# -- file makers -----------------------------------------------------------------------------------


def _bad_crc_png() -> bytes:
    data = bytearray(_encoded(photo(), "PNG"))
    offset = next(off for off, kind in _png_chunks(bytes(data)) if kind == b"IDAT")
    data[offset + 8 + 5] ^= 0xFF  # damage the compressed pixels, keep the stored CRC
    return bytes(data)


def _bad_header_crc_png() -> bytes:
    data = bytearray(_encoded(photo(), "PNG"))
    data[len(_PNG_MAGIC) + 8 + 13] ^= 0xFF  # last byte of the IHDR CRC
    return bytes(data)


def _bomb_png() -> bytes:
    # 100000 x 100000 RGB = 30 GB of pixels declared in a ~100 byte file.
    return _png_header_only(100_000, 100_000, zlib.compress(b"\0" * 1024, 9))


def _bomb_tiff() -> bytes:
    data = bytearray(_tiff_bytes(np.zeros((4, 4, 3), np.uint8), photometric="rgb"))
    # Patch ImageWidth (256) and ImageLength (257) in IFD0 to 200000: 40 gigapixels.
    ifd = struct.unpack("<I", data[4:8])[0]
    count = struct.unpack("<H", data[ifd : ifd + 2])[0]
    for i in range(count):
        entry = ifd + 2 + 12 * i
        tag, kind = struct.unpack("<HH", data[entry : entry + 4])
        if tag in (256, 257):
            fmt = "<H" if kind == 3 else "<I"
            data[entry + 8 : entry + 8 + struct.calcsize(fmt)] = struct.pack(fmt, 60_000)
    return bytes(data)


def _zero_size_png() -> bytes:
    return _png_header_only(0, 16, zlib.compress(b""))


def _short_idat_png() -> bytes:
    # Well-formed chunks, but the zlib stream holds a quarter of the rows.
    rows = b"".join(b"\0" + bytes(24 * 3) for _ in range(4))
    return _png_header_only(24, 16, zlib.compress(rows))


def _png16_rgb() -> bytes:
    rgb = np.asarray(photo()).astype(np.uint16) * 257 + 1
    ok, encoded = cv2.imencode(".png", np.ascontiguousarray(rgb[..., ::-1]))
    assert ok
    return encoded.tobytes()


def _png16_gray() -> bytes:
    gray = np.asarray(photo(mode="L")).astype(np.uint16) * 257
    return _encoded(Image.fromarray(gray), "PNG")


def _palette_transparency() -> bytes:
    image = photo().quantize(16)
    return _encoded(image, "PNG", transparency=0)


def _animated_gif() -> bytes:
    frames = [photo().quantize(32), photo(mode="L").convert("RGB").quantize(32)]
    return _encoded(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)


def _apng() -> bytes:
    frames = [photo(), photo().transpose(Image.Transpose.FLIP_LEFT_RIGHT)]
    return _encoded(frames[0], "PNG", save_all=True, append_images=frames[1:], duration=100)


def _multipage_tiff() -> bytes:
    buffer = io.BytesIO()
    with tifffile.TiffWriter(buffer) as tif:
        tif.write(np.asarray(photo()), photometric="rgb")
        tif.write(np.asarray(photo(40, 30)), photometric="rgb")
    return buffer.getvalue()


def _float_tiff(bad: float) -> bytes:
    values = np.asarray(photo()).astype(np.float32) / 255.0
    values[3, 5, 1] = bad
    return _tiff_bytes(values, photometric="rgb")


def _truncated(data: bytes, keep: float) -> bytes:
    return data[: int(len(data) * keep)]


def _strip(width: int, height: int) -> bytes:
    rng = np.random.default_rng(width * 7 + height)
    return _encoded(Image.fromarray(rng.integers(0, 256, (height, width, 3), np.uint8)), "PNG")


def _cut_scan_jpeg() -> bytes:
    # The scan's second half lost, then EOI: libjpeg fills the rest grey and only warns.
    data = _encoded(photo(), "JPEG", quality=90)
    sos = data.rfind(b"\xff\xda")
    return data[: sos + (len(data) - sos) // 2] + b"\xff\xd9"


def _sof9_jpeg() -> bytes:
    # Huffman-coded data under an arithmetic-coding frame header: decodes to noise.
    return _encoded(photo(), "JPEG", quality=90).replace(b"\xff\xc0", b"\xff\xc9", 1)


def _patched_tiff_tag(data: bytes, code: int, patch: Callable[[bytearray, object], None]) -> bytes:
    out = bytearray(data)
    with tifffile.TiffFile(io.BytesIO(data)) as tif:
        patch(out, tif.pages.first.tags[code])
    return bytes(out)


def _zero_counts_tiff() -> bytes:
    # Every StripByteCounts 0: tifffile decodes such strips as zeros (a black output).
    def zero(out: bytearray, tag: object) -> None:
        size = 2 if int(tag.dtype) == 3 else 4  # type: ignore[attr-defined]
        start, count = tag.valueoffset, tag.count  # type: ignore[attr-defined]
        out[start : start + size * count] = bytes(size * count)

    return _patched_tiff_tag(_tiff_bytes(np.asarray(photo()), photometric="rgb", rowsperstrip=4),
                             279, zero)


def _thunderscan_tiff() -> bytes:
    # A 4-bit codec on 8-bit samples: Pillow's libtiff fails and prints its reason on stderr.
    def thunderscan(out: bytearray, tag: object) -> None:
        at = tag.offset + 8  # type: ignore[attr-defined]
        out[at : at + 2] = struct.pack("<H", 32809)

    return _patched_tiff_tag(_tiff_bytes(np.asarray(photo()), photometric="rgb"), 259, thunderscan)


def _bad_text_crc_png() -> bytes:
    data = _encoded(photo(), "PNG")
    body = b"Caption\x00harbour, 1931"
    chunk = struct.pack(">I", len(body)) + b"tEXt" + body + struct.pack(">I", zlib.crc32(b"tEXt" + body) ^ 1)
    return data[:33] + chunk + data[33:]  # right after IHDR


def _thumbnail_first_tiff() -> bytes:
    # A reduced-resolution page (NewSubfileType 1) before the scan, as some scanners write.
    buffer = io.BytesIO()
    with tifffile.TiffWriter(buffer) as tif:
        tif.write(np.asarray(photo(6, 4)), photometric="rgb", subfiletype=1)
        tif.write(np.asarray(photo()), photometric="rgb")
    return buffer.getvalue()


def _float_range_tiff() -> bytes:
    values = np.asarray(photo()).astype(np.float32) / 255.0
    values[2, 3, 0] = 4.0  # unnormalised (HDR-like) data
    return _tiff_bytes(values, photometric="rgb")


def _ppm16() -> bytes:
    rgb = np.asarray(photo()).astype(np.uint16) * 257 + 3
    return b"P6\n24 16\n65535\n" + rgb.astype(">u2").tobytes()


# -- the corpus ------------------------------------------------------------------------------------

_Maker = Callable[[], bytes]


def _files() -> list[tuple[Entry, _Maker]]:
    jpeg = _encoded(photo(), "JPEG", quality=90)
    png = _encoded(photo(), "PNG")
    tiff = _tiff_bytes(np.asarray(photo()), photometric="rgb")
    s = (24, 16)
    return [
        (Entry(b"01-empty.png", "error", "empty file"), lambda: b""),
        (Entry(b"02-truncated.png", "error", "truncated"), lambda: _truncated(png, 0.6)),
        (Entry(b"03-truncated.jpg", "error", "truncated"), lambda: _truncated(jpeg, 0.5)),
        (Entry(b"04-truncated.tif", "error", "truncated"), lambda: _truncated(tiff, 0.5)),
        (Entry(b"05-jpeg-named.png", "ok", size=s, note="wrong extension"), lambda: jpeg),
        (Entry(b"06-text.png", "error", "not a recognised image"), lambda: b"hello, not a PNG\n"),
        (Entry(b"07-bad-crc.png", "error", "crc"), _bad_crc_png),
        (Entry(b"08-bad-header-crc.png", "error", "crc"), _bad_header_crc_png),
        (Entry(b"09-bomb.png", "error", "max-pixels", note="100000x100000 declared"), _bomb_png),
        (Entry(b"10-bomb.tif", "error", "max-pixels", note="60000x60000 declared"), _bomb_tiff),
        (Entry(b"11-1x1.png", "ok", size=(1, 1)), lambda: _encoded(photo(1, 1), "PNG")),
        (Entry(b"12-1xN.png", "ok", size=(1, 200)), lambda: _strip(1, 200)),
        (Entry(b"13-wide.png", "ok", size=(65535, 1)), lambda: _strip(65535, 1)),
        (Entry(b"14-16bit-rgb.png", "ok", size=s), _png16_rgb),
        (Entry(b"15-16bit-gray.png", "ok", size=s), _png16_gray),
        (Entry(b"16-cmyk.jpg", "ok", size=s), lambda: _encoded(photo(mode="CMYK"), "JPEG")),
        (Entry(b"17-palette-trns.png", "ok", size=s), _palette_transparency),
        (Entry(b"18-animated.gif", "ok", size=s, note="first frame"), _animated_gif),
        (Entry(b"19-animated.png", "ok", size=s, note="APNG, first frame"), _apng),
        (Entry(b"20-multipage.tif", "ok", size=s, note="first page"), _multipage_tiff),
        (Entry(b"21-nan.tif", "error", "nan or infinite"), lambda: _float_tiff(float("nan"))),
        (Entry(b"22-inf.tif", "error", "nan or infinite"), lambda: _float_tiff(float("inf"))),
        (Entry(b"23-zero-width.png", "error", "size"), _zero_size_png),
        (Entry(b"24-short-idat.png", "error", "truncated"), _short_idat_png),
        (Entry(b"25-new\nline.png", "ok", size=s, note="newline in name"), lambda: png),
        (Entry(b"26-bad\nname.png", "error", "not a recognised image"), lambda: b"\0\0\0\0"),
        (Entry(b"27-caf\xe9.png", "ok", size=s, note="name not UTF-8"), lambda: png),
        (Entry(b"28-\xff\xfe.png", "error", "truncated"), lambda: _truncated(png, 0.5)),
        (Entry(b"29-[bold]markup.png", "error", "empty file", shown="29-[bold]markup.png",
               note="rich markup in name"), lambda: b""),
        (Entry(b"30-png-named.jpg", "ok", size=s, note="wrong extension"), lambda: png),
        (Entry(b"31-cut-scan.jpg", "error", "premature end of data segment"), _cut_scan_jpeg),
        (Entry(b"32-sof9.jpg", "error", "arithmetic coding (SOF9)"), _sof9_jpeg),
        (Entry(b"33-zero-counts.tif", "error", "has no data (byte count 0)"), _zero_counts_tiff),
        (Entry(b"34-thunderscan.tif", "error", "Thunder decoder only supports 4bits"), _thunderscan_tiff),
        (Entry(b"35-bad-text-crc.png", "error", "corrupt PNG: bad CRC in tEXt chunk"), _bad_text_crc_png),
        (Entry(b"36-thumbnail-first.tif", "ok", size=s, note="full-resolution page"),
         _thumbnail_first_tiff),
        (Entry(b"37-float-range.tif", "error", "to 4, outside 0..1: rescale"), _float_range_tiff),
        (Entry(b"38-16bit.ppm", "ok", size=s, note="16-bit in, 16-bit out"), _ppm16),
    ]


def _special(folder: Path) -> list[Entry]:
    """Entries that are not plain files: links, a FIFO, an unreadable file."""
    base = os.fsencode(folder)

    def at(name: bytes) -> bytes:
        return os.path.join(base, name)

    entries = []
    os.symlink(b"41-loop-b.png", at(b"40-loop-a.png"))
    os.symlink(b"40-loop-a.png", at(b"41-loop-b.png"))
    entries += [Entry(b"40-loop-a.png", "error", "symbolic links"),
                Entry(b"41-loop-b.png", "error", "symbolic links")]
    os.symlink(b"no-such-target.png", at(b"42-dangling.png"))
    entries.append(Entry(b"42-dangling.png", "error", "not found"))
    # Reading these would never end: they must be refused before anything reads them.
    os.symlink(b"/dev/zero", at(b"43-dev-zero.png"))
    entries.append(Entry(b"43-dev-zero.png", "error", "not a regular file"))
    os.mkfifo(at(b"44-fifo.png"))
    entries.append(Entry(b"44-fifo.png", "error", "not a regular file"))
    locked = at(b"45-unreadable.png")
    with open(locked, "wb") as handle:
        handle.write(_encoded(photo(), "PNG"))
    os.chmod(locked, 0)
    if _readable(locked):  # root (or CAP_DAC_OVERRIDE) reads it anyway: then it must just work
        entries.append(Entry(b"45-unreadable.png", "ok", size=(24, 16), note="mode 000, readable"))
    else:
        entries.append(Entry(b"45-unreadable.png", "error", "permission denied"))
    return entries


def _readable(path: bytes) -> bool:
    try:
        with open(path, "rb") as handle:
            handle.read(1)
    except PermissionError:
        return False
    return True


def build(folder: Path) -> list[Entry]:
    """Write the corpus into ``folder`` (created; must not already hold it); return its entries."""
    folder.mkdir(parents=True, exist_ok=True)
    entries = []
    for entry, make in _files():
        with open(entry.path(folder), "wb") as handle:
            handle.write(make())
        entries.append(entry)
    return entries + _special(folder)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    for entry in build(Path(argv[0])):
        print(f"{entry.expect:5}  {entry.name!r}  {entry.reason or entry.note}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
