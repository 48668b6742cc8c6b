"""Bare compute of the file-to-file bench: only `session.run`, what no file pipeline can beat.

    python upres/bench/file_compute.py --model M.onnx [--threads N] IMAGE...

Decodes every image and creates the session before the clock starts, then times one `run` per
whole image and prints {"seconds": total, "per_image": [...]} as JSON on stdout. The session has
upres's own options (one inter-op thread, no spinning) so the ratio to `upres run` is the cost of
upres's file handling and tiling, not a difference in ONNX Runtime settings.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="file_compute", description="Time session.run only.")
    parser.add_argument("images", type=Path, nargs="+")
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args(argv)

    inputs = []
    for path in args.images:
        bgr = cv2.imread(str(path))
        if bgr is None:
            print(f"file_compute: cannot read {path}", file=sys.stderr)
            return 1
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        inputs.append(np.ascontiguousarray((rgb.astype(np.float32) / 255.0).transpose(2, 0, 1)[None]))
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = args.threads
    opts.inter_op_num_threads = 1
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(str(args.model), opts, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    per_image = []
    for x in inputs:
        start = time.perf_counter()
        out = session.run(None, {name: x})
        per_image.append(time.perf_counter() - start)
        del out  # a 48 MP float output is 576 MB: free it before the next image
    print(json.dumps({"seconds": sum(per_image), "per_image": per_image}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
