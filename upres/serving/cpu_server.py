"""Serve an exported repository with a real Triton server on a machine without a GPU.

NVIDIA's server containers bring Triton's onnxruntime backend; the ``tritonserver`` that the
``nvidia-pytriton`` wheel ships (no container needed) brings only the Python backend. So this
module serves a copy of the repository in which each ONNX model's config says
``backend: "python"`` instead of ``platform: "onnxruntime_onnx"``, with instances on the CPU, and
a ``model.py`` that runs the same ``model.onnx`` with ONNX Runtime. Everything else the export
wrote (tensor names, dynamic H/W, dynamic batching, warm-up, the upres_sha256 parameter) is
served as it is. The server listens on loopback only.

The server runs from its own Python environment (``scripts/triton-env.sh`` makes one: a venv
with ``nvidia-pytriton`` and ``onnxruntime``), named by ``$UPRES_TRITON_ENV``: Triton's Python
backend stub embeds that environment's Python, and it needs numpy 1.x, which nvidia-pytriton pins
and upres's own environment need not have.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from upres.serving.triton_repo import KINDS

ENV_VAR = "UPRES_TRITON_ENV"
MODEL_SCRIPT = Path(__file__).with_name("triton_python_model.py")
_PLATFORM_RE = re.compile(r'^platform: "onnxruntime_onnx"$', re.MULTILINE)
_KIND_RE = re.compile(r"kind: KIND_\w+")
_PROBE = ("import sys, sysconfig; print(sysconfig.get_paths()['purelib']); "
          "print(sysconfig.get_config_var('LIBDIR')); print('%d.%d' % sys.version_info[:2])")


class ServerUnavailable(RuntimeError):
    """No Triton server environment here, or the server did not come up."""


@dataclass(frozen=True)
class ServerEnv:
    """A Python environment holding nvidia-pytriton (Triton's server files) and onnxruntime."""

    prefix: Path  # the environment (a venv)
    site: Path  # its site-packages: pytriton/tritonserver and nvidia_pytriton.libs live there
    libdir: Path  # where its libpython is: the Python backend stub embeds that library
    version: str  # "3.11"

    @property
    def binary(self) -> Path:
        return self.site / "pytriton" / "tritonserver" / "bin" / "tritonserver"

    @property
    def python_backend(self) -> Path:
        return self.site / "pytriton" / "tritonserver" / "backends" / "python"

    @property
    def stub(self) -> Path:
        return (self.site / "pytriton" / "tritonserver" / "python_backend_stubs" / self.version
                / "triton_python_backend_stub")

    @property
    def libs(self) -> Path:
        return self.site / "nvidia_pytriton.libs"

    def complete(self) -> bool:
        return all(p.exists() for p in (self.binary, self.python_backend, self.stub, self.libs))


def server_env(prefix: Path) -> ServerEnv | None:
    """The environment at ``prefix`` if it holds a usable Triton server, else None."""
    python = prefix / "bin" / "python3"
    if not python.exists():
        return None
    try:
        probe = subprocess.run([str(python), "-c", _PROBE], capture_output=True, text=True,
                               timeout=60, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    site, libdir, version = probe.stdout.split()
    env = ServerEnv(prefix, Path(site), Path(libdir), version)
    return env if env.complete() else None


def find_server_env() -> ServerEnv | None:
    """$UPRES_TRITON_ENV, else this interpreter's own environment."""
    candidates = [Path(os.environ[ENV_VAR])] if os.environ.get(ENV_VAR) else []
    candidates.append(Path(sys.prefix))
    for prefix in candidates:
        env = server_env(prefix)
        if env is not None:
            return env
    return None


def python_backend_repo(repo: Path, target: Path) -> list[str]:
    """Copy ``repo``'s ONNX models into ``target`` as Python-backend CPU models; return their names.
    TensorRT plan models are left out: they need their GPU."""
    served = []
    for folder in sorted(p for p in repo.iterdir() if (p / "config.pbtxt").is_file()):
        config = (folder / "config.pbtxt").read_text()
        if not _PLATFORM_RE.search(config):
            continue
        config = _PLATFORM_RE.sub('backend: "python"', config)
        config = _KIND_RE.sub(f"kind: {KINDS['cpu']}", config)
        dest = target / folder.name
        shutil.copytree(folder, dest, dirs_exist_ok=True)
        (dest / "config.pbtxt").write_text(config)
        for version in (p for p in dest.iterdir() if p.is_dir() and (p / "model.onnx").is_file()):
            shutil.copyfile(MODEL_SCRIPT, version / "model.py")
        served.append(folder.name)
    return served


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class CpuTritonServer:
    """``with CpuTritonServer(repo, workdir) as server: ... server.address ...``"""

    def __init__(self, repo: Path, workdir: Path, env: ServerEnv | None = None,
                 grpc_port: int | None = None, threads: int = 1, ready_timeout_s: float = 120.0) -> None:
        found = env or find_server_env()
        if found is None:
            raise ServerUnavailable("no Triton server environment: make one with "
                                    f"scripts/triton-env.sh and name it in ${ENV_VAR}")
        self.env = found
        self.repo = repo
        self.workdir = workdir
        self.grpc_port = grpc_port or free_port()
        self.threads = threads
        self.ready_timeout_s = ready_timeout_s
        self.models: list[str] = []
        self.process: subprocess.Popen[bytes] | None = None
        self.log = workdir / "tritonserver.log"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def _backends(self) -> Path:
        """A backend folder whose Python backend uses the stub of the environment's Python."""
        folder = self.workdir / "backends" / "python"
        folder.mkdir(parents=True, exist_ok=True)
        for source in [*self.env.python_backend.iterdir(), self.env.stub]:
            link = folder / source.name
            if source.is_file() and not link.exists():
                link.symlink_to(source)
        return folder.parent

    def start(self) -> None:
        models = self.workdir / "models"
        self.models = python_backend_repo(self.repo, models)
        if not self.models:
            raise ServerUnavailable(f"{self.repo}: no ONNX model to serve")
        env = dict(os.environ)
        # Libraries by search path, not RPATH: the backend is loaded through a symlink.
        env["LD_LIBRARY_PATH"] = ":".join(filter(None, [str(self.env.libs), str(self.env.libdir),
                                                        env.get("LD_LIBRARY_PATH", "")]))
        # The stub's embedded Python ignores PYTHONPATH and takes its packages from the `python3`
        # first on PATH: the server environment's, whose numpy is 1.x as the stub needs (under
        # numpy 2 its tensors come back empty).
        env["PATH"] = f"{self.env.prefix / 'bin'}:{env.get('PATH', '')}"
        env["UPRES_TRITON_THREADS"] = str(self.threads)
        cmd = [str(self.env.binary), f"--model-repository={models}",
               f"--backend-directory={self._backends()}", "--grpc-address=127.0.0.1",
               f"--grpc-port={self.grpc_port}", "--allow-http=false", "--allow-metrics=false",
               "--allow-gpu-metrics=false", "--exit-timeout-secs=10", "--strict-readiness=true"]
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env,
                                            start_new_session=True)
        self._wait_ready()

    def _wait_ready(self) -> None:
        import tritonclient.grpc as grpcclient
        from tritonclient.utils import InferenceServerException

        client = grpcclient.InferenceServerClient(self.address)
        deadline = time.monotonic() + self.ready_timeout_s
        try:
            while time.monotonic() < deadline:
                assert self.process is not None
                if self.process.poll() is not None:
                    raise ServerUnavailable(f"tritonserver exited ({self.process.returncode}): "
                                            f"{self.tail()}")
                try:
                    if client.is_server_ready() and all(client.is_model_ready(m) for m in self.models):
                        return
                except InferenceServerException:
                    pass
                time.sleep(0.2)
        finally:
            client.close()
        self.stop()
        raise ServerUnavailable(f"tritonserver not ready in {self.ready_timeout_s:.0f} s: {self.tail()}")

    def tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            # The Python backend's stubs are in the server's session: take them down with it.
            os.killpg(self.process.pid, 9)
            self.process.wait(timeout=10)

    def __enter__(self) -> CpuTritonServer:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
