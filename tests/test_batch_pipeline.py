"""The pipelined batch: same bytes whatever the thread counts, outputs in order, one plan per
image."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from support import SAMPLE

from upres.batch import BatchRunner, ImageResult, Progress, RunOptions
from upres.imageio import Compression
from upres.runtime.chain_factory import build_chain
from upres.runtime.inputs import collect_jobs


def _inputs(folder: Path, sizes: list[tuple[int, int]]) -> None:
    folder.mkdir(parents=True)
    with Image.open(SAMPLE) as im:
        rgb = im.convert("RGB").resize((700, 600))
    for i, (w, h) in enumerate(sizes):
        rgb.crop((i * 5, i * 3, i * 5 + w, i * 3 + h)).save(folder / f"{i}.png")


def _run(src: Path, out: Path, threads: int, encode_threads: int,
         compression: Compression = Compression.DEFAULT) -> list[ImageResult]:
    setup = build_chain("faithful", 2, None, 0.5, "ort-cpu", "fp32", threads)
    out.mkdir()
    opts = RunOptions(memory=1 << 32, encode_threads=encode_threads, compression=compression,
                      threads=threads)
    report = BatchRunner(setup, opts).run(collect_jobs([str(src)], out), print)
    assert report.counts()["done"] == len(report.results)
    return report.results


def test_bytes_do_not_depend_on_inference_or_encoder_threads(tmp_path: Path) -> None:
    # Outputs of 1.2-1.9 MP x2: several compressed strips each, so the encoder pool splits them.
    _inputs(tmp_path / "in", [(640, 480), (500, 420), (600, 500)])
    runs = {}
    for threads, encode_threads in ((1, 1), (2, 2), (2, 3)):
        out = tmp_path / f"out-{threads}-{encode_threads}"
        _run(tmp_path / "in", out, threads, encode_threads)
        runs[(threads, encode_threads)] = {p.name: p.read_bytes() for p in sorted(out.glob("*.png"))}
    first, *others = runs.values()
    assert len(first) == 3
    for other in others:
        assert other == first


def test_every_compression_writes_the_same_pixels_as_the_reference_encoder(tmp_path: Path) -> None:
    _inputs(tmp_path / "in", [(300, 200)])
    pixels = []
    for compression in Compression:
        out = tmp_path / compression.value
        _run(tmp_path / "in", out, 2, 0, compression)
        pixels.append(np.asarray(Image.open(out / "0.png")))
    assert all(np.array_equal(pixels[0], p) for p in pixels[1:])


def test_outputs_finish_in_order_and_each_image_is_planned_once(tmp_path: Path) -> None:
    _inputs(tmp_path / "in", [(120, 100), (90, 80), (130, 110), (60, 50)])
    finished: list[str] = []
    plans = 0

    class Counting(BatchRunner):
        def plan(self, *args: object, **kwargs: object):  # type: ignore[no-untyped-def]
            nonlocal plans
            plans += 1
            return super().plan(*args, **kwargs)  # type: ignore[arg-type]

    class Order(Progress):
        def image_finished(self, result: ImageResult) -> None:
            finished.append(Path(result.source).name)

    setup = build_chain("faithful", 2, None, 0.5, "ort-cpu", "fp32", 1)
    (tmp_path / "out").mkdir()
    runner = Counting(setup, RunOptions(memory=1 << 32), Order())
    report = runner.run(collect_jobs([str(tmp_path / "in")], tmp_path / "out"), print)
    assert report.counts()["done"] == 4
    assert finished == ["0.png", "1.png", "2.png", "3.png"]
    assert plans == 4
