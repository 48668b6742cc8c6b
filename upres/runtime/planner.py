"""Choose tile size, halo, blending and output mode so a job fits a memory target.

Every byte in the estimate has a source: the process baseline (measured RSS), the decoded input
and the output (exact array sizes), and the tile's activations (each stage's measured
`MemoryModel`). The planner only returns plans whose estimated total is within the target.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from upres.core.choices import Blend
from upres.core.sizes import format_size
from upres.imageio.tiff_rows import STREAM_CHUNK_ROWS
from upres.runtime.memory import MemoryModel, current_rss
from upres.runtime.tiling import TileGrid, plan_grid

F32 = 4
IN_CHANNELS = 4  # the reader decodes RGBA float32 (alpha rides along with the colour)
MIN_TILE = 32
MAX_TILE = 1024
TILE_STEP = 16
MIN_HALO = 2  # below this even feathering has no overlap worth blending
WHOLE_IMAGE_PIXELS = 1024 * 1024  # larger images tile even when they fit: bounded, streamable
DEPTH = 2  # images in flight: the next one decodes while this one runs
STRIPS_ALIVE = 3  # feather blending keeps strips r-1, r, r+1 open
TILE_IN_COPIES = 2  # region read (HWC) + the NCHW copy handed to the backend
TILE_OUT_COPIES = 3  # HWC transpose, clip, alpha concat / hybrid intermediates at output size
# A streamed input (a TIFF read by rows) holds the current band of rows plus the copies made while
# decoding the next one (raw samples, float values, colour, RGB), and one strip of the file beyond
# the band: strips taller than `STREAM_CHUNK_ROWS` are not streamed.
STREAM_BAND_COPIES = 4


class PlanError(ValueError):
    """No tiling of this job fits the memory target."""


@dataclass(frozen=True)
class Plan:
    tile: int  # core size in input pixels; 0 = whole image
    halo: int
    blend: Blend  # CROP or FEATHER (never AUTO: the planner resolves it)
    exact: bool  # halo covers the required context (or one tile covers the image)
    batch: int
    depth: int  # images in flight in the pipeline
    streaming: bool  # output written to disk in strips because it does not fit in memory
    memory_target: int
    # bytes: baseline, input, output, tile_activations, strip_buffers, total
    estimate: dict[str, int]
    notes: tuple[str, ...]
    grid: TileGrid = field(repr=False)
    streamed_input: bool = False  # input read a band of rows at a time, never decoded whole

    def to_dict(self) -> dict[str, object]:
        return {
            "tile": self.tile, "halo": self.halo, "blend": self.blend, "exact": self.exact,
            "batch": self.batch, "depth": self.depth, "streaming": self.streaming,
            "streamed_input": self.streamed_input,
            "memory_target": self.memory_target, "estimate": dict(self.estimate),
            "notes": list(self.notes),
            "grid": {"height": self.grid.height, "width": self.grid.width,
                     "rows": self.grid.rows, "cols": self.grid.cols,
                     "tiles": len(self.grid.tiles), "max_padded": list(self.grid.max_padded)},
        }


@dataclass(frozen=True)
class _Job:
    height: int
    width: int
    scale: int
    required_halo: int
    channels_out: int
    bytes_out: int
    target: int
    baseline: int
    stages: tuple[tuple[MemoryModel, int], ...]
    streamed_input: bool = False


@dataclass(frozen=True)
class _Fit:
    tile: int
    halo: int
    depth: int
    streaming: bool
    estimate: dict[str, int]


def _padded_side(job: _Job, tile: int, halo: int) -> tuple[int, int]:
    """Largest model input of the grid: core + halo both sides, clipped to the image."""
    if tile == 0:
        return job.height, job.width
    return min(tile + 2 * halo, job.height), min(tile + 2 * halo, job.width)


def _tile_bytes(job: _Job, tile: int, halo: int) -> int:
    """Worst stage's measured activations plus the tile's own numpy buffers around the calls."""
    ph, pw = _padded_side(job, tile, halo)
    px = ph * pw
    acts = max((m.estimate(px * factor) for m, factor in job.stages), default=0)
    io_in = px * IN_CHANNELS * F32 * TILE_IN_COPIES
    io_out = px * job.scale**2 * max(job.channels_out, 4) * F32 * TILE_OUT_COPIES
    return acts + io_in + io_out


def _output_bytes(job: _Job) -> int:
    """Whole output held while assembling (float32) plus its quantised copy for the writer."""
    px = job.height * job.scale * job.width * job.scale
    return px * job.channels_out * (F32 + job.bytes_out)


def _strip_bytes(job: _Job, tile: int, halo: int) -> int:
    """Strips alive while streaming, plus the writer's quantised tile row."""
    s, out_w = job.scale, job.width * job.scale
    band = job.height if tile == 0 else min(tile + 2 * halo, job.height)
    core = job.height if tile == 0 else min(tile, job.height)
    strips = STRIPS_ALIVE * band * s * out_w * job.channels_out * F32
    return strips + core * s * out_w * job.channels_out * job.bytes_out


def _input_bytes(job: _Job, tile: int, halo: int, depth: int) -> int:
    if not job.streamed_input:
        return depth * job.height * job.width * IN_CHANNELS * F32
    band = job.height if tile == 0 else min(tile + 2 * halo, job.height)
    return (STREAM_BAND_COPIES * band + STREAM_CHUNK_ROWS) * job.width * IN_CHANNELS * F32


def _estimate(job: _Job, tile: int, halo: int, depth: int, streaming: bool) -> dict[str, int]:
    est = {
        "baseline": job.baseline,
        "input": _input_bytes(job, tile, halo, depth),
        "output": 0 if streaming else _output_bytes(job),
        "tile_activations": _tile_bytes(job, tile, halo),
        "strip_buffers": _strip_bytes(job, tile, halo) if streaming else 0,
    }
    est["total"] = sum(est.values())
    return est


def _fit(job: _Job, tile: int, halo: int, depth: int) -> _Fit | None:
    """This tiling with the output in memory if that fits, else streamed; None if neither."""
    for streaming in (False, True):
        est = _estimate(job, tile, halo, depth, streaming)
        if est["total"] <= job.target:
            return _Fit(tile, halo, depth, streaming, est)
    return None


def _tile_candidates(job: _Job) -> list[int]:
    """Multiples of 16, largest first; ones covering the whole image are tile 0 in disguise."""
    longest = max(job.height, job.width)
    return [t for t in range(MAX_TILE, MIN_TILE - 1, -TILE_STEP) if t < longest]


def _auto_tile(job: _Job, halo: int, depth: int) -> tuple[_Fit | None, list[str]]:
    whole = _fit(job, 0, halo, depth)
    small = job.height * job.width <= WHOLE_IMAGE_PIXELS
    if whole and small:
        return whole, [f"whole image in one tile: fits {format_size(job.target)}"]
    for tile in _tile_candidates(job):
        found = _fit(job, tile, halo, depth)
        if found:
            why = ("the largest candidate" if tile == MAX_TILE
                   else f"the largest that fits {format_size(job.target)}")
            return found, [f"tile {tile} is {why}"]
    if whole:  # no candidate is smaller than the image, yet the image itself fits
        return whole, [f"whole image in one tile: fits {format_size(job.target)}"]
    return None, []


def _search(job: _Job, tile: int | None, halo: int | None) -> tuple[_Fit, list[str]] | None:
    """Exact first (deep pipeline, then depth 1), then narrower halos at depth 1."""
    halos = [job.required_halo if halo is None else halo]
    if halo is None:
        halos += list(range(job.required_halo - 1, MIN_HALO - 1, -1))
    for h in halos:
        # A streamed input is read while it runs: nothing decodes ahead of it (depth 1).
        for depth in (DEPTH, 1) if h == halos[0] and not job.streamed_input else (1,):
            if tile is None:
                found, notes = _auto_tile(job, h, depth)
            else:
                found, notes = _fit(job, tile, h, depth), []
            if found:
                return found, notes
    return None


def _minimum(job: _Job, tile: int | None, halo: int | None) -> int:
    """The least memory any plan this call could make would need."""
    t = MIN_TILE if tile is None else tile
    if tile is None and max(job.height, job.width) <= MIN_TILE:
        t = 0
    h = min(MIN_HALO, job.required_halo) if halo is None else halo
    return min(_estimate(job, t, h, 1, s)["total"] for s in (False, True))


def _plan_error(job: _Job, tile: int | None, halo: int | None) -> PlanError:
    need = _minimum(job, tile, halo)
    msg = (f"cannot fit {job.width}x{job.height} x{job.scale} in {format_size(job.target)}: "
           f"needs at least {format_size(need)}")
    if tile is not None or halo is not None:
        msg += f" with tile {tile if tile is not None else 'auto'}, halo "
        msg += f"{halo if halo is not None else 'auto'}"
    one_input = job.height * job.width * IN_CHANNELS * F32
    if job.baseline + one_input > job.target and not job.streamed_input:
        msg += (f"; the decoded input alone takes {format_size(one_input)} beside "
                f"{format_size(job.baseline)} already in use (plain TIFFs, gray or RGB without "
                f"alpha, uncompressed or in strips of at most {STREAM_CHUNK_ROWS} rows, are read "
                "by rows instead)")
    return PlanError(msg + "; raise --memory")


def _resolve_blend(blend: Blend, exact: bool, halo: int, required: int) -> tuple[Blend, list[str]]:
    if blend is Blend.AUTO:
        return (Blend.CROP, []) if exact else (Blend.FEATHER, [])
    if blend is Blend.CROP and not exact:
        return Blend.CROP, [f"blend crop with halo {halo} < required {required}: not exact, "
                        "tile seams may show"]
    return blend, []


def _validate(height: int, width: int, scale: int, required_halo: int, memory_target: int,
              tile: int | None, halo: int | None) -> None:
    if height < 1 or width < 1:
        raise ValueError(f"cannot plan an empty image ({width}x{height})")
    if scale < 1 or required_halo < 0:
        raise ValueError(f"scale must be >= 1 and halo >= 0, got {scale}, {required_halo}")
    if memory_target <= 0:
        raise ValueError(f"memory target must be positive, got {memory_target}")
    if (tile is not None and tile < 0) or (halo is not None and halo < 0):
        raise ValueError(f"tile and halo must be >= 0, got tile={tile}, halo={halo}")


def plan_job(
    height: int,
    width: int,
    *,
    scale: int,
    required_halo: int,
    channels_out: int = 3,
    bytes_per_sample_out: int = 1,
    memory_target: int,
    stage_models: list[tuple[MemoryModel, int]],
    tile: int | None = None,
    halo: int | None = None,
    blend: Blend = Blend.AUTO,
    baseline: int | None = None,
    streamed_input: bool = False,
    align: int = 1,
) -> Plan:
    """Plan one image: tile None = auto (0 = whole image, N = fixed), halo None = required.
    align: the model's alignment (`ModelInfo.alignment`): tile origins on its multiples.
    streamed_input: the input is read a band of rows at a time (a TIFF, `upres.imageio.tiff_rows`).

    stage_models: each stage's memory model with the pixel factor of its input relative to the
    LR tile (1 for the coarse stage, scale**2 for a refine stage at output resolution).
    A blend given by name (a script's string) is parsed here.
    """
    _validate(height, width, scale, required_halo, memory_target, tile, halo)
    blend = Blend.parse(blend)
    job = _Job(height, width, scale, required_halo, channels_out, bytes_per_sample_out,
               memory_target, current_rss() if baseline is None else baseline,
               tuple(stage_models), streamed_input)
    result = _search(job, tile, halo)
    if result is None:
        raise _plan_error(job, tile, halo)
    fit, notes = result
    grid = plan_grid(height, width, max(fit.tile, align) if fit.tile else 0, fit.halo, align)
    exact = fit.halo >= required_halo or len(grid.tiles) == 1
    chosen_blend, blend_notes = _resolve_blend(blend, exact, fit.halo, required_halo)
    if not exact and halo is None:
        bound = (f"; error at most that of an exact-mode crop with halo {fit.halo // 2}"
                 if chosen_blend is Blend.FEATHER else "")
        notes.append(f"memory target forces halo {fit.halo} < required {required_halo}: "
                     f"{chosen_blend} blending, not exact{bound}")
    elif not exact and chosen_blend is Blend.FEATHER:
        notes.append(f"halo {fit.halo} < required {required_halo}: feather blending, not exact; "
                     f"error at most that of an exact-mode crop with halo {fit.halo // 2}")
    notes += blend_notes
    if tile is not None and tile > 0 and tile >= max(height, width):
        notes.append(f"tile {tile} covers the whole image: one tile")
    if streamed_input:
        whole = job.height * job.width * IN_CHANNELS * F32
        notes.append(f"input read a band of rows at a time: decoded whole ({format_size(whole)}) it "
                     "would not fit beside the tiles")
    elif fit.depth < DEPTH:
        notes.append("depth 1: decoding the next image during this one would not fit")
    if fit.streaming:
        notes.append(f"output ({format_size(_output_bytes(job))}) does not fit in memory beside "
                     "the tiles: streamed to disk in strips")
    notes.append("batch 1: on the CPU one tile already keeps every thread busy; batching only "
                 "multiplies activation memory")
    return Plan(fit.tile, fit.halo, chosen_blend, exact, 1, fit.depth, fit.streaming,
                memory_target, fit.estimate, tuple(notes), grid, streamed_input)


def describe(plan: Plan) -> str:
    """A few human lines for `upres plan`."""
    g, e = plan.grid, plan.estimate
    tile = "whole image" if plan.tile == 0 else f"tile {plan.tile}"
    exact = "exact" if plan.exact else "not exact"
    lines = [
        f"{tile} + halo {plan.halo} ({plan.blend}, {exact}): {g.rows} x {g.cols} = "
        f"{len(g.tiles)} tiles on {g.width}x{g.height}",
        f"memory: {format_size(e['total'])} of {format_size(plan.memory_target)} target "
        f"(baseline {format_size(e['baseline'])}, input {format_size(e['input'])}, "
        f"output {format_size(e['output'])}, tiles {format_size(e['tile_activations'])}, "
        f"strips {format_size(e['strip_buffers'])})",
        "output: streamed to disk in strips" if plan.streaming else "output: assembled in memory",
        "input: read from the file a band of rows at a time" if plan.streamed_input
        else "input: decoded whole",
        f"batch {plan.batch}, {plan.depth} image(s) in flight",
    ]
    lines += [f"  - {n}" for n in plan.notes]
    return "\n".join(lines)
