"""The closed sets of names a user picks from: upscale mode, tile blend, feather shape, clean blend.

Each is a `StrEnum`, parsed once where a name enters (the CLI's options, `api.Settings`, the
studio's request bodies) and compared by member after that. A member is a `str` equal to its
name, so sidecars, reports, JSON and f-strings keep writing the plain name.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Self


class Choice(StrEnum):
    """A set of names with one parser whose error names the option and every allowed value."""

    @classmethod
    def parse(cls, value: object) -> Self:
        """``value`` as a member: a member itself or its name; anything else is a ValueError
        of one line, e.g. ``--mode must be one of deterministic, faithful, hybrid, got 'x'``."""
        if isinstance(value, cls):
            return value
        if isinstance(value, str):
            for member in cls:
                if member.value == value:
                    return member
        names = list(cls)
        allowed = _WORDING[cls].format(list=", ".join(names),
                                       alternatives=f"{', '.join(names[:-1])} or {names[-1]}")
        raise ValueError(f"{allowed}, got {value!r}")


class Mode(Choice):
    """What the upscale runs: interpolation alone, the network alone, or the network and a
    texture refine pass."""

    DETERMINISTIC = "deterministic"
    FAITHFUL = "faithful"
    HYBRID = "hybrid"


class Blend(Choice):
    """How tile outputs are put together: AUTO picks CROP (exact) when the halo covers the
    receptive field, FEATHER (bounded error) when it does not."""

    AUTO = "auto"
    CROP = "crop"
    FEATHER = "feather"


class FeatherShape(Choice):
    """The cross-fade ramp of feather blending."""

    LINEAR = "linear"
    COSINE = "cosine"


class CleanBlend(Choice):
    """How `upres clean` puts a filled patch back: a feathered alpha, or a Poisson correction of
    the patch first (a different thing from the tile `Blend`)."""

    ALPHA = "alpha"
    POISSON = "poisson"


# The one-line error of each set, by the option it is given with; the wording is the one these
# options have always had (scripts match it), so it differs from set to set.
_WORDING: dict[type[Choice], str] = {
    Mode: "--mode must be one of {list}",
    Blend: "--blend must be {alternatives}",
    FeatherShape: "the feather shape must be {alternatives}",
    CleanBlend: "--blend must be one of {list}",
}


# Output format names as files spell them (--format tif, jpeg): the names the writers take.
FORMAT_ALIASES = {"tif": "tiff", "jpeg": "jpg"}


def format_name(fmt: str) -> str:
    """``fmt`` (--format, any case, with or without its dot) under the name the writers take."""
    fmt = fmt.lower().lstrip(".")
    return FORMAT_ALIASES.get(fmt, fmt)
