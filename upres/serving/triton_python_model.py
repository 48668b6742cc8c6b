"""Triton Python-backend model that runs an exported tile model with ONNX Runtime on the CPU.

Copied as ``model.py`` next to ``model.onnx`` by :mod:`upres.serving.cpu_server`; it runs inside
Triton's Python backend stub (which provides ``triton_python_backend_utils``), never inside upres.
Requests that Triton's dynamic batcher hands over together are regrouped by tile shape, and each
group runs as one ONNX Runtime batch: tiles of the same size from different clients share a call.
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np
import onnxruntime as ort
import triton_python_backend_utils as pb_utils  # provided by Triton's Python backend


class TritonPythonModel:
    def initialize(self, args: dict[str, Any]) -> None:
        config = json.loads(args["model_config"])
        self.input_name = config["input"][0]["name"]
        self.output_name = config["output"][0]["name"]
        model = os.path.join(args["model_repository"], args["model_version"], "model.onnx")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = int(os.environ.get("UPRES_TRITON_THREADS", "0"))
        opts.inter_op_num_threads = 1
        # As in upres's own ONNX Runtime backend: same input, same bytes.
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])

    def execute(self, requests: list[Any]) -> list[Any]:
        tiles = [pb_utils.get_input_tensor_by_name(r, self.input_name).as_numpy() for r in requests]
        groups: dict[tuple[int, ...], list[int]] = {}
        for i, tile in enumerate(tiles):
            groups.setdefault(tile.shape[1:], []).append(i)
        outputs: list[np.ndarray | None] = [None] * len(tiles)
        for members in groups.values():
            batch = np.concatenate([tiles[i] for i in members])
            result = self.session.run([self.output_name], {self.input_name: batch})[0]
            start = 0
            for i in members:
                n = len(tiles[i])
                outputs[i] = result[start : start + n]
                start += n
        return [pb_utils.InferenceResponse([pb_utils.Tensor(self.output_name, out)]) for out in outputs]
