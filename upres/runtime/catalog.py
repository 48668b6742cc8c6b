"""Find a model by name or path and learn its scale and receptive field.

upres's own ONNX files carry that in their metadata; any other SR model (NCHW float RGB, dynamic
H/W) is probed on first use with a few small runs, and the result is cached by the file's sha256.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from upres.export.onnx_meta import ModelInfo, file_sha256, read_info
from upres.export.receptive_field import probe_receptive_field, probe_scale
from upres.runtime.backends.onnxruntime_backend import OrtBackend

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"
DEFAULT_REFINE = "refine"


def cache_dir() -> Path:
    root = os.environ.get("UPRES_CACHE_DIR") or os.environ.get("XDG_CACHE_HOME")
    base = Path(root) if root else Path.home() / ".cache"
    return base if os.environ.get("UPRES_CACHE_DIR") else base / "upres"


@dataclass(frozen=True)
class ModelRef:
    path: Path
    info: ModelInfo
    sha256: str
    probed: bool  # True when the info came from probing a foreign model


def builtin_path(name: str, precision: str = "fp32") -> Path:
    suffix = "" if precision == "fp32" else f".{precision}"
    return WEIGHTS_DIR / f"{name}{suffix}.onnx"


def builtin_names() -> list[str]:
    return sorted(p.stem for p in WEIGHTS_DIR.glob("*.onnx") if p.stem.count(".") == 0)


def model_path(model: str | Path, precision: str = "fp32") -> Path:
    """The ONNX file of a built-in name ("coarse-x4", in this precision) or of a path."""
    path = Path(model)
    if not (path.suffix == ".onnx" or path.exists()):
        path = builtin_path(str(model), precision)
        if not path.exists():
            known = ", ".join(builtin_names()) or "none installed"
            hint = "" if precision == "fp32" else f"; `upres calibrate` makes {precision} graphs"
            raise FileNotFoundError(f"no model {model!r} ({precision}); built-in models: {known}{hint}")
    if not path.is_file():
        raise FileNotFoundError(f"model file not found: {path}")
    return path


def resolve(model: str | Path, precision: str = "fp32") -> ModelRef:
    """A built-in name ("coarse-x4") or a path to any .onnx file."""
    path = model_path(model, precision)
    sha = file_sha256(path)
    info = read_info(path)
    if info is not None:
        return ModelRef(path, info, sha, probed=False)
    return ModelRef(path, probe_foreign(path, sha), sha, probed=True)


def probe_foreign(path: Path, sha: str) -> ModelInfo:
    cached = cache_dir() / "probes" / f"{sha}.json"
    if cached.exists():
        return ModelInfo(**json.loads(cached.read_text()))
    backend = OrtBackend(path, "ort-cpu")
    shape = backend.session.get_inputs()[0].shape
    channels = shape[1] if isinstance(shape[1], int) else 3
    if channels != 3:
        raise ValueError(f"{path}: expects {channels} input channels; upres runs RGB (3) models")

    def run(x: np.ndarray) -> np.ndarray:
        return backend.run(x)

    scale = probe_scale(run, channels)
    rf = probe_receptive_field(run, channels, scale, size=64, trials=2)
    # onnx only here, for a foreign model's first probe: it costs ~0.1 s of every start.
    import onnx

    from upres.export.graph_stats import flops_per_output_pixel, parameter_count

    proto = onnx.load(str(path))
    info = ModelInfo(
        name=path.stem, kind="foreign", scale=scale, receptive_field=rf,
        parameters=parameter_count(proto), flops_per_pixel=round(flops_per_output_pixel(proto), 1),
        weights_sha256=sha,
        io_dtype="float16" if backend.input_dtype == np.float16 else "float32",
    )
    cached.parent.mkdir(parents=True, exist_ok=True)
    tmp = cached.with_name(cached.name + f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(asdict(info), indent=2))
    os.replace(tmp, cached)
    return info
