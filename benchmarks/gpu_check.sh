#!/usr/bin/env bash
# One run on a GPU host: the GPU tests, then torch-cuda with 1 vs 3 CUDA streams.
#
#   bash benchmarks/gpu_check.sh            # prints a compact report; about 2-4 minutes
#
# Expects what the GPU host has (CUDA, PyTorch with CUDA, cuda-python, NVRTC, numpy, onnx,
# onnxruntime, opencv, typer, rich, tifffile, pillow, pytest); installs nothing from the network.
# TensorRT is not needed: its tests skip and say so. Exit code 0 when every step passed.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
START=$(date +%s)
# Caches (compiled kernels, engines, memory probes) go to a fresh folder, not the user's.
export UPRES_CACHE_DIR=$(mktemp -d)
trap 'rm -rf "$UPRES_CACHE_DIR"' EXIT

# upres itself: use an installed copy if it is this checkout; otherwise an editable install
# without dependencies or network; if even that is impossible, import it from the checkout.
if ! python -c "import upres, pathlib, sys; sys.exit(pathlib.Path(upres.__file__).resolve().parents[1] != pathlib.Path('$ROOT'))" 2>/dev/null; then
    pip install -q -e . --no-deps --no-build-isolation >/dev/null 2>&1 \
        || export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
fi

# On a host with a working CUDA PyTorch, a GPU test that would skip fails instead: a missing
# piece must show. (TensorRT is optional: its tests still skip.)
if python -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
    export UPRES_REQUIRE_GPU=1
fi

status=0
step() {  # step NAME TIMEOUT CMD...: run with a time limit, remember a failure
    local name=$1 limit=$2
    shift 2
    echo
    echo "== $name"
    timeout "$limit" "$@"
    local rc=$?
    [ $rc -eq 0 ] || { echo "-- $name: exit $rc"; status=1; }
}

echo "== environment"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo "nvidia-smi: not available"
python - <<'PY'
import importlib, platform
print("python", platform.python_version())
for name in ("numpy", "torch", "onnxruntime", "cupy", "cuda.bindings", "tensorrt"):
    try:
        mod = importlib.import_module(name)
        print(f"{name} {getattr(mod, '__version__', '?')}")
    except Exception as exc:  # a missing package is a fact for the report, not an error here
        print(f"{name}: not importable ({type(exc).__name__})")
import torch
print("torch.cuda.is_available", torch.cuda.is_available(), "cuda", torch.version.cuda)
from upres.gpu.cuda import gpu_missing
from upres.kernels.cuda.compile import nvrtc_missing, nvrtc_version
print("upres gpu:", gpu_missing() or "ok", "| nvrtc:", nvrtc_missing() or nvrtc_version())
PY

step "CPU-side GPU tests (cache keys, planner, kernel references, NVRTC compile)" 120 \
    python -m pytest -q -p no:cacheprovider tests/test_engine_cache.py tests/test_gpu_planning.py \
    tests/test_cuda_kernels_cpu.py tests/test_backends.py
step "GPU tests (kernels vs references, torch-cuda pipeline, TensorRT if present)" 240 \
    python -m pytest -q -rs -p no:cacheprovider tests/test_gpu_kernels.py tests/test_gpu_pipeline.py \
    tests/test_gpu_trt.py
step "torch-cuda: 1 vs 3 streams" 200 \
    python benchmarks/gpu_bench.py --size 1024 --tile 256 --memory 4GiB --repeats 3 \
    --json "$UPRES_CACHE_DIR/gpu_bench.json"
[ -f "$UPRES_CACHE_DIR/gpu_bench.json" ] && { echo; echo "== gpu_bench.json"; cat "$UPRES_CACHE_DIR/gpu_bench.json"; }

echo
echo "== gpu_check: $([ $status -eq 0 ] && echo passed || echo FAILED) in $(( $(date +%s) - START )) s"
exit $status
