"""Degradation operations of real scans: blur kernels, resizes, noise, film grain, JPEG.

Each operation is a pure function of its image and an explicit `numpy.random.Generator`, so a
degradation is reproducible from a seed. Images are float32 HWC RGB in 0..255 between operations
(no rounding until an operation that quantises, such as JPEG), and uint8 at the ends.
numpy and OpenCV only: the evaluation builds its degraded sets with these without PyTorch.
"""

from __future__ import annotations

import math
from enum import Enum

import cv2
import numpy as np

from upres.kernels.edges import LUMA_WEIGHTS
from upres.kernels.resize import bicubic_down


class KernelKind(Enum):
    ISOTROPIC = "isotropic"  # Gaussian, one sigma
    ANISOTROPIC = "anisotropic"  # Gaussian, two sigmas and a rotation (motion-like, astigmatic lenses)
    GENERALISED = "generalised"  # exp(-(d/sigma)^beta): flatter (beta > 2) or peakier (< 2) than Gaussian
    PLATEAU = "plateau"  # 1 / (1 + (d/sigma)^beta): a flat top with long tails (halation)
    DEFOCUS = "defocus"  # a disk: an out-of-focus enlarger or camera


def blur_kernel(kind: KernelKind, sigma: float, rng: np.random.Generator, size: int = 0) -> np.ndarray:
    """A normalised 2-D blur kernel of odd `size` (0: large enough for `sigma`).

    `sigma` is the kernel's scale in pixels (the disk's radius for DEFOCUS); the anisotropic,
    generalised and plateau kernels draw their other parameters from `rng`.
    """
    if sigma <= 0:
        raise ValueError(f"blur sigma must be > 0, got {sigma}")
    if size <= 0:
        size = 2 * math.ceil(3 * sigma) + 1
    half = size // 2
    yy, xx = np.mgrid[-half : half + 1, -half : half + 1].astype(np.float64)
    if kind is KernelKind.DEFOCUS:
        # Antialiased disk: coverage of each pixel by the radius-sigma circle, approximated by
        # a one-pixel ramp at the rim so small radii stay smooth.
        kernel = np.clip(sigma + 0.5 - np.hypot(yy, xx), 0.0, 1.0)
    elif kind is KernelKind.ANISOTROPIC:
        ratio = rng.uniform(0.25, 1.0)
        theta = rng.uniform(0.0, math.pi)
        c, s = math.cos(theta), math.sin(theta)
        u, v = c * xx + s * yy, -s * xx + c * yy
        kernel = np.exp(-0.5 * ((u / sigma) ** 2 + (v / (sigma * ratio)) ** 2))
    else:
        d = np.hypot(yy, xx) / sigma
        if kind is KernelKind.ISOTROPIC:
            kernel = np.exp(-0.5 * d**2)
        elif kind is KernelKind.GENERALISED:
            kernel = np.exp(-0.5 * d ** rng.uniform(0.5, 4.0))
        else:
            kernel = 1.0 / (1.0 + d ** rng.uniform(1.0, 2.5))
    return (kernel / kernel.sum()).astype(np.float32)


def convolve(img: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """`img` filtered by `kernel` with reflected borders (float32 out)."""
    return cv2.filter2D(img.astype(np.float32), -1, kernel, borderType=cv2.BORDER_REFLECT_101)


class ResizeKind(Enum):
    PIL_BICUBIC = "pil-bicubic"  # the evaluation's antialiased bicubic (MATLAB imresize)
    AREA = "area"
    BILINEAR = "bilinear"
    BICUBIC = "bicubic"  # OpenCV's, not antialiased: aliasing as cheap scanners make it


_CV2_RESIZE = {ResizeKind.AREA: cv2.INTER_AREA, ResizeKind.BILINEAR: cv2.INTER_LINEAR,
               ResizeKind.BICUBIC: cv2.INTER_CUBIC}


def resize(img: np.ndarray, width: int, height: int, kind: ResizeKind) -> np.ndarray:
    """`img` (float32 0..255) resized to width x height with `kind` (float32 out)."""
    if kind is ResizeKind.PIL_BICUBIC:
        h, w = img.shape[:2]
        if w % width == 0 and h % height == 0 and w // width == h // height:
            return bicubic_down(to_u8(img), w // width).astype(np.float32)
        kind = ResizeKind.AREA if width < w else ResizeKind.BICUBIC
    return cv2.resize(img.astype(np.float32), (width, height), interpolation=_CV2_RESIZE[kind])


def gaussian_noise(img: np.ndarray, sigma: float, gray: bool, rng: np.random.Generator) -> np.ndarray:
    """Additive white Gaussian noise of `sigma` levels, the same in every channel when `gray`."""
    shape = (*img.shape[:2], 1) if gray else img.shape
    return img + rng.normal(0.0, sigma, shape).astype(np.float32)


def poisson_noise(img: np.ndarray, scale: float, gray: bool, rng: np.random.Generator) -> np.ndarray:
    """Shot noise: variance proportional to the signal, `scale` levels of sigma at full white."""
    signal = np.clip(img, 0, 255) / 255.0
    if gray:
        signal = signal @ np.array(LUMA_WEIGHTS, np.float32)
        signal = signal[..., None]
    std = scale * np.sqrt(signal)
    return img + (std * rng.standard_normal(signal.shape)).astype(np.float32)


def film_grain(img: np.ndarray, amount: float, grain_size: float, rng: np.random.Generator) -> np.ndarray:
    """Spatially correlated, luminance-dependent grain of about `amount` levels in the mid-tones.

    Silver grain clumps (white noise low-passed to `grain_size` pixels, rescaled to unit
    deviation) and is strongest in the mid-tones, weaker in deep shadows and highlights; it is
    mostly in luminance, with a little independent colour (dye clouds).
    """
    h, w = img.shape[:2]

    def clumped(channels: int) -> np.ndarray:
        noise: np.ndarray = rng.standard_normal((h, w, channels)).astype(np.float32)
        if grain_size > 0.3:
            noise = np.asarray(cv2.GaussianBlur(noise, (0, 0), grain_size)).reshape(h, w, channels)
        return noise / max(float(noise.std()), 1e-6)

    luma = (np.clip(img, 0, 255) / 255.0) @ np.array(LUMA_WEIGHTS, np.float32)
    strength = amount * (0.35 + 2.6 * luma * (1.0 - luma))[..., None]
    grain = clumped(1) + 0.3 * clumped(img.shape[2])
    return img + strength * grain


def jpeg(img: np.ndarray, quality: int) -> np.ndarray:
    """A JPEG round trip at `quality` with 4:2:0 chroma subsampling (float32 out, integer-valued)."""
    if not 1 <= quality <= 100:
        raise ValueError(f"JPEG quality must be 1..100, got {quality}")
    params = [cv2.IMWRITE_JPEG_QUALITY, int(quality),
              cv2.IMWRITE_JPEG_SAMPLING_FACTOR, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_420]
    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(to_u8(img)[..., ::-1]), params)
    if not ok:
        raise RuntimeError("OpenCV could not encode a JPEG")
    decoded = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    if decoded is None:
        raise RuntimeError("OpenCV could not decode the JPEG it made")
    return decoded[..., ::-1].astype(np.float32)


def to_u8(img: np.ndarray) -> np.ndarray:
    """Round and clip to uint8."""
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)
