import importlib.util

import numpy as np
import pytest

from upres.core.errors import BackendUnavailable
from upres.runtime.backends import select
from upres.runtime.backends.onnxruntime_backend import OrtBackend, available_providers
from upres.runtime.catalog import WEIGHTS_DIR

MODEL = WEIGHTS_DIR / "coarse-x2.onnx"


def test_auto_names_its_choice_and_reason() -> None:
    choice = select.choose("auto")
    assert choice.name in ("ort-cpu", "ort-cuda", "ort-trt", "trt")
    assert choice.reason
    if "CUDAExecutionProvider" not in available_providers():
        assert choice.name == "ort-cpu"


def test_unknown_backend_is_refused() -> None:
    with pytest.raises(ValueError, match="--backend must be one of"):
        select.choose("quantum")


@pytest.mark.parametrize("name", ["ort-cuda", "ort-trt"])
def test_gpu_providers_refuse_cleanly_or_match_cpu(name: str) -> None:
    provider = {"ort-cuda": "CUDAExecutionProvider", "ort-trt": "TensorrtExecutionProvider"}[name]
    if provider not in available_providers():
        with pytest.raises(BackendUnavailable, match="onnxruntime-gpu"):
            OrtBackend(MODEL, name)
        return
    x = np.random.default_rng(0).random((1, 3, 40, 52), dtype=np.float32)
    gpu = OrtBackend(MODEL, name).run(x)
    cpu = OrtBackend(MODEL, "ort-cpu").run(x)
    assert np.abs(gpu - cpu).max() < 2e-3


def test_trt_without_tensorrt_says_how_to_get_it() -> None:
    if importlib.util.find_spec("tensorrt") is not None:
        pytest.skip("tensorrt is installed here")
    with pytest.raises(BackendUnavailable, match="tensorrt"):
        select.create("trt", MODEL)


def test_cpu_backend_batches_and_keeps_shape() -> None:
    backend = OrtBackend(MODEL, "ort-cpu", threads=1)
    x = np.random.default_rng(1).random((2, 3, 17, 9), dtype=np.float32)
    out = backend.run(x)
    assert out.shape == (2, 3, 34, 18) and out.dtype == np.float32
    np.testing.assert_allclose(out[1:], backend.run(x[1:]), atol=1e-6)


def test_torch_cuda_without_a_gpu_says_why() -> None:
    why = select.unavailable("torch-cuda")
    if why is None:
        pytest.skip("a CUDA GPU and a CUDA build of torch are here")
    assert why.startswith("torch-cuda: ")
    with pytest.raises(BackendUnavailable, match="torch-cuda"):
        select.create("torch-cuda", MODEL)


def test_gpu_backends_in_build_chain_refuse_cleanly() -> None:
    from upres.runtime.chain_factory import build_chain

    for name in select.GPU_PIPELINE:
        if select.unavailable(name) is not None:
            with pytest.raises(BackendUnavailable, match=name):
                build_chain("faithful", 4, backend=name)


def test_auto_never_imports_torch() -> None:
    import subprocess
    import sys

    code = ("import sys; from upres.runtime.chain_factory import build_chain; "
            "build_chain('faithful', 2, backend='auto'); print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
