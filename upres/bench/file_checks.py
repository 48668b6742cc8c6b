"""The file-to-file bench's checks of what the contenders wrote: every PNG there, upres's
outputs within a level of the naive loop's, the large output at its size."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

from upres.bench.file_images import compare_folders, png_size
from upres.bench.file_rows import AGREE_LEVELS, FOLDER, LARGE, SCALE, FileBenchError, FileRow


class Spec(Protocol):  # what is read of upres.bench.files.Spec
    @property
    def key(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def case(self) -> str: ...
    @property
    def out(self) -> Path | None: ...


class Workload(Protocol):  # what is read of upres.bench.files.Workload
    @property
    def names(self) -> tuple[str, ...]: ...
    @property
    def large(self) -> Path | None: ...
    @property
    def sizes(self) -> dict[str, tuple[int, int]]: ...


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool | None  # None: could not be checked (a contender failed)
    detail: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)



def output_checks(specs: Sequence[Spec], rows: dict[str, FileRow], work: Workload) -> list[Check]:
    want = len(work.names)
    outs = {s.key: s.out for s in specs if s.out is not None}
    checks = []
    for spec in specs:
        if spec.case != FOLDER or spec.out is None:
            continue
        row = rows[spec.key]
        name = f"{spec.name} wrote {want} PNGs"
        checks.append(Check(name, row.outputs == want, f"{row.outputs} PNG(s) in its output folder")
                      if row.status == "ok" else Check(name, None, f"not checked: {row.reason}"))
    for p in ("fp32", "int8"):
        ours, naive = rows.get(f"upres-{p}"), rows.get(f"naive-{p}")
        name = f"upres run {p.upper()} = naive loop {p.upper()} within {AGREE_LEVELS} level"
        if ours is None or naive is None or ours.status != "ok" or naive.status != "ok":
            checks.append(Check(name, None, "not checked: a contender failed"))
            continue
        try:
            worst, share, n = compare_folders(outs[ours.key], outs[naive.key], work.names)
        except FileBenchError as exc:
            checks.append(Check(name, False, str(exc)))
            continue
        checks.append(Check(name, n == want and worst <= AGREE_LEVELS,
                            f"max |diff| {worst:.0f} level(s), {100 * share:.4f}% of values off by "
                            f"more than {AGREE_LEVELS}, {n}/{want} images compared"))
    large = rows.get("large-upres-fp32")
    if large is not None and work.large is not None:
        w, h = work.sizes[LARGE]
        want_size = f"{SCALE * w}x{SCALE * h}"
        name = f"upres run wrote the {want_size} PNG"
        if large.status != "ok":
            checks.append(Check(name, None, f"not checked: {large.reason}"))
        else:
            got = png_size(outs[large.key] / work.large.name)
            size = f"{got[0]}x{got[1]}" if got else "no PNG in its output folder"
            checks.append(Check(name, size == want_size, size))
    return checks
