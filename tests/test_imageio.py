"""Image I/O: real files written with Pillow/OpenCV/tifffile, decoded and re-encoded."""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
import tifffile
from PIL import Image, ImageCms, ImageOps

from upres.core.atomic import atomic_output, atomic_write_bytes, atomic_write_text, cleanup_stale_temps
from upres.imageio import (
    DEFAULT_MAX_PIXELS,
    BigTiffStripWriter,
    ImageError,
    ImageMeta,
    metadata_record,
    output_suffix,
    probe_image,
    quantize,
    read_image,
    read_region,
    write_image,
)

RNG = np.random.default_rng(1234)


def _pattern(height: int, width: int, channels: int, dtype: type = np.uint8) -> np.ndarray:
    """Gradient plus noise: photo-like, with every channel different."""
    top = np.iinfo(dtype).max
    yy, xx = np.mgrid[0:height, 0:width]
    base = (yy * 7 + xx * 3)[..., None] + np.arange(channels) * 40
    noise = RNG.integers(0, 64, (height, width, channels))
    values = (base + noise) % 256 * (top // 255)
    return values.astype(dtype)


def _float(values: np.ndarray) -> np.ndarray:
    return values.astype(np.float32) / np.iinfo(values.dtype).max


def _listing(folder: Path) -> list[str]:
    return sorted(entry.name for entry in folder.iterdir())


def _srgb_icc() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


# --------------------------------------------------------------------------------------------
# Round trips


def test_rgb8_png_round_trip(tmp_path: Path) -> None:
    pixels = _pattern(24, 40, 3)
    Image.fromarray(pixels).save(tmp_path / "in.png")
    image = read_image(tmp_path / "in.png")
    assert image.rgb.dtype == np.float32 and image.rgb.shape == (24, 40, 3)
    assert image.alpha is None
    assert (image.meta.mode, image.meta.bit_depth, image.meta.source_format) == ("rgb", 8, "PNG")
    assert (image.meta.width, image.meta.height) == (40, 24)
    write_image(tmp_path / "out.png", image.rgb, None, image.meta, 1, "png")
    with Image.open(tmp_path / "out.png") as out:
        assert out.mode == "RGB"
        np.testing.assert_array_equal(np.asarray(out), pixels)


def test_rgb16_png_round_trip_is_exact(tmp_path: Path) -> None:
    pixels = RNG.integers(0, 65536, (20, 30, 3), dtype=np.uint16)
    cv2.imwrite(str(tmp_path / "in.png"), pixels[..., ::-1])  # OpenCV wants BGR
    image = read_image(tmp_path / "in.png")
    assert (image.meta.mode, image.meta.bit_depth) == ("rgb", 16)
    np.testing.assert_array_equal(np.rint(image.rgb * 65535).astype(np.uint16), pixels)
    write_image(tmp_path / "out.png", image.rgb, None, image.meta, 1, "png")
    back = cv2.imread(str(tmp_path / "out.png"), cv2.IMREAD_UNCHANGED)
    assert back.dtype == np.uint16
    np.testing.assert_array_equal(back[..., ::-1], pixels)
    write_image(tmp_path / "out.tif", image.rgb, None, image.meta, 1, "tiff")
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "out.tif"), pixels)


def test_rgba16_png_keeps_alpha(tmp_path: Path) -> None:
    pixels = RNG.integers(0, 65536, (9, 11, 4), dtype=np.uint16)
    cv2.imwrite(str(tmp_path / "in.png"), pixels[..., [2, 1, 0, 3]])
    image = read_image(tmp_path / "in.png")
    assert image.meta.has_alpha and image.alpha is not None
    np.testing.assert_array_equal(np.rint(image.alpha * 65535), pixels[..., 3])
    np.testing.assert_array_equal(np.rint(image.rgb * 65535), pixels[..., :3])


def test_grayscale_in_grayscale_out(tmp_path: Path) -> None:
    pixels = _pattern(16, 20, 1)[..., 0]
    Image.fromarray(pixels, "L").save(tmp_path / "in.png")
    image = read_image(tmp_path / "in.png")
    assert (image.meta.mode, image.meta.bit_depth) == ("gray", 8)
    assert image.rgb.shape == (16, 20, 3)
    np.testing.assert_array_equal(image.rgb[..., 0], image.rgb[..., 2])
    for fmt, name in (("png", "out.png"), ("tiff", "out.tif"), ("jpg", "out.jpg")):
        write_image(tmp_path / name, image.rgb, None, image.meta, 1, fmt)
        with Image.open(tmp_path / name) as out:
            assert out.mode == "L", fmt
            if fmt != "jpg":
                np.testing.assert_array_equal(np.asarray(out), pixels)


def test_gray16_png_round_trip(tmp_path: Path) -> None:
    pixels = RNG.integers(0, 65536, (12, 14), dtype=np.uint16)
    cv2.imwrite(str(tmp_path / "in.png"), pixels)
    image = read_image(tmp_path / "in.png")
    assert (image.meta.mode, image.meta.bit_depth) == ("gray", 16)
    write_image(tmp_path / "out.png", image.rgb, None, image.meta, 1, "png")
    back = cv2.imread(str(tmp_path / "out.png"), cv2.IMREAD_UNCHANGED)
    assert back.ndim == 2 and back.dtype == np.uint16
    np.testing.assert_array_equal(back, pixels)


def test_rgba_alpha_kept(tmp_path: Path) -> None:
    pixels = _pattern(10, 12, 4)
    Image.fromarray(pixels, "RGBA").save(tmp_path / "in.png")
    image = read_image(tmp_path / "in.png")
    assert image.meta.has_alpha and image.alpha is not None and image.alpha.shape == (10, 12)
    for fmt, name in (("png", "out.png"), ("tiff", "out.tif")):
        write_image(tmp_path / name, image.rgb, image.alpha, image.meta, 1, fmt)
        with Image.open(tmp_path / name) as out:
            assert out.mode == "RGBA", fmt
            np.testing.assert_array_equal(np.asarray(out), pixels)


def test_gray_alpha_written_as_two_channels(tmp_path: Path) -> None:
    pixels = _pattern(8, 9, 2)
    Image.fromarray(pixels, "LA").save(tmp_path / "in.png")
    image = read_image(tmp_path / "in.png")
    assert image.meta.mode == "gray" and image.meta.has_alpha
    write_image(tmp_path / "out.png", image.rgb, image.alpha, image.meta, 1, "png")
    with Image.open(tmp_path / "out.png") as out:
        assert out.mode == "LA"
        np.testing.assert_array_equal(np.asarray(out), pixels)


def test_palette_with_transparency(tmp_path: Path) -> None:
    indices = (np.arange(12 * 16).reshape(12, 16) % 4).astype(np.uint8)
    palette = [0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255] + [0] * (256 - 4) * 3
    source = Image.fromarray(indices, "P")
    source.putpalette(palette)
    source.save(tmp_path / "in.png", transparency=0)
    image = read_image(tmp_path / "in.png")
    assert image.meta.mode == "rgb" and image.meta.has_alpha and image.alpha is not None
    np.testing.assert_array_equal(image.alpha, (indices != 0).astype(np.float32))
    colors = np.array(palette[:12], dtype=np.float32).reshape(4, 3) / 255
    np.testing.assert_array_equal(image.rgb, colors[indices])


@pytest.mark.parametrize("mode", ["RGB", "L"])
def test_a_png_s_transparent_colour_becomes_its_alpha(tmp_path: Path, mode: str) -> None:
    """A tRNS chunk in an RGB or gray PNG: its pixels of that colour are transparent."""
    pixels = _pattern(12, 16, 3) if mode == "RGB" else _pattern(12, 16, 3)[..., 0]
    key = tuple(int(v) for v in pixels[0, 0]) if mode == "RGB" else int(pixels[0, 0])
    Image.fromarray(pixels, mode).save(tmp_path / "in.png", transparency=key)
    image = read_image(tmp_path / "in.png")
    assert image.meta.has_alpha and image.alpha is not None
    keyed = np.all(pixels == pixels[0, 0], axis=-1) if mode == "RGB" else pixels == pixels[0, 0]
    np.testing.assert_array_equal(image.alpha, (~keyed).astype(np.float32))
    assert image.meta.mode == ("rgb" if mode == "RGB" else "gray")


def test_a_cmyk_profile_on_converted_pixels_is_recorded_as_dropped(tmp_path: Path) -> None:
    cmyk_profile = bytes(16) + b"CMYK" + bytes(108)  # the header field that names its colour space
    Image.fromarray(_pattern(16, 16, 4), "CMYK").save(tmp_path / "in.jpg", icc_profile=cmyk_profile)
    meta = read_image(tmp_path / "in.jpg").meta
    assert meta.icc_profile is None and meta.dropped == ("icc_profile",)
    assert "icc_profile" in metadata_record(meta, "png")["dropped"]
    Image.fromarray(_pattern(16, 16, 3)).save(tmp_path / "rgb.jpg")
    assert read_image(tmp_path / "rgb.jpg").meta.dropped == ()


def test_cmyk_jpeg_is_converted_to_rgb(tmp_path: Path) -> None:
    Image.fromarray(_pattern(16, 16, 4), "CMYK").save(tmp_path / "in.jpg", quality=95)
    image = read_image(tmp_path / "in.jpg")
    assert (image.meta.mode, image.meta.source_format) == ("rgb", "JPEG")
    with Image.open(tmp_path / "in.jpg") as reference:
        assert reference.mode == "CMYK"
        expected = np.asarray(reference.convert("RGB"))
    np.testing.assert_array_equal(quantize(image.rgb, 8), expected)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_exif_orientation_6_applied(tmp_path: Path, fmt: str) -> None:
    pixels = _pattern(10, 16, 3)  # landscape as stored, portrait after rotation
    exif = Image.Exif()
    exif[0x0112] = 6
    exif[0x010F] = "TestCam"
    path = tmp_path / f"in.{fmt.lower()}"
    Image.fromarray(pixels).save(path, format=fmt, exif=exif.tobytes(), quality=95)
    image = read_image(path)
    assert (image.meta.width, image.meta.height) == (10, 16)
    assert image.rgb.shape == (16, 10, 3)
    with Image.open(path) as reference:
        expected = np.asarray(ImageOps.exif_transpose(reference))
    np.testing.assert_array_equal(quantize(image.rgb, 8), expected)
    if fmt == "PNG":
        np.testing.assert_array_equal(expected, np.rot90(pixels, -1))
    kept = Image.Exif()
    kept.load(image.meta.exif)
    assert kept[0x0112] == 1 and kept[0x010F] == "TestCam"
    write_image(tmp_path / "out.png", image.rgb, None, image.meta, 1, "png")
    with Image.open(tmp_path / "out.png") as out:
        assert out.size == (10, 16)
        assert out.getexif()[0x0112] == 1


def test_tiff_orientation_tag_applied(tmp_path: Path) -> None:
    pixels = _pattern(6, 9, 3)
    tifffile.imwrite(tmp_path / "in.tif", pixels, extratags=[(274, "H", 1, 6, True)])
    image = read_image(tmp_path / "in.tif")
    np.testing.assert_array_equal(quantize(image.rgb, 8), np.rot90(pixels, -1))


def test_icc_profile_and_dpi_kept(tmp_path: Path) -> None:
    icc = _srgb_icc()
    Image.fromarray(_pattern(8, 8, 3)).save(tmp_path / "in.png", icc_profile=icc, dpi=(300, 300))
    image = read_image(tmp_path / "in.png")
    assert image.meta.icc_profile == icc
    assert image.meta.dpi == pytest.approx((300, 300), rel=1e-3)
    for fmt, name in (("png", "out.png"), ("jpg", "out.jpg"), ("tiff", "out.tif")):
        write_image(tmp_path / name, image.rgb, None, image.meta, 2, fmt)
        with Image.open(tmp_path / name) as out:
            assert out.info.get("icc_profile") == icc, fmt
            assert out.info["dpi"] == pytest.approx((600, 600), rel=1e-3), fmt
        assert read_image(tmp_path / name).meta.dpi == pytest.approx((600, 600), rel=1e-3)


def test_cmyk_icc_profile_not_attached_to_rgb(tmp_path: Path) -> None:
    fake_cmyk_profile = bytes(16) + b"CMYK" + bytes(108)
    Image.fromarray(_pattern(8, 8, 4), "CMYK").save(
        tmp_path / "in.jpg", icc_profile=fake_cmyk_profile
    )
    assert read_image(tmp_path / "in.jpg").meta.icc_profile is None


def test_jpeg_output_is_8bit_without_alpha(tmp_path: Path) -> None:
    pixels = RNG.integers(0, 65536, (16, 24, 4), dtype=np.uint16)
    cv2.imwrite(str(tmp_path / "in.png"), pixels[..., [2, 1, 0, 3]])
    image = read_image(tmp_path / "in.png")
    write_image(tmp_path / "out.jpg", image.rgb, image.alpha, image.meta, 1, "jpg")
    with Image.open(tmp_path / "out.jpg") as out:
        assert (out.format, out.mode, out.size) == ("JPEG", "RGB", (24, 16))
    smooth = _pattern(32, 32, 3)
    Image.fromarray(smooth).save(tmp_path / "smooth.png")
    decoded = read_image(tmp_path / "smooth.png")
    write_image(tmp_path / "smooth.jpg", decoded.rgb, None, decoded.meta, 1, "jpg")
    error = np.abs(read_image(tmp_path / "smooth.jpg").rgb - decoded.rgb).mean()
    assert error < 0.03


def test_outputs_are_deterministic(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x010F] = "TestCam"
    Image.fromarray(_pattern(12, 12, 3)).save(
        tmp_path / "in.png", icc_profile=_srgb_icc(), dpi=(72, 72), exif=exif.tobytes()
    )
    image = read_image(tmp_path / "in.png")
    for fmt in ("png", "tiff", "jpg"):
        write_image(tmp_path / f"a.{fmt}", image.rgb, None, image.meta, 2, fmt)
        write_image(tmp_path / f"b.{fmt}", image.rgb, None, image.meta, 2, fmt)
        assert (tmp_path / f"a.{fmt}").read_bytes() == (tmp_path / f"b.{fmt}").read_bytes(), fmt
    with tifffile.TiffFile(tmp_path / "a.tiff") as tif:
        tags = tif.pages.first.tags
        assert 306 not in tags  # no write timestamp
        assert tags[271].value == "TestCam"


def test_tiff_inputs(tmp_path: Path) -> None:
    rgb16 = RNG.integers(0, 65536, (10, 12, 3), dtype=np.uint16)
    tifffile.imwrite(tmp_path / "rgb16.tif", rgb16, compression="zlib")
    image = read_image(tmp_path / "rgb16.tif")
    assert (image.meta.mode, image.meta.bit_depth, image.meta.source_format) == ("rgb", 16, "TIFF")
    np.testing.assert_array_equal(np.rint(image.rgb * 65535), rgb16)

    pages = np.stack([_pattern(5, 6, 3), _pattern(5, 6, 3)])
    tifffile.imwrite(tmp_path / "pages.tif", pages, photometric="rgb")
    np.testing.assert_array_equal(quantize(read_image(tmp_path / "pages.tif").rgb, 8), pages[0])

    floats = np.linspace(0.0, 1.0, 30, dtype=np.float32).reshape(5, 6)
    tifffile.imwrite(tmp_path / "float.tif", floats)
    decoded = read_image(tmp_path / "float.tif")
    np.testing.assert_array_equal(decoded.rgb[..., 1], floats)
    floats[2, 3] = np.nan
    tifffile.imwrite(tmp_path / "nan.tif", floats)
    with pytest.raises(ImageError, match="NaN"):
        read_image(tmp_path / "nan.tif")

    lzw = _pattern(7, 9, 3)
    Image.fromarray(lzw).save(tmp_path / "lzw.tif", compression="tiff_lzw")
    np.testing.assert_array_equal(quantize(read_image(tmp_path / "lzw.tif").rgb, 8), lzw)


def test_animated_gif_first_frame(tmp_path: Path) -> None:
    frames = [Image.new("RGB", (8, 6), color) for color in ((255, 0, 0), (0, 0, 255))]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    image = read_image(tmp_path / "anim.gif")
    np.testing.assert_array_equal(quantize(image.rgb, 8)[0, 0], [255, 0, 0])


def test_read_region(tmp_path: Path) -> None:
    pixels = RNG.integers(0, 65536, (70, 90, 3), dtype=np.uint16)
    expected = _float(pixels)[13:57, 21:80]
    tifffile.imwrite(tmp_path / "plain.tif", pixels)  # uncompressed: memory-mapped
    tifffile.imwrite(tmp_path / "tiled.tif", pixels, tile=(32, 32), compression="zlib")
    tifffile.imwrite(tmp_path / "strips.tif", pixels, rowsperstrip=8, compression="zlib")
    cv2.imwrite(str(tmp_path / "full.png"), pixels[..., ::-1])
    for name in ("plain.tif", "tiled.tif", "strips.tif", "full.png"):
        region = read_region(tmp_path / name, 13, 57, 21, 80)
        assert region.dtype == np.float32 and region.shape == (44, 59, 3), name
        np.testing.assert_array_equal(region, expected, err_msg=name)
    with pytest.raises(ValueError, match="outside"):
        read_region(tmp_path / "tiled.tif", 0, 71, 0, 10)


# --------------------------------------------------------------------------------------------
# Errors


def test_empty_file(tmp_path: Path) -> None:
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(ImageError) as caught:
        read_image(tmp_path / "empty.png")
    assert str(caught.value) == f"{tmp_path / 'empty.png'}: empty file (0 bytes)"
    assert caught.value.reason == "empty file (0 bytes)"


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_truncated_files_raise(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / f"cut.{fmt.lower()}"
    Image.fromarray(RNG.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(path, format=fmt)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError, match=f"truncated or corrupt {fmt} data"):
        read_image(path)


def test_truncated_16bit_png_and_tiff_raise(tmp_path: Path) -> None:
    pixels = RNG.integers(0, 65536, (32, 32, 3), dtype=np.uint16)
    cv2.imwrite(str(tmp_path / "cut.png"), pixels)
    tifffile.imwrite(tmp_path / "cut.tif", pixels)
    for name in ("cut.png", "cut.tif"):
        data = (tmp_path / name).read_bytes()
        (tmp_path / name).write_bytes(data[: len(data) // 2])
        with pytest.raises(ImageError, match="truncated"):
            read_image(tmp_path / name)


def test_text_file_named_png(tmp_path: Path) -> None:
    (tmp_path / "notes.png").write_text("these are not pixels\n")
    with pytest.raises(ImageError, match="not a recognised image format"):
        read_image(tmp_path / "notes.png")


def test_directory_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="is a directory"):
        read_image(tmp_path)
    with pytest.raises(ImageError, match="file not found"):
        read_image(tmp_path / "missing.png")


def _png_bomb(path: Path, width: int, height: int) -> None:
    """A real 1x1 PNG whose IHDR is patched to declare a huge size (with a valid CRC)."""
    Image.new("RGB", (1, 1)).save(path)
    data = bytearray(path.read_bytes())
    body = b"IHDR" + struct.pack(">II", width, height) + bytes(data[24:29])
    data[12:29] = body
    data[29:33] = struct.pack(">I", zlib.crc32(body))
    path.write_bytes(bytes(data))


def test_decompression_bomb_refused_before_decoding(tmp_path: Path) -> None:
    path = tmp_path / "bomb.png"
    _png_bomb(path, 100_000, 100_000)
    expected = f"image is 100000x100000 = 1.0e10 pixels, above --max-pixels {DEFAULT_MAX_PIXELS}"
    for call in (probe_image, read_image, lambda p: read_region(p, 0, 1, 0, 1)):
        with pytest.raises(ImageError) as caught:
            call(path)
        assert caught.value.reason == expected
    with pytest.raises(ImageError, match="above --max-pixels 100"):
        read_image(tmp_path / "bomb.png", max_pixels=100)


def test_max_pixels_applies_to_small_images_and_tiffs(tmp_path: Path) -> None:
    Image.new("RGB", (20, 10)).save(tmp_path / "small.png")
    tifffile.imwrite(tmp_path / "small.tif", np.zeros((10, 20), np.uint8))
    for name in ("small.png", "small.tif"):
        assert probe_image(tmp_path / name, max_pixels=200).width == 20
        with pytest.raises(ImageError, match=r"20x10 = 2\.0e2 pixels, above --max-pixels 199"):
            read_image(tmp_path / name, max_pixels=199)


# --------------------------------------------------------------------------------------------
# Output naming and atomic writes


def test_output_suffix() -> None:
    assert output_suffix("same", "PNG") == ".png"
    assert output_suffix("same", "JPEG") == ".jpg"
    assert output_suffix("same", "TIFF") == ".tif"
    assert output_suffix("same", "WEBP") == ".png"
    assert output_suffix("jpg", "PNG") == ".jpg"
    meta = ImageMeta("rgb", 8, False, None, None, None, "JPEG", 1, 1)
    assert output_suffix("same", meta) == ".jpg"
    assert output_suffix("tiff", meta) == ".tif"
    with pytest.raises(ValueError):
        output_suffix("bmp", "PNG")


def test_atomic_output_leaves_nothing_on_error(tmp_path: Path) -> None:
    target = tmp_path / "out.png"
    with pytest.raises(RuntimeError), atomic_output(target) as tmp:
        assert tmp.parent == tmp_path and tmp.suffix == ".png" and tmp.name.startswith(".")
        tmp.write_bytes(b"partial")
        raise RuntimeError("encoder failed")
    assert _listing(tmp_path) == []


def test_a_failed_rename_names_the_file_asked_for_not_the_temporary(tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    target.mkdir()  # a folder in its place
    with pytest.raises(OSError) as failed:
        atomic_write_text(target, "{}")
    assert failed.value.filename == str(target)
    assert _listing(tmp_path) == ["out.json"]


def test_atomic_output_replaces_only_on_success(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    atomic_write_text(target, "first")
    with pytest.raises(ValueError), atomic_output(target) as tmp:
        tmp.write_text("second")
        raise ValueError
    assert target.read_text() == "first"
    atomic_write_bytes(target, b"third")
    assert target.read_bytes() == b"third"
    assert _listing(tmp_path) == ["out.txt"]


def test_write_image_failure_leaves_no_file(tmp_path: Path) -> None:
    meta = ImageMeta("rgb", 8, False, None, None, None, "PNG", 4, 4)
    bad = np.full((4, 4, 3), np.nan, dtype=np.float32)
    with pytest.raises(ImageError, match="NaN"):
        write_image(tmp_path / "out.png", bad, None, meta, 1, "png")
    assert _listing(tmp_path) == []


def test_cleanup_stale_temps(tmp_path: Path) -> None:
    dead_pid = 2**31 - 2
    stale = tmp_path / f".upres-{dead_pid:08x}0123abcd.tmp.png"
    live = tmp_path / f".upres-{os.getpid():08x}89abcdef.tmp.png"
    other = tmp_path / ".keep.tmp"
    for path in (stale, live, other):
        path.write_bytes(b"x")
    assert cleanup_stale_temps(tmp_path) == [stale]
    assert _listing(tmp_path) == sorted([live.name, other.name])


# --------------------------------------------------------------------------------------------
# Streaming BigTIFF


def test_bigtiff_strip_writer_exact(tmp_path: Path) -> None:
    pixels = RNG.integers(0, 65536, (1000, 700, 3), dtype=np.uint16)
    icc = _srgb_icc()
    meta = ImageMeta("rgb", 16, False, icc, (150.0, 150.0), None, "TIFF", 350, 500)
    path = tmp_path / "big.tif"
    heights = [1, 100, 255, 300, 44, 299, 1]
    assert sum(heights) == 1000
    with BigTiffStripWriter(path, 1000, 700, 3, np.uint16, tile=256, meta=meta, scale=2) as out:
        top = 0
        for height in heights:
            out.write_strip(pixels[top : top + height])
            top += height
            assert not path.exists()
    with tifffile.TiffFile(path) as tif:
        assert tif.is_bigtiff
        page = tif.pages.first
        assert page.is_tiled and (page.tilelength, page.tilewidth) == (256, 256)
        assert page.iccprofile == icc
        np.testing.assert_array_equal(page.asarray(), pixels)
    assert read_image(path).meta.dpi == pytest.approx((300, 300))
    assert _listing(tmp_path) == ["big.tif"]


def test_bigtiff_strip_writer_gray(tmp_path: Path) -> None:
    pixels = RNG.integers(0, 256, (100, 90), dtype=np.uint8)
    with BigTiffStripWriter(tmp_path / "gray.tif", 100, 90, 1, np.uint8, tile=32) as out:
        out.write_strip(pixels[:70])
        out.write_strip(pixels[70:])
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "gray.tif"), pixels)
    np.testing.assert_array_equal(
        read_region(tmp_path / "gray.tif", 40, 80, 10, 50)[..., 0], _float(pixels)[40:80, 10:50]
    )


def test_bigtiff_strip_writer_failure_leaves_no_file(tmp_path: Path) -> None:
    pixels = RNG.integers(0, 256, (1000, 700, 3), dtype=np.uint8)
    with (
        pytest.raises(RuntimeError, match="tile inference failed"),
        BigTiffStripWriter(tmp_path / "big.tif", 1000, 700, 3, np.uint8) as out,
    ):
        out.write_strip(pixels[:600])
        raise RuntimeError("tile inference failed")
    assert _listing(tmp_path) == []
    with (
        pytest.raises(ValueError, match="only 300 of 1000 rows"),
        BigTiffStripWriter(tmp_path / "short.tif", 1000, 700, 3, np.uint8) as out,
    ):
        out.write_strip(pixels[:300])
    assert _listing(tmp_path) == []
    with (
        pytest.raises(ValueError, match="dtype"),
        BigTiffStripWriter(tmp_path / "dtype.tif", 1000, 700, 3, np.uint8) as out,
    ):
        out.write_strip(pixels[:10].astype(np.uint16))
    assert _listing(tmp_path) == []
