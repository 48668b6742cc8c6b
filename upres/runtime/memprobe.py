"""Measure one model's memory on one tile size, in a fresh process; prints a JSON line.

    python -m upres.runtime.memprobe MODEL SIDE BACKEND THREADS

{"rss_start": after imports, "rss_loaded": after session creation, "peak": peak RSS over two
runs on a random (1, C, SIDE, SIDE) input}. The parent takes peak - rss_loaded as the cost of
one tile. Must stay free of torch: its import alone would swamp the numbers.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from upres.runtime.backends.onnxruntime_backend import OrtBackend
from upres.runtime.memory import current_rss, peak_rss, reset_peak_rss


def probe(model: Path, side: int, backend: str, threads: int) -> dict[str, int]:
    rss_start = current_rss()
    session = OrtBackend(model, backend, threads)
    shape = session.session.get_inputs()[0].shape
    channels = shape[1] if len(shape) > 1 and isinstance(shape[1], int) else 3
    rss_loaded = current_rss()
    # Graph optimisation while loading can peak above what a run needs; start the peak afresh
    # (where the kernel refuses, the peak just stays conservative).
    reset_peak_rss()
    x = np.random.default_rng(0).random((1, channels, side, side), dtype=np.float32)
    out = session.run(x)
    del out
    # The second run: ORT plans its memory pattern on the first and may allocate it on the next.
    out = session.run(x)
    del out
    return {"rss_start": rss_start, "rss_loaded": rss_loaded, "peak": peak_rss(), "side": side,
            "channels": channels}


def main(argv: list[str]) -> int:
    if len(argv) != 4:
        print("usage: python -m upres.runtime.memprobe MODEL SIDE BACKEND THREADS",
              file=sys.stderr)
        return 2
    model, side, backend, threads = argv
    print(json.dumps(probe(Path(model), int(side), backend, int(threads))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
