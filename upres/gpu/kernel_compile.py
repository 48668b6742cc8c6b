"""Compile the kernel sources with NVRTC; results cached on disk and in the process.

NVRTC needs no GPU, so every source can be compile-checked on a CPU-only machine. For a device
whose architecture this NVRTC knows, the output is a CUBIN for exactly that `sm_XY`; otherwise PTX
for the newest architecture NVRTC supports below it, which the driver JIT-compiles on load.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from upres.core.atomic import atomic_write_bytes
from upres.gpu.cuda import CudaError, cuda_call, nvrtc

# The .cu sources ship as package data of upres.kernels.cuda (image ops live in kernels/).
SOURCE_DIR = Path(__file__).resolve().parent.parent / "kernels" / "cuda"

# Kernel file -> the extern "C" entry points it defines (checked after every compile).
KERNELS: dict[str, tuple[str, ...]] = {
    "normalize": ("normalize_u8", "normalize_u16", "normalize_f32"),
    "sobel": ("sobel_refine_input",),
    "compose": ("gated_compose",),
    "feather": ("feather_accumulate", "feather_normalize"),
    "quantize": ("quantize_u8", "quantize_u16", "quantize_f32"),
}

# --fmad=false: a*b+c stays two rounded operations, as in numpy, so the kernels can match their
# references bit for bit; the kernels are memory-bound, fusing would not make them faster.
OPTIONS = ("--std=c++17", "--fmad=false", "--device-as-default-execution-space")


@dataclass(frozen=True)
class Compiled:
    name: str
    arch: str  # "sm_90" (CUBIN) or "compute_90" (PTX)
    image: bytes
    log: str

    @property
    def is_cubin(self) -> bool:
        return self.arch.startswith("sm_")


def nvrtc_missing() -> str | None:
    """Why NVRTC cannot compile here, or None."""
    try:
        if importlib.util.find_spec("cuda.bindings") is None:
            return "cuda-python is not installed (pip install 'upres[gpu]')"
    except ModuleNotFoundError:
        return "cuda-python is not installed (pip install 'upres[gpu]')"
    try:
        cuda_call(nvrtc().nvrtcVersion(), "nvrtcVersion")
    except (CudaError, RuntimeError, OSError) as exc:
        return f"the NVRTC library cannot be loaded ({exc}); pip install nvidia-cuda-nvrtc"
    return None


def source(name: str) -> str:
    if name not in KERNELS:
        raise ValueError(f"unknown kernel file {name!r}; known: {', '.join(KERNELS)}")
    return (SOURCE_DIR / f"{name}.cu").read_text()


def nvrtc_version() -> tuple[int, int]:
    major, minor = cuda_call(nvrtc().nvrtcVersion(), "nvrtcVersion")
    return int(major), int(minor)


def supported_archs() -> tuple[int, ...]:
    return tuple(int(a) for a in cuda_call(nvrtc().nvrtcGetSupportedArchs(), "nvrtcGetSupportedArchs"))


def target_arch(compute_capability: tuple[int, int]) -> str:
    """`sm_XY` when NVRTC can build a CUBIN for it, else `compute_NN` PTX the driver can JIT."""
    cc = compute_capability[0] * 10 + compute_capability[1]
    archs = supported_archs()
    if cc in archs:
        return f"sm_{cc}"
    older = [a for a in archs if a <= cc]
    if not older:
        raise CudaError(f"NVRTC {nvrtc_version()} supports {archs}, none at or below sm_{cc}")
    return f"compute_{max(older)}"


def _cache_path(name: str, arch: str, digest: str) -> Path:
    from upres.core.cache import cache_dir

    ext = "cubin" if arch.startswith("sm_") else "ptx"
    return cache_dir() / "kernels" / f"{name}-{arch}-{digest[:20]}.{ext}"


def _digest(name: str, arch: str) -> str:
    h = hashlib.sha256()
    for part in (source(name), arch, " ".join(OPTIONS), repr(nvrtc_version())):
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()


def _nvrtc_compile(name: str, arch: str) -> Compiled:
    nv = nvrtc()
    prog = cuda_call(nv.nvrtcCreateProgram(source(name).encode(), f"{name}.cu".encode(), 0, [], []),
                     f"nvrtcCreateProgram({name})")
    try:
        opts = [o.encode() for o in (*OPTIONS, f"--gpu-architecture={arch}")]
        status = nv.nvrtcCompileProgram(prog, len(opts), opts)[0]
        size = cuda_call(nv.nvrtcGetProgramLogSize(prog), "nvrtcGetProgramLogSize")
        log_buf = b" " * size
        cuda_call(nv.nvrtcGetProgramLog(prog, log_buf), "nvrtcGetProgramLog")
        log = log_buf.decode(errors="replace").rstrip("\0 \n")
        if int(status) != 0:
            raise CudaError(f"NVRTC could not compile {name}.cu for {arch}:\n{log}")
        if arch.startswith("sm_"):
            size = cuda_call(nv.nvrtcGetCUBINSize(prog), "nvrtcGetCUBINSize")
            image = b" " * size
            cuda_call(nv.nvrtcGetCUBIN(prog, image), "nvrtcGetCUBIN")
        else:
            size = cuda_call(nv.nvrtcGetPTXSize(prog), "nvrtcGetPTXSize")
            image = b" " * size
            cuda_call(nv.nvrtcGetPTX(prog, image), "nvrtcGetPTX")
        return Compiled(name, arch, image, log)
    finally:
        cuda_call(nv.nvrtcDestroyProgram(prog), "nvrtcDestroyProgram")


def _compile_isolated(name: str, arch: str) -> Compiled:
    """`_nvrtc_compile` in a fresh child process.

    NVRTC leaves process-wide state behind that breaks later work in the same process: after an
    sm_80 CUBIN build of normalize.cu, torch.load of a weights file fails ("record size does not
    match"). A spawned child keeps that state out of the runtime; builds are cached on disk, so the
    cost (about a second) is paid once per kernel and architecture.
    """
    with tempfile.TemporaryDirectory() as tmp:
        image, log = Path(tmp) / "image", Path(tmp) / "log"
        child = subprocess.run([sys.executable, "-m", __name__, name, arch, str(image), str(log)],
                               capture_output=True, text=True)
        if child.returncode != 0:
            raise CudaError(child.stderr.strip().removeprefix("CudaError: ")
                            or f"NVRTC compile of {name}.cu exited with {child.returncode}")
        return Compiled(name, arch, image.read_bytes(), log.read_text())


@functools.lru_cache(maxsize=64)
def compile_kernel(name: str, arch: str, use_disk_cache: bool = True) -> Compiled:
    """CUBIN/PTX of one kernel file; read from the disk cache when an identical build is there."""
    digest = _digest(name, arch)
    path = _cache_path(name, arch, digest)
    if use_disk_cache and path.is_file():
        return Compiled(name, arch, path.read_bytes(), "(cached)")
    compiled = _compile_isolated(name, arch)
    if use_disk_cache:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, compiled.image, pause=False)  # a concurrent reader sees no half image
    return compiled


if __name__ == "__main__":  # the child of _compile_isolated: NAME ARCH IMAGE_OUT LOG_OUT
    try:
        _result = _nvrtc_compile(sys.argv[1], sys.argv[2])
    except CudaError as exc:
        sys.exit(f"CudaError: {exc}")
    Path(sys.argv[3]).write_bytes(_result.image)
    Path(sys.argv[4]).write_text(_result.log)
