"""Images of the file-to-file bench: a synthetic photo where no dataset is, fitting sources to the
benchmark frame, reading a PNG's size without decoding it, and comparing two folders of outputs."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from upres.bench.file_rows import AGREE_LEVELS, FileBenchError


def synth_photo(index: int, width: int = 481, height: int = 321) -> np.ndarray:
    """A deterministic photo-like BGR image (smooth shading, hard-edged objects, texture, grain),
    for machines without BSD100: flat noise would make PNG sizes and encode times unlike a photo's."""
    rng = np.random.default_rng(1000 + index)
    coarse = rng.uniform(30, 220, size=(4, 6, 3)).astype(np.float32)
    img = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    for _ in range(14):
        color = tuple(float(c) for c in rng.uniform(0, 255, 3))
        center = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        axes = (int(rng.integers(2, max(3, width // 4))), int(rng.integers(2, max(3, height // 4))))
        cv2.ellipse(img, center, axes, float(rng.uniform(0, 180)), 0, 360, color, -1, cv2.LINE_AA)
    texture = rng.normal(0.0, 14.0, size=(max(1, height // 3), max(1, width // 3), 3)).astype(np.float32)
    grain = rng.normal(0.0, 3.0, size=(height, width, 3)).astype(np.float32)
    img = np.asarray(img, np.float32) + cv2.resize(texture, (width, height),
                                                   interpolation=cv2.INTER_LINEAR) + grain
    img = cv2.GaussianBlur(img, (0, 0), 0.7)
    return np.clip(img, 0, 255).round().astype(np.uint8)


def fit_to(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    # Portrait scans turned landscape first, so no image is squashed to the 4:3 frame.
    if (img.shape[0] > img.shape[1]) != (size[1] > size[0]):
        img = cv2.rotate(img, cv2.ROTATE_90_CLOCKWISE)
    return cv2.resize(img, size, interpolation=cv2.INTER_AREA)


def png_size(path: Path) -> tuple[int, int] | None:
    """Width and height from the IHDR chunk: decoding a 48 MP PNG to check its size takes seconds."""
    try:
        with path.open("rb") as f:
            head = f.read(24)
    except OSError:
        return None
    if head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        return None
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


def compare_folders(ours: Path, theirs: Path, names: tuple[str, ...]) -> tuple[float, float, int]:
    """(max |diff| in levels, share of values off by more than AGREE_LEVELS, images compared)."""
    worst, off, values, compared = 0.0, 0, 0, 0
    for name in names:
        a = cv2.imread(str(ours / name), cv2.IMREAD_UNCHANGED)
        b = cv2.imread(str(theirs / name), cv2.IMREAD_UNCHANGED)
        if a is None or b is None:
            continue
        if a.shape != b.shape:
            raise FileBenchError(f"{name}: upres wrote {a.shape}, the naive loop {b.shape}")
        diff = np.abs(a.astype(np.int16) - b.astype(np.int16))
        worst = max(worst, float(diff.max()))
        off += int((diff > AGREE_LEVELS).sum())
        values += diff.size
        compared += 1
    return worst, (off / values if values else 0.0), compared
