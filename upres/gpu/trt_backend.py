"""The `trt` compute step: a cached TensorRT engine, one execution context per stream.

Contexts are created with USER_MANAGED allocation and given activation memory from the planner's
pool (`set_device_memory`), so TensorRT allocates nothing on its own and the memory target holds.
Tensors are bound by name (`set_tensor_address`), shapes set per tile (`set_input_shape`), and the
work is enqueued with `execute_async_v3` on the lane's stream.
"""

from __future__ import annotations

from typing import Any

from upres.gpu.engine_cache import CachedEngine
from upres.gpu.memory import DeviceBuffer
from upres.gpu.trt_builder import require_tensorrt, runtime_for


class TrtModel:
    """One deserialized engine (loaded once); `for_lane` makes a context per stream."""

    def __init__(self, cached: CachedEngine, scale: int) -> None:
        trt = require_tensorrt("trt backend")
        self._trt = trt
        self.cached = cached
        self.name = f"trt:{cached.model}"
        self.pooled = True
        self.scale = scale
        self._logger = trt.Logger(trt.Logger.WARNING)
        self._runtime = runtime_for(trt, self._logger, cached.key)
        self.engine = self._runtime.deserialize_cuda_engine(cached.read_verified())
        if self.engine is None:
            raise RuntimeError(f"TensorRT could not deserialize {cached.engine_path.name}")
        if len(cached.inputs) != 1 or len(cached.outputs) != 1:
            raise ValueError(f"{cached.model}: upres runs engines with one input and one output, "
                             f"got {cached.inputs} -> {cached.outputs}")
        self.input_name = next(iter(cached.inputs))
        self.output_name = next(iter(cached.outputs))
        for name in (self.input_name, self.output_name):
            dtype = self.engine.get_tensor_dtype(name)
            if dtype != trt.DataType.FLOAT:
                raise ValueError(f"{cached.model}: tensor {name!r} is {dtype}; upres feeds float32 "
                                 "I/O (mixed-precision graphs keep float32 inputs and outputs)")
        in_shape = tuple(self.engine.get_tensor_shape(self.input_name))
        out_shape = tuple(self.engine.get_tensor_shape(self.output_name))
        self.in_channels = int(in_shape[1])
        self.out_channels = int(out_shape[1])

    def activation_bytes(self, side: int) -> int | None:
        if not self.cached.key.profile.covers(side):
            return None
        return self.cached.activation_bytes

    def for_lane(self, scratch: DeviceBuffer, max_side: int) -> TrtLane:
        return TrtLane(self, scratch, max_side)


class TrtLane:
    def __init__(self, model: TrtModel, scratch: DeviceBuffer, max_side: int) -> None:
        trt = model._trt
        self.model = model
        self.context: Any = model.engine.create_execution_context(
            trt.ExecutionContextAllocationStrategy.USER_MANAGED)
        if self.context is None:
            raise RuntimeError(f"{model.name}: could not create an execution context")
        # Size the activations for the largest tile this lane will see; with the runtime resize
        # preview feature that can be less than the profile maximum, never more.
        self.context.set_input_shape(model.input_name, (1, model.in_channels, max_side, max_side))
        need = int(self.context.update_device_memory_size_for_shapes())
        if need <= 0:
            need = int(model.engine.device_memory_size_v2)
        if need > scratch.nbytes:
            raise MemoryError(f"{model.name}: a {max_side}px tile needs {need} bytes of activations, "
                              f"the plan gave {scratch.nbytes}")
        if hasattr(self.context, "set_device_memory"):  # 10.1+: the size is checked too
            self.context.set_device_memory(scratch.ptr, scratch.nbytes)
        else:  # 10.0 has only the size-less property
            self.context.device_memory = scratch.ptr

    def run(self, stream: int, src: int, n: int, h: int, w: int, dst: int) -> None:
        m = self.model
        if not self.context.set_input_shape(m.input_name, (n, m.in_channels, h, w)):
            raise ValueError(f"{m.name}: input {n}x{m.in_channels}x{h}x{w} is outside the engine's "
                             f"profile {m.cached.key.profile}")
        self.context.set_tensor_address(m.input_name, src)
        self.context.set_tensor_address(m.output_name, dst)
        if not self.context.execute_async_v3(stream):
            raise RuntimeError(f"{m.name}: execute_async_v3 failed on a {h}x{w} tile")
