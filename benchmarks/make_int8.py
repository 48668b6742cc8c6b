"""Build the shipped INT8 models from the shipped FP32 ones (rerun whenever the weights change).

    python benchmarks/make_int8.py [--datasets ../shared/datasets] [--models coarse-x2 coarse-x4]
    python benchmarks/make_int8.py --check   # exit 1 if an INT8 file was made from other FP32 weights

Writes upres/weights/{name}.int8.onnx and {name}.int8.json. Calibration and held-out crops come from
the TRAINING images only (T91 + BSD200, split by whole image); the test sets (Set5, Set14) are used
only afterwards, to score FP32 and INT8 with the standard protocol (Y-PSNR, shave = scale), and those
scores are added to the JSON report. BSD100 is never read.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rich.console import Console

from upres.calibration.benchmark import score_test_sets
from upres.calibration.int8 import calibrate_int8
from upres.cli.render_calibration import calibration_table, progress_bar
from upres.core.hashing import file_sha256
from upres.core.model import read_info, read_props
from upres.runtime.catalog import builtin_path

ROOT = Path(__file__).resolve().parents[1]
TRAIN_SETS = ("T91", "BSD200")
TEST_SETS = ("Set5", "Set14")


def _exclude_for(name: str) -> list[str] | str:
    """A restoration model keeps the nodes its clean twin keeps in float, so the two INT8 graphs
    have the same tensors and can be interpolated (--denoise); the others choose for themselves."""
    if not name.startswith("restore-"):
        return "auto"
    twin = builtin_path(name.replace("restore-", "coarse-"), "int8").with_suffix(".json")
    return list(json.loads(twin.read_text())["excluded_nodes"])


def make(name: str, datasets: Path, samples: int, method: str, seed: int, max_loss_db: float) -> bool:
    src, out = builtin_path(name, "fp32"), builtin_path(name, "int8")
    report = calibrate_int8(src, [datasets / s for s in TRAIN_SETS], out, samples=samples, method=method,
                            exclude=_exclude_for(name), max_loss_db=max_loss_db, seed=seed,
                            progress=progress_bar)
    Console().print(calibration_table(report))
    info = read_info(src)
    scale = info.scale if info else _scale(name)
    report.evaluation = score_test_sets({"fp32": src, "int8": out}, scale, [datasets / n for n in TEST_SETS])
    # Relative paths: the report ships inside the package and must not name this machine's folders.
    report.model, report.output = str(src.relative_to(ROOT)), str(out.relative_to(ROOT))
    report.write_json(out.with_suffix(".json"))
    Console().print(f"{name}: " + ", ".join(
        f"{k} FP32 {v['fp32']['psnr']:.3f} / INT8 {v['int8']['psnr']:.3f} dB (loss {v['loss_db']:+.3f})"
        for k, v in report.evaluation.items()), highlight=False)
    return report.target_met and all(v["loss_db"] <= max_loss_db for v in report.evaluation.values())


def stale(name: str) -> str | None:
    """Why the shipped INT8 model does not match the shipped FP32 one, or None."""
    src, out = builtin_path(name, "fp32"), builtin_path(name, "int8")
    if not out.is_file():
        return f"{out.name} missing"
    made_from = read_props(out).get("upres.calibration.source_sha256", "")
    if made_from != file_sha256(src):
        return f"{out.name} was calibrated from {made_from[:12]}, {src.name} is now {file_sha256(src)[:12]}"
    return None


def _scale(name: str) -> int:
    return int(name.rsplit("x", 1)[1])


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", type=Path, default=ROOT.parent / "shared" / "datasets")
    parser.add_argument("--models", nargs="+", default=["coarse-x2", "coarse-x4", "restore-x2", "restore-x4"])
    parser.add_argument("--samples", type=int, default=256)
    parser.add_argument("--method", default="minmax", choices=["minmax", "entropy", "percentile"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-loss-db", type=float, default=0.3)
    parser.add_argument("--check", action="store_true", help="only check the INT8 files are current")
    args = parser.parse_args()
    if args.check:
        problems = [p for p in map(stale, args.models) if p]
        for p in problems:
            print(f"stale: {p} (rerun python benchmarks/make_int8.py)", file=sys.stderr)
        return 1 if problems else 0
    for folder in [*TRAIN_SETS, *TEST_SETS]:
        if not (args.datasets / folder).is_dir():
            print(f"error: {args.datasets / folder} not found (--datasets)", file=sys.stderr)
            return 2
    ok = [make(n, args.datasets, args.samples, args.method, args.seed, args.max_loss_db) for n in args.models]
    return 0 if all(ok) else 1


if __name__ == "__main__":
    raise SystemExit(main())
