"""The public reading API: probe_image and read_image, dispatching to tifffile or Pillow."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from upres.imageio.checks import (
    _PNG_MAGIC,
    DEFAULT_MAX_PIXELS,
    _check_file,
    _is_tiff,
    _read_checked,
    changed_error,
)
from upres.imageio.metadata import DecodedImage, ImageMeta
from upres.imageio.pillow_decode import _open_pillow, _pillow_meta, _read_pillow
from upres.imageio.png_check import _check_png
from upres.imageio.tiff_decode import _probe_tiff, _read_tiff


def probe_image(path: Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> ImageMeta:
    """Read only the header: size (refused above ``max_pixels``), mode, depth and metadata."""
    path = Path(path)
    head = _check_file(path)
    if _is_tiff(head):
        return _probe_tiff(path, max_pixels)
    with _open_pillow(path) as image:
        return _pillow_meta(path, image, max_pixels, head)[0]


def read_image(path: Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> DecodedImage:
    """Decode ``path`` to float32 RGB in [0, 1] (gray replicated), optional alpha, and metadata.

    The file is read once; its bytes are hashed (``DecodedImage.sha256``) and decoded, so the
    hash is of exactly what was decoded, even if the file is rewritten meanwhile. The pixel count
    is checked against ``max_pixels`` from the header before any decoding. EXIF orientation is
    applied to the pixels. Animated and multi-page files yield their first frame (a TIFF whose
    first page is a reduced-resolution thumbnail, its largest full-resolution page). Every
    failure is reported as :class:`ImageError`.
    """
    path = Path(path)
    data = _read_checked(path)
    if _is_tiff(data):
        image = _read_tiff(path, data, max_pixels)
    else:
        png = _check_png(path, data, max_pixels) if data.startswith(_PNG_MAGIC) else None
        image = _read_pillow(path, max_pixels, data, png)
    image.sha256 = hashlib.sha256(data).hexdigest()
    return image


def decoded_sha256(path: Path, image: Any, first_sha256: str) -> str:
    """The SHA-256 of the bytes ``image`` (a DecodedImage or TiffRows) was decoded from, checked
    against ``first_sha256``, the hash taken before decoding (the one a resume check compared):
    a file rewritten in between raises ImageError "changed while it was read" (a TiffRows is
    closed then). An image that carries no hash of its own is taken as hashed by the caller."""
    try:
        sha = getattr(image, "sha256", "") or first_sha256
    except BaseException:
        if hasattr(image, "close"):
            image.close()
        raise
    if sha != first_sha256:
        if hasattr(image, "close"):
            image.close()
        raise changed_error(path)
    return sha
