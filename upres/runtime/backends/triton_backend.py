"""`--backend triton://HOST:PORT[/MODEL]`: tiles go to a Triton Inference Server over gRPC.

The runtime keeps planning, halos, blending and image I/O; only the NCHW tile crosses the
network, so one Triton fleet (dynamic batching over every client's tiles) serves many `upres run`
processes. The served model must be the local model byte for byte: each model that
`upres triton export` writes carries its ONNX sha256 as the ``upres_sha256`` config parameter,
and the backend picks the served model with the local file's hash (``/MODEL`` says which one to
try first). A run's sidecar therefore names the model that really ran.

tritonclient is imported lazily (extra ``upres[triton]``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from upres.core.errors import BackendUnavailable
from upres.core.hashing import file_sha256

SCHEME = "triton"
SHA_PARAMETER = "upres_sha256"
DEFAULT_PORT = 8001  # Triton's gRPC port
TIMEOUT_S = 600.0  # one tile; generous, since a busy server queues it behind other clients'
_NUMPY = {"FP32": np.float32, "FP16": np.float16}


@dataclass(frozen=True)
class TritonTarget:
    address: str  # HOST:PORT as tritonclient takes it
    model: str | None  # a served model to try first


def is_triton(name: str) -> bool:
    return name.startswith(f"{SCHEME}://")


def parse_target(name: str) -> TritonTarget:
    """``triton://HOST[:PORT][/MODEL]`` -> target; raises ValueError naming the expected form."""
    parts = urlsplit(name)
    model = parts.path.strip("/") or None
    try:
        port = parts.port or DEFAULT_PORT
    except ValueError:
        port = None
    if parts.scheme != SCHEME or not parts.hostname or port is None or (model and "/" in model) \
            or parts.query or parts.fragment:
        raise ValueError(f"--backend {name}: expected triton://HOST:PORT or triton://HOST:PORT/MODEL")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return TritonTarget(f"{host}:{port}", model)


def served_name(model: Path) -> str:
    """The name `upres triton export` serves a model file under: coarse-x4.int8.onnx ->
    coarse-x4-int8 (a folder name Triton accepts and a client can derive)."""
    return model.name.removesuffix(".onnx").replace(".", "-")


def _client_module() -> Any:
    try:
        import tritonclient.grpc as grpcclient
    except ImportError:
        raise BackendUnavailable("triton: the tritonclient package is not installed "
                                 "(pip install 'upres[triton]')") from None
    return grpcclient


class TritonBackend:
    """One served model on one Triton server; `run` sends a tile batch and waits for its result."""

    def __init__(self, target: TritonTarget, model: Path, timeout_s: float = TIMEOUT_S) -> None:
        grpc = _client_module()
        from tritonclient.utils import InferenceServerException

        self._grpc = grpc
        self._error = InferenceServerException
        self.name = f"{SCHEME}://{target.address}"
        self.timeout_s = timeout_s
        try:
            self.client = grpc.InferenceServerClient(url=target.address)
            live = self.client.is_server_live()
        except InferenceServerException as exc:
            live, why = False, str(exc)
        else:
            why = "not live"
        if not live:
            raise BackendUnavailable(f"{self.name}: Triton server not reachable ({why})")
        sha = file_sha256(model)
        self.model = self._find(target, model, sha)
        try:
            config = self.client.get_model_config(self.model, as_json=True)["config"]
            meta = self.client.get_model_metadata(self.model, as_json=True)
            self.max_batch = int(config.get("max_batch_size", 0))
            self.input_name = meta["inputs"][0]["name"]
            self.input_type = meta["inputs"][0]["datatype"]
            self.output_name = meta["outputs"][0]["name"]
        except (InferenceServerException, LookupError, TypeError, ValueError) as exc:
            # Unloaded between the lookup and here, or a config without the fields a tile needs.
            raise BackendUnavailable(f"{self.name}/{self.model}: cannot read its config or "
                                     f"metadata ({type(exc).__name__}: {exc})") from None
        if self.input_type not in _NUMPY:
            raise BackendUnavailable(f"{self.name}/{self.model}: input type {self.input_type}; "
                                     "tile models take FP32 or FP16")

    def _is_ready(self, name: str) -> bool:
        try:
            return bool(self.client.is_model_ready(name))
        except self._error:
            return False

    def _served_sha(self, name: str) -> str | None:
        try:
            config = self.client.get_model_config(name, as_json=True)["config"]
        except self._error:
            return None
        value = config.get("parameters", {}).get(SHA_PARAMETER, {})
        return value.get("string_value") if isinstance(value, dict) else None

    def _find(self, target: TritonTarget, model: Path, sha: str) -> str:
        """The ready served model whose upres_sha256 is this file's: /MODEL, then the name
        `upres triton export` gives it, then any other."""
        first = [n for n in (target.model, served_name(model)) if n]
        try:
            index = self.client.get_model_repository_index(as_json=True).get("models", [])
            ready = [m["name"] for m in index if m.get("state") == "READY"]
        except self._error:
            # Servers may restrict the repository API: then only the names we can derive.
            ready = [n for n in first if self._is_ready(n)]
        for name in dict.fromkeys([*first, *sorted(ready)]):
            if name in ready and self._served_sha(name) == sha:
                return name
        named = f" ({target.model} serves another model)" if target.model in ready else ""
        raise BackendUnavailable(
            f"{self.name}: no ready model serves {model.name} (sha256 {sha[:12]}){named}; "
            f"export it with `upres triton export {model} -o REPO` and load it "
            f"(ready: {', '.join(ready) or 'none'})")

    def _infer(self, x: np.ndarray) -> np.ndarray:
        inp = self._grpc.InferInput(self.input_name, list(x.shape), self.input_type)
        inp.set_data_from_numpy(x)
        want = self._grpc.InferRequestedOutput(self.output_name)
        try:
            result = self.client.infer(self.model, [inp], outputs=[want], client_timeout=self.timeout_s)
        except self._error as exc:
            raise RuntimeError(f"{self.name}/{self.model}: {exc}") from None
        return result.as_numpy(self.output_name)

    def run(self, batch: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(batch, dtype=_NUMPY[self.input_type])
        step = self.max_batch if self.max_batch > 0 else len(x)
        outs = [self._infer(x[i : i + step]) for i in range(0, len(x), step)]
        out = outs[0] if len(outs) == 1 else np.concatenate(outs)
        return out.astype(np.float32, copy=False)

    def close(self) -> None:
        self.client.close()
