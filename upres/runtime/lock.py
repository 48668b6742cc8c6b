"""One `upres run` per output folder at a time: an advisory lock on ``OUTDIR/.upres.lock``.

``fcntl.flock`` is held on an open descriptor, so the kernel releases it when the process ends
however it ends (SIGKILL included): a lock file left behind by a crash never blocks a later run.
The holder writes its pid into the file so that the refusal can say who holds it. The file is
removed on a clean release; a waiter that locked the removed file notices that the name now
points elsewhere (or nowhere) and tries again, so two runs can never both believe they hold it.
flock is reliable on local file systems; on NFS it depends on the server.
"""

from __future__ import annotations

import contextlib
import fcntl
import math
import os
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

LOCK_NAME = ".upres.lock"
_POLL_SECONDS = 0.2


class OutdirLocked(Exception):
    """Another process holds the lock of this output folder."""

    def __init__(self, folder: Path, holder: int | None) -> None:
        self.folder, self.holder = folder, holder
        who = f"pid {holder}" if holder else "another process"
        super().__init__(f"{folder} is in use by another upres run ({who}); wait for it to finish, "
                         "or choose another --output folder")


def read_holder(path: Path) -> int | None:
    """The pid written into a lock file, or None if there is none (yet)."""
    try:
        text = path.read_text(encoding="ascii", errors="replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _same_file(fd: int, path: Path) -> bool:
    try:
        named = path.stat()
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (named.st_dev, named.st_ino) == (held.st_dev, held.st_ino)


def _try_lock(path: Path) -> int | None:
    """A locked descriptor on the file now named ``path``, or None while another process holds it."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        except BaseException:
            os.close(fd)
            raise
        if _same_file(fd, path):
            return fd
        os.close(fd)  # we locked a file its holder has just removed: take the new one


class OutdirLock:
    """Context manager holding ``folder/.upres.lock``; raises :class:`OutdirLocked` if another
    process keeps it longer than ``wait`` seconds (0: refuse at once, ``math.inf``: no limit).
    ``on_wait(holder_pid)`` is called once when waiting starts."""

    def __init__(self, folder: Path, wait: float = 0.0,
                 on_wait: Callable[[int | None], None] | None = None) -> None:
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self.wait = wait
        self.on_wait = on_wait
        self._fd: int | None = None

    def acquire(self) -> None:
        deadline = time.monotonic() + self.wait if math.isfinite(self.wait) else math.inf
        told = False
        while (fd := _try_lock(self.path)) is None:
            if time.monotonic() >= deadline:
                raise OutdirLocked(self.folder, read_holder(self.path))
            if not told and self.on_wait is not None:
                self.on_wait(read_holder(self.path))
                told = True
            time.sleep(_POLL_SECONDS)
        self._fd = fd
        # Only informative (the flock is the lock): a full disk must not stop the run here.
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)

    def release(self) -> None:
        if self._fd is None:
            return
        # Remove the name while still holding the lock; see the module docstring.
        with contextlib.suppress(OSError):
            if _same_file(self._fd, self.path):
                self.path.unlink()
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> OutdirLock:
        self.acquire()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()
