"""`--denoise auto|0..1`: how far toward the restoration model an image is upscaled.

0 is the clean models exactly; 1 the restoration models, trained to remove sensor noise, film
grain, JPEG blocks and mild blur; between, network interpolation of the two (runtime/interpolate.py).
``auto`` measures each input's noise and JPEG blockiness (kernels/noise_estimate.py) and picks the
strength from them: a clean photo gets 0 and is upscaled exactly as with the clean models.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from upres.kernels.noise_estimate import blockiness, noise_sigma
from upres.runtime.interpolate import snap

AUTO = "auto"
# auto: luma noise (levels) and blockiness at which the strength starts to rise, and the span over
# which it reaches 1. Searched on training photos (30 BSD200 at x4, each clean, with noise, JPEG,
# grain and blur + noise + JPEG at several levels) for the best mean PSNR, clean photos weighing as
# much as all damaged ones (benchmarks/denoise_calibrate.py; docs/RESTORATION.md has its table).
# Clean photos measure a median noise of 1.15 and blockiness of 0.034 there.
NOISE_FROM, NOISE_SPAN = 1.8, 7.0
BLOCK_FROM, BLOCK_SPAN = 0.1, 0.35
# hybrid's texture is faded out as the strength rises: grain must not be added on grain.
TEXTURE_OFF_AT = 0.3


@dataclass(frozen=True)
class DenoiseSetting:
    """What was asked: ``auto`` (per image) or one fixed strength."""

    auto: bool
    strength: float = 0.0

    @classmethod
    def parse(cls, value: str | float) -> DenoiseSetting:
        if isinstance(value, str) and value.strip().lower() == AUTO:
            return cls(True)
        try:
            number = float(value)
        except ValueError:
            raise ValueError(f"--denoise must be 'auto' or a number within 0..1, got {value!r}") from None
        if not 0.0 <= number <= 1.0:
            raise ValueError(f"--denoise must be 'auto' or a number within 0..1, got {value!r}")
        return cls(False, snap(number))

    def __str__(self) -> str:
        return AUTO if self.auto else f"{self.strength:.1f}"


OFF = DenoiseSetting(False, 0.0)


@dataclass(frozen=True)
class DenoiseChoice:
    """The strength used for one image, and (auto) what it was chosen from."""

    setting: str
    strength: float
    noise_sigma: float | None = None
    blockiness: float | None = None
    note: str = ""

    def describe(self) -> str:
        """One line for the console: the strength, and what auto measured."""
        if self.noise_sigma is None:
            return f"{self.setting}: strength {self.strength:.1f}" + (f" ({self.note})" if self.note else "")
        return (f"auto: strength {self.strength:.1f} (noise sigma {self.noise_sigma:.2f}, "
                f"blockiness {self.blockiness or 0.0:.3f})")

    def to_record(self) -> dict[str, Any]:
        record: dict[str, Any] = {"setting": self.setting, "strength": self.strength}
        if self.noise_sigma is not None:
            record["estimate"] = {"noise_sigma": round(self.noise_sigma, 3),
                                  "blockiness": round(self.blockiness or 0.0, 4)}
        if self.note:
            record["note"] = self.note
        return record


def auto_strength(sigma: float, block: float) -> float:
    """The strength ``auto`` picks for a measured luma noise and blockiness (on the 0.1 grid)."""
    from_noise = (sigma - NOISE_FROM) / NOISE_SPAN
    from_blocks = (block - BLOCK_FROM) / BLOCK_SPAN
    return snap(float(np.clip(max(from_noise, from_blocks), 0.0, 1.0)))


def choose(setting: DenoiseSetting, pixels: np.ndarray | None) -> DenoiseChoice:
    """The strength for an image whose pixels (any layout ``luma`` takes) are ``pixels``."""
    if not setting.auto:
        return DenoiseChoice(str(setting), setting.strength)
    if pixels is None:
        return DenoiseChoice(AUTO, 0.0, note="no pixels to measure: strength 0")
    sigma, block = noise_sigma(pixels), blockiness(pixels)
    return DenoiseChoice(AUTO, auto_strength(sigma, block), sigma, block)


def texture_at(texture: float, strength: float) -> float:
    """hybrid's texture at a denoise strength: full on clean input, none from TEXTURE_OFF_AT on."""
    return texture * max(0.0, 1.0 - strength / TEXTURE_OFF_AT)
