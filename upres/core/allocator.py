"""The C allocator's policy for this process: keep large freed blocks for reuse.

Every image of a batch allocates the same output-resolution buffers again (tens of MB each:
ONNX Runtime's activations, the float planes of the hybrid stage). glibc's malloc serves
blocks above its mmap threshold (at most 32 MiB by default) with fresh mmaps and returns them
on free, so each image paid the kernel for zeroed pages all over again: with the refine network
at output resolution, system time equalled user time (measured; docs/RUNTIME.md). Raising the
threshold and never trimming keeps those blocks in the heap, where the next image reuses them.
The peak is unchanged: only memory that was in use already stays mapped.
"""

from __future__ import annotations

import ctypes
import sys

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_MMAP_THRESHOLD = 1 << 30
_TRIM_THRESHOLD = (1 << 31) - 1

_done: bool | None = None


def keep_freed_memory() -> bool:
    """Set the policy once (glibc only); whether it is in effect."""
    global _done
    if _done is None:
        _done = _apply()
    return _done


def _apply() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        # By its soname: ctypes.util.find_library would run ldconfig, a process, at start-up.
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):  # musl and others have no mallopt: their defaults stand
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD)) and bool(
        mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD))
