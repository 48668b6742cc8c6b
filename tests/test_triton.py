"""Triton serving: the exported repository (checked with Triton's own ModelConfig schema) and
`--backend triton://` against a real Triton server on loopback.

The server tests run tritonserver from nvidia-pytriton's wheel with the Python backend
(upres.serving.cpu_server), in an environment made by scripts/triton-env.sh and named by
$UPRES_TRITON_ENV (or ./.triton-env); without one they are skipped. The client needs tritonclient
(the triton extra); without it the whole module is skipped.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from support import SAMPLE
from typer.testing import CliRunner

pytest.importorskip("tritonclient.grpc",
                    reason="the triton extra is not installed (pip install 'upres[triton]')")

from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2

from upres.cli import app
from upres.core.errors import BackendUnavailable
from upres.core.hashing import file_sha256
from upres.runtime.backends.onnxruntime_backend import OrtBackend
from upres.runtime.backends.triton_backend import TritonBackend, parse_target
from upres.runtime.catalog import builtin_path
from upres.serving.cpu_server import CpuTritonServer, free_port, server_env
from upres.serving.triton_repo import RepoError, validate_config

runner = CliRunner()
REPO_ROOT = Path(__file__).resolve().parents[1]


def _export(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["triton", "export", *args])
    return result.exit_code, " ".join(result.output.split())  # unwrapped: rich wraps long lines


def _config(path: Path) -> model_config_pb2.ModelConfig:
    return text_format.Parse(path.read_text(), model_config_pb2.ModelConfig())


# -- the repository --------------------------------------------------------------------------------


def test_export_writes_a_repository_triton_parses(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    code, text = _export("coarse-x4", "-o", str(repo), "--max-batch", "16", "--instances", "2",
                         "--kind", "gpu")
    assert code == 0, text
    assert "valid Triton ModelConfig" in text
    source = builtin_path("coarse-x4")
    assert (repo / "coarse-x4" / "1" / "model.onnx").read_bytes() == source.read_bytes()
    config = _config(repo / "coarse-x4" / "config.pbtxt")
    assert config.name == "coarse-x4" and config.platform == "onnxruntime_onnx"
    assert config.max_batch_size == 16
    (inp,), (out,) = config.input, config.output
    assert (inp.name, list(inp.dims)) == ("input", [3, -1, -1])
    assert (out.name, list(out.dims)) == ("output", [3, -1, -1])
    assert inp.data_type == model_config_pb2.TYPE_FP32
    assert list(config.dynamic_batching.preferred_batch_size) == [2, 4, 8, 16]
    assert config.dynamic_batching.max_queue_delay_microseconds == 2000
    (group,) = config.instance_group
    assert group.count == 2 and group.kind == model_config_pb2.ModelInstanceGroup.KIND_GPU
    assert [w.batch_size for w in config.model_warmup] == [1, 16]
    assert list(config.model_warmup[0].inputs["input"].dims) == [3, 64, 64]
    assert config.parameters["upres_sha256"].string_value == file_sha256(source)


def test_export_refine_and_int8_keep_their_own_names_and_channels(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    assert _export("refine", "-o", str(repo))[0] == 0
    assert _export("coarse-x4", "-o", str(repo), "--precision", "int8")[0] == 0
    assert list(_config(repo / "refine" / "config.pbtxt").input[0].dims) == [4, -1, -1]
    int8 = _config(repo / "coarse-x4-int8" / "config.pbtxt")
    assert int8.parameters["upres_precision"].string_value == "int8"
    assert int8.parameters["upres_sha256"].string_value == file_sha256(builtin_path("coarse-x4", "int8"))


def test_tensorrt_plans_by_compute_capability(tmp_path: Path) -> None:
    # Stand-in plan files: this checks the repository layout and config, not TensorRT (which is
    # built on the target GPU and cannot run here).
    plans = {cc: tmp_path / f"sm{cc}.plan" for cc in ("8.9", "9.0")}
    for cc, path in plans.items():
        path.write_bytes(f"plan for {cc}".encode())
    repo = tmp_path / "repo"
    code, text = _export("coarse-x2", "-o", str(repo), *[a for cc, p in plans.items()
                                                          for a in ("--plan", f"{cc}={p}")])
    assert code == 0, text
    config = _config(repo / "coarse-x2-trt" / "config.pbtxt")
    assert config.platform == "tensorrt_plan"
    assert dict(config.cc_model_filenames) == {"8.9": "model_sm89.plan", "9.0": "model_sm90.plan"}
    assert (repo / "coarse-x2-trt" / "1" / "model_sm90.plan").read_bytes() == b"plan for 9.0"
    assert _config(repo / "coarse-x2" / "config.pbtxt").platform == "onnxruntime_onnx"


def test_plans_from_the_engine_cache_are_checked_against_the_model(tmp_path: Path) -> None:
    from upres.gpu.engine_cache import EngineCache, EngineKey, Profile

    cache = EngineCache(tmp_path / "engines")
    sha = file_sha256(builtin_path("coarse-x2"))

    def engine(onnx_sha: str, batch: int, version_compatible: bool = False) -> Path:
        key = EngineKey(onnx_sha, "10.x" if version_compatible else "10.13.0", "NVIDIA L4", "8.9",
                        "fp32", Profile(16, 256, 256), batch, version_compatible=version_compatible)
        stored = cache.store(key, "coarse-x2", b"not a real engine", tensorrt_built="10.13.0",
                             activation_bytes=1, inputs={"input": "float32"},
                             outputs={"output": "float32"}, build_seconds=0.0)
        return stored.engine_path

    repo = tmp_path / "repo"
    code, text = _export("coarse-x2", "-o", str(repo), "--max-batch", "4", "--plan", str(engine(sha, 4)))
    assert code == 0, text
    assert dict(_config(repo / "coarse-x2-trt" / "config.pbtxt").cc_model_filenames) == \
        {"8.9": "model_sm89.plan"}
    assert "version-compatible" not in text
    code, text = _export("coarse-x2", "-o", str(repo), "--max-batch", "4", "--plan",
                         str(engine(sha, 4, version_compatible=True)))
    assert code == 0 and "--backend-config=tensorrt,version-compatible=true" in " ".join(text.split())
    code, text = _export("coarse-x2", "-o", str(repo), "--max-batch", "8", "--plan", str(engine(sha, 4)))
    assert code == 2 and "--max-batch 4" in text
    code, text = _export("coarse-x2", "-o", str(repo), "--plan", str(engine("0" * 64, 8)))
    assert code == 2 and "another model" in text


def test_export_refuses_bad_options(tmp_path: Path) -> None:
    repo = str(tmp_path / "repo")
    assert _export("coarse-x2", "-o", repo, "--max-batch", "0")[0] == 2
    assert _export("coarse-x2", "-o", repo, "--kind", "tpu")[0] == 2
    assert _export("coarse-x2", "-o", repo, "--plan", "9.0")[0] == 2
    assert _export("coarse-x2", "-o", repo, "--plan", "sm90=/etc/hostname")[0] == 2
    assert _export("coarse-x2", "-o", repo, "--precision", "fp16")[0] == 2  # no fp16 graph shipped
    assert not (tmp_path / "repo").exists()
    with pytest.raises(RepoError, match="ModelConfig"):
        validate_config('name: "x"\nmax_batch_size: "eight"\n')


def test_backend_addresses() -> None:
    assert parse_target("triton://10.0.0.5:8001/coarse-x4").model == "coarse-x4"
    assert parse_target("triton://serving.local").address == "serving.local:8001"
    for bad in ("triton://", "triton://host:port", "triton://h:1/a/b", "triton://h:1?x=1"):
        with pytest.raises(ValueError, match="triton://HOST:PORT"):
            parse_target(bad)


def test_unreachable_server_is_a_usage_error(tmp_path: Path) -> None:
    src = tmp_path / "a.png"
    with Image.open(SAMPLE) as im:
        im.convert("RGB").crop((0, 0, 32, 24)).save(src)
    result = runner.invoke(app, ["run", str(src), "-o", str(tmp_path / "o"), "--mode", "faithful",
                                 "--backend", f"triton://127.0.0.1:{free_port()}"])
    assert result.exit_code == 2 and "not reachable" in " ".join(result.output.split())


# -- a real Triton server --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CpuTritonServer]:
    home = os.environ.get("UPRES_TRITON_ENV") or str(REPO_ROOT / ".triton-env")
    env = server_env(Path(home))
    if env is None:
        pytest.skip(f"no Triton server environment at {home} (make one: scripts/triton-env.sh)")
    root = tmp_path_factory.mktemp("triton")
    repo = root / "repo"
    for args in (["coarse-x2"], ["refine"], ["coarse-x2", "--name", "coarse-x2-batched",
                                               "--queue-delay-us", "300000"]):
        code, text = _export(*args, "-o", str(repo))
        assert code == 0, text
    with CpuTritonServer(repo, root / "server", env) as running:
        yield running
        process = running.process
    assert process is not None and process.poll() is not None  # the server is gone


@pytest.mark.slow
def test_tiles_round_trip_bit_exact(server: CpuTritonServer) -> None:
    rng = np.random.default_rng(0)
    for name, channels in (("coarse-x2", 3), ("refine", 4)):
        model = builtin_path(name)
        remote = TritonBackend(parse_target(f"triton://{server.address}"), model)
        local = OrtBackend(model, "ort-cpu", threads=1)
        assert remote.model == name
        for shape in ((1, channels, 37, 53), (3, channels, 64, 48)):
            tiles = rng.random(shape, dtype=np.float32)
            assert np.array_equal(remote.run(tiles), local.run(tiles)), (name, shape)


@pytest.mark.slow
def test_run_through_triton_equals_the_local_backend(server: CpuTritonServer, tmp_path: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    with Image.open(SAMPLE) as im:
        for i, box in enumerate([(0, 0, 90, 70), (40, 30, 160, 110)]):
            im.convert("RGB").crop(box).save(src / f"im{i}.png")
    args = ("--mode", "hybrid", "--scale", "2", "--tile", "48", "--quiet")
    local = runner.invoke(app, ["run", str(src), "-o", str(tmp_path / "local"), *args])
    assert local.exit_code == 0, local.output
    remote = runner.invoke(app, ["run", str(src), "-o", str(tmp_path / "triton"), *args,
                                 "--backend", f"triton://{server.address}"])
    assert remote.exit_code == 0, remote.output
    for name in ("im0.png", "im1.png"):
        assert (tmp_path / "triton" / name).read_bytes() == (tmp_path / "local" / name).read_bytes()
        sidecar = json.loads((tmp_path / "triton" / f"{name}.json").read_text())
        assert sidecar["settings"]["backend"] == f"triton://{server.address}"
        assert sidecar["plan"]["grid"]["tiles"] > 1


@pytest.mark.slow
def test_model_by_name_and_refusal_of_a_model_not_served(server: CpuTritonServer) -> None:
    named = TritonBackend(parse_target(f"triton://{server.address}/coarse-x2-batched"),
                          builtin_path("coarse-x2"))
    assert named.model == "coarse-x2-batched"
    with pytest.raises(BackendUnavailable, match=r"no ready model serves coarse-x4\.onnx"):
        TritonBackend(parse_target(f"triton://{server.address}"), builtin_path("coarse-x4"))


@pytest.mark.slow
def test_concurrent_tiles_are_batched_by_the_server(server: CpuTritonServer) -> None:
    model = builtin_path("coarse-x2")
    target = parse_target(f"triton://{server.address}/coarse-x2-batched")
    tiles = np.random.default_rng(1).random((6, 1, 3, 32, 32), dtype=np.float32)
    results: list[np.ndarray | None] = [None] * len(tiles)

    def send(i: int) -> None:
        results[i] = TritonBackend(target, model).run(tiles[i])

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(tiles))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    local = OrtBackend(model, "ort-cpu", threads=1)
    for tile, result in zip(tiles, results, strict=True):
        assert result is not None and np.array_equal(result, local.run(tile))
    import tritonclient.grpc as grpcclient

    client = grpcclient.InferenceServerClient(server.address)
    stats = client.get_inference_statistics("coarse-x2-batched", as_json=True)["model_stats"][0]
    batches = {int(b["batch_size"]) for b in stats.get("batch_stats", [])}
    # Warm-up ran batches of 1 and 8 before; the six requests ran in fewer executions than six.
    assert int(stats["inference_count"]) - int(stats["execution_count"]) > 0, stats
    assert max(batches) > 1, batches
