"""The error types callers tell apart. Each message names the place and, where there is one, the
fix; the CLI turns ModelError, BackendUnavailable and ImageError into usage errors or per-file
failures without matching message strings."""

from __future__ import annotations

from pathlib import Path

from upres.core.paths import display_path


class ModelError(ValueError):
    """A model file upres cannot run; the message names the file and the reason (a usage error)."""


class BackendUnavailable(RuntimeError):
    """The requested backend cannot run on this machine (missing library, provider or GPU)."""


class ImageError(Exception):
    """A file could not be read or written; ``str()`` is one line: ``"{path}: {reason}"``."""

    def __init__(self, path: Path | str, reason: str) -> None:
        self.path = Path(path)
        # One printable line even when a library's message quotes a hostile file name.
        self.reason = display_path(" ".join(str(reason).split()))
        super().__init__(str(self))

    def __str__(self) -> str:
        return f"{display_path(self.path)}: {self.reason}"

    def __reduce__(self) -> tuple[type[ImageError], tuple[Path, str]]:
        # Default exception pickling would call ImageError(message) and fail across processes.
        return (type(self), (self.path, self.reason))
