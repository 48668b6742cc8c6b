"""16-bit (and float) archival masters: every TIFF codec tifffile writes, 16-bit PPM/PGM and JPEG
2000 decode at full depth (16-bit in = 16-bit out), and float samples outside 0..1 are refused."""

from __future__ import annotations

from pathlib import Path

import cv2
import imagecodecs
import numpy as np
import pytest
import tifffile
from PIL import Image

from upres.imageio import ImageError, read_image, write_image


def _rgb16(height: int = 40, width: int = 48) -> np.ndarray:
    """Smooth gradients plus noise over the whole 16-bit range (every byte of a sample varies)."""
    rng = np.random.default_rng(7)
    yy, xx = np.mgrid[0:height, 0:width]
    base = (yy * 1400 + xx * 900)[..., None] + np.arange(3) * 9000
    return ((base + rng.integers(0, 300, (height, width, 3))) % 65536).astype(np.uint16)


def _as16(values: np.ndarray) -> np.ndarray:
    return np.rint(values * 65535).astype(np.uint16)


def _written16(tmp_path: Path, image) -> np.ndarray:  # type: ignore[no-untyped-def]
    """``image`` written as PNG and read back raw: the output keeps 16 bits."""
    out = tmp_path / "out.png"
    write_image(out, image.rgb, image.alpha, image.meta, 1, "png")
    back = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    assert back.dtype == np.uint16
    return back[..., ::-1] if back.ndim == 3 else back


TIFF_CODECS = {
    "lzw": {"compression": "lzw"},
    "lzw-predictor": {"compression": "lzw", "predictor": True},
    "zstd": {"compression": "zstd"},
    "packbits": {"compression": "packbits"},
    "deflate": {"compression": "zlib"},
    "deflate-predictor": {"compression": "zlib", "predictor": True},
    "adobe-deflate-tiles": {"compression": "adobe_deflate", "predictor": True, "tile": (16, 16)},
}


@pytest.mark.parametrize("codec", sorted(TIFF_CODECS))
def test_16bit_rgb_tiff_reads_exactly_in_every_codec(tmp_path: Path, codec: str) -> None:
    pixels = _rgb16()
    path = tmp_path / "master.tif"
    tifffile.imwrite(path, pixels, photometric="rgb", **TIFF_CODECS[codec])
    image = read_image(path)
    assert (image.meta.mode, image.meta.bit_depth) == ("rgb", 16)
    np.testing.assert_array_equal(_as16(image.rgb), pixels)
    np.testing.assert_array_equal(_written16(tmp_path, image), pixels)


def test_jpeg_compressed_tiff_reads(tmp_path: Path, photo: np.ndarray) -> None:
    """TIFF JPEG is 8-bit; tifffile stores it as YCbCr, which the JPEG codec returns as RGB."""
    pixels = np.ascontiguousarray(photo[:64, :80])
    path = tmp_path / "jpeg.tif"
    tifffile.imwrite(path, pixels, photometric="rgb", compression="jpeg", compressionargs={"level": 95})
    image = read_image(path)
    assert (image.meta.mode, image.meta.bit_depth) == ("rgb", 8)
    decoded = np.rint(image.rgb * 255).astype(np.int16)
    np.testing.assert_array_equal(decoded, tifffile.imread(path))
    assert np.abs(decoded - pixels).mean() < 3


def test_float_tiff_with_the_floating_point_predictor(tmp_path: Path) -> None:
    values = (_rgb16() / np.float32(65535)).astype(np.float32)
    path = tmp_path / "float.tif"
    tifffile.imwrite(path, values, photometric="rgb", compression="zlib", predictor=3)
    image = read_image(path)
    assert image.meta.bit_depth == 16
    np.testing.assert_array_equal(image.rgb, values)


def test_float_samples_outside_0_1_are_refused_with_the_range(tmp_path: Path) -> None:
    """Clipping them made highlights flat white without a word; upres does not guess a tone
    mapping, it says what it found and how to fix it."""
    values = np.linspace(-0.25, 2.5, 5 * 6 * 3, dtype=np.float32).reshape(5, 6, 3)
    tifffile.imwrite(tmp_path / "hdr.tif", values, photometric="rgb")
    Image.fromarray(np.linspace(-0.25, 2.5, 30, dtype=np.float32).reshape(5, 6), "F").save(
        tmp_path / "hdr.pfm")
    for name in ("hdr.tif", "hdr.pfm"):
        with pytest.raises(ImageError) as caught:
            read_image(tmp_path / name)
        assert "range from -0.25 to 2.5, outside 0..1" in caught.value.reason, name
        assert "rescale" in caught.value.reason


def _pnm(magic: bytes, pixels: np.ndarray, maxval: int, plain: bool = False) -> bytes:
    height, width = pixels.shape[:2]
    header = b"%s\n# scanned 1931\n%d %d\n%d\n" % (magic, width, height, maxval)
    if plain:
        return header + b" ".join(b"%d" % v for v in pixels.ravel()) + b"\n"
    return header + pixels.astype(">u2").tobytes()


def test_16bit_ppm_and_pgm_stay_16bit(tmp_path: Path) -> None:
    """Pillow reduces 16-bit PPMs to 8 bits; PGMs it keeps (as 32-bit integers)."""
    rgb = _rgb16(12, 14)
    cases = {
        "rgb.ppm": (_pnm(b"P6", rgb, 65535), rgb, 65535),
        "rgb12.ppm": (_pnm(b"P6", rgb >> 4, 4095), rgb >> 4, 4095),
        "plain.ppm": (_pnm(b"P3", rgb[:4, :5], 65535, plain=True), rgb[:4, :5], 65535),
        "gray.pgm": (_pnm(b"P5", rgb[..., 1], 65535), rgb[..., 1], 65535),
    }
    for name, (data, samples, maxval) in cases.items():
        (tmp_path / name).write_bytes(data)
        image = read_image(tmp_path / name)
        assert image.meta.bit_depth == 16, name
        assert image.meta.mode == ("gray" if samples.ndim == 2 else "rgb"), name
        expected = samples.astype(np.float32) / np.float32(maxval)
        got = image.rgb[..., 0] if samples.ndim == 2 else image.rgb
        np.testing.assert_allclose(got, expected, atol=1 / 65535 / 2, err_msg=name)
        if maxval == 65535:
            written = _written16(tmp_path, image)
            np.testing.assert_array_equal(written, samples, err_msg=name)
    (tmp_path / "cut.ppm").write_bytes(cases["rgb.ppm"][0][:-100])
    with pytest.raises(ImageError, match="truncated"):
        read_image(tmp_path / "cut.ppm")


def test_16bit_jpeg2000_stays_16bit(tmp_path: Path) -> None:
    """Pillow reduces JPEG 2000 RGB deeper than 8 bits to 8 bits."""
    rgb = _rgb16(16, 20)
    (tmp_path / "rgb16.jp2").write_bytes(imagecodecs.jpeg2k_encode(rgb, level=0, codecformat="jp2"))
    gray12 = rgb[..., 0] >> 4
    (tmp_path / "gray12.j2k").write_bytes(
        imagecodecs.jpeg2k_encode(gray12, level=0, bitspersample=12, codecformat="j2k"))
    image = read_image(tmp_path / "rgb16.jp2")
    assert (image.meta.mode, image.meta.bit_depth) == ("rgb", 16)
    np.testing.assert_array_equal(_as16(image.rgb), rgb)
    np.testing.assert_array_equal(_written16(tmp_path, image), rgb)
    image = read_image(tmp_path / "gray12.j2k")
    assert (image.meta.mode, image.meta.bit_depth) == ("gray", 16)
    np.testing.assert_allclose(image.rgb[..., 0], gray12 / np.float32(4095), atol=1e-7)
