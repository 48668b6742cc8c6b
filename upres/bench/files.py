"""File-to-file bench: a folder of photos in, x4 PNG files out, each contender a fresh process.

What a user waits for is process start to exit: imports, session creation, decode, compute,
encode and writing. So every contender here is a separate `subprocess` timed wall-clock from
start to exit, with an empty output folder each time:

- the naive loop a user would write (upres.bench.naive_loop), FP32 and INT8;
- `upres run DIR -o OUT --scale 4 --mode faithful --denoise 0`, FP32 and INT8 (the naive loop's
  model: its outputs are compared);
- bare compute (upres.bench.file_compute): only `session.run` over the decoded images, the floor
  no file pipeline can go under;
- one large image (one 48 MP output): `upres run` against bare compute on it;
- start-up: `upres run` on a 32x24 image against `python -c "import numpy, cv2, onnxruntime"`.

Contenders take turns repeat by repeat (the first one rotating) so a load change on the machine
is shared by all; the short start-up pair runs several times a repeat, in turn. The outputs are
checked afterwards (upres.bench.file_checks). Entry point: `run_files(FileBenchConfig.quick())`;
rendering in file_report.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from upres.bench import machine
from upres.bench.file_checks import Check, output_checks
from upres.bench.file_images import fit_to, synth_photo
from upres.bench.file_rows import (
    COMPUTE,
    FOLDER,
    IMPORTS,
    LARGE,
    NAIVE,
    SCALE,
    STARTUP,
    UPRES,
    FileBenchError,
    FileRow,
)
from upres.bench.file_targets import compute_fraction, evaluate_targets, naive_speedup
from upres.bench.stats import Spread
from upres.bench.targets import Target

HERE = Path(__file__).resolve().parent
MODELS = {"fp32": HERE.parent / "weights" / "coarse-x4.onnx",
          "int8": HERE.parent / "weights" / "coarse-x4.int8.onnx"}
# Run by path, not `-m upres.bench...`: a user's script does not import the upres package. With -P,
# so upres/bench is not put on sys.path, as a user's own folder would not hold these modules.
NAIVE_SCRIPT = HERE / "naive_loop.py"
COMPUTE_SCRIPT = HERE / "file_compute.py"
CONTENDED_SHARE = 0.10  # others used more than this share of all cores' time during the run
RUN_TIMEOUT_S = 3600
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp"}



@dataclass(frozen=True)
class FileBenchConfig:
    datasets: Path | None = None  # folder holding BSD100/; None or missing: synthesized photos
    count: int = 10
    size: tuple[int, int] = (640, 480)  # width, height of the folder's images
    large: bool = True
    large_size: tuple[int, int] = (2000, 1500)  # x4: 8000x6000, one 48 MP output
    tiny_size: tuple[int, int] = (32, 24)
    repeats: int = 3
    # Start-up runs per repeat, upres and the bare imports in turn: each takes well under a
    # second, so a few samples more cost little, and one slow start no longer moves the median.
    startup_runs: int = 5
    threads: int = 0  # 0 = every core this process may use, passed explicitly to every contender
    # One untimed `upres run` per precision first: the first run ever measures the model's memory
    # and caches it, which a returning user no longer pays.
    warmup: bool = True

    @classmethod
    def quick(cls, **overrides: Any) -> FileBenchConfig:
        from upres.bench.runner import default_datasets  # lazy: the compute bench's modules

        return replace(cls(datasets=default_datasets()), **overrides)

    def resolved_threads(self) -> int:
        return self.threads or machine.cores()

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["datasets"] = str(self.datasets) if self.datasets else None
        for key in ("size", "large_size", "tiny_size"):
            out[key] = list(out[key])
        return out


@dataclass(frozen=True)
class Workload:
    folder: Path
    names: tuple[str, ...]
    output_mp: float  # output megapixels of the whole folder
    large: Path | None
    large_mp: float
    tiny: Path
    tiny_mp: float
    source: str
    sizes: dict[str, tuple[int, int]]  # input width, height of each case's images

    @property
    def tiny_label(self) -> str:
        return "x".join(map(str, self.sizes[STARTUP]))

    def to_json(self) -> dict[str, Any]:
        return {"images": len(self.names), "names": list(self.names), "output_mp": self.output_mp,
                "large_mp": self.large_mp if self.large else None, "tiny_mp": self.tiny_mp,
                "source": self.source, "sizes": {k: list(v) for k, v in self.sizes.items()}}


@dataclass(frozen=True)
class Spec:
    key: str
    name: str
    case: str
    kind: str
    precision: str  # fp32 | int8 | "" (imports)
    argv: tuple[str, ...]
    output_mp: float
    out: Path | None = None  # removed before every run: each run writes into a fresh folder


@dataclass
class FileBenchResult:
    config: dict[str, Any]
    machine: dict[str, Any]
    threads: int
    workload: dict[str, Any]
    rows: list[FileRow]
    checks: list[Check]
    started: str
    seconds: float
    load_before: float | None = None
    load_after: float | None = None
    others_cpu_share: float | None = None  # share of all cores' time other processes used
    command: str = ""

    def row(self, key: str) -> FileRow | None:
        return next((r for r in self.rows if r.key == key), None)

    @property
    def contended(self) -> bool:
        if self.others_cpu_share is not None:
            return self.others_cpu_share > CONTENDED_SHARE
        return self.load_before is not None and self.load_before > self.machine.get("cores", 1)

    @property
    def failed(self) -> int:
        return sum(r.status == "failed" for r in self.rows)

    def targets(self) -> list[Target]:
        return evaluate_targets(self.rows, self.workload.get("large_mp"))

    def to_json(self) -> dict[str, Any]:
        return {
            "started": self.started, "seconds": self.seconds, "command": self.command,
            "config": self.config, "machine": self.machine, "threads": self.threads,
            "workload": self.workload,
            "load_average": {"before": self.load_before, "after": self.load_after},
            "others_cpu_share": self.others_cpu_share, "contended": self.contended,
            "rows": [r.to_json() for r in self.rows],
            "derived": {r.key: {"x_bare_compute": _json_spread(compute_fraction(self.rows, r)),
                                "x_naive_loop": _json_spread(naive_speedup(self.rows, r))}
                        for r in self.rows},
            "checks": [c.to_json() for c in self.checks],
            "targets": [t.to_json() for t in self.targets()],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FileBenchResult:
        return cls(config=data["config"], machine=data["machine"], threads=data["threads"],
                   workload=data["workload"], rows=[FileRow.from_json(r) for r in data["rows"]],
                   checks=[Check(**c) for c in data["checks"]], started=data["started"],
                   seconds=data["seconds"], load_before=data["load_average"]["before"],
                   load_after=data["load_average"]["after"],
                   others_cpu_share=data.get("others_cpu_share"), command=data.get("command", ""))


def _json_spread(s: Spread | None) -> dict[str, float] | None:
    return s.to_json() if s else None


# ---- the workload ------------------------------------------------------------------------------


def _sources(cfg: FileBenchConfig) -> tuple[list[tuple[str, np.ndarray]], str]:
    folder = cfg.datasets / "BSD100" if cfg.datasets else None
    found: list[tuple[str, np.ndarray]] = []
    if folder is not None and folder.is_dir():
        for path in sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
            if len(found) == cfg.count:
                break
            img = cv2.imread(str(path))
            if img is None:
                raise FileBenchError(f"{path}: cannot read this image (remove it or pass --datasets)")
            found.append((path.stem, img))
    made = [(f"synth_{i + 1:03d}", synth_photo(i)) for i in range(len(found), cfg.count)]
    if found and not made:
        source = f"the first {len(found)} images of BSD100"
    elif found:
        source = f"the {len(found)} images of BSD100 and {len(made)} synthesized ones"
    else:
        source = f"{len(made)} synthesized photo-like images (no BSD100 folder)"
    return found + made, source


def _write(path: Path, img: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), img):
        raise FileBenchError(f"{path}: cannot write the workload image")


def build_workload(cfg: FileBenchConfig, root: Path) -> Workload:
    sources, source = _sources(cfg)
    if not sources:
        raise FileBenchError("the folder case needs at least one image (count >= 1)")
    folder = root / "photos"
    names = []
    for stem, img in sources:
        _write(folder / f"{stem}.png", fit_to(img, cfg.size))
        names.append(f"{stem}.png")
    w, h = cfg.size
    large = root / "large" / "large.png" if cfg.large else None
    if large is not None:
        _write(large, fit_to(sources[0][1], cfg.large_size))
    tiny = root / "tiny" / "tiny.png"
    _write(tiny, fit_to(sources[0][1], cfg.tiny_size))
    mp = (SCALE * SCALE) / 1e6
    return Workload(folder, tuple(names), len(names) * w * h * mp, large,
                    cfg.large_size[0] * cfg.large_size[1] * mp, tiny,
                    cfg.tiny_size[0] * cfg.tiny_size[1] * mp, source,
                    {FOLDER: cfg.size, LARGE: cfg.large_size, STARTUP: cfg.tiny_size})


# ---- contenders --------------------------------------------------------------------------------


def upres_argv(inputs: Path, out: Path, precision: str, threads: int) -> tuple[str, ...]:
    argv = [sys.executable, "-m", "upres", "run", str(inputs), "-o", str(out), "--scale", str(SCALE),
            "--mode", "faithful", "--denoise", "0", "--overwrite", "-q", "--threads", str(threads)]
    return tuple(argv + (["--precision", precision] if precision != "fp32" else []))


def contender_specs(work: Workload, threads: int, out_root: Path) -> list[Spec]:
    py, t = sys.executable, str(threads)
    images = tuple(str(work.folder / n) for n in work.names)
    specs = []
    for p in ("fp32", "int8"):
        out = out_root / f"naive-{p}"
        specs.append(Spec(f"naive-{p}", f"naive loop {p.upper()}", FOLDER, NAIVE, p,
                          (py, "-P", str(NAIVE_SCRIPT), str(work.folder), str(out), "--model",
                           str(MODELS[p]), "--threads", t), work.output_mp, out))
    for p in ("fp32", "int8"):
        out = out_root / f"upres-{p}"
        specs.append(Spec(f"upres-{p}", f"upres run {p.upper()}", FOLDER, UPRES, p,
                          upres_argv(work.folder, out, p, threads), work.output_mp, out))
    for p in ("fp32", "int8"):
        specs.append(Spec(f"compute-{p}", f"bare compute {p.upper()} (session.run only)", FOLDER,
                          COMPUTE, p, (py, "-P", str(COMPUTE_SCRIPT), "--model", str(MODELS[p]),
                                       "--threads", t, *images), work.output_mp))
    if work.large is not None:
        label = f"{work.large_mp:.0f} MP"
        out = out_root / "large-upres-fp32"
        specs.append(Spec("large-upres-fp32", f"{label}: upres run FP32", LARGE, UPRES, "fp32",
                          upres_argv(work.large, out, "fp32", threads), work.large_mp, out))
        specs.append(Spec("large-compute-fp32", f"{label}: bare compute FP32", LARGE, COMPUTE, "fp32",
                          (py, "-P", str(COMPUTE_SCRIPT), "--model", str(MODELS["fp32"]), "--threads", t,
                           str(work.large)), work.large_mp))
    out = out_root / "startup-upres"
    specs.append(Spec("startup-upres", f"start-up: upres run on {work.tiny_label}", STARTUP, UPRES,
                      "fp32", upres_argv(work.tiny, out, "fp32", threads), work.tiny_mp, out))
    specs.append(Spec("startup-imports", "start-up: import numpy, cv2, onnxruntime", STARTUP, IMPORTS,
                      "", (py, "-c", "import numpy, cv2, onnxruntime"), 0.0))
    return specs


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1][:300] if lines else "no output"


def _user_environment() -> dict[str, str]:
    """This process's environment as an installed user's shell has it: Python writes and reuses
    bytecode caches (`pip install` compiles them too), whatever PYTHONDONTWRITEBYTECODE says
    here; otherwise every contender would recompile its imports at each start."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def run_once(spec: Spec, cwd: Path) -> tuple[float, int | None]:
    """One timed run: (seconds, PNGs left in its output folder). Raises FileBenchError on failure."""
    if spec.out is not None:
        shutil.rmtree(spec.out, ignore_errors=True)
    start = time.perf_counter()
    try:
        proc = subprocess.run(spec.argv, cwd=cwd, capture_output=True, text=True,
                              timeout=RUN_TIMEOUT_S, check=False, env=_user_environment())
    except subprocess.TimeoutExpired:
        raise FileBenchError(f"ran over {RUN_TIMEOUT_S} s") from None
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise FileBenchError(f"exit code {proc.returncode}: {_last_line(proc.stderr or proc.stdout)}")
    if spec.kind == COMPUTE:
        try:
            seconds = float(json.loads(proc.stdout)["seconds"])
        except (ValueError, KeyError, TypeError):
            raise FileBenchError(f"no JSON seconds on stdout: {_last_line(proc.stdout)}") from None
    if spec.out is None:
        return seconds, None
    return seconds, len(list(spec.out.glob("*.png"))) if spec.out.is_dir() else 0


# ---- the run -----------------------------------------------------------------------------------


def _warm_up(work: Workload, threads: int, root: Path, say: Callable[[str], None]) -> None:
    for p in ("fp32", "int8"):
        say(f"warm-up: upres run {p.upper()} (untimed)")
        out = root / f"warmup-{p}"
        spec = Spec(f"warmup-{p}", "warm-up", STARTUP, UPRES, p, upres_argv(work.tiny, out, p, threads),
                    0.0, out)
        with contextlib.suppress(FileBenchError):  # the timed runs fail too, and say why
            run_once(spec, root)


def _repeat_order(specs: list[Spec], repeat: int, startup_runs: int) -> list[Spec]:
    """One repeat's runs: the long contenders rotated by ``repeat`` (no contender always runs
    first), then the start-up pair ``startup_runs`` times, in turn, the first alternating."""
    long = [s for s in specs if s.case != STARTUP]
    short = [s for s in specs if s.case == STARTUP]
    shift = repeat % max(1, len(long))
    order = long[shift:] + long[:shift]
    for k in range(max(1, startup_runs)):
        order += short if (repeat + k) % 2 == 0 else short[::-1]
    return order


def run_files(cfg: FileBenchConfig, progress: Callable[[str], None] | None = None) -> FileBenchResult:
    if cfg.repeats < 1 or cfg.count < 1:
        raise FileBenchError("the file bench needs repeats >= 1 and count >= 1")
    say = progress or (lambda _msg: None)
    t_start = time.perf_counter()
    started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    threads = cfg.resolved_threads()
    info = describe_machine()
    load_before = machine.load_average()
    with tempfile.TemporaryDirectory(prefix="upres-files-") as tmp:
        root = Path(tmp)
        say("writing the workload")
        work = build_workload(cfg, root / "in")
        specs = contender_specs(work, threads, root / "out")
        rows = {s.key: FileRow(s.key, s.name, s.case, s.kind, s.precision, s.output_mp,
                               command=shlex.join(s.argv)) for s in specs}
        if cfg.warmup:
            _warm_up(work, threads, root, say)
        busy0, own0, t0 = machine.cpu_busy_seconds(), machine.own_cpu_seconds(), time.perf_counter()
        for r in range(cfg.repeats):
            for spec in _repeat_order(specs, r, cfg.startup_runs):
                row = rows[spec.key]
                if row.status != "ok":
                    continue
                say(f"repeat {r + 1}/{cfg.repeats}: {spec.name}")
                try:
                    seconds, row.outputs = run_once(spec, root)
                except FileBenchError as exc:
                    row.status, row.reason = "failed", str(exc)
                    continue
                row.seconds.append(seconds)
        timed = time.perf_counter() - t0
        busy1 = machine.cpu_busy_seconds()  # children were waited for: their CPU is in own
        others = None
        if busy0 is not None and busy1 is not None and timed > 0:
            theirs = (busy1 - busy0) - (machine.own_cpu_seconds() - own0)
            others = max(0.0, theirs) / (timed * info["cores"])
        say("checking the outputs")
        checks = output_checks(specs, rows, work)
    return FileBenchResult(config=cfg.to_json(), machine=info, threads=threads,
                           workload=work.to_json(), rows=list(rows.values()), checks=checks,
                           started=started, seconds=time.perf_counter() - t_start,
                           load_before=load_before, load_after=machine.load_average(),
                           others_cpu_share=others)


def describe_machine() -> dict[str, Any]:
    """upres.bench.machine's description, with the runtime OpenCV version (cv2 reports its build,
    which pip metadata names under one of several package names) and without torch (unused here)."""
    info = machine.describe()
    versions = {k: v for k, v in info["versions"].items() if k != "torch" and not k.startswith("opencv")}
    versions["opencv"] = cv2.__version__
    return {**info, "versions": versions}
