"""Per-output JSON sidecars: what made this file, so a rerun can skip it or reproduce it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from upres.export.onnx_meta import file_sha256
from upres.runtime.atomic import atomic_write_text


def write_sidecar(path: Path, record: dict[str, Any]) -> None:
    atomic_write_text(path, json.dumps(record, indent=2, sort_keys=True) + "\n")


def read_sidecar(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def is_finished(output: Path, sidecar: Path, input_sha256: str, settings: dict[str, Any]) -> bool:
    """True when `output` exists, is the file its sidecar describes, from this input and settings."""
    if not output.is_file():
        return False
    record = read_sidecar(sidecar)
    if record is None:
        return False
    return (
        record.get("settings") == settings
        and record.get("input", {}).get("sha256") == input_sha256
        and record.get("output", {}).get("sha256") == file_sha256(output)
    )
