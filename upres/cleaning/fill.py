"""Coarse fill: OpenCV inpainting of the masked pixels.

- ``fsr`` (the default): Frequency Selective Reconstruction (Genser et al., OpenCV's xphoto
  module), which models each 16 px block around the hole as a sparse sum of Fourier basis
  functions fitted to the known pixels. It continues edges and periodic texture (stripes, weave,
  foliage) across a stroke, where the diffusion methods smear them; measured 1.5 dB above Telea.
- ``telea`` (fast marching) and ``ns`` (Navier-Stokes): diffusion from the hole's rim. Smooth by
  nature, faster, and at full 16-bit precision.
- ``learned``: Telea corrected by a fill network (``upres.cleaning.learned_fill``).
"""

from __future__ import annotations

import cv2
import numpy as np

from upres.kernels.inpaint import INPAINT_RADIUS, inpaint_planes

FILL_METHODS = ("fsr", "telea", "ns", "learned")
DEFAULT_FILL = "fsr"
# FSR works on a grid of 16 px blocks from the image's origin, each fitted over itself and an
# 8 px border: region crops start on the grid and keep 2 blocks of context, so a region's fill is
# the one the whole image would get.
FSR_BLOCK = 16
FSR_REACH = 2 * FSR_BLOCK


class FillUnavailable(ValueError):
    """The fill method needs something this installation lacks."""


def check_method(method: str) -> None:
    if method not in FILL_METHODS:
        raise ValueError(f"--fill must be one of {', '.join(FILL_METHODS)}, got {method!r}")
    if method == "fsr" and not hasattr(cv2, "xphoto"):
        raise FillUnavailable("--fill fsr needs OpenCV's contrib modules (pip install "
                              "opencv-contrib-python-headless); or use --fill telea")


def reach(method: str, radius: int = INPAINT_RADIUS) -> int:
    """Pixels around the hole the fill reads."""
    return FSR_REACH if method == "fsr" else radius + 1


def alignment(method: str) -> int:
    """The grid a region crop must start on for its fill to equal the whole image's."""
    return FSR_BLOCK if method == "fsr" else 1


def inpaint_method(method: str) -> str:
    """The OpenCV inpainting a fill method starts from: the learned fill corrects Telea's."""
    return "telea" if method == "learned" else method


def fill(image: np.ndarray, mask: np.ndarray, method: str = "telea",
         radius: int = INPAINT_RADIUS) -> np.ndarray:
    """``image`` (H, W, 3) float32 [0, 1] with the ``mask`` (H, W) bool pixels inpainted; the
    other pixels are returned unchanged. ``learned`` gives Telea's fill, which the learned fill
    stage then corrects."""
    check_method(method)
    if method == "fsr":
        return fsr(image, mask)
    return np.clip(inpaint_planes(image, mask, inpaint_method(method), radius), 0.0, 1.0)


def fsr(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Frequency Selective Reconstruction (fast profile) of ``image`` (H, W, 3) float32 [0, 1].

    OpenCV's FSR takes luma first and chroma after (its thresholds differ per channel), so it runs
    in CIE Lab. It runs on 8-bit data: its 16-bit path returns garbage in OpenCV 5.0 (a smooth
    ramp comes back as noise), so a 16-bit image's holes are filled at 8-bit precision; the pixels
    outside the mask keep their exact values."""
    # OpenCV's FSR skips the last row and column of blocks when the size is not a multiple of the
    # block (those holes come back as garbage, e.g. Lab (0, 135, 0)): pad to whole blocks and mark
    # the padding as holes, so it is reconstructed from real pixels and never used as data.
    h, w = mask.shape
    pad_y, pad_x = -h % FSR_BLOCK, -w % FSR_BLOCK
    rgb8 = np.clip(np.rint(image * 255.0), 0, 255).astype(np.uint8)
    lab = cv2.cvtColor(rgb8, cv2.COLOR_RGB2Lab)
    lab[mask] = 0
    lab = cv2.copyMakeBorder(lab, 0, pad_y, 0, pad_x, cv2.BORDER_CONSTANT, value=(0, 0, 0))
    holes = np.pad(mask, ((0, pad_y), (0, pad_x)), constant_values=True)
    out = np.empty_like(lab)
    cv2.xphoto.inpaint(lab, (~holes).astype(np.uint8) * 255, out, cv2.xphoto.INPAINT_FSR_FAST)
    filled = cv2.cvtColor(out[:h, :w], cv2.COLOR_Lab2RGB).astype(np.float32) / np.float32(255.0)
    filled[~mask] = image[~mask]
    return filled
