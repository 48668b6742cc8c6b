"""Damaged inputs fail with their real reason, never pass as good: libjpeg's warnings, TIFF segments
of 0 bytes and tifffile's repairs, bad PNG CRCs in any chunk, libtiff kept off stderr, thumbnails
first in a multi-page TIFF, and a file rewritten while it is read."""

from __future__ import annotations

import io
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image
from support import AMPLE_MEMORY

from upres.batch import runner as batch
from upres.imageio import (
    DecodedImage,
    ImageError,
    input_sha256,
    open_tiff_rows,
    probe_image,
    read_image,
    read_region,
)
from upres.runtime.inputs import collect_jobs


def _jpeg(photo: np.ndarray, **options: object) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(photo[:64, :96]).save(buffer, "JPEG", quality=90, **options)
    return buffer.getvalue()


def _cut_scan(data: bytes) -> bytes:
    """Half the entropy-coded data of the (last) scan, then EOI: a transfer cut short and
    'repaired' by a tool that closed the file properly."""
    sos = data.rfind(b"\xff\xda")
    return data[: sos + (len(data) - sos) // 2] + b"\xff\xd9"


# --------------------------------------------------------------------------------------------
# JPEG


@pytest.mark.parametrize("progressive", [False, True])
def test_jpeg_scan_cut_short_is_refused(tmp_path: Path, photo: np.ndarray, progressive: bool) -> None:
    path = tmp_path / "cut.jpg"
    path.write_bytes(_cut_scan(_jpeg(photo, progressive=progressive)))
    with pytest.raises(ImageError) as caught:
        read_image(path)
    assert caught.value.reason.startswith("truncated or corrupt JPEG data (libjpeg: ")
    assert "premature end of data segment" in caught.value.reason or "extraneous" in caught.value.reason


def test_truncated_files_fail_even_where_pillow_is_told_to_load_them(
        tmp_path: Path, photo: np.ndarray, monkeypatch: pytest.MonkeyPatch) -> None:
    """An application's ImageFile.LOAD_TRUNCATED_IMAGES = True (Pillow then pads the image
    silently) does not apply to upres's reads."""
    from PIL import ImageFile

    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    data = _jpeg(photo)
    for name, cut in (("cut.jpg", data[: len(data) * 2 // 3]), ("cut-eoi.jpg", _cut_scan(data))):
        with pytest.raises(ImageError, match="truncated or corrupt JPEG data"):
            read_image(_write(tmp_path / name, cut))
    assert ImageFile.LOAD_TRUNCATED_IMAGES is True


def test_jpeg_arithmetic_marker_on_huffman_data_is_refused(tmp_path: Path, photo: np.ndarray) -> None:
    path = tmp_path / "sof9.jpg"
    path.write_bytes(_jpeg(photo).replace(b"\xff\xc0", b"\xff\xc9", 1))
    with pytest.raises(ImageError, match=r"arithmetic coding \(SOF9\) but the file holds Huffman"):
        read_image(path)


def test_valid_jpegs_with_harmless_warnings_still_read(tmp_path: Path, photo: np.ndarray) -> None:
    """Warnings about metadata (an unknown JFIF revision) and stray bytes between header
    segments say nothing about the pixels: such files decode as before."""
    plain = _jpeg(photo)
    exif = Image.Exif()
    exif[0x010F] = "Cam"
    variants = {
        "baseline": plain,
        "progressive": _jpeg(photo, progressive=True),
        "optimised-420": _jpeg(photo, optimize=True, subsampling=2),
        "restarts": _jpeg(photo, restart_marker_blocks=2),
        "metadata": _jpeg(photo, exif=exif.tobytes(), comment=b"scan 12", xmp=b"<x:xmpmeta/>"),
        "jfif-2.01": plain[:11] + bytes([2, 1]) + plain[13:],
        "padding-after-app0": plain[:20] + b"\x00\x00" + plain[20:],
    }
    reference = read_image(_write(tmp_path / "reference.jpg", plain)).rgb
    for name, data in variants.items():
        image = read_image(_write(tmp_path / f"{name}.jpg", data))
        assert image.rgb.shape == (64, 96, 3), name
        if name in ("jfif-2.01", "padding-after-app0", "metadata"):
            np.testing.assert_array_equal(image.rgb, reference, err_msg=name)
    gray = io.BytesIO()
    Image.fromarray(photo[:32, :32, 0]).save(gray, "JPEG")
    cmyk = io.BytesIO()
    Image.fromarray(photo[:32, :32]).convert("CMYK").save(cmyk, "JPEG")
    assert read_image(_write(tmp_path / "gray.jpg", gray.getvalue())).meta.mode == "gray"
    assert read_image(_write(tmp_path / "cmyk.jpg", cmyk.getvalue())).meta.mode == "rgb"


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


# --------------------------------------------------------------------------------------------
# TIFF


def _patched_tag(path: Path, code: int, patch) -> bytes:  # type: ignore[no-untyped-def]
    data = bytearray(path.read_bytes())
    with tifffile.TiffFile(path) as tif:
        tag = tif.pages.first.tags[code]
        patch(data, tag)
    return bytes(data)


def test_tiff_strips_of_zero_bytes_are_refused(tmp_path: Path, photo: np.ndarray) -> None:
    """tifffile decodes a segment of 0 bytes as zeros: byte counts lost in a damaged file made a
    black output."""
    source = tmp_path / "src.tif"
    tifffile.imwrite(source, photo[:64, :48], photometric="rgb", rowsperstrip=16)

    def zero_counts(data: bytearray, tag) -> None:  # type: ignore[no-untyped-def]
        size = 2 if int(tag.dtype) == 3 else 4  # SHORT or LONG
        start = tag.valueoffset
        data[start : start + size * tag.count] = bytes(size * tag.count)

    path = _write(tmp_path / "zero.tif", _patched_tag(source, 279, zero_counts))
    expected = "corrupt TIFF: strip 1 of 4 has no data (byte count 0)"
    for read in (read_image, open_tiff_rows, lambda p: read_region(p, 0, 8, 0, 8)):
        with pytest.raises(ImageError) as caught:
            read(path)
        assert caught.value.reason == expected


def test_tiff_repaired_by_tifffile_is_refused(tmp_path: Path, photo: np.ndarray) -> None:
    """tifffile logs what it repairs (and goes on): such a file fails, with what was wrong."""
    source = tmp_path / "src.tif"
    tifffile.imwrite(source, photo[:64, :48], photometric="rgb", rowsperstrip=16)

    def short_count(data: bytearray, tag) -> None:  # type: ignore[no-untyped-def]
        data[tag.offset + 4 : tag.offset + 8] = struct.pack("<I", 3)

    def renamed(data: bytearray, tag) -> None:  # type: ignore[no-untyped-def]
        data[tag.offset : tag.offset + 2] = struct.pack("<H", 65001)

    cases = {"count.tif": (short_count, "corrupt TIFF: incorrect StripByteCounts count (3 != 4)"),
             "missing.tif": (renamed, "corrupt TIFF: missing data ByteCounts tag")}
    for name, (patch, reason) in cases.items():
        path = _write(tmp_path / name, _patched_tag(source, 279, patch))
        for read in (read_image, open_tiff_rows, probe_image):
            with pytest.raises(ImageError) as caught:
                read(path)
            assert caught.value.reason == reason, (name, read)


def test_thumbnail_first_tiff_reads_its_full_resolution_page(tmp_path: Path, photo: np.ndarray) -> None:
    """Scanners write a reduced-resolution page (NewSubfileType bit 0) before the scan: the
    full-resolution page is the image, for every reader."""
    full = photo[:96, :128]
    path = tmp_path / "scan.tif"
    with tifffile.TiffWriter(path) as tif:
        tif.write(full[::4, ::4], photometric="rgb", subfiletype=1)
        tif.write(full, photometric="rgb", resolution=(300, 300), resolutionunit="INCH")
        tif.write(full[::2, ::2], photometric="rgb", subfiletype=1)
    image = read_image(path)
    assert image.rgb.shape == (96, 128, 3)
    np.testing.assert_array_equal(np.rint(image.rgb * 255).astype(np.uint8), full)
    assert image.meta.dpi == pytest.approx((300, 300))
    assert probe_image(path) == image.meta
    rows = open_tiff_rows(path)
    assert rows is not None
    with rows:
        assert rows.meta == image.meta
        np.testing.assert_array_equal(rows.read(10, 30), image.rgb[10:30])
    np.testing.assert_array_equal(read_region(path, 5, 50, 7, 90), image.rgb[5:50, 7:90])

    only = tmp_path / "thumbs.tif"
    with tifffile.TiffWriter(only) as tif:
        tif.write(full[::4, ::4], photometric="rgb", subfiletype=1)
    with pytest.raises(ImageError, match="only reduced-resolution"):
        read_image(only)


def _thunderscan_tiff(path: Path, photo: np.ndarray) -> None:
    """An 8-bit RGB TIFF marked ThunderScan (a 4-bit codec): tifffile cannot decode it, Pillow's
    libtiff tries and complains on stderr."""
    tifffile.imwrite(path, photo[:32, :32], photometric="rgb")

    def thunderscan(data: bytearray, tag) -> None:  # type: ignore[no-untyped-def]
        data[tag.offset + 8 : tag.offset + 10] = struct.pack("<H", 32809)

    path.write_bytes(_patched_tag(path, 259, thunderscan))


def test_libtiff_messages_stay_off_stderr(tmp_path: Path, photo: np.ndarray) -> None:
    folder, out = tmp_path / "in", tmp_path / "out"
    folder.mkdir()
    _thunderscan_tiff(folder / "thunder.tif", photo)
    proc = subprocess.run(
        [sys.executable, "-m", "upres", "run", str(folder), "-o", str(out), "--mode", "deterministic",
         "--scale", "2", "--quiet"], capture_output=True, text=True, timeout=120)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 1
    assert len(lines) == 1 and lines[0].startswith("failed: "), proc.stderr
    assert "thunder.tif" in lines[0] and "Thunder" in lines[0]  # libtiff's reason, on that line


# --------------------------------------------------------------------------------------------
# PNG


def _png_with_text(photo: np.ndarray, after_idat: bool) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(photo[:16, :24]).save(buffer, "PNG")
    data = buffer.getvalue()
    body = b"Caption\x00harbour, 1931"
    chunk = struct.pack(">I", len(body)) + b"tEXt" + body + struct.pack(">I", zlib.crc32(b"tEXt" + body) ^ 1)
    at = data.rfind(b"IEND") - 4 if after_idat else 33  # after IHDR (8 + 25 bytes)
    return data[:at] + chunk + data[at:]


@pytest.mark.parametrize("after_idat", [False, True])
def test_png_bad_crc_in_a_text_chunk_gives_the_real_reason(tmp_path: Path, photo: np.ndarray,
                                                            after_idat: bool) -> None:
    path = _write(tmp_path / "caption.png", _png_with_text(photo, after_idat))
    with pytest.raises(ImageError) as caught:
        read_image(path)
    assert caught.value.reason == "corrupt PNG: bad CRC in tEXt chunk"


# --------------------------------------------------------------------------------------------
# The hash is of the bytes decoded


def test_read_image_hashes_the_bytes_it_decodes(tmp_path: Path, photo: np.ndarray) -> None:
    for name in ("a.png", "a.jpg", "a.tif"):
        path = tmp_path / name
        Image.fromarray(photo[:20, :30]).save(path)
        assert read_image(path).sha256 == input_sha256(path), name


def test_tiff_rows_fail_when_the_file_changes_while_read(tmp_path: Path, photo: np.ndarray) -> None:
    from upres.imageio import decoded_sha256

    path = tmp_path / "scan.tif"
    tifffile.imwrite(path, photo[:64, :48], photometric="rgb", rowsperstrip=16, compression="zlib")

    def rewrite_in_place() -> None:
        info = path.stat()
        with open(path, "r+b") as handle:  # same size, other content, as an in-place save does
            handle.seek(info.st_size - 8)
            handle.write(b"\x00" * 8)
        os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns + 1_000_000_000))

    rows = open_tiff_rows(path)
    assert rows is not None
    with rows:
        assert rows.sha256 == input_sha256(path)
        rows.read(0, 16)
        rewrite_in_place()
        with pytest.raises(ImageError, match="changed while it was read"):
            rows.read(16, 32)
    rows = open_tiff_rows(path)
    assert rows is not None
    rewrite_in_place()
    with pytest.raises(ImageError, match="changed while it was read"):
        decoded_sha256(path, rows, input_sha256(path))
    assert rows._handle.closed  # a failed check closes the rows


def test_decoded_sha256_refuses_another_hash(tmp_path: Path) -> None:
    from upres.imageio import decoded_sha256

    image = DecodedImage(np.zeros((1, 1, 3), np.float32), None, probe_meta(tmp_path), sha256="ab")
    assert decoded_sha256(tmp_path / "x.png", image, "ab") == "ab"
    with pytest.raises(ImageError) as caught:
        decoded_sha256(tmp_path / "x.png", image, "cd")
    assert "changed while it was read" in caught.value.reason
    unhashed = DecodedImage(image.rgb, None, image.meta)
    assert decoded_sha256(tmp_path / "x.png", unhashed, "cd") == "cd"


def probe_meta(tmp_path: Path):  # type: ignore[no-untyped-def]
    Image.new("RGB", (1, 1)).save(tmp_path / "x.png")
    return probe_image(tmp_path / "x.png")


def test_batch_fails_an_image_rewritten_between_hash_and_decode(
        tmp_path: Path, photo: np.ndarray, monkeypatch: pytest.MonkeyPatch) -> None:
    src = tmp_path / "in" / "a.png"
    src.parent.mkdir()
    Image.fromarray(photo[:24, :32]).save(src)
    real_hash = batch.input_sha256

    def hash_then_rewrite(path: Path) -> str:
        sha = real_hash(path)
        Image.fromarray(photo[24:48, :32]).save(path)  # a new version lands after the hash
        return sha

    monkeypatch.setattr(batch, "input_sha256", hash_then_rewrite)
    errors: list[str] = []
    out = tmp_path / "out"
    report = batch.BatchRunner(_setup(), batch.RunOptions(memory=AMPLE_MEMORY)).run(
        collect_jobs([str(src)], out), errors.append)
    assert report.counts()["failed"] == 1
    assert len(errors) == 1 and "changed while it was read" in errors[0]
    assert not any(p.suffix == ".png" for p in out.rglob("*"))


def _setup():  # type: ignore[no-untyped-def]
    from upres.runtime.chain_factory import build_chain

    return build_chain("deterministic", 2, None, 0.5, "ort-cpu", "fp32", 1)


def test_clean_fails_an_image_rewritten_between_hash_and_decode(
        tmp_path: Path, photo: np.ndarray, monkeypatch: pytest.MonkeyPatch) -> None:
    from upres.batch import RunOptions
    from upres.cleaning import runner as clean
    from upres.cleaning.mask_source import MaskSource
    from upres.cleaning.pipeline import Cleaner, CleanSettings

    src = tmp_path / "in" / "a.png"
    src.parent.mkdir()
    Image.fromarray(photo[:48, :64]).save(src)
    mask = np.zeros((48, 64), np.uint8)
    mask[5:9, 5:20] = 255
    Image.fromarray(mask).save(tmp_path / "m.png")
    real_hash = clean.input_sha256

    def hash_then_rewrite(path: Path) -> str:
        sha = real_hash(path)
        if Path(path) == src:
            Image.fromarray(photo[48:96, :64]).save(path)
        return sha

    monkeypatch.setattr(clean, "input_sha256", hash_then_rewrite)
    runner = clean.CleanRunner(clean.unscaled_setup("ort-cpu", "test"), Cleaner(CleanSettings(texture=0.0)),
                               clean.MaskOptions(MaskSource.parse(str(tmp_path / "m.png"))),
                               RunOptions(memory=AMPLE_MEMORY))
    errors: list[str] = []
    report = runner.run(collect_jobs([str(src)], tmp_path / "out"), errors.append)
    assert report.failed == 1
    assert len(errors) == 1 and "changed while it was read" in errors[0]
