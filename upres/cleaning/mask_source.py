"""Where each image's mask comes from: one mask file for every input, a folder of masks matched by
name, or the overlay detector (``--mask auto``)."""

from __future__ import annotations

import importlib.util
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from upres.cleaning.masks import find_mask, read_mask
from upres.imageio import DEFAULT_MAX_PIXELS, DecodedImage, display_path
from upres.runtime.catalog import builtin_path
from upres.runtime.inputs import Job

AUTO = "auto"
DEFAULT_GROW = 2  # user masks: covers the anti-aliased, JPEG-smeared rim a brush stroke misses
_DETECT_MODULE = "upres.cleaning.detect"
DETECTOR = "overlay-detect"  # the shipped detect model's built-in name


class MaskOptionError(ValueError):
    """A usage problem with --mask or --grow (exit code 2)."""


def detection_available() -> bool:
    return importlib.util.find_spec(_DETECT_MODULE) is not None and builtin_path(DETECTOR).is_file()


def auto_grow(stroke_width: float) -> int:
    """Grow for a detected mask: half a stroke (a detector's edge is soft, and date stamps glow)
    plus one pixel, within 1..16."""
    return int(min(16, max(1, math.ceil(stroke_width / 2) + 1)))


def job_relative(job: Job) -> Path:
    """The image's path inside its input folder, as its output keeps it under OUTDIR."""
    if job.outdir is not None:
        try:
            return job.output.relative_to(job.outdir.resolve())
        except ValueError:
            pass
    return Path(job.source.name)


@dataclass(frozen=True)
class MaskSource:
    kind: str  # "file", "folder" or "auto"
    path: Path | None = None

    @classmethod
    def parse(cls, value: str) -> MaskSource:
        if value == AUTO:
            if not detection_available():
                raise MaskOptionError("--mask auto: overlay detection is not available in this "
                                      "installation (no detector module or weights); give a mask "
                                      "file or a folder of masks")
            return cls(AUTO)
        path = Path(value)
        if path.is_dir():
            return cls("folder", path)
        if path.is_file():
            return cls("file", path)
        raise MaskOptionError(f"--mask {display_path(value)}: no such file or folder (give a mask "
                              "image, a folder of masks matched by name, or auto)")

    def record(self) -> dict[str, Any]:
        """What the settings record says about the masks (which file: per image, by its hash)."""
        out: dict[str, Any] = {"kind": self.kind}
        if self.kind == AUTO:
            from upres.core.hashing import file_sha256

            out["detector_sha256"] = file_sha256(builtin_path(DETECTOR))
        return out

    def locate(self, job: Job) -> Path | None:
        """The mask file for ``job`` (None for detection); raises MaskError if there is none."""
        if self.kind == "file":
            return self.path
        if self.kind == "folder":
            assert self.path is not None
            return find_mask(self.path, job.source, job_relative(job))
        return None

    def load(self, located: Path | None, image: DecodedImage,
             max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[np.ndarray, float | None]:
        """(the raw bool mask of ``image``, the detected stroke width or None)."""
        if located is not None:
            return read_mask(located, image.meta.height, image.meta.width, max_pixels), None
        # Imported here: the detector's module (and its network) loads only for --mask auto.
        from upres.cleaning.detect import detect_overlay_mask, estimate_stroke_width

        mask = detect_overlay_mask(image.rgb)
        return mask, float(estimate_stroke_width(mask)) if mask.any() else 0.0
