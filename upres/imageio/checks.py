"""The checks a file passes before decoding: file kind, signature, pixel count."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path
from typing import BinaryIO

from upres.core.errors import ImageError

# Twice Pillow's default MAX_IMAGE_PIXELS, i.e. the size at which Pillow itself refuses.
DEFAULT_MAX_PIXELS = 178_956_970
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_TIFF_MAGICS = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
_HASH_BLOCK = 1 << 20


def _sci(value: float) -> str:
    mantissa, exponent = f"{value:.1e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def _check_pixels(path: Path, width: int, height: int, max_pixels: int) -> None:
    pixels = width * height
    if width <= 0 or height <= 0:
        raise ImageError(path, f"invalid image size {width}x{height}")
    if pixels > max_pixels:
        raise ImageError(
            path,
            f"image is {width}x{height} = {_sci(pixels)} pixels, above --max-pixels {max_pixels}",
        )


def _os_error(path: Path, exc: OSError) -> ImageError:
    if isinstance(exc, FileNotFoundError):
        return ImageError(path, "file not found")
    if isinstance(exc, PermissionError):
        return ImageError(path, "permission denied")
    return ImageError(path, exc.strerror or str(exc))


def _check_kind(path: Path, info: os.stat_result) -> None:
    if stat.S_ISDIR(info.st_mode):
        raise ImageError(path, "is a directory, not an image file")
    if not stat.S_ISREG(info.st_mode):
        # A FIFO would block the reader and a device such as /dev/zero never ends.
        raise ImageError(path, "not a regular file")
    if info.st_size == 0:
        raise ImageError(path, "empty file (0 bytes)")


def _check_file(path: Path) -> bytes:
    """Validate that ``path`` is a readable non-empty regular file; return its first bytes."""
    try:
        _check_kind(path, path.stat())
        with path.open("rb") as handle:
            return handle.read(32)
    except OSError as exc:
        raise _os_error(path, exc) from None


def _open_checked(path: Path) -> BinaryIO:
    """``path`` open for reading, once it is known to be a non-empty regular file.

    The type is checked before opening (opening a FIFO blocks) and again on the open descriptor,
    in case the name was replaced in between; O_NONBLOCK keeps even that open from blocking.
    """
    try:
        _check_kind(path, path.stat())
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise _os_error(path, exc) from None
    handle = os.fdopen(fd, "rb")
    try:
        _check_kind(path, os.fstat(handle.fileno()))
    except BaseException as exc:
        handle.close()
        if isinstance(exc, OSError):
            raise _os_error(path, exc) from None
        raise
    return handle


def input_sha256(path: Path) -> str:
    """SHA-256 of an input file, read only once it is known to be a non-empty regular file."""
    path = Path(path)
    digest = hashlib.sha256()
    with _open_checked(path) as handle:
        try:
            while block := handle.read(_HASH_BLOCK):
                digest.update(block)
        except OSError as exc:
            raise _os_error(path, exc) from None
    return digest.hexdigest()


def _read_checked(path: Path) -> bytes:
    """The whole file, read once (checked as `input_sha256` does): decoding these bytes and
    hashing them is what lets a sidecar vouch for exactly what was upscaled."""
    with _open_checked(path) as handle:
        try:
            return handle.read()
        except OSError as exc:
            raise _os_error(path, exc) from None


def changed_error(path: Path) -> ImageError:
    return ImageError(path, "changed while it was read (it is being written or replaced): "
                            "run again once it is complete")


def _file_state(info: os.stat_result) -> tuple[int, int]:
    """What an in-place rewrite changes: size and modification time."""
    return (info.st_size, info.st_mtime_ns)


def _is_tiff(head: bytes) -> bool:
    return bytes(head[:4]) in _TIFF_MAGICS


def _corrupt(path: Path, fmt: str, exc: BaseException) -> ImageError:
    detail = str(exc).strip()
    reason = f"truncated or corrupt {fmt} data"
    return ImageError(path, f"{reason} ({detail})" if detail else reason)
