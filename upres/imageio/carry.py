"""What an output carries of its source's metadata, in the places its format has for it, updated
where an upscale makes it stale, with a record of what was kept and what the format cannot hold.

| Source item | PNG | TIFF | JPEG |
|---|---|---|---|
| ICC profile, DPI, EXIF | iCCP, pHYs, eXIf | tags 34675, 282/283, IFD0 text tags | APP2, JFIF, APP1 |
| XMP | iTXt ``XML:com.adobe.xmp`` | tag 700 | APP1 (one segment, < 64 KiB) |
| IPTC-IIM | dropped (no standard chunk) | tag 33723 | APP13 (Photoshop 0x0404) |
| JPEG/GIF comments | tEXt/iTXt ``Comment`` | ImageDescription, when EXIF has none | COM |
| PNG tEXt/zTXt/iTXt | copied | Description/Comment, Author, Copyright: tags 270, 315, 33432 | Comment: COM |
| PNG gAMA/cHRM/sRGB | copied | dropped | dropped |

XMP is updated like EXIF: pixel dimensions (tiff:ImageWidth/ImageLength, exif:PixelXDimension/
PixelYDimension), resolution (when the output has a DPI) and orientation (1: the rotation is in
the pixels), wherever the packet has them, as attributes or elements. A packet that is not UTF-8
cannot be updated and is dropped rather than left to contradict the pixels.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from upres.imageio.metadata import (
    PNG_XMP_KEYWORD,
    ImageMeta,
    _exif_for_output,
    _icc_for_mode,
    _load_exif,
    _photoshop_app13,
    _scaled_dpi,
    bounded_inflate,
)

_EXIF_IFD, _GPS_IFD = 0x8769, 0x8825
# IFD0 text tags that tifffile can write into a TIFF output (it cannot write EXIF sub-IFDs).
TIFF_TEXT_TAGS = (270, 271, 272, 306, 315, 33432)
_DESCRIPTION, _ARTIST, _COPYRIGHT = 270, 315, 33432
_TIFF_XMP, _TIFF_IPTC = 700, 33723
_SEGMENT_BYTES = 65533  # the most a JPEG marker segment holds after its length field
_JPEG_XMP_BYTES = _SEGMENT_BYTES - len(b"http://ns.adobe.com/xap/1.0/\x00")
_PNG_TEXT = (b"tEXt", b"zTXt", b"iTXt")


@dataclass
class Carried:
    """The metadata one output gets: common fields, then what is specific to its format."""

    icc: bytes | None = None
    dpi: tuple[float, float] | None = None
    exif: bytes | None = None
    xmp: bytes | None = None
    iptc: bytes | None = None  # TIFF: tag 33723; JPEG: wrapped in a Photoshop APP13 segment
    comments: list[bytes] = field(default_factory=list)  # JPEG COM segments
    png_chunks: list[tuple[bytes, bytes]] = field(default_factory=list)  # before IDAT
    tiff_text: dict[int, str] = field(default_factory=dict)  # IFD0 ASCII tags
    kept: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)

    def tiff_extratags(self) -> list[tuple[int, int, int, Any, bool]]:
        tags: list[tuple[int, int, int, Any, bool]] = []
        for code in sorted(self.tiff_text):
            value = self.tiff_text[code]
            # TIFF ASCII is nominally 7-bit; real files carry UTF-8, which tifffile takes as bytes.
            tags.append((code, 2, 0, value if value.isascii() else value.encode("utf-8"), True))
        if self.xmp:
            tags.append((_TIFF_XMP, 1, len(self.xmp), self.xmp, True))
        if self.iptc:
            tags.append((_TIFF_IPTC, 7, len(self.iptc), self.iptc, True))
        return tags

    def jpeg_extra(self) -> bytes:
        """Marker segments Pillow cannot write itself: IPTC (APP13) and comments after the first."""
        extra = b""
        if self.iptc:
            payload = _photoshop_app13(self.iptc)
            extra += b"\xff\xed" + struct.pack(">H", len(payload) + 2) + payload
        for comment in self.comments[1:]:
            extra += b"\xff\xfe" + struct.pack(">H", len(comment) + 2) + comment
        return extra


# --------------------------------------------------------------------------------------------
# XMP


def _xmp_number(value: float) -> str:
    fraction = Fraction(value).limit_denominator(10000)
    return f"{fraction.numerator}/{fraction.denominator}"


def _xmp_set(packet: bytes, name: bytes, value: str) -> bytes:
    """Set property ``name`` (prefix:Local) wherever it appears, as an attribute or an element."""
    new = value.encode("ascii")
    attribute = re.compile(rb"(\b" + re.escape(name) + rb"\s*=\s*)([\"'])[^\"']*\2")
    packet = attribute.sub(lambda m: m.group(1) + m.group(2) + new + m.group(2), packet)
    element = re.compile(rb"(<" + re.escape(name) + rb"\s*>)[^<]*(</" + re.escape(name) + rb"\s*>)")
    return element.sub(lambda m: m.group(1) + new + m.group(2), packet)


def _xmp_for_output(xmp: bytes | None, width: int, height: int,
                    dpi: tuple[float, float] | None) -> bytes | None:
    """The packet with the fields an upscale makes stale updated; None if it cannot be."""
    if not xmp:
        return None
    try:
        xmp.decode("utf-8")
    except UnicodeDecodeError:
        return None  # UTF-16/32 packets: the ASCII patterns below would miss stale fields
    fields = [(b"tiff:ImageWidth", str(width)), (b"tiff:ImageLength", str(height)),
              (b"exif:PixelXDimension", str(width)), (b"exif:PixelYDimension", str(height)),
              (b"tiff:Orientation", "1")]
    if dpi is not None:
        fields += [(b"tiff:XResolution", _xmp_number(dpi[0])),
                   (b"tiff:YResolution", _xmp_number(dpi[1])), (b"tiff:ResolutionUnit", "2")]
    for name, value in fields:
        xmp = _xmp_set(xmp, name, value)
    return xmp


# --------------------------------------------------------------------------------------------
# PNG text


def png_text(kind: bytes, body: bytes) -> tuple[str, str] | None:
    """(keyword, text) of a tEXt/zTXt/iTXt body, or None if it cannot be read."""
    keyword, sep, rest = body.partition(b"\x00")
    if not sep or not keyword:
        return None
    text: bytes | None
    encoding = "latin-1"
    if kind == b"tEXt":
        text = rest
    elif kind == b"zTXt":
        text = bounded_inflate(rest[1:]) if rest[:1] == b"\x00" else None
    elif kind == b"iTXt" and len(rest) >= 2:
        compressed = rest[0] == 1
        _, _, after_lang = rest[2:].partition(b"\x00")
        _, _, raw = after_lang.partition(b"\x00")
        text = bounded_inflate(raw) if compressed else raw
        encoding = "utf-8"
    else:
        return None
    if text is None:
        return None
    return keyword.decode("latin-1"), text.decode(encoding, "replace")


def _png_text_chunk(keyword: str, text: str) -> tuple[bytes, bytes]:
    """tEXt when Latin-1 holds the text (what every reader shows), iTXt otherwise."""
    try:
        return b"tEXt", keyword.encode("latin-1") + b"\x00" + text.encode("latin-1")
    except UnicodeEncodeError:
        return b"iTXt", keyword.encode("latin-1") + b"\x00\x00\x00\x00\x00" + text.encode("utf-8")


def _xmp_itxt(xmp: bytes) -> tuple[bytes, bytes]:
    # Uncompressed, no language: what the XMP specification asks of PNG writers.
    return b"iTXt", PNG_XMP_KEYWORD + b"\x00\x00\x00\x00\x00" + xmp


# --------------------------------------------------------------------------------------------
# The plan per format


def _decoded_comment(comment: bytes) -> str:
    try:
        return comment.decode("utf-8")
    except UnicodeDecodeError:
        return comment.decode("latin-1")


def _exif_text_tags(exif: bytes | None) -> dict[int, str]:
    loaded = _load_exif(exif)
    tags = {}
    for code in TIFF_TEXT_TAGS:
        value = loaded.get(code)
        if isinstance(value, str) and value.strip("\x00 "):
            tags[code] = value
    return tags


def _has_sub_ifds(exif: bytes | None) -> bool:
    loaded = _load_exif(exif)
    return _EXIF_IFD in loaded or _GPS_IFD in loaded


def _carry_png(meta: ImageMeta, out: Carried) -> None:
    if out.xmp:
        out.png_chunks.append(_xmp_itxt(out.xmp))
    for kind, body in meta.png_chunks:
        out.png_chunks.append((kind, body))
        if kind in _PNG_TEXT:
            item = png_text(kind, body)
            out.kept.append(f"text:{item[0] if item else '?'}")
        else:
            out.kept.append(kind.decode("ascii"))
    for comment in meta.comments:
        out.png_chunks.append(_png_text_chunk("Comment", _decoded_comment(comment)))
    if meta.comments:
        out.kept.append("comment")
    if meta.iptc:
        out.dropped.append("iptc")


def _carry_tiff(meta: ImageMeta, out: Carried) -> None:
    out.tiff_text = _exif_text_tags(out.exif)
    if out.tiff_text:
        out.kept.append("exif:tiff-tags")
    if out.exif and _has_sub_ifds(out.exif):
        out.dropped.append("exif:sub-ifds")
    out.iptc = meta.iptc
    if meta.iptc:
        out.kept.append("iptc")
    if meta.comments:
        if _DESCRIPTION not in out.tiff_text:
            out.tiff_text[_DESCRIPTION] = "\n".join(_decoded_comment(c) for c in meta.comments)
            out.kept.append("comment")
        else:
            out.dropped.append("comment")
    texts = {b"Description": _DESCRIPTION, b"Comment": _DESCRIPTION, b"Author": _ARTIST,
             b"Copyright": _COPYRIGHT}
    for kind, body in meta.png_chunks:
        if kind not in _PNG_TEXT:
            out.dropped.append(kind.decode("ascii"))
            continue
        item = png_text(kind, body)
        name = f"text:{item[0] if item else '?'}"
        code = texts.get(item[0].encode("latin-1")) if item else None
        if item is not None and code is not None and code not in out.tiff_text:
            out.tiff_text[code] = item[1]
            out.kept.append(name)
        else:
            out.dropped.append(name)


def _carry_jpeg(meta: ImageMeta, out: Carried) -> None:
    if out.xmp and len(out.xmp) > _JPEG_XMP_BYTES:
        out.xmp = None
        out.kept.remove("xmp")
        out.dropped.append("xmp")
    if meta.iptc and len(_photoshop_app13(meta.iptc)) <= _SEGMENT_BYTES:
        out.iptc = meta.iptc
        out.kept.append("iptc")
    elif meta.iptc:
        out.dropped.append("iptc")
    comments = list(meta.comments)
    for kind, body in meta.png_chunks:
        item = png_text(kind, body) if kind in _PNG_TEXT else None
        if item is not None and item[0] == "Comment":
            comments.append(item[1].encode("utf-8"))
            out.kept.append("text:Comment")
        else:
            out.dropped.append(f"text:{item[0]}" if item else kind.decode("ascii"))
    out.comments = [c for c in comments if len(c) <= _SEGMENT_BYTES]
    if len(out.comments) < len(comments):
        out.dropped.append("comment")
    if meta.comments and out.comments:
        out.kept.append("comment")


def carry(meta: ImageMeta, fmt: str, width: int, height: int, scale: int) -> Carried:
    """The metadata of a ``fmt`` (png, tiff or jpg) output of ``width`` x ``height`` pixels."""
    dpi = _scaled_dpi(meta, scale)
    out = Carried(icc=_icc_for_mode(meta.icc_profile, meta.mode), dpi=dpi,
                  exif=_exif_for_output(meta.exif, width, height, dpi),
                  xmp=_xmp_for_output(meta.xmp, width, height, dpi))
    if out.icc:
        out.kept.append("icc_profile")
    if dpi:
        out.kept.append("dpi")
    if fmt != "tiff" and meta.exif:
        (out.kept if out.exif else out.dropped).append("exif")
    elif meta.exif and not out.exif:
        out.dropped.append("exif")
    if meta.xmp:
        (out.kept if out.xmp else out.dropped).append("xmp")
    {"png": _carry_png, "tiff": _carry_tiff, "jpg": _carry_jpeg}[fmt](meta, out)
    return out
