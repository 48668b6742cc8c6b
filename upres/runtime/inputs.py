"""Turn INPUT arguments (files, folders, globs) into (input, output) pairs that stay in OUTDIR."""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from pathlib import Path

from upres.imageio import display_path
from upres.runtime.atomic import is_temp_name

INPUT_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp", ".gif"}
FORMATS = ("same", "png", "tiff", "jpg")
_SAME = {".png": ".png", ".jpg": ".jpg", ".jpeg": ".jpg", ".tif": ".tif", ".tiff": ".tif"}
_EXPLICIT = {"png": ".png", "tiff": ".tif", "jpg": ".jpg"}


@dataclass(frozen=True)
class Job:
    source: Path
    output: Path  # inside OUTDIR
    outdir: Path | None = None  # OUTDIR itself: what to lock, and what outputs must stay inside

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


def _walk(folder: Path, skip: Path | None = None) -> list[Path]:
    """Image files under ``folder``, sorted; never descends into ``skip`` (OUTDIR, when it lies
    inside an input folder: a rerun must not take its own outputs as inputs)."""
    found = []
    # followlinks=False: a symlink loop cannot make the walk run forever.
    for root, dirs, files in os.walk(folder, followlinks=False):
        dirs[:] = sorted(d for d in dirs if skip is None or not _same_dir(Path(root) / d, skip))
        for name in sorted(files):
            p = Path(root) / name
            # Temporaries of an interrupted run carry an image suffix too; they are never inputs.
            if p.suffix.lower() in INPUT_SUFFIXES and not is_temp_name(name):
                found.append(p)
    return found


def _same_dir(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b
    except (OSError, RuntimeError):  # RuntimeError: a symlink loop
        return False


def _safe_relative(rel: Path) -> Path:
    parts = [p for p in rel.parts if p not in ("", ".", "..", "/") and not p.startswith("/")]
    if not parts:
        raise InputError(f"cannot derive an output name from {display_path(rel)}")
    return Path(*parts)


def _expand(inputs: list[str], root: Path) -> list[tuple[Path, Path]]:
    """(source, path relative to OUTDIR) for every INPUT argument, in order."""
    pairs: list[tuple[Path, Path]] = []
    for arg in inputs:
        path = Path(arg)
        if path.is_dir():
            pairs += [(p, p.relative_to(path)) for p in _walk(path, root)]
        elif path.exists() or path.is_symlink():
            pairs.append((path, Path(path.name)))
        else:
            matches = sorted(glob.glob(arg, recursive=True))
            if not matches:
                raise InputError(f"{display_path(arg)}: no such file, folder or matching glob")
            for m in matches:
                mp = Path(m)
                pairs += [(p, p.relative_to(mp)) for p in _walk(mp, root)] if mp.is_dir() else \
                    [(mp, Path(mp.name))]
    return pairs


def collect_jobs(inputs: list[str], outdir: Path, fmt: str = "same") -> list[Job]:
    """Expand INPUTs; folder inputs keep their sub-folder layout under OUTDIR.

    Every output lies inside OUTDIR: names lose ``..`` and absolute parts, and a target that
    resolves elsewhere (a symlink inside OUTDIR) or onto its own source is refused.
    """
    root = outdir.resolve()
    jobs: list[Job] = []
    seen: dict[Path, Path] = {}
    for source, rel in _expand(inputs, root):
        rel = _safe_relative(rel)
        target = (root / rel).with_suffix(output_suffix(source, fmt))
        resolved = target.resolve()
        if root not in resolved.parents:
            raise InputError(f"{display_path(source)}: output {display_path(target)} would escape "
                             f"{display_path(outdir)}")
        if resolved == _resolved(source):
            raise InputError(f"{display_path(source)}: the output would overwrite its own input; "
                             "choose another --output folder")
        if target in seen:
            if _resolved(seen[target]) == _resolved(source):
                continue
            raise InputError(f"{display_path(source)} and {display_path(seen[target])} would both "
                             f"write {display_path(target)}; run them into different output folders")
        seen[target] = source
        jobs.append(Job(source, target, outdir))
    return jobs


def _resolved(path: Path) -> Path:
    try:
        return path.resolve()
    except (OSError, RuntimeError):  # a symlink loop: compare it by name
        return path.absolute()
