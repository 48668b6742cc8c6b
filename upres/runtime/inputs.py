"""Turn INPUT arguments (files, folders, globs) into (input, output) pairs that stay in OUTDIR."""

from __future__ import annotations

import glob
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path

from upres.core.atomic import is_temp_name
from upres.imageio import display_path
from upres.runtime.lock import LOCK_NAME

# What a folder walk takes: every raster photo format upres.imageio decodes (tifffile, or Pillow
# with its AVIF, JPEG 2000 and WebP codecs, as the Pillow wheels ship them). Pillow opens more
# (PSD, EPS, ICO, FITS, HDF5, MPEG ...): such files are taken when named, never picked up from a
# folder, where they are rarely meant as photos.
INPUT_SUFFIXES = {
    ".png", ".apng", ".jpg", ".jpeg", ".jpe", ".jfif", ".tif", ".tiff", ".bmp", ".dib", ".webp",
    ".gif", ".avif", ".jp2", ".j2k", ".jpc", ".j2c", ".jpf", ".jpx", ".ppm", ".pgm", ".pbm",
    ".pnm", ".tga", ".pcx", ".sgi", ".qoi",
}
FORMATS = ("same", "png", "tiff", "jpg")
_SAME = {".png": ".png", ".jpg": ".jpg", ".jpeg": ".jpg", ".jpe": ".jpg", ".jfif": ".jpg",
         ".tif": ".tif", ".tiff": ".tif"}
_EXPLICIT = {"png": ".png", "tiff": ".tif", "jpg": ".jpg"}
STREAMED_SUFFIX = ".tif"  # outputs too large for memory are written in strips, as BigTIFF


@dataclass(frozen=True)
class Job:
    source: Path
    output: Path  # inside OUTDIR
    outdir: Path | None = None  # OUTDIR itself: what to lock, and what outputs must stay inside
    # Why this output may not be streamed under its .tif name (another job's output or an input
    # is there); "" when it may. Set by collect_jobs, which sees the whole batch.
    stream_clash: str = ""

    @property
    def sidecar(self) -> Path:
        return self.output.with_name(self.output.name + ".json")

    @property
    def streamed(self) -> Path:
        """Where the output goes when it is too large for memory and streamed as BigTIFF."""
        return self.output.with_suffix(STREAMED_SUFFIX)

    @property
    def own_outputs(self) -> tuple[Path, ...]:
        """The names this job's finished output may have (resume looks only there): its output,
        and its streamed name unless that belongs to another job (``stream_clash``)."""
        return (self.output,) if self.stream_clash else (self.output, self.streamed)


class InputError(ValueError):
    """A usage problem with the INPUT arguments (exit code 2)."""


def output_suffix(source: Path, fmt: str) -> str:
    if fmt not in FORMATS:
        raise InputError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if fmt == "same":
        return _SAME.get(source.suffix.lower(), ".png")
    return _EXPLICIT[fmt]


def format_of(suffix: str) -> str:
    # The long and upper-case names too: the Python API writes to names its caller chose.
    return {".png": "png", ".tif": "tiff", ".tiff": "tiff", ".jpg": "jpg",
            ".jpeg": "jpg"}[suffix.lower()]


def _within(path: Path, root: Path) -> bool:
    """Whether ``path`` is ``root`` (resolved) or lies inside it."""
    resolved = _resolved(path)
    return resolved == root or root in resolved.parents


def _earlier_output(path: Path) -> bool:
    """A file inside OUTDIR that upres put there: an output (its sidecar beside it), a sidecar
    (its output beside it) or the lock file."""
    if path.name == LOCK_NAME or path.with_name(path.name + ".json").is_file():
        return True
    return path.suffix == ".json" and path.with_name(path.stem).is_file()


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


def _expand(inputs: list[str], root: Path, skipped: list[Path]) -> list[tuple[Path, Path]]:
    """(source, path relative to OUTDIR) for every INPUT argument, in order. OUTDIR and what an
    earlier run wrote inside it are left out (into ``skipped``): ``upres run * -o upscaled``
    run again from the scans folder gets ``upscaled`` among its arguments."""
    pairs: list[tuple[Path, Path]] = []

    def add(path: Path, rel: Path) -> None:
        if path.is_dir():
            if _within(path, root):
                skipped.append(path)
            else:
                pairs.extend((p, p.relative_to(path)) for p in _walk(path, root))
        elif _within(path, root) and _earlier_output(path):
            skipped.append(path)
        else:
            pairs.append((path, rel))

    for arg in inputs:
        path = Path(arg)
        if path.exists() or path.is_symlink():
            add(path, Path(path.name))
            continue
        matches = sorted(glob.glob(arg, recursive=True))
        if not matches:
            raise InputError(f"{display_path(arg)}: no such file, folder or matching glob")
        for m in matches:
            add(Path(m), Path(Path(m).name))
    return pairs


def collect_jobs(inputs: list[str], outdir: Path, fmt: str = "same",
                 note: Callable[[str], None] | None = None) -> list[Job]:
    """Expand INPUTs; folder inputs keep their sub-folder layout under OUTDIR.

    Every output lies inside OUTDIR: names lose ``..`` and absolute parts, and a target that
    resolves elsewhere (a symlink inside OUTDIR), onto its own source or onto another input is
    refused. OUTDIR itself, folders inside it and earlier outputs in it are skipped, said once
    through ``note``.
    """
    if outdir.suffix.lower() in INPUT_SUFFIXES and not outdir.is_dir():
        # `-o out.png` would make a folder of that name: a file name there is a slip, said now.
        raise InputError(f"--output {display_path(outdir)}: names an image file, but --output is "
                         f"the folder the outputs go in (each named after its input); "
                         f"pass a folder such as {display_path(outdir.with_suffix(''))}")
    root = outdir.resolve()
    skipped: list[Path] = []
    pairs = _expand(inputs, root, skipped)
    if skipped:
        more = f" and {len(skipped) - 1} more" if len(skipped) > 1 else ""
        message = (f"skipped {display_path(skipped[0])}{more}: the --output folder "
                   f"{display_path(outdir)} and what upres wrote in it are not inputs")
        if not pairs:
            raise InputError(f"{message}; nothing else to do: choose another --output folder")
        if note is not None:
            note(message)
    sources = {_resolved(source): source for source, _ in pairs}
    jobs: list[Job] = []
    seen: dict[Path, Path] = {}
    for source, rel in pairs:
        rel = _safe_relative(rel)
        target = (root / rel).with_suffix(output_suffix(source, fmt))
        resolved = target.resolve()
        if root not in resolved.parents:
            raise InputError(f"{display_path(source)}: output {display_path(target)} would escape "
                             f"{display_path(outdir)}")
        if resolved == _resolved(source):
            raise InputError(f"{display_path(source)}: the output would overwrite its own input; "
                             "choose another --output folder")
        if resolved in sources:
            raise InputError(f"{display_path(source)}: the output {display_path(target)} would "
                             f"overwrite the input {display_path(sources[resolved])}; choose another "
                             "--output folder")
        if target in seen:
            if _resolved(seen[target]) == _resolved(source):
                continue
            raise InputError(f"{display_path(source)} and {display_path(seen[target])} would both "
                             f"write {display_path(target)}; run them into different output folders")
        seen[target] = source
        jobs.append(Job(source, target, outdir))
    return mark_stream_clashes(jobs)


def mark_stream_clashes(jobs: list[Job]) -> list[Job]:
    """The jobs, each with ``stream_clash`` saying why its output may not be streamed under its
    .tif name: that name is another job's output, an input of the batch, or the streamed name of
    an earlier job (the first in order keeps it). Deterministic, whatever the plans and whatever
    a resumed run finds on disk, so one image can never take or skip another's output."""
    outputs = {job.output: job for job in jobs}
    sources = {_resolved(job.source): job for job in jobs}
    claimed: dict[Path, Job] = {}
    marked = []
    for job in jobs:
        name, clash = job.streamed, ""
        if name != job.output:
            other = outputs.get(name) or sources.get(_resolved(name))
            if other is not None and other.output == name:
                clash = f"that is the output of {display_path(other.source)}"
            elif other is not None:
                clash = "that is an input of this batch"
            elif name in claimed:
                clash = f"{display_path(claimed[name].source)} is streamed there"
            else:
                claimed[name] = job
        marked.append(replace(job, stream_clash=clash) if clash != job.stream_clash else job)
    return marked


def written_paths(jobs: list[Job]) -> list[Path]:
    """Every name the batch may write in OUTDIR: outputs, streamed outputs and their sidecars."""
    return [p for job in jobs for p in (job.output, job.sidecar, job.streamed,
                                        job.streamed.with_name(job.streamed.name + ".json"))]


def report_conflict(report: Path, jobs: list[Job], also: Iterable[Path] = ()) -> str | None:
    """Why ``--report`` may not be written where asked (one of the inputs, or a name the batch
    writes in OUTDIR: an output, a sidecar, a streamed output, the lock, one of ``also``), or
    None."""
    if report.is_dir():
        return f"--report {display_path(report)} is a folder; give a file name"
    target = _resolved(report)
    for job in jobs:
        if _resolved(job.source) == target:
            return f"--report {display_path(report)} is an input of this batch"
    written = written_paths(jobs) + [job.outdir / LOCK_NAME for job in jobs[:1] if job.outdir is not None]
    for path in [*written, *also]:
        if _resolved(path) == target:
            return (f"--report {display_path(report)} is where this batch writes "
                    f"{display_path(path)}; give another file name")
    return None


def _resolved(path: Path) -> Path:
    try:
        return path.resolve()
    except (OSError, RuntimeError):  # a symlink loop: compare it by name
        return path.absolute()
