"""What the studio's controls choose, validated once, and the `upres clean` command it stands for."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from upres.cleaning.pipeline import CleanSettings
from upres.core.choices import Choice, CleanBlend, Mode
from upres.runtime.chain_factory import PRECISIONS, SCALES

# The learned fill needs a network file of the user's (none ships), which a page served to the
# browser should not be able to name: the studio offers the OpenCV fills.
FILLS = ("fsr", "telea", "ns")
# JPEG would re-encode every pixel, the opposite of a clean's promise; PNG and TIFF keep them.
FORMATS = ("png", "tiff")
# The page offers auto and a few fixed strengths (the command takes any on the 0.1 grid).
DENOISE = ("auto", "0", "0.5", "1")
MAX_GROW = 64
MAX_FEATHER = 64


class SettingsError(ValueError):
    """A control value the studio refuses (HTTP 400)."""


@dataclass(frozen=True)
class StudioSettings:
    fill: str = "fsr"
    texture: float = 0.5  # inside the mask, and the hybrid upscale's, as `upres clean`'s --texture
    grain: float = 0.0
    blend: CleanBlend = CleanBlend.ALPHA  # a request body gives the name: __post_init__ parses it
    feather: int = 2
    grow: int = 0  # the mask shown is what is filled; grow only on request
    upscale: bool = True
    scale: int = 4
    mode: Mode = Mode.HYBRID  # the same
    precision: str = "fp32"
    denoise: str = "auto"  # as `upres clean --then-upscale --denoise`
    fmt: str = "png"

    def __post_init__(self) -> None:
        kinds: tuple[tuple[str, type[Choice]], ...] = (("blend", CleanBlend), ("mode", Mode))
        for name, kind in kinds:
            try:
                object.__setattr__(self, name, kind.parse(getattr(self, name)))
            except ValueError:
                raise SettingsError(f"{name} must be one of {', '.join(kind)}, "
                                    f"got {getattr(self, name)!r}") from None
        for name, allowed in (("fill", FILLS), ("precision", PRECISIONS), ("fmt", FORMATS)):
            if getattr(self, name) not in allowed:
                raise SettingsError(f"{name} must be one of {', '.join(allowed)}, "
                                    f"got {getattr(self, name)!r}")
        if self.denoise not in DENOISE:
            raise SettingsError(f"denoise must be one of {', '.join(DENOISE)}, got {self.denoise!r}")
        if self.scale not in SCALES:
            raise SettingsError(f"scale must be one of {SCALES}, got {self.scale}")
        for name, top in (("grow", MAX_GROW), ("feather", MAX_FEATHER)):
            if not 0 <= getattr(self, name) <= top:
                raise SettingsError(f"{name} must be within 0..{top} pixels, got {getattr(self, name)}")
        for name in ("texture", "grain"):
            value = getattr(self, name)
            if not (math.isfinite(value) and 0.0 <= value <= 1.0):
                raise SettingsError(f"{name} must be within 0..1, got {value}")

    @classmethod
    def from_json(cls, data: Any) -> StudioSettings:
        """From a JSON object; unknown keys and values of the wrong type are refused, not guessed."""
        if not isinstance(data, dict):
            raise SettingsError("settings must be a JSON object")
        known = {f.name: f for f in fields(cls)}
        values: dict[str, Any] = {}
        for key, value in data.items():
            if key not in known:
                raise SettingsError(f"unknown setting {key!r}")
            default = getattr(cls(), key)
            if isinstance(default, bool):
                ok = isinstance(value, bool)
            elif isinstance(default, int):
                ok = isinstance(value, int) and not isinstance(value, bool)
            elif isinstance(default, float):
                ok = isinstance(value, int | float) and not isinstance(value, bool)
                value = float(value) if ok else value
            else:
                ok = isinstance(value, str)
            if not ok:
                raise SettingsError(f"setting {key!r} has the wrong type ({type(value).__name__})")
            values[key] = value
        return cls(**values)

    def record(self) -> dict[str, Any]:
        return asdict(self)

    def clean(self) -> CleanSettings:
        return CleanSettings(feather=self.feather, fill=self.fill, texture=self.texture,
                             grain=self.grain, blend=self.blend)

    def cli_args(self, source: Path, outdir: Path, mask: Path) -> list[str]:
        """The `upres clean` arguments that write what Accept writes (tested byte for byte)."""
        args = ["clean", str(source), "-o", str(outdir), "--mask", str(mask), "--grow", str(self.grow),
                "--save-mask", "--fill", self.fill, "--texture", repr(self.texture),
                "--grain", repr(self.grain), "--blend", self.blend, "--feather", str(self.feather),
                "--format", self.fmt]
        if self.upscale:
            args += ["--then-upscale", "--scale", str(self.scale), "--mode", self.mode,
                     "--precision", self.precision, "--denoise", self.denoise]
        return args
