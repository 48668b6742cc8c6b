"""Soak test: thousands of small images through one BatchRunner; resident memory must stay flat.

    python benchmarks/soak.py                        # 2,000 images, faithful x2
    python benchmarks/soak.py --images 200 --prefix /tmp/soak   # a quick look

Inputs are 32..64 px crops of the bundled sample (sizes vary, so the planner, ORT and the
allocators see many shapes). A thread samples RSS from /proc/self/statm. After a warm-up (the
first 10% of images) the median RSS of the first 10% of the remaining samples is compared with
that of the last 10%; growth above --max-growth (5%) fails the run (exit code 1).
Writes PREFIX.json (samples + verdict), PREFIX.csv and PREFIX.png (matplotlib if installed,
else drawn with Pillow).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from upres.batch import BatchRunner, ImageResult, Progress, RunOptions
from upres.runtime.chain_factory import build_chain
from upres.runtime.inputs import collect_jobs
from upres.runtime.lock import OutdirLock
from upres.runtime.memory import default_memory_target

SAMPLE = Path(__file__).resolve().parents[1] / "upres" / "samples" / "sample.png"
PAGE = os.sysconf("SC_PAGE_SIZE")


@dataclass
class Sample:
    seconds: float
    images: int
    rss_mib: float


def rss_bytes() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * PAGE


class Counter(Progress):
    def __init__(self) -> None:
        self.images = 0
        self.failed = 0

    def image_finished(self, result: ImageResult) -> None:
        self.images += 1
        self.failed += result.status == "failed"


class Sampler(threading.Thread):
    """RSS every ``interval`` seconds, tagged with the number of images finished so far."""

    def __init__(self, counter: Counter, interval: float) -> None:
        super().__init__(daemon=True)
        self.counter, self.interval = counter, interval
        self.samples: list[Sample] = []
        self._stop_event = threading.Event()
        self._t0 = time.monotonic()

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.take()
            self._stop_event.wait(self.interval)

    def take(self) -> None:
        self.samples.append(Sample(round(time.monotonic() - self._t0, 3), self.counter.images,
                                   round(rss_bytes() / 2**20, 2)))

    def stop(self) -> None:
        self._stop_event.set()
        self.join()
        self.take()


def make_inputs(folder: Path, count: int, smallest: int, largest: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    with Image.open(SAMPLE) as im:
        photo = im.convert("RGB")
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        w, h = (int(v) for v in rng.integers(smallest, largest + 1, 2))
        x, y = int(rng.integers(0, photo.width - w)), int(rng.integers(0, photo.height - h))
        photo.crop((x, y, x + w, y + h)).save(folder / f"s{i:05d}.png", compress_level=1)


def verdict(samples: list[Sample], total: int, max_growth: float) -> dict[str, float | bool]:
    """Median RSS just after warm-up vs at the end (10% windows of the post-warm-up samples)."""
    steady = [s for s in samples if s.images >= total // 10]
    window = max(1, len(steady) // 10)
    early = statistics.median(s.rss_mib for s in steady[:window])
    late = statistics.median(s.rss_mib for s in steady[-window:])
    growth = (late - early) / early
    return {"early_median_mib": early, "late_median_mib": late, "growth": round(growth, 4),
            "max_growth": max_growth, "flat": growth <= max_growth,
            "peak_mib": max(s.rss_mib for s in samples)}


def write_csv(path: Path, samples: list[Sample]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["seconds", "images", "rss_mib"])
        writer.writerows((s.seconds, s.images, s.rss_mib) for s in samples)


def plot(path: Path, samples: list[Sample], summary: dict[str, float | bool], title: str) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        _plot_with_pillow(path, samples, summary, title)
        return
    fig, ax = plt.subplots(figsize=(8, 3.5), dpi=100)
    total = max(s.images for s in samples)
    ax.axvspan(0, total // 10, color="0.9", label="warm-up (not judged)")
    ax.plot([s.images for s in samples], [s.rss_mib for s in samples], lw=1, label="RSS")
    ax.text(0.98, 0.08, f"after warm-up: {summary['early_median_mib']:.0f} -> "
            f"{summary['late_median_mib']:.0f} MiB ({float(summary['growth']) * 100:+.1f}%)",
            transform=ax.transAxes, ha="right")
    ax.set(xlabel="images finished", ylabel="RSS (MiB)", title=title, ylim=(0, None))
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path)


def _plot_with_pillow(path: Path, samples: list[Sample], summary: dict[str, float | bool],
                      title: str) -> None:
    """A plain line chart: RSS (MiB) against images finished, y axis from 0."""
    width, height, left, right, top, bottom = 800, 360, 70, 20, 40, 50
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    x_max = max(1, max(s.images for s in samples))
    y_max = max(s.rss_mib for s in samples) * 1.15

    def xy(images: float, mib: float) -> tuple[float, float]:
        return (left + (width - left - right) * images / x_max,
                height - bottom - (height - top - bottom) * mib / y_max)

    for i in range(6):  # horizontal grid lines with MiB labels
        mib = y_max * i / 5
        _, y = xy(0, mib)
        draw.line([(left, y), (width - right, y)], fill=(225, 225, 225))
        draw.text((8, y - 6), f"{mib:5.0f}", fill="black")
    for i in range(6):
        images = x_max * i / 5
        x, _ = xy(images, 0)
        draw.text((x - 12, height - bottom + 6), f"{images:.0f}", fill="black")
    draw.rectangle([left, top, width - right, height - bottom], outline="black")
    draw.line([xy(s.images, s.rss_mib) for s in samples], fill=(31, 119, 180), width=2)
    draw.text((left, 12), title, fill="black")
    draw.text((width // 2 - 50, height - 20), "images finished", fill="black")
    draw.text((8, top - 22), "RSS MiB", fill="black")
    note = (f"after warm-up: {summary['early_median_mib']:.0f} -> {summary['late_median_mib']:.0f} "
            f"MiB ({float(summary['growth']) * 100:+.1f}%)")
    draw.text((width - right - 7 * len(note), top + 8), note, fill="black")
    image.save(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--min-size", type=int, default=32)
    parser.add_argument("--max-size", type=int, default=64)
    parser.add_argument("--mode", default="faithful")
    parser.add_argument("--scale", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--interval", type=float, default=0.5, help="RSS sampling period (s)")
    parser.add_argument("--max-growth", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--prefix", type=Path, default=Path("docs/reliability_soak"),
                        help="writes PREFIX.json, PREFIX.csv and PREFIX.png")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="upres-soak-") as tmp:
        src, out = Path(tmp) / "in", Path(tmp) / "out"
        make_inputs(src, args.images, args.min_size, args.max_size, args.seed)
        jobs = collect_jobs([str(src)], out)
        setup = build_chain(args.mode, args.scale, None, 0.5, "ort-cpu", "fp32", args.threads)
        counter = Counter()
        runner = BatchRunner(setup, RunOptions(memory=default_memory_target(), threads=args.threads),
                             counter)
        out.mkdir(parents=True)
        sampler = Sampler(counter, args.interval)
        t0 = time.monotonic()
        sampler.start()
        with OutdirLock(out):
            report = runner.run(jobs, lambda message: print(f"failed: {message}", file=sys.stderr))
        sampler.stop()
        seconds = time.monotonic() - t0

    summary = verdict(sampler.samples, args.images, args.max_growth)
    title = (f"upres soak: {args.images} images {args.min_size}-{args.max_size} px, "
             f"{args.mode} x{args.scale}, one process")
    record = {"args": {k: str(v) for k, v in vars(args).items()}, "seconds": round(seconds, 1),
              "counts": report.counts(), "summary": summary,
              "samples": [asdict(s) for s in sampler.samples]}
    args.prefix.parent.mkdir(parents=True, exist_ok=True)
    Path(f"{args.prefix}.json").write_text(json.dumps(record, indent=1) + "\n")
    write_csv(Path(f"{args.prefix}.csv"), sampler.samples)
    plot(Path(f"{args.prefix}.png"), sampler.samples, summary, title)
    print(json.dumps({"seconds": record["seconds"], "counts": record["counts"], **summary}))
    return 0 if summary["flat"] and not report.failed else 1


if __name__ == "__main__":
    sys.exit(main())
