"""upres metadata stored in an ONNX file's metadata_props, readable without torch."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import onnx

PREFIX = "upres."


@dataclass(frozen=True)
class ModelInfo:
    """What the planner and runtime need to know about a tile model.

    name: model name ("coarse-x4", "refine", "overlay-detect", or a file stem for foreign models).
    kind: "coarse" (LR -> HR), "refine" (output-space residual), "detect" (one overlay logit per
        pixel) or "foreign" (any SR model).
    scale: output size / input size (1 for refine and detect).
    receptive_field: how far, in input pixels, an input pixel's influence reaches; a halo this
        wide makes a tiled result equal the whole-image result.
    input_channels / output_channels: 3 (RGB) for SR models, 4 -> 3 for refine, 3 -> 1 for detect.
    value_range: the float range images are fed in ("0,1").
    layout / channel_order: "NCHW" / "RGB".
    parameters: number of weights; flops_per_pixel: FLOPs per *output* pixel.
    weights_sha256: sha256 of the weights the ONNX was exported from (or of the ONNX file).
    io_dtype: "float32" or "float16".
    alignment: tile origins must be multiples of this many input pixels for a tiled result to equal
        the whole-image one (the model's total stride; 1 for the SR models).
    """

    name: str
    kind: str
    scale: int
    receptive_field: int
    input_channels: int = 3
    output_channels: int = 3
    value_range: str = "0,1"
    layout: str = "NCHW"
    channel_order: str = "RGB"
    parameters: int = 0
    flops_per_pixel: float = 0.0
    weights_sha256: str = ""
    io_dtype: str = "float32"
    precision: str = "fp32"
    alignment: int = 1

    def to_props(self) -> dict[str, str]:
        props = {PREFIX + k: str(v) for k, v in asdict(self).items()}
        if self.alignment == 1:
            # Stride-free models leave it out, so their files read exactly as before the field existed.
            del props[PREFIX + "alignment"]
        return props

    @classmethod
    def from_props(cls, props: dict[str, str]) -> ModelInfo | None:
        """None when the props carry no upres metadata (a foreign model)."""
        if PREFIX + "kind" not in props:
            return None
        values: dict[str, object] = {}
        for f in fields(cls):
            raw = props.get(PREFIX + f.name)
            if raw is None:
                continue
            if f.type in ("int", int):
                values[f.name] = int(raw)
            elif f.type in ("float", float):
                values[f.name] = float(raw)
            else:
                values[f.name] = raw
        return cls(**values)  # type: ignore[arg-type]


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_props(path: Path) -> dict[str, str]:
    model = onnx.load(str(path), load_external_data=False)
    return {p.key: p.value for p in model.metadata_props}


def write_props(model: onnx.ModelProto, props: dict[str, str]) -> None:
    """Replace upres.* metadata in place, keeping other props."""
    keep = [(p.key, p.value) for p in model.metadata_props if not p.key.startswith(PREFIX)]
    del model.metadata_props[:]
    for key, value in [*keep, *sorted(props.items())]:
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value


def read_info(path: Path) -> ModelInfo | None:
    return ModelInfo.from_props(read_props(path))
