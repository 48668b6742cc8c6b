#!/usr/bin/env bash
# A Python environment for a CPU Triton server (upres.serving.cpu_server, tests/test_triton.py):
# nvidia-pytriton ships tritonserver with its Python backend, onnxruntime runs the tile models in
# it. Kept apart from upres's own environment because nvidia-pytriton pins numpy<2.
# Usage: scripts/triton-env.sh [DIR]   (default .triton-env), then export UPRES_TRITON_ENV=DIR
set -euo pipefail
dest="${1:-.triton-env}"
"${PYTHON:-python}" -m venv "$dest"
"$dest/bin/pip" install -q "nvidia-pytriton==0.7.0" "onnxruntime==1.32.0"
echo "export UPRES_TRITON_ENV=$(cd "$dest" && pwd)"
