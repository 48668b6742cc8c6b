"""OpenCV contenders: dnn_superres with the published FSRCNN/ESPCN models, and plain bicubic.

dnn_superres is in opencv-contrib only (upres installs it); without it the contender is skipped
with the reason, never crashed. dnn_superres works on BGR, upres on RGB: the flips are timed,
as a user feeding RGB would pay them too (they are a tiny part of the run).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np

from upres.bench.contender import SCALE, BaseContender

CONTRIB_HINT = "pip install 'upres[bench]' (opencv-contrib-python-headless=={})"


def dnn_superres_missing() -> str | None:
    """Why cv2.dnn_superres cannot be used here, or None."""
    if not hasattr(cv2, "dnn_superres"):
        return ("cv2.dnn_superres missing (opencv-contrib not installed): "
                + CONTRIB_HINT.format(_pip_version()))
    if _tensorflow_reader() is None:
        return (f"OpenCV {cv2.__version__} reads no TensorFlow graphs, and dnn_superres's "
                "FSRCNN/ESPCN models are .pb files (OpenCV 4.x reads them)")
    return None


def _tensorflow_reader() -> Any:
    # OpenCV 5 dropped its TensorFlow importer (and the stubs never had it).
    return getattr(cv2.dnn, "readNetFromTensorflow", None)


def _pip_version() -> str:
    try:
        from importlib.metadata import version

        return version("opencv-python-headless")
    except Exception:  # any metadata trouble: the hint just gets less specific
        return cv2.__version__


def tf_conv_flops_per_pixel(pb: Path, scale: int) -> float | None:
    """FLOPs per output pixel of a TF SR graph whose convolutions all run at LR resolution.

    FSRCNN_x4 / ESPCN_x4 as shipped for dnn_superres end in a conv to s*s channels + DepthToSpace,
    so every Convolution runs on LR pixels: 2 * (sum of conv weight sizes) / s^2 per output pixel.
    Element-wise layers (bias, PReLU) are left out, as they are in upres's own count.
    None if the graph holds a layer this count cannot place (e.g. a transposed convolution), or
    where OpenCV reads no TensorFlow graphs.
    """
    reader = _tensorflow_reader()
    if reader is None:
        return None
    net = reader(str(pb))
    macs = 0
    for name in net.getLayerNames():
        try:
            layer = net.getLayer(net.getLayerId(name))
        except cv2.error:
            continue  # layers OpenCV re-parses with its old engine are not listed with weights
        if layer.type == "Deconvolution":
            return None
        if layer.type == "Convolution" and layer.blobs:
            macs += int(np.prod(layer.blobs[0].shape))
    return 2.0 * macs / scale**2 if macs else None


class DnnSuperresContender(BaseContender):
    group = "peer"

    def __init__(self, threads: int, peers: Path | None, model: str = "FSRCNN") -> None:
        self.threads = threads
        self.algo = model.lower()  # the name setModel expects: "fsrcnn", "espcn"
        self.file = f"{model}_x{SCALE}.pb"
        self.path = peers / self.file if peers else None
        self.name = f"dnn_superres {model}_x{SCALE}"
        self.sr: Any = None
        self._flops: float | None = None

    def available(self) -> str | None:
        if self.path is None:
            return "no peers folder (--peers DIR with FSRCNN_x4.pb / ESPCN_x4.pb)"
        if not self.path.is_file():
            return f"{self.file} not found in {self.path.parent}"
        return dnn_superres_missing()

    def load(self) -> None:
        assert self.path is not None
        cv2.setNumThreads(self.threads)
        # opencv-contrib's dnn_superres is missing from OpenCV's type stubs.
        self.sr = cv2.dnn_superres.DnnSuperResImpl_create()  # type: ignore[attr-defined]
        self.sr.readModel(str(self.path))
        self.sr.setModel(self.algo, SCALE)
        self._flops = tf_conv_flops_per_pixel(self.path, SCALE)

    def upscale(self, img: np.ndarray) -> np.ndarray:
        bgr = np.ascontiguousarray(img[..., ::-1])
        return np.ascontiguousarray(self.sr.upsample(bgr)[..., ::-1])

    def flops_per_pixel(self) -> float | None:
        return self._flops

    def describe(self) -> str:
        return (f"OpenCV {cv2.__version__} dnn (CPU), {self.threads} threads, {self.file}; "
                "network on Y only, chroma bicubic")


class BicubicContender(BaseContender):
    """Not a network: the floor every SR method must clear, and the far right of the speed axis."""

    group = "reference"

    def __init__(self, threads: int) -> None:
        self.threads = threads
        self.name = "bicubic (cv2)"

    def load(self) -> None:
        cv2.setNumThreads(self.threads)

    def upscale(self, img: np.ndarray) -> np.ndarray:
        h, w = img.shape[:2]
        return cv2.resize(img, (w * SCALE, h * SCALE), interpolation=cv2.INTER_CUBIC)

    def describe(self) -> str:
        return f"cv2.resize INTER_CUBIC, {self.threads} threads"
