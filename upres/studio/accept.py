"""Accept: the edited mask saved, then `upres clean`'s own batch run on the image with it.

Nothing here writes an output itself: the saved mask is handed to :class:`CleanRunner` as a
``--mask`` file would be, with the options `upres clean` would build from
:meth:`StudioSettings.cli_args`, so the output, its final mask and its sidecar are the command's
(tested byte for byte against the command).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from upres.cleaning.mask_source import MaskSource
from upres.cleaning.masks import saved_mask_path, write_mask
from upres.cleaning.runner import CleanRunner, MaskOptions
from upres.runtime.inputs import collect_jobs
from upres.runtime.lock import OutdirLock, OutdirLocked
from upres.runtime.sidecar import is_finished, read_sidecar
from upres.studio.edits import Edits
from upres.studio.engines import Engines
from upres.studio.session import ImageSession
from upres.studio.settings import StudioSettings
from upres.studio.workspace import Workspace, inside


class AcceptError(RuntimeError):
    """The image could not be written (reported to the page with its reason)."""


@dataclass(frozen=True)
class Accepted:
    status: str  # "done" or "skipped" (already written with this mask and these settings)
    output: Path
    mask: Path  # the final mask, NAME.mask.png beside the output
    command: list[str]  # the `upres clean` arguments that write the same files

    def record(self, workspace: Workspace) -> dict[str, Any]:
        return {"status": self.status, "output": self.output.relative_to(workspace.output).as_posix(),
                "mask": self.mask.relative_to(workspace.output).as_posix(),
                "command": ["upres", *self.command]}


def accept(workspace: Workspace, session: ImageSession, edits: Edits, settings: StudioSettings,
           engines: Engines) -> Accepted:
    rel = session.rel
    saved = workspace.saved_mask(rel)
    saved.parent.mkdir(parents=True, exist_ok=True)
    write_mask(saved, session.mask(edits))
    outdir = workspace.outdir_for(rel)
    jobs = collect_jobs([str(session.source)], outdir, settings.fmt)
    masks = MaskOptions(MaskSource.parse(str(saved)), settings.grow, save=True)
    runner = CleanRunner(engines.setup(settings), engines.cleaner(settings), masks,
                         engines.run_options(settings), engines.model_hashes(settings))
    errors: list[str] = []
    outdir.mkdir(parents=True, exist_ok=True)
    try:
        # The lock `upres clean` takes: a command-line run into the same folder waits its turn.
        with OutdirLock(outdir):
            runner.remove_stale_temps(jobs)
            result = runner.run_one(jobs[0], errors.append)
    except OutdirLocked as exc:
        raise AcceptError(str(exc)) from None
    if result.status == "failed":
        raise AcceptError(errors[0] if errors else result.error)
    output = Path(result.output)
    return Accepted(result.status, output, saved_mask_path(output),
                    settings.cli_args(session.source, outdir, saved))


def accepted_state(workspace: Workspace, state: dict[str, Any]) -> str:
    """"accepted" while the output written at the last accept is still there and is the file its
    sidecar describes, "edited" when edits or settings were saved since (or the output is gone),
    "new" before any of it."""
    done = state.get("accepted")
    if isinstance(done, dict) and isinstance(done.get("output"), str) and not state.get("changed"):
        output = workspace.output / done["output"]
        sidecar = output.with_name(output.name + ".json")
        record = read_sidecar(sidecar) if inside(workspace.output, output) else None
        if (record is not None and isinstance(record.get("input"), dict)
                and is_finished(output, sidecar, record["input"].get("sha256", ""),
                                record.get("settings", {}))):
            return "accepted"
    return "edited" if state.get("edits") or state.get("settings") else "new"
