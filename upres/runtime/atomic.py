"""Atomic file output: a file appears under its final name complete or not at all.

Writers get a temporary path in the destination folder (same filesystem, so the final
``os.replace`` is atomic). The temporary name keeps the final suffix because encoders such
as Pillow and OpenCV pick the container format from it.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = [
    "atomic_output",
    "atomic_write_bytes",
    "atomic_write_text",
    "cleanup_stale_temps",
    "is_temp_name",
    "temp_target",
]

# .{name}.{pid}.{random}.tmp{suffix}, e.g. ".scan.png.4242.1f2e3d4c.tmp.png"
_TEMP_RE = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.(?P<token>[0-9a-f]{8})\.tmp(?:\.[^./]+)?$")


def _temp_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp{path.suffix}")


def is_temp_name(name: str) -> bool:
    """True when ``name`` looks like a temporary file made by :func:`atomic_output`."""
    return _TEMP_RE.match(name) is not None


def temp_target(name: str) -> str | None:
    """The final file name a temporary named ``name`` was written for, or None if it is not one."""
    match = _TEMP_RE.match(name)
    return match["name"] if match else None


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(folder: Path) -> None:
    # Makes the rename itself durable; directories cannot be opened this way on Windows.
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems (e.g. certain network mounts) refuse fsync on directories
    finally:
        os.close(fd)


@contextmanager
def atomic_output(path: Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success fsync it and rename it onto ``path``.

    If the block raises (or the temporary file was never created) the temporary file is
    removed and ``path`` is left untouched.
    """
    path = Path(path)
    tmp = _temp_path(path)
    try:
        yield tmp
        if not tmp.is_file():
            raise FileNotFoundError(f"atomic_output: nothing was written to {tmp}")
        _fsync_file(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_output(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: Path, text: str, encoding: str = "utf-8") -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_output(path) as tmp:
        tmp.write_text(text, encoding=encoding)


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    except OSError:
        return False
    return True


def cleanup_stale_temps(folder: Path) -> list[Path]:
    """Remove temporaries left in ``folder`` by crashed writers; return the removed paths.

    Only files matching the :func:`atomic_output` naming pattern whose writer process is no
    longer running are removed, so concurrent writers in the same folder are not disturbed.
    """
    removed: list[Path] = []
    for entry in Path(folder).glob(".*.tmp*"):
        match = _TEMP_RE.match(entry.name)
        if match is None or not entry.is_file() or _pid_alive(int(match["pid"])):
            continue
        try:
            entry.unlink()
        except FileNotFoundError:
            continue
        removed.append(entry)
    return sorted(removed)
