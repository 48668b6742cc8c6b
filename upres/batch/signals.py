"""SIGINT/SIGTERM/SIGHUP during a batch: finish the current image, then stop with a summary."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from typing import Any

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class StopFlag:
    """SIGINT/SIGTERM/SIGHUP finish the current image, then stop with a summary; a second one
    stops at once (KeyboardInterrupt). With ``active`` False no handler is installed (a library
    caller keeps its own) and the flag stays down."""

    def __init__(self, active: bool = True) -> None:
        self.active = active
        self.stopped = False
        self._old: dict[int, Any] = {}
        self._terminal: list[int] = []

    def __enter__(self) -> StopFlag:
        if self.active and threading.current_thread() is threading.main_thread():
            # Known now: once the terminal has hung up, isatty() says False.
            self._terminal = [fd for fd in (1, 2) if _isatty(fd)]
            for sig in STOP_SIGNALS:
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: object) -> None:
        if signum == signal.SIGHUP:
            self._detach()
        if self.stopped:  # second signal: stop now
            raise KeyboardInterrupt
        self.stopped = True

    def _detach(self) -> None:
        """Point stdout/stderr that were the terminal at /dev/null: the terminal is gone, and a
        write to it (the progress bar, the summary) would fail with EIO instead of finishing the
        image and writing the report."""
        if not self._terminal:
            return
        with contextlib.suppress(OSError):
            null = os.open(os.devnull, os.O_WRONLY)
            try:
                for fd in self._terminal:
                    os.dup2(null, fd)
            finally:
                os.close(null)
        self._terminal = []

    def __exit__(self, *exc: object) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)


def _isatty(fd: int) -> bool:
    try:
        return os.isatty(fd)
    except OSError:
        return False
