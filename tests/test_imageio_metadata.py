"""Metadata archives rely on survives the upscale: XMP (updated), IPTC, comments, PNG text and
gamma, in every output format that can hold them; rotated DPI follows the rotation; no DPI is
invented; and `metadata_record` says what was kept and what could not be."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image, PngImagePlugin

from upres.imageio import ImageMeta, metadata_record, probe_image, read_image, write_image

XMP = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
       b'<rdf:Description xmlns:tiff="http://ns.adobe.com/tiff/1.0/" '
       b'xmlns:exif="http://ns.adobe.com/exif/1.0/" xmlns:dc="http://purl.org/dc/elements/1.1/" '
       b'tiff:ImageWidth="96" tiff:Orientation="6" exif:PixelXDimension="96">'
       b"<tiff:ImageLength>64</tiff:ImageLength><exif:PixelYDimension>64</exif:PixelYDimension>"
       b"<dc:rights>Harbour archive, CC BY 4.0</dc:rights></rdf:Description></rdf:RDF></x:xmpmeta>")
# IPTC-IIM: record version, then a caption (2:120).
IPTC = b"\x1c\x02\x00\x00\x02\x00\x04" + b"\x1c\x02\x78\x00\x12Harbour, June 1931"


def _app13(iptc: bytes) -> bytes:
    resource = b"8BIM\x04\x04\x00\x00" + struct.pack(">I", len(iptc)) + iptc + b"\x00" * (len(iptc) % 2)
    payload = b"Photoshop 3.0\x00" + resource
    return b"\xff\xed" + struct.pack(">H", len(payload) + 2) + payload


def _xmp_field(xmp: bytes, name: str) -> str:
    import re

    found = re.search(rb"%s(?:=\"([^\"]*)\"|>([^<]*)<)" % name.encode(), xmp)
    assert found is not None, name
    return (found.group(1) or found.group(2)).decode()


def _jpeg_source(tmp_path: Path, photo: np.ndarray) -> Path:
    exif = Image.Exif()
    exif[0x0112] = 6
    exif[0x010F] = "ScanCam"
    path = tmp_path / "in.jpg"
    Image.fromarray(photo[:64, :96]).save(path, quality=95, exif=exif.tobytes(), xmp=XMP,
                                          comment=b"glass plate 12", dpi=(300, 150), extra=_app13(IPTC))
    return path


def test_jpeg_xmp_iptc_and_comment_survive_every_format(tmp_path: Path, photo: np.ndarray) -> None:
    image = read_image(_jpeg_source(tmp_path, photo))
    assert (image.meta.width, image.meta.height) == (64, 96)  # orientation 6
    assert image.meta.xmp == XMP and image.meta.iptc == IPTC
    assert image.meta.comments == (b"glass plate 12",)
    for fmt in ("png", "tiff", "jpg"):
        out = tmp_path / f"out.{fmt}"
        write_image(out, image.rgb, None, image.meta, 2, fmt)
        back = read_image(out).meta
        assert back.xmp is not None, fmt
        # The packet now describes the output's pixels: rotated, at its own size.
        assert _xmp_field(back.xmp, "tiff:ImageWidth") == "64", fmt
        assert _xmp_field(back.xmp, "tiff:ImageLength") == "96", fmt
        assert _xmp_field(back.xmp, "exif:PixelXDimension") == "64", fmt
        assert _xmp_field(back.xmp, "tiff:Orientation") == "1", fmt
        assert b"Harbour archive, CC BY 4.0" in back.xmp
        if fmt == "png":
            assert back.iptc is None  # PNG has no standard place for IPTC
            assert (b"tEXt", b"Comment\x00glass plate 12") in back.png_chunks
        else:
            assert back.iptc == IPTC, fmt
        if fmt == "jpg":
            assert back.comments == (b"glass plate 12",)
    with Image.open(tmp_path / "out.tiff") as tiff:
        assert tiff.tag_v2[270] == "glass plate 12"
    assert metadata_record(image.meta, "png") == {
        "kept": ["dpi", "exif", "xmp", "comment"], "dropped": ["iptc"]}
    assert metadata_record(image.meta, "jpg")["kept"] == ["dpi", "exif", "xmp", "iptc", "comment"]
    assert metadata_record(image.meta, "tiff") == {
        "kept": ["dpi", "xmp", "exif:tiff-tags", "iptc", "comment"], "dropped": []}


def test_rotated_dpi_follows_the_rotation(tmp_path: Path, photo: np.ndarray) -> None:
    """300 x 150 DPI stored, orientation 6: the displayed x axis is the stored y axis."""
    image = read_image(_jpeg_source(tmp_path, photo))
    assert image.meta.dpi == pytest.approx((150, 300))
    tiff = tmp_path / "rotated.tif"
    tifffile.imwrite(tiff, photo[:16, :24], photometric="rgb", resolution=(300, 150),
                     resolutionunit="INCH", extratags=[(274, 3, 1, 6, True)])
    assert read_image(tiff).meta.dpi == pytest.approx((150, 300))
    for fmt in ("png", "tiff", "jpg"):
        out = tmp_path / f"x2.{fmt}"
        write_image(out, image.rgb, None, image.meta, 2, fmt)
        with Image.open(out) as written:
            assert written.info["dpi"] == pytest.approx((300, 600), rel=1e-3), fmt


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def test_png_text_and_gamma_survive(tmp_path: Path, photo: np.ndarray) -> None:
    info = PngImagePlugin.PngInfo()
    info.add_text("Title", "Harbour")
    info.add_text("Author", "A. Photographer", zip=True)
    info.add_itxt("Copyright", "© Harbour archive", lang="en")
    info.add(b"gAMA", struct.pack(">I", 100000))  # linear: gamma 1.0
    buffer = io.BytesIO()
    Image.fromarray(photo[:16, :24]).save(buffer, "PNG", pnginfo=info)
    data = buffer.getvalue()
    late = _png_chunk(b"tEXt", b"Description\x00negative no. 4411")  # after IDAT
    iend = data.rfind(b"IEND") - 4
    path = tmp_path / "in.png"
    path.write_bytes(data[:iend] + late + data[iend:])
    image = read_image(path)
    kinds = [kind for kind, _ in image.meta.png_chunks]
    assert kinds == [b"tEXt", b"zTXt", b"iTXt", b"gAMA", b"tEXt"]
    assert probe_image(path) == image.meta
    write_image(tmp_path / "out.png", image.rgb, None, image.meta, 2, "png")
    assert read_image(tmp_path / "out.png").meta.png_chunks == image.meta.png_chunks
    with Image.open(tmp_path / "out.png") as out:
        assert out.info["gamma"] == pytest.approx(1.0)
        out.load()
        assert out.text["Description"] == "negative no. 4411"
    write_image(tmp_path / "out.tif", image.rgb, None, image.meta, 2, "tiff")
    with tifffile.TiffFile(tmp_path / "out.tif") as tif:
        tags = tif.pages.first.tags
        assert tags[270].value == "negative no. 4411"
        assert tags[315].value == "A. Photographer"
        assert tags[33432].value == "© Harbour archive"  # stored as UTF-8
    assert metadata_record(image.meta, "tiff") == {
        "kept": ["text:Author", "text:Copyright", "text:Description"],
        "dropped": ["text:Title", "gAMA"]}
    assert metadata_record(image.meta, "jpg")["dropped"] == [
        "text:Title", "text:Author", "text:Copyright", "gAMA", "text:Description"]


def test_tiff_xmp_and_iptc_survive(tmp_path: Path, photo: np.ndarray) -> None:
    path = tmp_path / "in.tif"
    iptc_longs = IPTC + b"\x00" * (-len(IPTC) % 4)  # Photoshop types the tag LONG
    tifffile.imwrite(path, photo[:64, :96], photometric="rgb", metadata=None,
                     extratags=[(700, 1, len(XMP), XMP, True),
                                (33723, 4, len(iptc_longs) // 4,
                                 tuple(np.frombuffer(iptc_longs, "<u4").tolist()), True)])
    image = read_image(path)
    assert image.meta.xmp == XMP and image.meta.iptc == iptc_longs
    for fmt in ("tiff", "jpg", "png"):
        out = tmp_path / f"out.{fmt}"
        write_image(out, image.rgb, None, image.meta, 2, fmt)
        back = read_image(out).meta
        assert _xmp_field(back.xmp or b"", "tiff:ImageWidth") == "96", fmt
        assert back.iptc == (None if fmt == "png" else iptc_longs), fmt


def test_no_dpi_in_no_dpi_out(tmp_path: Path, photo: np.ndarray, monkeypatch: pytest.MonkeyPatch) -> None:
    """A TIFF without resolution tags has no DPI, also when Pillow decodes it (for a codec
    tifffile lacks), which reported 1 DPI."""
    path = tmp_path / "nodpi.tif"
    Image.fromarray(photo[:16, :24]).save(path)  # Pillow writes no resolution tags
    with tifffile.TiffFile(path) as tif:
        assert 282 not in tif.pages.first.tags
    assert read_image(path).meta.dpi is None

    def no_codec(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        raise NotImplementedError("codec not available")

    monkeypatch.setattr(tifffile.TiffPage, "asarray", no_codec)
    image = read_image(path)
    assert image.meta.dpi is None
    write_image(tmp_path / "out.png", image.rgb, None, image.meta, 2, "png")
    write_image(tmp_path / "out.jpg", image.rgb, None, image.meta, 2, "jpg")
    with Image.open(tmp_path / "out.png") as out:
        assert "dpi" not in out.info
    assert read_image(tmp_path / "out.jpg").meta.dpi is None
    assert "dpi" not in metadata_record(image.meta, "tiff")["kept"]


def test_metadata_outputs_are_deterministic(tmp_path: Path, photo: np.ndarray) -> None:
    image = read_image(_jpeg_source(tmp_path, photo))
    for fmt in ("png", "tiff", "jpg"):
        write_image(tmp_path / f"a.{fmt}", image.rgb, None, image.meta, 2, fmt)
        write_image(tmp_path / f"b.{fmt}", image.rgb, None, image.meta, 2, fmt)
        assert (tmp_path / f"a.{fmt}").read_bytes() == (tmp_path / f"b.{fmt}").read_bytes(), fmt


def test_old_style_meta_still_writes(tmp_path: Path) -> None:
    """ImageMeta built positionally, as callers did before the new fields, writes as before."""
    meta = ImageMeta("rgb", 8, False, None, None, None, "PNG", 4, 3)
    write_image(tmp_path / "o.png", np.zeros((3, 4, 3), np.float32), None, meta, 1, "png")
    assert metadata_record(meta, "png") == {"kept": [], "dropped": []}


def test_streamed_bigtiff_carries_xmp_and_iptc(tmp_path: Path) -> None:
    from upres.imageio import BigTiffStripWriter

    meta = ImageMeta("rgb", 8, False, None, (150.0, 150.0), None, "JPEG", 96, 64, xmp=XMP, iptc=IPTC,
                     comments=(b"glass plate 12",))
    path = tmp_path / "big.tif"
    with BigTiffStripWriter(path, 128, 192, 3, np.uint8, tile=64, meta=meta, scale=2) as out:
        out.write_strip(np.zeros((128, 192, 3), np.uint8))
    back = read_image(path).meta
    assert back.iptc == IPTC and back.dpi == pytest.approx((300, 300))
    assert _xmp_field(back.xmp or b"", "tiff:ImageWidth") == "192"
    with tifffile.TiffFile(path) as tif:
        assert tif.pages.first.tags[270].value == "glass plate 12"


def test_a_jpeg_output_records_the_alpha_and_bits_it_cannot_hold() -> None:
    meta = ImageMeta(mode="rgb", bit_depth=16, has_alpha=True, icc_profile=None, dpi=None, exif=None,
                     source_format="png", width=8, height=6)
    assert metadata_record(meta, "jpg")["dropped"][:2] == ["16-bit samples", "alpha"]
    assert metadata_record(meta, "png")["dropped"] == []
    assert metadata_record(meta, "tiff")["dropped"] == []
