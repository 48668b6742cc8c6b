"""libjpeg's warnings as failures: Pillow silences them and decodes damaged JPEGs "successfully".

libjpeg repairs what it can without failing: scan data cut short (an EOI appended early) becomes
flat grey blocks ("premature end of data segment"), and Huffman-coded data declared arithmetic
(SOF9) becomes noise ("extraneous bytes before marker"). Pillow's decoder discards every warning,
so each JPEG is decoded a second time, by libjpeg-turbo through simplejpeg with warnings raised,
at 1/8 scale (all the entropy-coded data is still read, little is transformed). The metadata
segments (APPn, COM) are left out of that copy, and bytes between header segments skipped: their
warnings (an unknown JFIF revision, an Adobe colour transform code, stray padding) say nothing
about the pixels. Only warnings about the compressed image data fail the file; errors are left
to Pillow, which meets them too.
"""

from __future__ import annotations

from pathlib import Path

from upres.core.errors import ImageError

# libjpeg's warnings about the entropy-coded data (jerror.h: JWRN_HIT_MARKER, JWRN_HUFF_BAD_CODE,
# JWRN_ARITH_BAD_CODE, JWRN_EXTRANEOUS_DATA, JWRN_MUST_RESYNC, JWRN_JPEG_EOF,
# JWRN_BOGUS_PROGRESSION, JWRN_NOT_SEQUENTIAL).
_DATA_WARNINGS = ("Corrupt JPEG data", "Premature end of JPEG file",
                  "Inconsistent progression sequence", "Invalid SOS parameters")
_SOS, _DHT, _DAC = 0xDA, 0xC4, 0xCC
_ARITHMETIC_SOF = {0xC9: "SOF9", 0xCA: "SOF10", 0xCB: "SOF11", 0xCD: "SOF13", 0xCE: "SOF14",
                   0xCF: "SOF15"}


def _pixel_segments(data: bytes) -> tuple[bytes, list[int]]:
    """The file without its APPn/COM segments (and without stray bytes between header segments),
    and the markers of the header segments before the first scan."""
    if not data.startswith(b"\xff\xd8"):
        return data, []
    parts: list[bytes] = [b"\xff\xd8"]
    markers: list[int] = []
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            following = data.find(b"\xff", i)
            if following < 0:
                break
            i = following
            continue
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker == 0xD9:  # EOI before any scan: the decoder says what is wrong
            break
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # markers without a length
            i += 2
            continue
        if marker == _SOS:
            parts.append(data[i:])  # the scans, and whatever follows them, as they are
            return b"".join(parts), markers
        end = i + 2 + int.from_bytes(data[i + 2 : i + 4], "big")
        markers.append(marker)
        if not (0xE0 <= marker <= 0xEF or marker == 0xFE):
            parts.append(data[i:end])
        i = end
    return data, markers


def _describe(message: str, markers: list[int]) -> str:
    detail = message.removeprefix("Corrupt JPEG data: ").rstrip(".")
    reason = f"truncated or corrupt JPEG data (libjpeg: {detail})"
    arithmetic = [name for code, name in _ARITHMETIC_SOF.items() if code in markers]
    if arithmetic and _DHT in markers and _DAC not in markers:
        reason += (f"; the frame header says arithmetic coding ({arithmetic[0]}) but the file "
                   "holds Huffman tables")
    return reason


def check_jpeg_data(path: Path, data: bytes) -> None:
    """Raise ImageError if libjpeg warns about the image data of the JPEG ``data``."""
    import simplejpeg  # imported here: `upres run` starts without it until a JPEG is read

    pixels, markers = _pixel_segments(data)
    try:
        simplejpeg.decode_jpeg(pixels, colorspace="GRAY", min_height=1, min_width=1, strict=True)
    except ValueError as exc:
        message = str(exc).strip()
        if message.startswith(_DATA_WARNINGS):
            raise ImageError(path, _describe(message, markers)) from None
