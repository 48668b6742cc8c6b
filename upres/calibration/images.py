"""Calibration image sets: find the images, check them, hash them, split off a held-out part."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

IMAGE_SUFFIXES = (".png", ".bmp", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".ppm")


class CalibrationError(ValueError):
    """Bad calibration input (folder, images, model); the message names the path at fault."""


@dataclass(frozen=True)
class ImageSet:
    """Image files in a fixed order, with the name under which each one is hashed."""

    files: tuple[Path, ...]
    names: tuple[str, ...]  # "folder/file": stable across machines, unlike absolute paths

    @property
    def sha256(self) -> str:
        return set_sha256(self.files, self.names)

    def __len__(self) -> int:
        return len(self.files)

    def subset(self, indices: Sequence[int]) -> ImageSet:
        keep = sorted(indices)
        return ImageSet(tuple(self.files[i] for i in keep), tuple(self.names[i] for i in keep))


def as_folders(images: Path | str | Sequence[Path | str]) -> list[Path]:
    if isinstance(images, (str, Path)):
        return [Path(images)]
    return [Path(p) for p in images]


def find_images(images: Path | str | Sequence[Path | str]) -> ImageSet:
    """All image files of one or more folders, sorted by "folder/name".

    Raises CalibrationError for a missing folder, an empty one, or one without image files.
    Decoding is checked later, when a file is first read (`load_rgb`).
    """
    folders = as_folders(images)
    if not folders:
        raise CalibrationError("no calibration image folder given")
    found: list[tuple[str, Path]] = []
    for folder in folders:
        if not folder.exists():
            raise CalibrationError(f"calibration image folder not found: {folder}")
        if not folder.is_dir():
            raise CalibrationError(f"calibration images: {folder} is not a folder")
        entries = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
        if not entries:
            raise CalibrationError(f"calibration image folder {folder} is empty")
        pictures = [p for p in entries if p.suffix.lower() in IMAGE_SUFFIXES]
        if not pictures:
            shown = ", ".join(p.name for p in entries[:5]) + (", ..." if len(entries) > 5 else "")
            raise CalibrationError(
                f"no images in {folder} (looked for {', '.join(IMAGE_SUFFIXES)}; found {shown})")
        found += [(f"{folder.name}/{p.name}", p) for p in pictures]
    found.sort()
    return ImageSet(tuple(p for _, p in found), tuple(n for n, _ in found))


def set_sha256(files: Sequence[Path], names: Sequence[str]) -> str:
    """sha256 over (name, size, bytes) of each file in name order: any renamed, added or changed
    image changes it, and the same images hash the same on every machine."""
    h = hashlib.sha256()
    for name, path in sorted(zip(names, files, strict=True)):
        data = path.read_bytes()
        h.update(name.encode() + b"\0" + str(len(data)).encode() + b"\0")
        h.update(data)
    return h.hexdigest()


def image_size(path: Path) -> tuple[int, int]:
    """(height, width) from the header only."""
    try:
        with Image.open(path) as im:
            return im.height, im.width
    except (UnidentifiedImageError, OSError) as exc:
        raise CalibrationError(f"calibration image {path} is not a readable image ({exc})") from None


def load_rgb(path: Path) -> np.ndarray:
    """uint8 RGB (H, W, 3); grayscale and palette images are converted, alpha dropped."""
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except (UnidentifiedImageError, OSError) as exc:
        raise CalibrationError(f"calibration image {path} is not a readable image ({exc})") from None


def split_holdout(images: ImageSet, fraction: float, seed: int) -> tuple[ImageSet, ImageSet]:
    """(calibration, held-out): whole images are held out, so no held-out crop shares pixels with
    a calibration crop. Deterministic for a given seed and file list."""
    if len(images) < 2:
        raise CalibrationError(
            f"need at least 2 calibration images (one is held out to measure accuracy), got "
            f"{len(images)}: {', '.join(images.names) or 'none'}")
    held = min(len(images) - 1, max(1, round(len(images) * fraction)))
    order = np.random.default_rng(seed).permutation(len(images))
    return images.subset(order[held:].tolist()), images.subset(order[:held].tolist())
