"""The user cache: foreign models' probe results, measured memory models, TensorRT engines and
compiled kernels.

Everything in it can be recomputed, so it is optional and self-healing. An entry that cannot be
read (missing, truncated, of another format, a folder where a file should be) counts as missing;
one that cannot be written (read-only home, full disk, a file where the cache folder should be)
is not saved, with one warning per process, and the run goes on. Entries are written under a
temporary name and renamed, so a concurrent reader sees the old entry or the new one, never half.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from upres.core.atomic import atomic_write_bytes

_warned: set[str] = set()


def cache_dir() -> Path:
    """$UPRES_CACHE_DIR as given, else $XDG_CACHE_HOME/upres, else ~/.cache/upres."""
    own = os.environ.get("UPRES_CACHE_DIR")
    if own:
        return Path(own)
    xdg = os.environ.get("XDG_CACHE_HOME")
    # The XDG spec says a relative value is invalid and must be ignored.
    if xdg and os.path.isabs(xdg):
        return Path(xdg) / "upres"
    return Path.home() / ".cache" / "upres"


def read_json(path: Path) -> Any | None:
    """The decoded entry, or None when there is none that reads (the caller recomputes it)."""
    try:
        return json.loads(Path(path).read_bytes())
    except (OSError, ValueError, RecursionError):
        return None


def _inside_cache(path: Path) -> bool:
    """Whether ``path`` lies strictly below the cache root: only there may upres delete what is in
    its way (the root itself may be something of the user's, named by $UPRES_CACHE_DIR)."""
    try:
        root = cache_dir().resolve()
        return root in path.resolve().parents
    except (OSError, RuntimeError):
        return False


def _make_folder(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        if folder.is_dir() or not _inside_cache(folder):
            raise
        folder.unlink(missing_ok=True)  # a stray file where one of the cache's folders goes
        folder.mkdir(parents=True, exist_ok=True)


def write_atomic(path: Path, data: bytes | str) -> bool:
    """Store one entry (temp file + rename, as every writer); False (after one warning) when the
    cache cannot take it."""
    path = Path(path)
    payload = data.encode() if isinstance(data, str) else data
    try:
        _make_folder(path.parent)
        try:
            atomic_write_bytes(path, payload, pause=False)
        except IsADirectoryError:
            if not _inside_cache(path):
                raise
            shutil.rmtree(path, ignore_errors=True)  # a folder where an entry goes
            atomic_write_bytes(path, payload, pause=False)
    except OSError as exc:
        warn_unwritable(path.parent, exc)
        return False
    return True


def cached_model_file(folder: str, name: str, make: Callable[[], bytes]) -> Path:
    """The cache's file ``folder/name``, made by ``make`` on first use; where the cache cannot
    keep it, a private temporary file for this process."""
    path = cache_dir() / folder / name
    if path.is_file():
        return path
    data = make()
    if write_atomic(path, data):
        return path
    fallback = Path(tempfile.mkdtemp(prefix=f"upres-{folder}-")) / name
    fallback.write_bytes(data)
    return fallback


def warn_unwritable(folder: Path, exc: OSError) -> None:
    # Once per process: every probe, memory model and engine of the run would say the same.
    if _warned:
        return
    _warned.add(str(folder))
    print(f"warning: cache {folder}: {exc.strerror or exc}; running without it (nothing is saved)",
          file=sys.stderr)
