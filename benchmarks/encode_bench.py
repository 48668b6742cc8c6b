"""The encoders' size/speed trade-off on real upscaled outputs (docs/RUNTIME.md, "Encoding").

    python benchmarks/encode_bench.py [--datasets ../shared/datasets] [--count 10] [--json F]

The first COUNT BSD100 photos, resized to 640x480 and upscaled x4 by the shipped coarse-x4 model
(the outputs of the file-to-file benchmark), are encoded with each `--compression` setting, on one
thread and on every core, as PNG and TIFF; beside them the encoders upres used before (OpenCV's
level-6 PNG, zlib level 6 TIFF strips) and OpenCV's default PNG (what a naive loop writes). Every
file is decoded again and compared with the samples, so a fast encoder cannot cheat.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
import tifffile

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from upres.bench import machine  # noqa: E402
from upres.core.parallel import available_cores  # noqa: E402
from upres.imageio import Compression, Encoding, ImageMeta, write_samples  # noqa: E402


def outputs(datasets: Path, count: int) -> list[np.ndarray]:
    session = ort.InferenceSession(str(ROOT / "upres" / "weights" / "coarse-x4.onnx"),
                                   providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    result = []
    for path in sorted((datasets / "BSD100").glob("*.png"))[:count]:
        bgr = cv2.imread(str(path))
        if bgr.shape[0] > bgr.shape[1]:
            bgr = cv2.rotate(bgr, cv2.ROTATE_90_CLOCKWISE)
        rgb = cv2.resize(bgr, (640, 480), interpolation=cv2.INTER_AREA)[..., ::-1]
        x = np.ascontiguousarray(rgb.transpose(2, 0, 1)[None], dtype=np.float32) / 255
        y = session.run(None, {name: x})[0][0].transpose(1, 2, 0)
        result.append(np.rint(np.clip(y, 0, 1) * 255).astype(np.uint8))
    return result


def _meta(samples: np.ndarray) -> ImageMeta:
    return ImageMeta(mode="rgb", bit_depth=8, has_alpha=False, icc_profile=None, dpi=None,
                     exif=None, source_format="PNG", width=samples.shape[1], height=samples.shape[0])


def _measure(images: list[np.ndarray], encode: Callable[[np.ndarray, Path], None],
             suffix: str, folder: Path) -> dict[str, float]:
    seconds, size = 0.0, 0
    for i, samples in enumerate(images):
        path = folder / f"{i}{suffix}"
        start = time.perf_counter()
        encode(samples, path)
        seconds += time.perf_counter() - start
        size += path.stat().st_size
        back = tifffile.imread(path) if suffix == ".tif" else cv2.imread(str(path))[..., ::-1]
        if not np.array_equal(back, samples):
            raise SystemExit(f"{path}: the decoded file differs from the samples")
    megapixels = sum(s.shape[0] * s.shape[1] for s in images) / 1e6
    return {"seconds": round(seconds, 3), "mp_per_s": round(megapixels / seconds, 1),
            "megabytes": round(size / 1e6, 2)}


_ZLIB_TIFF = """
import sys, time, json
import numpy as np
sys.modules["imagecodecs"] = None  # tifffile then deflates with Python's zlib, as before
import tifffile
seconds = 0.0
for path in sys.argv[1:]:
    samples = np.load(path)
    start = time.perf_counter()
    tifffile.imwrite(path + ".tif", samples, compression="zlib", predictor=True, metadata=None)
    seconds += time.perf_counter() - start
print(json.dumps(seconds))
"""


def _zlib_tiff_row(images: list[np.ndarray], folder: Path) -> dict[str, float]:
    """Today's TIFF encoder as upres had it before imagecodecs was a dependency: tifffile on
    Python's zlib (level 6), one thread; in a process of its own, where imagecodecs is hidden."""
    paths = []
    for i, samples in enumerate(images):
        paths.append(str(folder / f"zlib{i}.npy"))
        np.save(paths[-1], samples)
    done = subprocess.run([sys.executable, "-c", _ZLIB_TIFF, *paths], check=True,
                          capture_output=True, text=True)
    seconds = float(done.stdout)
    size = 0
    for path, samples in zip(paths, images, strict=True):
        if not np.array_equal(tifffile.imread(path + ".tif"), samples):
            raise SystemExit(f"{path}.tif: the decoded file differs from the samples")
        size += Path(path + ".tif").stat().st_size
    megapixels = sum(s.shape[0] * s.shape[1] for s in images) / 1e6
    return {"seconds": round(seconds, 3), "mp_per_s": round(megapixels / seconds, 1),
            "megabytes": round(size / 1e6, 2)}


def run(datasets: Path, count: int) -> dict[str, object]:
    images = outputs(datasets, count)
    rows: dict[str, dict[str, float]] = {}
    cores = available_cores()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)

        def cv2_png(level: int) -> Callable[[np.ndarray, Path], None]:
            return lambda s, p: cv2.imwrite(str(p), s[..., ::-1], [cv2.IMWRITE_PNG_COMPRESSION, level])

        rows["PNG: OpenCV level 6 (upres before)"] = _measure(images, cv2_png(6), ".png", folder)
        rows["PNG: OpenCV default (the naive loop)"] = _measure(
            images, lambda s, p: cv2.imwrite(str(p), s[..., ::-1]), ".png", folder)
        rows["TIFF: zlib level 6 strips (upres before)"] = _zlib_tiff_row(images, folder)
        for fmt, suffix in (("png", ".png"), ("tiff", ".tif")):
            for compression in Compression:
                for threads in (1, cores):
                    encoding = Encoding(compression, threads)
                    label = f"{fmt.upper()}: --compression {compression.value}, {threads} thread(s)"
                    rows[label] = _measure(images, lambda s, p, e=encoding, f=fmt: write_samples(
                        p, s, _meta(s), 1, f, e), suffix, folder)
    png_before = rows["PNG: OpenCV level 6 (upres before)"]
    tiff_before = rows["TIFF: zlib level 6 strips (upres before)"]
    for label, row in rows.items():
        before = png_before if label.startswith("PNG") else tiff_before
        row["speed_vs_before"] = round(row["mp_per_s"] / before["mp_per_s"], 2)
        row["size_vs_before"] = round(row["megabytes"] / before["megabytes"], 3)
    return {"images": count, "megapixels": round(sum(s.shape[0] * s.shape[1] for s in images) / 1e6, 1),
            "cpu": machine.one_line(machine.describe()), "rows": rows}


def markdown(result: dict[str, object]) -> str:
    lines = ["| encoder | MP/s | x before | size MB | x before |", "|---|---|---|---|---|"]
    for label, row in result["rows"].items():  # type: ignore[union-attr]
        lines.append(f"| {label} | {row['mp_per_s']} | {row['speed_vs_before']}x | "
                     f"{row['megabytes']} | {row['size_vs_before']}x |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=Path, default=ROOT.parent / "shared" / "datasets")
    parser.add_argument("--count", type=int, default=10)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if not (args.datasets / "BSD100").is_dir():
        print(f"--datasets {args.datasets}: no BSD100 folder", file=sys.stderr)
        return 2
    result = run(args.datasets, args.count)
    print(result.get("cpu", ""))
    print(markdown(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
