"""Turn INPUT arguments (files, folders, globs) into (input, output) pairs that stay in OUTDIR."""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from pathlib import Path

INPUT_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp", ".gif"}
FORMATS = ("same", "png", "tiff", "jpg")
_SAME = {".png": ".png", ".jpg": ".jpg", ".jpeg": ".jpg", ".tif": ".tif", ".tiff": ".tif"}
_EXPLICIT = {"png": ".png", "tiff": ".tif", "jpg": ".jpg"}


@dataclass(frozen=True)
class Job:
    source: Path
    output: Path  # inside OUTDIR

    @property
    def sidecar(self) -> Path:
        return self.output.with_name(self.output.name + ".json")


class InputError(ValueError):
    """A usage problem with the INPUT arguments (exit code 2)."""


def output_suffix(source: Path, fmt: str) -> str:
    if fmt not in FORMATS:
        raise InputError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if fmt == "same":
        return _SAME.get(source.suffix.lower(), ".png")
    return _EXPLICIT[fmt]


def format_of(suffix: str) -> str:
    return {".png": "png", ".tif": "tiff", ".jpg": "jpg"}[suffix]


def _walk(folder: Path) -> list[Path]:
    found = []
    # followlinks=False: a symlink loop cannot make the walk run forever.
    for root, dirs, files in os.walk(folder, followlinks=False):
        dirs.sort()
        for name in sorted(files):
            p = Path(root) / name
            if p.suffix.lower() in INPUT_SUFFIXES:
                found.append(p)
    return found


def _safe_relative(rel: Path) -> Path:
    parts = [p for p in rel.parts if p not in ("", ".", "..", "/") and not p.startswith("/")]
    if not parts:
        raise InputError(f"cannot derive an output name from {rel}")
    return Path(*parts)


def collect_jobs(inputs: list[str], outdir: Path, fmt: str = "same") -> list[Job]:
    """Expand INPUTs; folder inputs keep their sub-folder layout under OUTDIR."""
    pairs: list[tuple[Path, Path]] = []
    for arg in inputs:
        path = Path(arg)
        if path.is_dir():
            pairs += [(p, p.relative_to(path)) for p in _walk(path)]
        elif path.exists() or path.is_symlink():
            pairs.append((path, Path(path.name)))
        else:
            matches = sorted(glob.glob(arg, recursive=True))
            if not matches:
                raise InputError(f"{arg}: no such file, folder or matching glob")
            for m in matches:
                mp = Path(m)
                pairs += [(p, p.relative_to(mp)) for p in _walk(mp)] if mp.is_dir() else \
                    [(mp, Path(mp.name))]
    root = outdir.resolve()
    jobs: list[Job] = []
    seen: dict[Path, Path] = {}
    for source, rel in pairs:
        rel = _safe_relative(rel)
        target = (root / rel).with_suffix(output_suffix(source, fmt))
        if root not in target.resolve().parents:
            raise InputError(f"{source}: output {target} would escape {outdir}")
        if target in seen:
            if seen[target].resolve() == source.resolve():
                continue
            raise InputError(f"{source} and {seen[target]} would both write {target}; "
                             "run them into different output folders")
        seen[target] = source
        jobs.append(Job(source, target))
    return jobs
