"""The batch's records: the settings a finished output must match (resume), and the one-line
failure message of an image."""

from __future__ import annotations

from typing import Any

from upres.batch.results import RunOptions
from upres.core.version import __version__
from upres.imageio import ImageError, display_path
from upres.runtime.chain_factory import ChainSetup
from upres.runtime.inputs import Job
from upres.runtime.planner import PlanError


def settings_record(setup: ChainSetup, opts: RunOptions) -> dict[str, Any]:
    """What must match for an existing output to count as finished (resume)."""
    chain = setup.chain
    return {
        "upres_version": __version__,
        "mode": setup.mode_name,
        "scale": setup.scale,
        "texture": chain.texture,
        "backend": setup.backend,
        "precision": setup.precision,
        "denoise": str(setup.denoise),
        "models": {k: m.sha256 for k, m in setup.recorded_models.items()},
        "tile": opts.tile,
        "halo": opts.halo,
        "blend": opts.blend,
        "format": opts.fmt,
        "compression": opts.compression.value,
    }


def failure_message(job: Job, exc: BaseException) -> str:
    """One line naming the input and the reason, whatever went wrong with this image."""
    source = display_path(job.source)
    if isinstance(exc, ImageError):
        # Read errors name the input already; write errors name the output, worth keeping.
        reason = exc.reason if exc.path == job.source else str(exc)
    elif isinstance(exc, OSError):
        reason = exc.strerror or str(exc)
        if exc.filename is not None:
            reason = f"{display_path(exc.filename)}: {reason}"
    elif isinstance(exc, PlanError):
        reason = str(exc)  # the memory target cannot hold this image: the message says what would
    elif isinstance(exc, MemoryError):
        reason = f"out of memory ({exc})" if str(exc) else "out of memory"
    else:
        # Unexpected: still one image's failure, not the batch's; the type helps a bug report.
        reason = f"internal error ({type(exc).__name__}: {exc})"
    return f"{source}: {display_path(' '.join(reason.split()))}"
