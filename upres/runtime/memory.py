"""Process RSS and measured per-model memory costs for the tile planner.

A model's memory cost is measured, not guessed: a fresh subprocess (`upres.runtime.memprobe`)
runs it on a few tile sizes and reports how far its RSS climbs above the loaded session. A line
fitted through those samples predicts the cost of any tile; it is cached by the model's sha256.
"""

from __future__ import annotations

import json
import math
import os
import resource
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Standard library only: the probe subprocess imports this module and must stay light.
from upres.core.cache import cache_dir, read_json, write_atomic
from upres.core.sizes import GIB, KIB, MIB

# Bump when the probe or the fit changes meaning, so stale cache files are measured again.
_CACHE_VERSION = 2  # 2: sessions without a memory pattern, the allocator keeping freed blocks


def _proc_kib(path: str, key: str) -> int | None:
    """A "Key:   123 kB" line of a /proc file, in bytes; None where /proc is missing (not Linux)."""
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * KIB
    except (OSError, ValueError, IndexError):
        return None
    return None


def available_memory() -> int:
    """Memory the kernel could hand out now without swapping (MemAvailable counts page cache)."""
    avail = _proc_kib("/proc/meminfo", "MemAvailable")
    if avail is not None:
        return avail
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def default_memory_target() -> int:
    """Half of what is available (the rest stays for the OS and other jobs), 256 MiB..8 GiB."""
    return max(256 * MIB, min(8 * GIB, available_memory() // 2))


def current_rss() -> int:
    """Resident set size of this process now."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        # No /proc (macOS): the peak is the best upper bound the standard library offers.
        return peak_rss()


# How far a process's RSS before its first image may move from run to run and still be planned
# as the same (it moves by a MiB or two, and with what was imported: a quiet run holds less).
BASELINE_SLACK = 8 * MIB
_BASELINES_KEPT = 16


def steady_baseline(key: str, measured: int) -> int:
    """The process baseline a plan counts for one command (``key``: its models, precision,
    backend and threads): the first baseline ever measured for it within BASELINE_SLACK of
    ``measured`` (kept in the user cache), plus BASELINE_SLACK. So the same command plans the
    same tiles, halos and output format on every run, where a tight --memory would otherwise let
    the moving RSS change them (and, feathered, the bytes); a process of another size (a large
    Python program calling the API) keeps its own."""
    path = cache_dir() / "baseline" / f"{key}.json"
    entry = read_json(path)
    kept = entry.get("rss") if isinstance(entry, dict) and entry.get("version") == _CACHE_VERSION else None
    seen = [v for v in kept if isinstance(v, int) and v > 0] if isinstance(kept, list) else []
    for first in seen:
        if abs(measured - first) <= BASELINE_SLACK:
            return first + BASELINE_SLACK
    seen = [*seen, measured][-_BASELINES_KEPT:]
    write_atomic(path, json.dumps({"version": _CACHE_VERSION, "rss": seen}))  # unkept if unwritable
    return measured + BASELINE_SLACK


def peak_rss() -> int:
    """Peak RSS of this process.

    VmHWM first: on Linux ru_maxrss survives exec, so a child started from a big parent would
    report the parent's peak; VmHWM belongs to this address space only (and can be reset).
    """
    hwm = _proc_kib("/proc/self/status", "VmHWM")
    if hwm is not None:
        return hwm
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return maxrss if sys.platform == "darwin" else maxrss * KIB  # macOS reports bytes


def reset_peak_rss() -> bool:
    """Restart VmHWM from the current RSS (Linux >= 4.0); False where the kernel won't."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


@dataclass(frozen=True)
class MemoryModel:
    """Peak extra bytes of one model run as a line in the number of input pixels of the tile."""

    base: float
    per_pixel: float
    samples: tuple[tuple[int, int], ...]  # (input pixels, measured peak extra bytes)
    session: int = 0  # RSS the loaded session itself adds (weights, graph), not part of a run

    def estimate(self, pixels: int) -> int:
        return max(0, math.ceil(self.base + self.per_pixel * pixels))

    @classmethod
    def fit(cls, samples: list[tuple[int, int]] | tuple[tuple[int, int], ...],
            session: int = 0) -> MemoryModel:
        """Least squares line through (pixels, bytes); a negative slope is noise, so it is 0."""
        pts = tuple((int(p), int(b)) for p, b in samples)
        if not pts:
            raise ValueError("cannot fit a memory model without samples")
        n = len(pts)
        mean_p = sum(p for p, _ in pts) / n
        mean_b = sum(b for _, b in pts) / n
        var = sum((p - mean_p) ** 2 for p, _ in pts)
        if var == 0:
            # One tile size only: all of it is assumed to scale with the tile (the safe reading).
            return cls(0.0, mean_b / mean_p if mean_p else 0.0, pts, session)
        slope = sum((p - mean_p) * (b - mean_b) for p, b in pts) / var
        slope = max(0.0, slope)
        return cls(mean_b - slope * mean_p, slope, pts, session)

    def to_dict(self) -> dict[str, Any]:
        return {"version": _CACHE_VERSION, "base": self.base, "per_pixel": self.per_pixel,
                "samples": [list(s) for s in self.samples], "session": self.session}

    @classmethod
    def from_dict(cls, data: Any) -> MemoryModel:
        """The model a cache entry holds; ValueError for anything this version did not write."""
        if not isinstance(data, dict) or data.get("version") != _CACHE_VERSION:
            found = data.get("version") if isinstance(data, dict) else type(data).__name__
            raise ValueError(f"memory model cache version {found!r}")
        try:
            samples = tuple((_count(p), _count(b)) for p, b in data["samples"])
            model = cls(_number(data["base"]), _number(data["per_pixel"]), samples,
                        _count(data.get("session", 0)))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"damaged memory model cache entry ({type(exc).__name__}: {exc})") from None
        if not samples or model.per_pixel < 0:
            raise ValueError("damaged memory model cache entry (no samples or a negative slope)")
        return model


def _number(value: Any) -> float:
    # float() would take "12" or true; an entry holding those was not written by this code.
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{value!r} is not a finite number")
    return float(value)


def _count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{value!r} is not a count")
    return value


def memory_cache_path(sha256: str, backend: str = "ort-cpu", precision: str = "fp32") -> Path:
    return cache_dir() / "memory" / f"{sha256}-{backend}-{precision}.json"


def probe_once(model_path: Path, side: int, backend: str = "ort-cpu", threads: int = 1,
               timeout: float = 300.0) -> dict[str, int]:
    """Run `python -m upres.runtime.memprobe` once: a fresh process, so no earlier run's arena or
    allocator caches hide the cost. Returns its JSON report."""
    root = str(Path(__file__).resolve().parents[2])  # the directory holding the `upres` package
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    cmd = [sys.executable, "-m", "upres.runtime.memprobe", str(model_path), str(side), backend,
           str(threads)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-5:]
        raise RuntimeError(f"memory probe of {model_path} at {side}px failed "
                           f"(exit {proc.returncode}): " + " | ".join(tail))
    return json.loads(proc.stdout.strip().splitlines()[-1])


def measure_memory_model(
    model_path: Path,
    sha256: str,
    backend: str = "ort-cpu",
    precision: str = "fp32",
    sides: tuple[int, ...] = (48, 96, 160),
    threads: int = 1,
) -> MemoryModel:
    """Measured memory model of one ONNX file on one backend, cached by its sha256."""
    path = memory_cache_path(sha256, backend, precision)
    entry = read_json(path)
    if entry is not None:
        try:
            return MemoryModel.from_dict(entry)
        except ValueError:
            pass  # stale or damaged: measured again below, and the entry overwritten
    samples = []
    session = 0
    for side in sides:
        report = probe_once(Path(model_path), side, backend, threads)
        samples.append((side * side, max(0, report["peak"] - report["rss_loaded"])))
        session = max(session, report.get("rss_loaded", 0) - report.get("rss_start", 0))
    model = MemoryModel.fit(samples, session)
    write_atomic(path, json.dumps(model.to_dict(), indent=2))  # not saved where it cannot be
    return model
