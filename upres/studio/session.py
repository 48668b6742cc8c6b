"""One open image: its decoded pixels and hash, its detected kinds (cached on disk), its edited
mask, and the display tiles the page draws at the zoom in view."""

from __future__ import annotations

import json
import math
import threading
from collections import OrderedDict

import cv2
import numpy as np

from upres.cleaning.auto_mask import detect_auto
from upres.cleaning.detect import estimate_stroke_width
from upres.cleaning.mask_source import auto_grow
from upres.cleaning.masks import read_mask, write_mask
from upres.cleaning.text_detect import available as detection_available
from upres.core.atomic import atomic_write_text
from upres.imageio import DecodedImage, decoded_sha256, input_sha256, quantize, read_image
from upres.kernels.masks import final_mask
from upres.runtime.sidecar import read_sidecar
from upres.studio.edits import Edits, edited_labels, overlay_rgba
from upres.studio.workspace import Workspace

TILE = 256  # display tile edge (screen pixels at that level)
_LEVELS_KEPT = 4


def levels_for(height: int, width: int) -> int:
    """Pyramid levels (level n: 1 / 2**n of full size) until the whole image fits one tile."""
    return max(1, math.ceil(math.log2(max(height, width, TILE) / TILE)) + 1)


# `--mask auto`'s detection kinds under the names the studio colours them by.
KIND_NAMES = {"text": "text", "scratch": "scratch", "speck": "dust"}


def detect_kinds(image: DecodedImage) -> dict[str, tuple[np.ndarray, float]]:
    """`--mask auto`'s raw mask per kind (its default detectors, faces kept, the area cap) with
    each kind's stroke width; {} without the text detector, or when nothing was detected."""
    if not detection_available():
        return {}
    masks = detect_auto(image.rgb).by_kind()
    return {KIND_NAMES.get(k, k): (m, float(estimate_stroke_width(m))) for k, m in masks.items()}


class ImageSession:
    def __init__(self, workspace: Workspace, rel: str) -> None:
        self.rel = rel
        self.source = workspace.source(rel)
        self.sha = input_sha256(self.source)
        self.image = read_image(self.source)
        self.sha = decoded_sha256(self.source, self.image, self.sha)
        self.meta = self.image.meta
        self.kinds = self._kinds(workspace)
        self._levels: OrderedDict[int, np.ndarray] = OrderedDict()
        self._labels: tuple[str, np.ndarray] | None = None
        self._lock = threading.Lock()

    @property
    def shape(self) -> tuple[int, int]:
        return self.meta.height, self.meta.width

    def _kinds(self, workspace: Workspace) -> dict[str, np.ndarray]:
        """Each detected kind's mask grown and closed as ``--mask auto`` does it; read back from
        the output folder when this input was detected before (same file hash)."""
        record_path = workspace.detection(self.rel, "kinds").with_suffix(".json")
        record = read_sidecar(record_path)
        if record and record.get("input_sha256") == self.sha and isinstance(record.get("kinds"), list):
            try:
                return {k: read_mask(workspace.detection(self.rel, k), *self.shape) for k in record["kinds"]}
            except (OSError, ValueError):
                pass  # damaged or removed: detect again
        kinds = {k: final_mask(raw, auto_grow(width)) if raw.any() else raw
                 for k, (raw, width) in detect_kinds(self.image).items()}
        for kind, mask in kinds.items():
            path = workspace.detection(self.rel, kind)
            path.parent.mkdir(parents=True, exist_ok=True)
            write_mask(path, mask)
        record_path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(record_path, json.dumps({"input_sha256": self.sha, "kinds": list(kinds)}))
        return kinds

    def labels(self, edits: Edits) -> np.ndarray:
        """The edited label image, kept for the last edits (tiles of one revision share it)."""
        key = json.dumps(edits.record(), sort_keys=True)
        with self._lock:
            if self._labels is None or self._labels[0] != key:
                self._labels = key, edited_labels(self.kinds, self.shape, edits)
            return self._labels[1]

    def mask(self, edits: Edits) -> np.ndarray:
        return self.labels(edits) > 0

    # -- display tiles --------------------------------------------------------------------------
    def _level(self, level: int) -> np.ndarray:
        """The image at 1 / 2**level as 8-bit RGB: what a screen shows, never an upscale."""
        with self._lock:
            if level not in self._levels:
                if level == 0:
                    pixels = quantize(self.image.rgb, 8)
                else:
                    h, w = self.shape
                    size = (max(1, math.ceil(w / 2**level)), max(1, math.ceil(h / 2**level)))
                    pixels = cv2.resize(quantize(self.image.rgb, 8), size, interpolation=cv2.INTER_AREA)
                self._levels[level] = pixels
                while len(self._levels) > _LEVELS_KEPT:
                    self._levels.popitem(last=False)
            self._levels.move_to_end(level)
            return self._levels[level]

    def tile_box(self, level: int, tx: int, ty: int) -> tuple[int, int, int, int]:
        """(y0, y1, x0, x1) of display tile (tx, ty) at ``level``, in that level's pixels."""
        h, w = (math.ceil(n / 2**level) for n in self.shape)
        y0, x0 = ty * TILE, tx * TILE
        if not (0 <= level < levels_for(*self.shape) and 0 <= y0 < h and 0 <= x0 < w):
            raise IndexError(f"no tile {tx},{ty} at level {level}")
        return y0, min(h, y0 + TILE), x0, min(w, x0 + TILE)

    def image_tile(self, level: int, tx: int, ty: int) -> np.ndarray:
        y0, y1, x0, x1 = self.tile_box(level, tx, ty)
        return self._level(level)[y0:y1, x0:x1]

    def overlay_tile(self, edits: Edits, level: int, tx: int, ty: int) -> np.ndarray:
        """RGBA overlay of the edited mask, by kind; a level > 0 keeps a pixel of each 2**level
        block that is in the mask, so thin scratches stay visible when zoomed out."""
        y0, y1, x0, x1 = self.tile_box(level, tx, ty)
        f = 2**level
        labels = self.labels(edits)[y0 * f : y1 * f, x0 * f : x1 * f]
        if f > 1:
            h, w = y1 - y0, x1 - x0
            padded = np.zeros((h * f, w * f), np.uint8)
            padded[: labels.shape[0], : labels.shape[1]] = labels
            labels = padded.reshape(h, f, w, f).max(axis=(1, 3))
        return overlay_rgba(labels, list(self.kinds))


def encode_png(pixels: np.ndarray) -> bytes:
    """PNG bytes of RGB(A) or gray samples (8 or 16 bit), fast deflate: tiles are drawn at once."""
    data = pixels
    if pixels.ndim == 3 and pixels.shape[2] == 3:
        data = cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR)
    elif pixels.ndim == 3 and pixels.shape[2] == 4:
        data = cv2.cvtColor(pixels, cv2.COLOR_RGBA2BGRA)
    ok, encoded = cv2.imencode(".png", np.ascontiguousarray(data), [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not ok:
        raise ValueError("OpenCV failed to encode a PNG")
    return encoded.tobytes()

