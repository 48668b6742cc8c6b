"""Run every contender on the same images and threads, pass by pass, and collect one result.

Order of a run: start all workers (they load in parallel, untimed), then `passes` rounds in which
each contender runs the timing images once (the starting contender rotates each round) followed
by a few GEMM peak runs, then each contender alone does its seam and quality checks.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from upres.bench import machine
from upres.bench.contender import BenchContext, ContenderSpec
from upres.bench.contenders import build, name_of
from upres.bench.peak import GemmProbe
from upres.bench.rows import Row
from upres.bench.session import Workload
from upres.bench.stats import Spread, percentile, throughput
from upres.bench.targets import Target, evaluate_targets
from upres.bench.worker import PACKAGE_ROOT, LocalWorker, SubprocessWorker, Worker, WorkerError

MIB = 2**20
CONTENDED_SHARE = 0.10  # others used more than this share of all cores' time during the run


def _shared(name: str) -> Path | None:
    """../shared/<name> beside the repository checkout, when this is one and it has it."""
    path = PACKAGE_ROOT.parent / "shared" / name
    return path if path.is_dir() else None


def default_peers() -> Path | None:
    return _shared("peers")


def default_datasets() -> Path | None:
    return _shared("datasets")


@dataclass(frozen=True)
class BenchConfig:
    profile: str = "quick"
    threads: int = 0  # 0 = every core this process may use
    image_size: int = 256  # timed images are image_count x (size x size) inputs
    image_count: int = 3
    passes: int = 3  # timed rounds (medians and spreads are over these)
    warmup: int = 1
    seam_size: int = 520  # input side of the tiled-vs-whole check (> 512: the eager loop cuts); 0 = skip
    sets: tuple[str, ...] = ("Set5",)
    datasets: Path | None = None
    peers: Path | None = None
    gemm_size: int = 2048
    gemm_runs: int = 2  # per round, per precision
    upres_tile: int = 256  # a fixed-tile upres row at the eager loop's tile size
    eager_tiles: tuple[int, ...] = (256, 512)
    tile_pad: int = 10
    hybrid: bool = False  # the extra hybrid row (3x the faithful cost): full profile only
    isolate: bool = True  # one process per contender (peak RSS is then its own)
    only: tuple[str, ...] = ()  # keep contenders whose name or key contains one of these
    memory: int | None = None  # --tile auto memory target; None = upres's default
    denoise: str = "auto"  # the upres contenders' --denoise

    @classmethod
    def quick(cls, **overrides: Any) -> BenchConfig:
        """< 2 min on 2 idle cores: 3 x 256^2 inputs, 3 rounds, Set5 when present, no hybrid row."""
        base = cls(profile="quick", datasets=default_datasets(), peers=default_peers())
        return replace(base, **overrides)

    @classmethod
    def full(cls, **overrides: Any) -> BenchConfig:
        """The published table: inputs over 1 MP (so `--tile auto` really tiles), 5 rounds,
        Set5 and Set14."""
        base = cls(profile="full", image_size=1200, image_count=3, passes=5, seam_size=1200,
                   sets=("Set5", "Set14"), hybrid=True, datasets=default_datasets(),
                   peers=default_peers())
        return replace(base, **overrides)

    def resolved_threads(self) -> int:
        return self.threads or machine.cores()


def contender_specs(cfg: BenchConfig) -> list[ContenderSpec]:
    specs = [
        ContenderSpec("upres", {"tile": "auto"}, "upres-fp32-auto"),
        ContenderSpec("upres", {"tile": 0}, "upres-fp32-whole"),
        ContenderSpec("upres", {"tile": cfg.upres_tile}, f"upres-fp32-tile{cfg.upres_tile}"),
        ContenderSpec("upres", {"tile": "auto", "precision": "int8"}, "upres-int8-auto"),
    ]
    if cfg.hybrid:
        specs.append(ContenderSpec("upres", {"tile": "auto", "mode": "hybrid"},
                                   "upres-hybrid-fp32-auto"))
    specs += [ContenderSpec("eager", {"tile": t, "tile_pad": cfg.tile_pad}, f"eager-tile{t}")
              for t in cfg.eager_tiles]
    specs += [ContenderSpec("dnn_superres", {"model": m}, m.lower()) for m in ("FSRCNN", "ESPCN")]
    specs.append(ContenderSpec("bicubic", {}, "bicubic"))
    return specs


@dataclass
class BenchResult:
    config: dict[str, Any]
    machine: dict[str, Any]
    threads: int
    peak: dict[str, Spread]
    rows: list[Row]
    targets: list[Target]
    load_before: float | None
    load_after: float | None
    seconds: float
    started: str
    command: str = ""  # what produced it, set by the caller (the docs quote it)
    # Share of the machine's CPU time other processes used during the run (None: no /proc/stat).
    others_cpu_share: float | None = None

    def row(self, key: str) -> Row | None:
        return next((r for r in self.rows if r.key == key), None)

    @property
    def contended(self) -> bool:
        """Other work shared the cores. Measured as CPU time not ours (the load average would
        count the bench itself); without /proc/stat, a load average above the core count."""
        if self.others_cpu_share is not None:
            return self.others_cpu_share > CONTENDED_SHARE
        return self.load_before is not None and self.load_before > self.machine["cores"]

    @property
    def failed(self) -> int:
        return sum(r.status == "failed" for r in self.rows)

    def to_json(self) -> dict[str, Any]:
        return {
            "started": self.started, "seconds": self.seconds, "command": self.command,
            "config": self.config,
            "machine": self.machine, "threads": self.threads,
            "load_average": {"before": self.load_before, "after": self.load_after},
            "others_cpu_share": self.others_cpu_share, "contended": self.contended,
            "peak_gflops": {k: v.to_json() for k, v in self.peak.items()},
            "rows": [r.to_json() for r in self.rows],
            "targets": [t.to_json() for t in self.targets],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BenchResult:
        """A result written by `upres bench --json`, e.g. to render docs without rerunning."""
        peak = {k: Spread.from_json(v) for k, v in data["peak_gflops"].items()}
        return cls(config=data["config"], machine=data["machine"], threads=data["threads"],
                   peak={k: v for k, v in peak.items() if v is not None},
                   rows=[Row.from_json(r) for r in data["rows"]],
                   targets=[Target(**t) for t in data["targets"]],
                   load_before=data["load_average"]["before"],
                   load_after=data["load_average"]["after"], seconds=data["seconds"],
                   started=data["started"], command=data.get("command", ""),
                   others_cpu_share=data.get("others_cpu_share"))


def _config_json(cfg: BenchConfig) -> dict[str, Any]:
    """Plain JSON types (paths as strings, tuples as lists), so a result survives a round trip."""
    out = asdict(cfg)
    for k, v in out.items():
        if isinstance(v, Path):
            out[k] = str(v)
        elif isinstance(v, tuple):
            out[k] = list(v)
    return out


def _select(specs: list[ContenderSpec], cfg: BenchConfig, ctx: BenchContext) -> list[ContenderSpec]:
    if not cfg.only:
        return specs
    wanted = [w.lower() for w in cfg.only]
    return [s for s in specs
            if any(w in s.key.lower() or w in name_of(s, ctx).lower() for w in wanted)]


@dataclass
class _Live:
    spec: ContenderSpec
    row: Row
    worker: Worker | None
    megapixels: float = 0.0
    pass_seconds: list[float] = field(default_factory=list)
    image_seconds: list[float] = field(default_factory=list)


def _fail(live: _Live, exc: WorkerError) -> None:
    live.row.status, live.row.reason = "failed", str(exc)
    if live.worker is not None:
        live.worker.close()
        live.worker = None


def run_bench(cfg: BenchConfig, progress: Callable[[str], None] | None = None,
              specs: list[ContenderSpec] | None = None) -> BenchResult:
    if cfg.passes < 1 or cfg.image_count < 1:
        raise ValueError("a bench needs at least one pass over at least one image")
    say = progress or (lambda _msg: None)
    t_start = time.perf_counter()
    started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    threads = cfg.resolved_threads()
    info = machine.describe()
    load_before = machine.load_average()
    busy0, own0 = machine.cpu_busy_seconds(), machine.own_cpu_seconds()
    ctx = BenchContext(threads, str(cfg.peers) if cfg.peers else None, cfg.memory, cfg.denoise)
    work = Workload(cfg.image_size, cfg.image_count, cfg.warmup, cfg.seam_size,
                    str(cfg.datasets) if cfg.datasets else None, cfg.sets)
    chosen = _select(specs if specs is not None else contender_specs(cfg), cfg, ctx)
    make = SubprocessWorker if cfg.isolate else LocalWorker

    lives: list[_Live] = []
    try:
        for spec in chosen:  # subprocess workers start loading right here, all at once
            c = build(spec, ctx)  # cheap: names and attributes only, nothing loaded
            row = Row(spec.key or spec.kind, c.name, c.group, "ok", precision=c.precision)
            lives.append(_Live(spec, row, make(spec, ctx, work)))
        for live in lives:
            say(f"loading {live.row.name}")
            _start(live)
        probes = [GemmProbe(cfg.gemm_size, p, threads) for p in ("fp32", "int8")] \
            if cfg.gemm_size else []
        running = [lv for lv in lives if lv.worker is not None]
        for r in range(cfg.passes):
            say(f"round {r + 1}/{cfg.passes}")
            shift = r % max(1, len(running))
            for live in running[shift:] + running[:shift]:
                if live.worker is None:
                    continue
                try:
                    times = live.worker.run_pass()
                except WorkerError as exc:
                    _fail(live, exc)
                    continue
                live.image_seconds += times
                live.pass_seconds.append(sum(times))
            for probe in probes:
                probe.measure(cfg.gemm_runs)
        peak = {p.precision: p.gflops() for p in probes if p.seconds}
        for live in lives:
            if live.worker is None:
                continue
            say(f"seams and quality: {live.row.name}")
            try:
                _finish(live, live.worker.finish(), peak)
            except WorkerError as exc:
                _fail(live, exc)
    finally:
        for live in lives:
            if live.worker is not None:
                live.worker.close()
    rows = [lv.row for lv in lives]
    seconds = time.perf_counter() - t_start
    busy1 = machine.cpu_busy_seconds()  # after the workers were waited for: their CPU is counted
    others = None
    if busy0 is not None and busy1 is not None:
        theirs = (busy1 - busy0) - (machine.own_cpu_seconds() - own0)
        others = max(0.0, theirs) / (seconds * info["cores"])
    return BenchResult(
        config=_config_json(cfg), machine=info, threads=threads, peak=peak, rows=rows,
        targets=evaluate_targets(rows, cfg.sets[0] if cfg.sets else None), load_before=load_before,
        load_after=machine.load_average(), seconds=seconds, started=started,
        others_cpu_share=others)


def _start(live: _Live) -> None:
    assert live.worker is not None
    try:
        reply = live.worker.start()
    except WorkerError as exc:
        _fail(live, exc)
        return
    if reply["status"] != "ready":
        live.row.status, live.row.reason = "skipped", reply.get("reason", "")
        live.worker.close()
        live.worker = None
        return
    live.megapixels = reply["megapixels_out"]
    live.row.describe = reply.get("describe", "")
    live.row.flops_per_pixel = reply.get("flops_per_pixel")
    live.row.load_rss_mib = reply["load_rss_delta"] / MIB


def _finish(live: _Live, reply: dict[str, Any], peak: dict[str, Spread]) -> None:
    row = live.row
    row.mp_s = throughput(live.pass_seconds, live.megapixels)
    row.p50_ms = percentile(live.image_seconds, 50) * 1e3
    row.p95_ms = percentile(live.image_seconds, 95) * 1e3
    row.peak_rss_mib = reply["peak_rss"] / MIB if reply.get("peak_rss") else None
    row.seam_tiles = reply.get("seam_tiles")
    row.seam_max, row.seam_mean = reply.get("seam_max"), reply.get("seam_mean")
    row.psnr = dict(reply.get("psnr", {}))
    if row.flops_per_pixel:
        # FLOP/px x Mpx/s = MFLOP/s; / 1e3 -> GFLOP/s
        row.gflops = row.mp_s.scaled(row.flops_per_pixel / 1e3)
        if row.precision in peak:
            row.peak_fraction = row.gflops.median / peak[row.precision].median
