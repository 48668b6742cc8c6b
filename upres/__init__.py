"""upres: reproducible, tiled super-resolution for archival photos.

``upres.Upscaler``, ``upres.Cleaner`` and the API's exceptions (docs/API.md) are imported on
first use: ``import upres`` itself loads nothing, so `upres run`'s start-up does not grow.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from upres.core.version import __version__ as __version__

if TYPE_CHECKING:  # the names as type checkers see them
    from upres.api import ArrayError as ArrayError
    from upres.api import BackendUnavailable as BackendUnavailable
    from upres.api import Batch as Batch
    from upres.api import BatchReport as BatchReport
    from upres.api import Cleaner as Cleaner
    from upres.api import ClosedError as ClosedError
    from upres.api import DenoiseChoice as DenoiseChoice
    from upres.api import ImageError as ImageError
    from upres.api import ImageResult as ImageResult
    from upres.api import InputError as InputError
    from upres.api import ModelError as ModelError
    from upres.api import OutdirLocked as OutdirLocked
    from upres.api import PlanError as PlanError
    from upres.api import PlanReport as PlanReport
    from upres.api import Progress as Progress
    from upres.api import ReportError as ReportError
    from upres.api import Settings as Settings
    from upres.api import SettingsError as SettingsError
    from upres.api import Upscaler as Upscaler


def __getattr__(name: str) -> Any:
    # The API's names are classes; anything else (a submodule being imported, a probe for
    # __wrapped__ ...) is answered without loading the API.
    if name[:1].isupper():
        api = importlib.import_module("upres.api")
        if name in api.EXPORTS:
            return getattr(api, name)
    raise AttributeError(f"module 'upres' has no attribute {name!r}")
