"""A studio's folder: which images it serves, where it writes, and the progress it keeps.

Only the images found by `upres clean`'s own folder walk are served, looked up by their path
relative to FOLDER in that listing, so no name a request makes up can reach another file. Every
file written lies inside the output folder: outputs as `upres clean` lays them out, and the
studio's own state (masks, detections, progress) under ``OUTPUT/.studio/``.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from upres.core.atomic import atomic_write_text
from upres.runtime.inputs import InputError, collect_jobs
from upres.runtime.sidecar import read_sidecar

STATE_DIR = ".studio"
DEFAULT_OUTPUT = "cleaned"  # inside FOLDER: the folder walk skips it, so outputs are never inputs


class NotServed(LookupError):
    """A name that is not one of the folder's images (HTTP 404)."""


def inside(root: Path, path: Path) -> bool:
    """Whether ``path``, symlinks resolved, is ``root`` or lies under it."""
    root, path = root.resolve(), path.resolve()
    return path == root or root in path.parents


@dataclass(frozen=True)
class Listed:
    rel: str  # POSIX path relative to FOLDER: the image's id in the API
    source: Path


class Workspace:
    def __init__(self, folder: Path, output: Path | None = None) -> None:
        if not folder.is_dir():
            raise NotADirectoryError(f"{folder}: not a folder")
        self.folder = folder.resolve()
        self.output = (output if output is not None else folder / DEFAULT_OUTPUT).resolve()
        self.state_dir = self.output / STATE_DIR
        self._lock = threading.Lock()
        self._listed: dict[str, Path] = {}

    # -- what is served -------------------------------------------------------------------------
    def images(self) -> list[Listed]:
        try:
            jobs = collect_jobs([str(self.folder)], self.output, "png")
        except InputError:
            return []  # nothing but the output folder in FOLDER
        listed = []
        for job in jobs:
            # A symlink inside FOLDER pointing elsewhere is not FOLDER's to serve.
            if inside(self.folder, job.source):
                listed.append(Listed(job.source.relative_to(self.folder).as_posix(), job.source))
        self._listed = {item.rel: item.source for item in listed}
        return listed

    def source(self, rel: str) -> Path:
        """The listed image ``rel``. Tiles ask for it many times a second: the last listing is
        looked in first, walked again only for a name it lacks (a file added since)."""
        found = self._listed.get(rel)
        if found is None or not found.is_file() or not inside(self.folder, found):
            found = {item.rel: item.source for item in self.images()}.get(rel)
        if found is None:
            raise NotServed(f"no image {rel!r} in this folder")
        return found

    # -- where it writes ------------------------------------------------------------------------
    def _under(self, path: Path, rel: str) -> Path:
        self.source(rel)  # only names of listed images, which collect_jobs made safe
        # Resolved, so a symlink planted inside the output folder cannot lead a write elsewhere.
        if not inside(self.output, path):
            raise NotServed(f"{rel!r} would be written outside {self.output}")
        return path

    def outdir_for(self, rel: str) -> Path:
        """The -o folder of `upres clean` run on this image alone: the output keeps its sub-folder."""
        return self._under((self.output / rel).parent, rel)

    def saved_mask(self, rel: str) -> Path:
        """The edited mask Accept hands to the clean as ``--mask`` (before --grow)."""
        return self._under(self.state_dir / "masks" / (rel + ".mask.png"), rel)

    def detection(self, rel: str, kind: str) -> Path:
        return self._under(self.state_dir / "detect" / (rel + f".{kind}.png"), rel)

    # -- progress -------------------------------------------------------------------------------
    def _state_path(self, rel: str) -> Path:
        # One small file per image: saving one image's strokes never rewrites the others'.
        return self._under(self.state_dir / "images" / (rel + ".json"), rel)

    def image_state(self, rel: str) -> dict[str, Any]:
        """The image's saved edits, settings and accept record ({} when new or damaged)."""
        return read_sidecar(self._state_path(rel)) or {}

    def update_image(self, rel: str, **changes: Any) -> dict[str, Any]:
        """Merge ``changes`` into the image's saved state (atomic: a crash keeps the old file)."""
        path = self._state_path(rel)
        with self._lock:
            entry = {**(read_sidecar(path) or {}), **changes}
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(path, json.dumps(entry, sort_keys=True))
        return entry
