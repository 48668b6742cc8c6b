"""Per-output JSON sidecars: what made this file, so a rerun can skip it or reproduce it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from upres.core.atomic import atomic_write_text
from upres.core.hashing import file_sha256


def write_sidecar(path: Path, record: dict[str, Any]) -> None:
    atomic_write_text(path, json.dumps(record, indent=2, sort_keys=True) + "\n")


_MAX_SIDECAR_BYTES = 1 << 20  # ours are ~2 KB; anything far larger is not one of ours


def read_sidecar(path: Path) -> dict[str, Any] | None:
    """The sidecar's record, or None if it is missing, not a small regular file, or not a JSON
    object (reading a FIFO put in its place would block; a huge file would be slow)."""
    try:
        if not path.is_file() or path.stat().st_size > _MAX_SIDECAR_BYTES:
            return None
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) else None


def _field(record: dict[str, Any], section: str, key: str) -> Any:
    value = record.get(section)
    return value.get(key) if isinstance(value, dict) else None


def is_finished(output: Path, sidecar: Path, input_sha256: str, settings: dict[str, Any]) -> bool:
    """True when `output` exists, is the file its sidecar describes, from this input and settings.

    A sidecar that is damaged or not ours (any JSON at all) just means "not finished": the image
    is redone, never a crash.
    """
    if not output.is_file():
        return False
    record = read_sidecar(sidecar)
    if record is None:
        return False
    if record.get("settings") != settings or _field(record, "input", "sha256") != input_sha256:
        return False
    try:
        return _field(record, "output", "sha256") == file_sha256(output)
    except OSError:
        return False
