"""Find a model by name or path and learn its scale and receptive field.

upres's own ONNX files carry that in their metadata; any other SR model (NCHW float RGB, dynamic
H/W) is probed on first use with a few small runs, and the result is cached by the file's sha256.
A file upres cannot run is refused here, with the reason, as a ModelError (a usage error), before
any image could fail on it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, fields
from pathlib import Path

import numpy as np

from upres.core.cache import cache_dir, read_json, write_atomic
from upres.core.errors import ModelError
from upres.core.hashing import file_sha256
from upres.core.model import ModelInfo, ModelRef, check_info, read_info
from upres.core.receptive_field import probe_alignment, probe_receptive_field, probe_scale
from upres.runtime.backends.onnxruntime_backend import OrtBackend, ort_message

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"
DEFAULT_REFINE = "refine"
# In the probe cache's file names: bump it when probing changes what it finds (2: the output
# channels are measured), so an earlier probe's entry is probed again rather than trusted.
PROBE_FORMAT = 3


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
    info = read_info(path)  # first: a file that cannot be read is refused as a ModelError
    sha = file_sha256(path)
    if info is not None:
        return ModelRef(path, info, sha, probed=False)
    return ModelRef(path, probe_foreign(path, sha), sha, probed=True)


def probe_cache_path(sha: str) -> Path:
    return cache_dir() / "probes" / f"{sha}.v{PROBE_FORMAT}.json"


_FIELD_TYPES: dict[str, type | tuple[type, ...]] = {"int": int, "float": (int, float), "str": str}


def _cached_probe(path: Path, sha: str) -> ModelInfo | None:
    """The cached probe of this file, or None where the entry is missing, damaged or of another
    format (then it is probed again and the entry overwritten)."""
    data = read_json(path)
    names = [f.name for f in fields(ModelInfo)]
    if not isinstance(data, dict) or sorted(data) != sorted(names):
        return None
    for f in fields(ModelInfo):
        value = data[f.name]
        wanted = _FIELD_TYPES.get(str(f.type), f.type)
        if isinstance(value, bool) or not isinstance(value, wanted):  # type: ignore[arg-type]
            return None
    info = ModelInfo(**{**data, "flops_per_pixel": float(data["flops_per_pixel"])})
    if info.kind != "foreign" or info.weights_sha256 != sha:
        return None
    try:
        check_info(info, path)
    except ModelError:
        return None
    return info


def probe_foreign(path: Path, sha: str) -> ModelInfo:
    cached = probe_cache_path(sha)
    info = _cached_probe(cached, sha)
    if info is not None:
        return info
    backend = OrtBackend(path, "ort-cpu")
    channels = backend.input_channels or 3
    if channels != 3:
        raise ModelError(f"{path}: expects {channels} input channels; upres runs RGB (3) models")
    out_channels: list[int] = []

    def run(x: np.ndarray) -> np.ndarray:
        try:
            y = backend.run(x)
        except Exception as exc:  # ORT's own exception types derive from Exception alone
            raise ModelError(f"{path}: fails on a {x.shape[2]}x{x.shape[3]} test image "
                             f"({ort_message(exc)})") from None
        if y.ndim != 4:
            raise ModelError(f"{path}: returns shape {tuple(y.shape)} for a {x.shape[2]}x{x.shape[3]} "
                             "image, not an image (N, C, H, W); upres runs image-to-image models")
        out_channels.append(int(y.shape[1]))
        return y

    try:
        scale = probe_scale(run, channels)
        rf = probe_receptive_field(run, channels, scale, size=64, trials=2)
        # A strided model (pixel-unshuffle, strided convs) tiles exactly only from origins on its
        # stride: measured here, so the tiler aligns its tiles as for upres's own metadata.
        align = probe_alignment(run, channels, scale, rf)
    except ModelError:
        raise
    except ValueError as exc:
        raise ModelError(f"{path}: {exc}") from None
    # onnx only here, for a foreign model's first probe: it costs ~0.1 s of every start.
    import onnx

    from upres.export.graph_stats import flops_per_output_pixel, parameter_count

    proto = onnx.load(str(path))
    info = ModelInfo(
        name=path.stem, kind="foreign", scale=scale, receptive_field=rf,
        output_channels=out_channels[0],
        parameters=parameter_count(proto), flops_per_pixel=round(flops_per_output_pixel(proto), 1),
        weights_sha256=sha,
        io_dtype="float16" if backend.input_dtype == np.float16 else "float32",
        alignment=align,
    )
    write_atomic(cached, json.dumps(asdict(info), indent=2))
    return info


def require_rgb(ref: ModelRef) -> ModelRef:
    """``ref`` as the upscaling stage of a chain, which takes and gives RGB tiles."""
    info = ref.info
    if (info.input_channels, info.output_channels) != (3, 3):
        raise ModelError(f"{ref.path}: maps {info.input_channels} -> {info.output_channels} "
                         "channels; upres upscales with RGB models (3 -> 3)")
    return ref
