"""Atomic file output: a file appears under its final name complete or not at all.

Writers get a temporary path in the destination folder (same filesystem, so the final
``os.replace`` is atomic). The temporary name is short and of bounded length,
``.upres-<pid><random>.tmp`` plus the final suffix when that is short: any final name the
filesystem accepts (up to 255 bytes) can be written, and a stale temporary can be told apart
from a user's file without trusting the final name. The suffix is kept because encoders such as
Pillow and OpenCV pick the container format from it when none is given.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from upres.core import pause_points

__all__ = [
    "atomic_output",
    "atomic_write_bytes",
    "atomic_write_text",
    "cleanup_stale_temps",
    "is_temp_name",
    "remove_temps",
]

# .upres-{pid:08x}{random:08x}.tmp[.suffix], e.g. ".upres-0000109a1f2e3d4c.tmp.png": 27 bytes,
# 36 at most. The writer's pid tells a crashed writer's file from a live one's.
_TEMP_RE = re.compile(r"^\.upres-(?P<pid>[0-9a-f]{8})[0-9a-f]{8}\.tmp(?:\.[A-Za-z0-9]{1,8})?$")
# The names earlier versions used (.{name}.{pid}.{random}.tmp{suffix}): never removed any more (a
# user's file can look like one), only left out of folder walks.
_LEGACY_TEMP_RE = re.compile(r"^\..+\.\d+\.[0-9a-f]{8}\.tmp(?:\.[^./]+)?$")
_SUFFIX_RE = re.compile(r"^\.[A-Za-z0-9]{1,8}$")


def _temp_path(path: Path) -> Path:
    suffix = path.suffix if _SUFFIX_RE.match(path.suffix) else ""
    while True:
        tmp = path.with_name(f".upres-{os.getpid() & 0xFFFFFFFF:08x}{os.urandom(4).hex()}.tmp{suffix}")
        if not tmp.exists() and not tmp.is_symlink():
            return tmp


def is_temp_name(name: str) -> bool:
    """True when ``name`` looks like a temporary file of :func:`atomic_output` (or of an earlier
    version); such files are never taken as inputs by a folder walk."""
    return _TEMP_RE.match(name) is not None or _LEGACY_TEMP_RE.match(name) is not None


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
def atomic_output(path: Path, pause: bool = True) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success fsync it and rename it onto ``path``.

    If the block raises (or the temporary file was never created) the temporary file is
    removed and ``path`` is left untouched. ``pause``: the write counts as a "before-rename"
    pause point (tests stop a run there); the user cache's entries do not, since whether one is
    written depends on what an earlier run left there.
    """
    path = Path(path)
    tmp = _temp_path(path)
    try:
        yield tmp
        if not tmp.is_file():
            raise FileNotFoundError(f"atomic_output: nothing was written to {tmp}")
        _fsync_file(tmp)
        if pause:
            pause_points.reached("before-rename")
        try:
            os.replace(tmp, path)
        except OSError as exc:
            # Named by the file the caller asked for (a folder in its place, say), not the temporary.
            raise type(exc)(exc.errno, exc.strerror, str(path)) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def atomic_write_bytes(path: Path, data: bytes, pause: bool = True) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_output(path, pause) as tmp:
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


class _Kept:
    """Resolved paths to keep, resolved only once a temporary-looking name turns up (rare): a
    batch passes all its inputs, and resolving each costs a system call per path part."""

    def __init__(self, paths: Iterable[Path]) -> None:
        self._paths = paths
        self._resolved: set[Path] | None = None

    def __contains__(self, path: Path) -> bool:
        if self._resolved is None:
            self._resolved = {_resolved(Path(p)) for p in self._paths}
        return _resolved(path) in self._resolved


def _ours(entry: Path, keep: _Kept) -> re.Match[str] | None:
    """The name match of a temporary we made, or None for anything else: another name, not a
    plain file (a symlink is never followed), or one of ``keep`` (the batch's inputs)."""
    match = _TEMP_RE.match(entry.name)
    if match is None or entry.is_symlink() or not entry.is_file() or entry in keep:
        return None
    return match


def _resolved(path: Path) -> Path:
    try:
        return path.resolve()
    except (OSError, RuntimeError):
        return path.absolute()


def _unlink_all(entries: Iterable[Path]) -> list[Path]:
    removed = []
    for entry in entries:
        try:
            entry.unlink()
        except FileNotFoundError:
            continue
        removed.append(entry)
    return sorted(removed)


def cleanup_stale_temps(folder: Path, keep: Iterable[Path] = ()) -> list[Path]:
    """Remove temporaries left in ``folder`` by crashed writers; return the removed paths.

    Only files named as :func:`atomic_output` names them, whose writer process is no longer
    running, and that are none of ``keep`` (a batch passes its inputs, which may be named
    anything) are removed, so concurrent writers in the same folder are not disturbed.
    """
    kept = _Kept(keep)
    return _unlink_all(entry for entry in Path(folder).glob(".upres-*.tmp*")
                       if (m := _ours(entry, kept)) is not None and not _pid_alive(int(m["pid"], 16)))


def remove_temps(folder: Path, keep: Iterable[Path] = ()) -> list[Path]:
    """Remove every temporary of :func:`atomic_output` in ``folder`` but ``keep``, live writer or
    not: for a caller that knows no writer of its own is left (a Ray driver whose workers ran on
    other machines, where a pid means nothing)."""
    kept = _Kept(keep)
    return _unlink_all(entry for entry in Path(folder).glob(".upres-*.tmp*")
                       if _ours(entry, kept) is not None)
