"""The allocator policy the runtime sets (core/allocator.py)."""

import platform
import sys

import pytest

from upres.core.allocator import keep_freed_memory


@pytest.mark.skipif(not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc",
                    reason="mallopt is glibc's")
def test_glibc_keeps_freed_blocks() -> None:
    assert keep_freed_memory() is True
    assert keep_freed_memory() is True  # once per process; a second call changes nothing


def test_backends_set_it() -> None:
    from upres.runtime.backends.onnxruntime_backend import OrtBackend
    from upres.runtime.catalog import resolve

    OrtBackend(resolve("coarse-x2", "fp32").path, threads=1)
    import upres.core.allocator as allocator

    assert allocator._done is not None
