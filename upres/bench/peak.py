"""The machine's limit as ONNX Runtime reaches it: one large GEMM in FP32 and in INT8.

A contender's achieved GFLOP/s is only meaningful next to what the same library can do on the
same cores with the same thread count, so the peak is measured through ONNX Runtime (MLAS), not
taken from a datasheet: MatMul for FP32, MatMulInteger (u8 x s8 -> s32, the kernel family
QLinearConv uses) for INT8. One "op" = one multiply or one add, so an n^3 GEMM is 2n^3 ops.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from upres.bench.stats import Spread

OPSET = 17


def gemm_model(n: int, precision: str, seed: int = 0) -> bytes:
    """A (n x n) @ (n x n) model; B is a constant, as a layer's weights are."""
    rng = np.random.default_rng(seed)
    if precision == "fp32":
        b = numpy_helper.from_array(rng.standard_normal((n, n)).astype(np.float32), "B")
        node = helper.make_node("MatMul", ["A", "B"], ["Y"])
        a_type, y_type, inits = TensorProto.FLOAT, TensorProto.FLOAT, [b]
    elif precision == "int8":
        b = numpy_helper.from_array(rng.integers(-127, 128, (n, n), dtype=np.int8), "B")
        # A non-zero activation zero point, as a quantized ReLU network has (u8 activations).
        a_zp = numpy_helper.from_array(np.array(128, np.uint8), "a_zp")
        b_zp = numpy_helper.from_array(np.array(0, np.int8), "b_zp")
        node = helper.make_node("MatMulInteger", ["A", "B", "a_zp", "b_zp"], ["Y"])
        a_type, y_type, inits = TensorProto.UINT8, TensorProto.INT32, [b, a_zp, b_zp]
    else:
        raise ValueError(f"precision must be fp32 or int8, got {precision!r}")
    graph = helper.make_graph([node], f"gemm_{precision}_{n}",
                              [helper.make_tensor_value_info("A", a_type, [n, n])],
                              [helper.make_tensor_value_info("Y", y_type, [n, n])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def session(model: bytes, threads: int) -> ort.InferenceSession:
    """Session options as upres's OrtBackend sets them, so the peak is the run path's ceiling."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])


@dataclass
class GemmProbe:
    """One precision's GEMM, timed a few runs at a time so runs can interleave with contenders."""

    n: int
    precision: str
    threads: int
    seconds: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._sess = session(gemm_model(self.n, self.precision), self.threads)
        rng = np.random.default_rng(1)
        if self.precision == "fp32":
            self._a: np.ndarray = rng.standard_normal((self.n, self.n)).astype(np.float32)
        else:
            self._a = rng.integers(0, 256, (self.n, self.n), dtype=np.uint8)
        self._run()  # warm-up: first run allocates and packs B

    def _run(self) -> float:
        t0 = time.perf_counter()
        self._sess.run(None, {"A": self._a})
        return time.perf_counter() - t0

    def measure(self, runs: int = 1) -> None:
        self.seconds.extend(self._run() for _ in range(runs))

    @property
    def ops(self) -> float:
        return 2.0 * self.n**3

    def gflops(self) -> Spread:
        """GFLOP/s (GOP/s for INT8) of the timed runs: median and min..max."""
        return Spread.of([self.ops / s / 1e9 for s in self.seconds])


def measure_peak(threads: int, n: int = 2048, runs: int = 5,
                 precisions: tuple[str, ...] = ("fp32", "int8")) -> dict[str, Spread]:
    """Standalone probe: median GFLOP/s of `runs` GEMMs per precision."""
    result = {}
    for precision in precisions:
        probe = GemmProbe(n, precision, threads)
        probe.measure(runs)
        result[precision] = probe.gflops()
    return result
