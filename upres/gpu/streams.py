"""CUDA streams and events (cuda-python), as small owning objects with integer handles.

Handles are plain ints so they pass unchanged to cuda-python, TensorRT (`execute_async_v3`) and
PyTorch (`torch.cuda.ExternalStream`).
"""

from __future__ import annotations

from upres.gpu.cuda import cuda_call, runtime


class Stream:
    def __init__(self) -> None:
        rt = runtime()
        # Non-blocking: no implicit synchronisation with the legacy default stream, which PyTorch
        # or a library call might use; ordering between our streams is only what events say.
        handle = cuda_call(rt.cudaStreamCreateWithFlags(rt.cudaStreamNonBlocking), "cudaStreamCreate")
        self.handle = int(handle)

    def synchronize(self) -> None:
        cuda_call(runtime().cudaStreamSynchronize(self.handle), "cudaStreamSynchronize")

    def wait(self, event: Event) -> None:
        """Work queued on this stream after now waits for `event` (no host blocking)."""
        cuda_call(runtime().cudaStreamWaitEvent(self.handle, event.handle, 0), "cudaStreamWaitEvent")

    def close(self) -> None:
        if self.handle:
            cuda_call(runtime().cudaStreamDestroy(self.handle), "cudaStreamDestroy")
            self.handle = 0


class Event:
    def __init__(self, timing: bool = True) -> None:
        rt = runtime()
        flags = rt.cudaEventDefault if timing else rt.cudaEventDisableTiming
        self.handle = int(cuda_call(rt.cudaEventCreateWithFlags(flags), "cudaEventCreate"))

    def record(self, stream: Stream) -> None:
        cuda_call(runtime().cudaEventRecord(self.handle, stream.handle), "cudaEventRecord")

    def synchronize(self) -> None:
        cuda_call(runtime().cudaEventSynchronize(self.handle), "cudaEventSynchronize")

    def elapsed_ms(self, start: Event) -> float:
        """Milliseconds from `start` to this event (both recorded and complete)."""
        return float(cuda_call(runtime().cudaEventElapsedTime(start.handle, self.handle),
                               "cudaEventElapsedTime"))

    def close(self) -> None:
        if self.handle:
            cuda_call(runtime().cudaEventDestroy(self.handle), "cudaEventDestroy")
            self.handle = 0
