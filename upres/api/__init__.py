"""The Python API: `upres run`, `upres plan` and `upres clean` as objects that load their models
once (docs/API.md). Each name is imported when first used, so importing ``upres`` stays cheap."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# name -> the module that defines it
EXPORTS = {
    "Upscaler": "upres.api.upscaler",
    "Cleaner": "upres.api.cleaner",
    "Settings": "upres.api.settings",
    "Batch": "upres.api.batch",
    "PlanReport": "upres.api.plans",
    "DenoiseChoice": "upres.runtime.denoise",
    "ImageResult": "upres.batch.results",
    "BatchReport": "upres.batch.results",
    "Progress": "upres.batch.results",
    "ArrayError": "upres.api.errors",
    "BackendUnavailable": "upres.api.errors",
    "ClosedError": "upres.api.errors",
    "ImageError": "upres.api.errors",
    "InputError": "upres.api.errors",
    "ModelError": "upres.api.errors",
    "OutdirLocked": "upres.api.errors",
    "PlanError": "upres.api.errors",
    "ReportError": "upres.api.errors",
    "SettingsError": "upres.api.errors",
}

__all__ = sorted(EXPORTS)

if TYPE_CHECKING:  # the names as type checkers see them
    from upres.api.batch import Batch as Batch
    from upres.api.cleaner import Cleaner as Cleaner
    from upres.api.errors import ArrayError as ArrayError
    from upres.api.errors import BackendUnavailable as BackendUnavailable
    from upres.api.errors import ClosedError as ClosedError
    from upres.api.errors import ImageError as ImageError
    from upres.api.errors import InputError as InputError
    from upres.api.errors import ModelError as ModelError
    from upres.api.errors import OutdirLocked as OutdirLocked
    from upres.api.errors import PlanError as PlanError
    from upres.api.errors import ReportError as ReportError
    from upres.api.errors import SettingsError as SettingsError
    from upres.api.plans import PlanReport as PlanReport
    from upres.api.settings import Settings as Settings
    from upres.api.upscaler import Upscaler as Upscaler
    from upres.batch.results import BatchReport as BatchReport
    from upres.batch.results import ImageResult as ImageResult
    from upres.batch.results import Progress as Progress
    from upres.runtime.denoise import DenoiseChoice as DenoiseChoice


def __getattr__(name: str) -> Any:
    module = EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'upres.api' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # imported once
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *EXPORTS})
