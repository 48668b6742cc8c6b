"""Masks for `upres clean`: read a user's mask, find it by name, save it (the morphology is in
upres.kernels.masks).

A mask marks the pixels to remove: white (any nonzero value) means remove, black means keep; a
transparent pixel keeps too, so a mask painted on a layer and exported with transparency works.
JPEG masks are cut at half range instead, because JPEG ringing makes "nonzero" spread around every
stroke.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import cv2
import numpy as np

from upres.core.atomic import atomic_write_bytes
from upres.imageio import DEFAULT_MAX_PIXELS, ImageError, display_path, probe_image, read_image
from upres.runtime.inputs import INPUT_SUFFIXES

# Saved masks are named "<stem>.mask.png"; "<stem>_mask.*" is the other common convention.
MASK_TAGS = (".mask", "_mask")
SAVED_MASK_SUFFIX = ".mask.png"
# The most of an image a final (grown) mask may cover: the fill needs pixels around the mask to
# take its colours from, and a mask over everything (an all-white file) leaves none.
MAX_MASKED = 0.98


class MaskError(ImageError):
    """A mask that cannot be used for its image; ``str()`` names the mask file."""


def read_mask(path: Path, height: int, width: int, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """The (height, width) bool mask stored in ``path``; its size must equal the image's."""
    meta = probe_image(path, max_pixels)  # the size from the header: a wrong mask is not decoded
    if (meta.height, meta.width) != (height, width):
        raise MaskError(path, f"mask is {meta.width}x{meta.height}, but the image is {width}x{height}; "
                              "a mask must have its image's size")
    decoded = read_image(path, max_pixels)
    value = decoded.rgb.max(axis=2)
    remove = value >= 0.5 if decoded.meta.source_format == "JPEG" else value > 0
    if decoded.alpha is not None:
        remove &= decoded.alpha > 0
    return remove


def saved_mask_path(output: Path) -> Path:
    """Where ``--save-mask`` writes the mask of ``output``: next to it, ``<stem>.mask.png``."""
    return output.with_name(output.stem + SAVED_MASK_SUFFIX)


def find_mask(folder: Path, source: Path, relative: Path) -> Path:
    """The mask for ``source`` in ``folder``, matched by name.

    ``relative`` is the image's path inside its input folder (just its name for a file argument);
    the mask is looked up beside it first (``folder/sub/scan.*``), then at the top of ``folder``.
    A tagged name (``scan.mask.png``, ``scan_mask.png``) wins over a plain one (``scan.png``), so
    the output folder of an earlier ``--save-mask`` run, which holds both the cleaned ``scan.png``
    and its ``scan.mask.png``, can be given as ``--mask``.
    """
    stem = relative.stem
    places = [folder / relative.parent]
    if relative.parent != Path("."):
        places.append(folder)
    for place in places:
        if not place.is_dir():
            continue
        images = sorted(p for p in place.iterdir() if p.suffix.lower() in INPUT_SUFFIXES and p.is_file())
        for names in ({stem + tag for tag in MASK_TAGS}, {stem}):
            found = [p for p in images if p.stem in names]
            if len(found) > 1:
                listed = ", ".join(display_path(p.name) for p in found)
                raise MaskError(place, f"several masks match {display_path(source.name)} ({listed}); "
                                       "keep one")
            if found:
                if _same_file(found[0], source):
                    raise MaskError(found[0], "is the image itself, not a mask; give --mask a folder "
                                              "of masks")
                return found[0]
    raise MaskError(folder, f"no mask for {display_path(source.name)} (looked for "
                            f"{display_path(stem)}.mask.*, {display_path(stem)}_mask.* and "
                            f"{display_path(stem)}.*)")


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.samefile(b)
    except OSError:
        return False


def mask_sha256(mask: np.ndarray) -> str:
    """Hash of the mask's size and bits (not of any file it came from)."""
    digest = hashlib.sha256(f"{mask.shape[0]}x{mask.shape[1]}:".encode())
    digest.update(np.packbits(mask, axis=None).tobytes())
    return digest.hexdigest()


def write_mask(path: Path, mask: np.ndarray) -> None:
    """Write ``mask`` as an 8-bit grayscale PNG (255 = remove), atomically."""
    ok, encoded = cv2.imencode(".png", mask.astype(np.uint8) * np.uint8(255),
                               [cv2.IMWRITE_PNG_COMPRESSION, 6])
    if not ok:
        raise ImageError(path, "OpenCV failed to encode the mask PNG")
    try:
        atomic_write_bytes(path, encoded.tobytes())
    except OSError as exc:
        raise ImageError(path, f"cannot write the mask: {exc.strerror or exc}") from None
