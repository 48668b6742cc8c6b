"""The coarse networks' last steps, done on the host in the pass that quantises the output.

A coarse graph ends in ``DepthToSpace(Add(DequantizeLinear(codes), residual))`` (INT8) or
``DepthToSpace(Add(a, b))`` (FP32): one dequantise, one add and one pixel shuffle, each a pass
over the largest tensors of the run, and then a planar (C, H*s, W*s) float output that the
quantiser reads transposed. On ONNX Runtime's CPU provider upres runs the graph without those
nodes and hands the two (C*s*s, h, w) tensors to whoever takes the tile: the batch's output
quantises them straight into interleaved samples (dequantise, add, scale, clip, round, shuffle in
one pass over cache-sized blocks), hybrid's refine stage gets the graph's float planes, others
the float pixels. Every value is computed with the
same float32 operations as the graph's, so the bytes are the same (tested); on 640x480 -> x4
tiles it took 12% (INT8) and 8% (FP32) off `session.run` plus quantisation (docs/RUNTIME.md).

The graph without its tail is made once with the ONNX package and kept in the user cache (with
the answer "no such tail" for graphs that end otherwise), so the run path does not import ONNX.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import onnxruntime as ort

from upres.core.allocator import keep_freed_memory
from upres.core.cache import cache_dir, cached_model_file, write_atomic
from upres.core.parallel import in_row_parts
from upres.imageio.metadata import Mode
from upres.imageio.samples import round_into, samples_into, samples_peak
from upres.runtime.backends.onnxruntime_backend import session_options

FORMAT = 1  # bump when what split_graph writes changes
META_KEY = "upres.host_tail"
# Low-resolution rows per block of the fused pass: the block's float planes stay in the cache.
BLOCK_ROWS = 16


@dataclass(frozen=True)
class Tail:
    scale: int  # the pixel shuffle's block
    dequantize: tuple[float, float] | None  # the first tensor's (scale, zero point): INT8 codes


def split_graph(model: Path, sha256: str, scale: int) -> Path | None:
    """``model`` without its dequantise-add-shuffle tail (cached), or None where it does not end
    in one that :class:`TailPlanes` reproduces exactly."""
    name = f"{model.stem}-{sha256[:16]}-s{scale}-f{FORMAT}"
    path, refused = cache_dir() / "tail" / f"{name}.onnx", cache_dir() / "tail" / f"{name}.none"
    if path.is_file():
        return path
    if refused.is_file():
        return None
    data = _without_tail(model, scale)
    if data is None:
        write_atomic(refused, b"")  # where the cache cannot keep it, asked again next time
        return None
    return cached_model_file("tail", path.name, lambda: data)


def _without_tail(model: Path, scale: int) -> bytes | None:
    import onnx
    from onnx import numpy_helper

    try:
        proto = onnx.load(str(model))
    except Exception:  # not judged here: the full graph is loaded, and fails, as before
        return None
    graph = proto.graph
    if len(graph.output) != 1 or len(graph.node) < 2:
        return None
    made = {out: node for node in graph.node for out in node.output}
    readers: dict[str, int] = {}
    for node in graph.node:
        for name in node.input:
            readers[name] = readers.get(name, 0) + 1
    shuffle = graph.node[-1]
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in shuffle.attribute}
    if (shuffle.op_type != "DepthToSpace" or attrs.get("blocksize") != scale
            or attrs.get("mode", b"DCR") != b"CRD" or list(shuffle.output) != [graph.output[0].name]):
        return None
    add = made.get(shuffle.input[0])
    if add is None or add.op_type != "Add" or readers.get(add.output[0]) != 1:
        return None
    first, second = add.input
    removed = [shuffle, add]
    dequantize = None
    dq = made.get(second)
    if dq is not None and dq.op_type == "DequantizeLinear":
        first, second = second, first
    dq = made.get(first)
    if dq is not None and dq.op_type == "DequantizeLinear":
        constants = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
        constants |= {n.output[0]: numpy_helper.to_array(n.attribute[0].t) for n in graph.node
                      if n.op_type == "Constant" and n.attribute and n.attribute[0].name == "value"}
        values = [constants.get(name) for name in dq.input[1:]]
        if (len(values) != 2 or any(v is None or np.ndim(v) != 0 for v in values)
                or readers.get(dq.output[0]) != 1):
            return None
        step, zero = (v for v in values if v is not None)
        if step.dtype != np.float32:
            return None
        dequantize = (float(step), float(zero))
        code_type = {np.dtype(np.uint8): onnx.TensorProto.UINT8,
                     np.dtype(np.int8): onnx.TensorProto.INT8}.get(zero.dtype)
        if code_type is None:
            return None
        removed.append(dq)
        first = dq.input[0]
        first_type = code_type
    else:
        first_type = onnx.TensorProto.FLOAT
    # Both addends must be tensors the graph computes (an initializer would become an output);
    # other nodes may read them too.
    if first not in made or second not in made or first == second:
        return None
    for node in removed:
        graph.node.remove(node)
    graph.output.pop()
    graph.output.extend([onnx.helper.make_tensor_value_info(first, first_type, None),
                         onnx.helper.make_tensor_value_info(second, onnx.TensorProto.FLOAT, None)])
    entry = proto.metadata_props.add()
    entry.key, entry.value = META_KEY, json.dumps({"scale": scale, "dequantize": dequantize})
    return proto.SerializeToString()


class TailSession:
    """An ONNX Runtime CPU session of a graph made by :func:`split_graph`."""

    def __init__(self, path: Path, threads: int = 0) -> None:
        keep_freed_memory()
        self.session = ort.InferenceSession(str(path), session_options(threads),
                                            providers=["CPUExecutionProvider"])
        record = json.loads(self.session.get_modelmeta().custom_metadata_map[META_KEY])
        dq = record["dequantize"]
        self.tail = Tail(int(record["scale"]), None if dq is None else (float(dq[0]), float(dq[1])))
        inp, planes = self.session.get_inputs()[0], self.session.get_outputs()[0]
        self.input_name = inp.name
        # Channel counts the graph states (None where it leaves them open), per pixel of output.
        self.input_channels = _channel(inp.shape, 1)
        self.output_channels = _channel(planes.shape, self.tail.scale ** 2)

    def run(self, batch: np.ndarray) -> TailPlanes:
        """One (1, C, h, w) float32 tile -> its output, tail not yet applied."""
        first, second = self.session.run(None, {self.input_name: np.ascontiguousarray(batch, np.float32)})
        if first.shape != second.shape:  # Add broadcasts one of them, as numpy does
            first, second = np.broadcast_arrays(first, second)
        return TailPlanes(first[0], second[0], self.tail)


def _channel(shape: list[object] | None, per: int) -> int | None:
    if shape and len(shape) == 4 and isinstance(shape[1], int) and shape[1] % per == 0:
        return shape[1] // per
    return None


@dataclass(frozen=True)
class TailPlanes:
    """A tile's output before the network's tail: ``first`` (float planes or INT8 codes) and
    ``second`` (float), both (C*s*s, h, w). Reads as the (h*s, w*s, C) float pixels the whole
    graph gives (``np.asarray``, or sliced on the s-pixel grid, which stays deferred)."""

    first: np.ndarray
    second: np.ndarray
    tail: Tail

    @property
    def shape(self) -> tuple[int, int, int]:
        depth, h, w = self.first.shape
        s = self.tail.scale
        return h * s, w * s, depth // (s * s)

    def __getitem__(self, key: Any) -> Any:
        s = self.tail.scale
        if isinstance(key, tuple) and len(key) == 2 and all(isinstance(k, slice) for k in key):
            rows, cols = (k.indices(n) for k, n in zip(key, self.shape[:2], strict=True))
            if all(step == 1 and start % s == 0 and stop % s == 0 and stop >= start
                   for start, stop, step in (rows, cols)):
                lr = (slice(rows[0] // s, rows[1] // s), slice(cols[0] // s, cols[1] // s))
                return TailPlanes(self.first[(slice(None), *lr)], self.second[(slice(None), *lr)],
                                  self.tail)
        return np.asarray(self)[key]

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        pixels = np.empty(self.shape, np.float32)
        self._in_parts(pixels, None)
        return pixels if dtype is None else pixels.astype(dtype, copy=False)

    def quantize_into(self, out: np.ndarray) -> None:
        """``quantize_into(np.asarray(self), out)`` in one pass: uint8/uint16 (h*s, w*s, C)
        samples, clipped, rounding half to even; NonFiniteError on NaN or infinite values."""
        self._in_parts(out, samples_peak(out, self.shape))

    def _in_parts(self, out: np.ndarray, peak: np.float32 | None) -> None:
        # Split among the cores (upres.core.parallel): this pass sits between one image's
        # inference and the next, and on one core it took a tenth of a batch's time.
        in_row_parts(self.first.shape[1], lambda y0, y1: self._each_block(out, peak, y0, y1),
                     align=BLOCK_ROWS)

    def _each_block(self, out: np.ndarray, peak: np.float32 | None, y0: int, y1: int) -> None:
        """Low-resolution rows y0..y1 into interleaved ``out`` (samples where ``peak`` is given)."""
        s, channels = self.tail.scale, self.shape[2]
        samples: np.ndarray | None = None
        for y, part in self._blocks(y0, y1):
            n, w = part.shape[1:]
            target = part
            if peak is not None:
                part *= peak
                if samples is None:
                    samples = np.empty(part.shape, out.dtype)
                target = samples[:, :n]
                round_into(part, peak, target)
            # Output row (y + r) * s + i is, along x, the sub-pixels j of every channel c: the
            # planes (c, i, j) interleaved, which one merge per i writes as whole rows.
            for i in range(s):
                planes = [target[(c * s + i) * s + j] for j in range(s) for c in range(channels)]
                merged = cv2.merge(planes) if len(planes) > 1 else planes[0][..., None]
                out[y * s + i : (y + n) * s : s] = merged.reshape(n, w * s, channels)

    def _blocks(self, y0: int, y1: int) -> Iterator[tuple[int, np.ndarray]]:
        """(y, the graph's dequantise and add of low-resolution rows y..) for rows y0..y1,
        BLOCK_ROWS at a time, in one reused buffer that stays in the cache."""
        depth, _, w = self.first.shape
        if y1 <= y0 or w == 0:
            return
        block = np.empty((depth, min(BLOCK_ROWS, y1 - y0), w), np.float32)
        for y in range(y0, y1, BLOCK_ROWS):
            n = min(BLOCK_ROWS, y1 - y)
            part = block[:, :n]
            if self.tail.dequantize is None:
                np.add(self.first[:, y : y + n], self.second[:, y : y + n], out=part)
            else:
                step, zero = self.tail.dequantize
                np.subtract(self.first[:, y : y + n], np.float32(zero), out=part, dtype=np.float32)
                part *= np.float32(step)
                part += self.second[:, y : y + n]
            yield y, part

    def planes_into(self, out: np.ndarray) -> None:
        """The whole graph's (C, h*s, w*s) float32 planes into ``out``: its dequantise, add
        and pixel shuffle (CRD) in rows split among the cores; the same values."""
        if out.shape != (self.shape[2], *self.shape[:2]) or out.dtype != np.float32:
            raise ValueError(f"planes_into wants float32 {(self.shape[2], *self.shape[:2])}, "
                             f"got {out.dtype} {out.shape}")
        in_row_parts(self.first.shape[1], lambda y0, y1: self._planes_rows(out, y0, y1),
                     align=BLOCK_ROWS)

    def _planes_rows(self, out: np.ndarray, y0: int, y1: int) -> None:
        s, channels = self.tail.scale, self.shape[2]
        for y, part in self._blocks(y0, y1):
            n, w = part.shape[1:]
            # Row (y + r) * s + i of plane c is, along x, the sub-pixels j of planes (c, i, j).
            for c in range(channels):
                for i in range(s):
                    first = (c * s + i) * s
                    merged = cv2.merge([part[first + j] for j in range(s)])
                    out[c, y * s + i : (y + n) * s : s] = merged.reshape(n, w * s)


class PlanarTailSession:
    """A :class:`TailSession` as a Backend: ``run`` gives the whole graph's (N, C, h*s, w*s)
    float32 planes, its tail done on the host (hybrid's coarse stage)."""

    name = "ort-cpu"

    def __init__(self, session: TailSession) -> None:
        self.session = session
        self.input_channels = session.input_channels
        self.output_channels = session.output_channels

    def run(self, batch: np.ndarray) -> np.ndarray:
        out: np.ndarray | None = None
        for k, item in enumerate(batch):
            planes = self.session.run(item[None])
            if out is None:
                out = np.empty((len(batch), planes.shape[2], *planes.shape[:2]), np.float32)
            planes.planes_into(out[k])
        if out is None:
            raise ValueError("an empty batch")
        return out


def into_samples(pixels: np.ndarray | TailPlanes, out: np.ndarray, mode: Mode) -> None:
    """``upres.imageio.samples_into``, finishing a deferred tile on the way: colour samples in
    the one pass of :meth:`TailPlanes.quantize_into`, gray or alpha through its float pixels."""
    if isinstance(pixels, TailPlanes):
        if mode != "gray" and out.shape[2] == pixels.shape[2]:
            pixels.quantize_into(out)
            return
        pixels = np.asarray(pixels)
    samples_into(pixels, out, mode)
