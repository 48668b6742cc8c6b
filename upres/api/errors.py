"""The exceptions of the Python API.

Four are the API's own; the rest are the runtime's, raised as they are (one class per cause,
whichever entry point meets it) and re-exported here so a caller imports them from one place.
"""

from __future__ import annotations

from upres.core.errors import BackendUnavailable, ImageError, ModelError
from upres.runtime.inputs import InputError
from upres.runtime.lock import OutdirLocked
from upres.runtime.planner import PlanError


class SettingsError(ValueError):
    """A setting that cannot be used (unknown mode, scale, precision, memory size, tile, ...)."""


class ArrayError(ValueError):
    """An array the API does not take: wrong rank, channel count or dtype, or float samples that
    are not finite or lie outside 0..1."""


class ClosedError(RuntimeError):
    """The Upscaler or Cleaner was closed: its models and sessions are gone."""


class ReportError(OSError):
    """The batch ran, but its JSON report could not be written (the message says where and why)."""


__all__ = [
    "ArrayError",
    "BackendUnavailable",
    "ClosedError",
    "ImageError",
    "InputError",
    "ModelError",
    "OutdirLocked",
    "PlanError",
    "ReportError",
    "SettingsError",
]
