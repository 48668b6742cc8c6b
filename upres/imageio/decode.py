"""The public reading API: probe_image and read_image, dispatching to tifffile or Pillow."""

from __future__ import annotations

from pathlib import Path

from upres.imageio.checks import _PNG_MAGIC, DEFAULT_MAX_PIXELS, _check_file, _is_tiff, _os_error
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

    The pixel count is checked against ``max_pixels`` from the header before any decoding.
    EXIF orientation is applied to the pixels. Animated and multi-page files yield their first
    frame. Every failure is reported as :class:`ImageError`.
    """
    path = Path(path)
    head = _check_file(path)
    if _is_tiff(head):
        return _read_tiff(path, max_pixels)
    if head.startswith(_PNG_MAGIC):
        try:
            _check_png(path, max_pixels)
        except OSError as exc:
            raise _os_error(path, exc) from None
    return _read_pillow(path, max_pixels, head)
