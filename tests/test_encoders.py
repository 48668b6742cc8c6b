"""The lossless encoders: every --compression setting round-trips exactly, opens in Pillow,
OpenCV and tifffile, keeps metadata, and gives the same bytes for any thread count."""

from __future__ import annotations

import io
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
import tifffile
from PIL import Image, ImageCms

from upres.imageio import Compression, Encoding, ImageMeta, quantize, read_image, write_samples
from upres.imageio import compression as deflate
from upres.imageio.samples import NonFiniteError, quantize_into, samples_into

RNG = np.random.default_rng(7)
LAYOUTS = [(1, "gray"), (2, "gray"), (3, "rgb"), (4, "rgb")]  # (channels, mode)


def _photo(height: int, width: int, channels: int, dtype: type) -> np.ndarray:
    top = np.iinfo(dtype).max
    yy, xx = np.mgrid[0:height, 0:width]
    base = (yy * 5 + xx * 2)[..., None] + np.arange(channels) * 50
    values = (base + RNG.integers(0, 40, (height, width, channels))) % 256 * (top // 255)
    return values.astype(dtype)


def _meta(channels: int, mode: str, depth: int, icc: bytes | None = None,
          dpi: tuple[float, float] | None = None, exif: bytes | None = None) -> ImageMeta:
    return ImageMeta(mode=mode, bit_depth=depth, has_alpha=channels in (2, 4),  # type: ignore[arg-type]
                     icc_profile=icc, dpi=dpi, exif=exif, source_format="PNG", width=0, height=0)


def _opencv_samples(path: Path, channels: int) -> np.ndarray:
    decoded = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if decoded.ndim == 2:
        return decoded[..., None]
    if channels == 2:  # OpenCV expands gray + alpha to BGRA
        return decoded[..., [0, 3]]
    return decoded[..., [2, 1, 0, 3][: decoded.shape[2]]]


@pytest.mark.parametrize("compression", list(Compression))
@pytest.mark.parametrize("depth", [8, 16])
@pytest.mark.parametrize(("channels", "mode"), LAYOUTS)
def test_png_round_trips_exactly_in_every_reader(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 compression: Compression, depth: int,
                                                 channels: int, mode: str) -> None:
    dtype = np.uint8 if depth == 8 else np.uint16
    # Several compressed strips, so the stream is pieced together from their flushes.
    monkeypatch.setattr(deflate, "STRIP_BYTES", 1 << 16)
    samples = _photo(1100, 333, channels, dtype)
    assert len(deflate.strip_bounds(1100, 333 * channels * samples.itemsize)) > 1
    path = tmp_path / "out.png"
    write_samples(path, samples, _meta(channels, mode, depth), 1, "png", Encoding(compression, 2))
    assert np.array_equal(_opencv_samples(path, channels), samples)
    if depth == 8 or channels == 1:  # Pillow has no 16-bit RGB(A) or LA mode
        with Image.open(path) as image:
            assert np.array_equal(np.asarray(image).reshape(samples.shape), samples)
    back = read_image(path)
    assert back.meta.bit_depth == depth and back.meta.mode == mode
    assert back.meta.has_alpha == (channels in (2, 4))


@pytest.mark.parametrize("compression", list(Compression))
@pytest.mark.parametrize("depth", [8, 16])
@pytest.mark.parametrize(("channels", "mode"), LAYOUTS)
def test_tiff_round_trips_exactly(tmp_path: Path, compression: Compression, depth: int,
                                  channels: int, mode: str) -> None:
    dtype = np.uint8 if depth == 8 else np.uint16
    samples = _photo(1000, 301, channels, dtype)
    path = tmp_path / "out.tif"
    write_samples(path, samples, _meta(channels, mode, depth), 1, "tiff", Encoding(compression, 2))
    stored = tifffile.imread(path)
    assert np.array_equal(stored.reshape(samples.shape), samples)
    with tifffile.TiffFile(path) as tif:
        assert len(tif.pages.first.dataoffsets) > 1  # strips: the unit of parallel compression
    if channels in (1, 3):  # OpenCV premultiplies a TIFF's unassociated alpha
        assert np.array_equal(_opencv_samples(path, channels), samples)
    if depth == 8:
        with Image.open(path) as image:
            assert np.array_equal(np.asarray(image).reshape(samples.shape), samples)


@pytest.mark.parametrize("fmt", ["png", "tiff"])
@pytest.mark.parametrize("compression", list(Compression))
def test_bytes_do_not_depend_on_thread_count(tmp_path: Path, fmt: str,
                                             compression: Compression) -> None:
    samples = _photo(1500, 400, 3, np.uint8)
    meta = _meta(3, "rgb", 8)
    outputs = []
    for threads in (1, 2, 3):
        path = tmp_path / f"{threads}.{fmt}"
        write_samples(path, samples, meta, 1, fmt, Encoding(compression, threads))
        outputs.append(path.read_bytes())
    assert outputs[0] == outputs[1] == outputs[2]


def test_compression_settings_trade_size_for_speed(tmp_path: Path) -> None:
    # An upscaled photo, as outputs are (noise-like patterns compress alike at every level).
    sample = cv2.imread(str(Path(__file__).parents[1] / "upres" / "samples" / "sample.png"))
    samples = cv2.resize(sample, None, fx=3, fy=3, interpolation=cv2.INTER_CUBIC)
    sizes = {}
    for compression in Compression:
        path = tmp_path / f"{compression.value}.png"
        write_samples(path, samples, _meta(3, "rgb", 8), 1, "png", Encoding(compression, 1))
        sizes[compression] = path.stat().st_size
    assert sizes[Compression.SMALL] < sizes[Compression.DEFAULT] < sizes[Compression.FAST]


def test_png_keeps_icc_dpi_and_exif(tmp_path: Path) -> None:
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    exif = Image.Exif()
    exif[0x010F] = "TestCam"
    meta = _meta(3, "rgb", 8, icc=icc, dpi=(300.0, 150.0), exif=exif.tobytes())
    samples = _photo(40, 30, 3, np.uint8)
    for compression in Compression:
        path = tmp_path / f"{compression.value}.png"
        write_samples(path, samples, meta, 2, "png", Encoding(compression))
        with Image.open(path) as image:
            assert image.info.get("icc_profile") == icc
            assert image.info["dpi"] == pytest.approx((600, 300), rel=1e-3)
            assert image.getexif()[0x010F] == "TestCam"


def test_adler32_combine_matches_zlib() -> None:
    data = RNG.integers(0, 256, 300_000, dtype=np.uint8).tobytes()
    for cut in (0, 1, 65521, 123_457, len(data)):
        first, second = data[:cut], data[cut:]
        combined = deflate.adler32_combine(zlib.adler32(first), zlib.adler32(second), len(second))
        assert combined == zlib.adler32(data)


def _filtered_rows(samples: np.ndarray, compression: Compression) -> np.ndarray:
    stream = b"".join(deflate.png_idat_stream(samples, compression, deflate.encoder_pool(2)))
    raw = zlib.decompress(stream)  # checks the header, every strip's flush and the Adler-32
    return np.frombuffer(raw, np.uint8).reshape(samples.shape[0], -1)


def test_idat_stream_is_one_valid_zlib_stream() -> None:
    samples = _photo(2000, 300, 3, np.uint8)
    up = _filtered_rows(samples, Compression.FAST)
    assert (up[:, 0] == 2).all()  # filter type Up on every row
    restored = np.cumsum(up[:, 1:], axis=0, dtype=np.uint8)  # undo Up: running sums mod 256
    assert np.array_equal(restored, samples.reshape(2000, -1))
    average = _filtered_rows(samples, Compression.DEFAULT)
    assert (average[:, 0] == 3).all()  # Average: undone by the decoders of the round-trip tests


def test_quantize_into_matches_the_reference_and_refuses_nan() -> None:
    values = RNG.random((300, 200, 3), dtype=np.float32) * 1.4 - 0.2
    values[0, :3] = [0.5 / 255, 1.5 / 255, 2.5 / 255]  # halves round to even
    for depth, dtype, peak in ((8, np.uint8, 255.0), (16, np.uint16, 65535.0)):
        expected = np.rint(np.clip(values, 0, 1) * np.float32(peak)).astype(dtype)
        assert np.array_equal(quantize(values, depth), expected)
    values[150, 10, 1] = np.nan
    with pytest.raises(NonFiniteError):
        quantize_into(values, np.empty(values.shape, np.uint8))


def test_samples_into_writes_gray_luma_and_alpha_into_a_view() -> None:
    pixels = RNG.random((20, 30, 4), dtype=np.float32)
    out = np.zeros((40, 30, 2), np.uint16)
    samples_into(pixels, out[10:30], "gray")
    luma = pixels[..., 0] * np.float32(0.299) + pixels[..., 1] * np.float32(0.587)
    luma += pixels[..., 2] * np.float32(0.114)
    assert np.array_equal(out[10:30, :, 0], quantize(luma, 16))
    assert np.array_equal(out[10:30, :, 1], quantize(pixels[..., 3], 16))
    assert not out[:10].any() and not out[30:].any()


def test_compression_names_parse() -> None:
    assert Compression.parse("FAST") is Compression.FAST
    with pytest.raises(ValueError, match="fast, default or small"):
        Compression.parse("best")


def test_png_decodes_in_pillow_from_bytes(tmp_path: Path) -> None:
    samples = _photo(64, 64, 4, np.uint8)
    path = tmp_path / "a.png"
    write_samples(path, samples, _meta(4, "rgb", 8), 1, "png")
    with Image.open(io.BytesIO(path.read_bytes())) as image:
        image.load()
        assert image.mode == "RGBA"
