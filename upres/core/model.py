"""The model descriptor (ModelInfo, ModelRef) and the upres metadata stored in an ONNX file's
metadata_props, readable without torch or onnx."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING

from upres.core.errors import ModelError

if TYPE_CHECKING:
    import onnx

# ModelProto.graph, ModelProto.metadata_props and StringStringEntryProto.key/value (onnx.proto
# field numbers).
_GRAPH, _METADATA_PROPS, _KEY, _VALUE = 7, 14, 1, 2

PREFIX = "upres."
IO_DTYPES = ("float32", "float16")


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
    io_dtype: the dtype of the graph's input and output tensors, "float32" or "float16".
    precision: the arithmetic inside the graph: "fp32", "fp16" or "int8" (Q/DQ, made by
        `upres calibrate`); an int8 graph still takes float32 tensors.
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


@dataclass(frozen=True)
class ModelRef:
    """A resolved model: the file a backend loads and what the planner knows about it.

    path: the ONNX file (a built-in weight or the user's own).
    info: its descriptor, read from upres metadata or, for a foreign model, probed.
    sha256: of the file's bytes; keys the probe and memory caches and goes into sidecars.
    probed: True when ``info`` came from probing a foreign model rather than from its metadata.
    """

    path: Path
    info: ModelInfo
    sha256: str
    probed: bool


def _varint(data: memoryview, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data):
            raise ValueError("truncated protobuf varint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def _fields(data: memoryview) -> Iterator[tuple[int, memoryview | None]]:
    """(field number, bytes of a length-delimited field or None) of one protobuf message."""
    pos = 0
    while pos < len(data):
        tag, pos = _varint(data, pos)
        number, wire = tag >> 3, tag & 7
        if wire == 0:
            _, pos = _varint(data, pos)
            yield number, None
        elif wire == 1:
            pos += 8
            yield number, None
        elif wire == 5:
            pos += 4
            yield number, None
        elif wire == 2:
            length, pos = _varint(data, pos)
            if pos + length > len(data):
                raise ValueError("truncated protobuf field")
            yield number, data[pos : pos + length]
            pos += length
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")


def read_props(path: Path) -> dict[str, str]:
    """The model's metadata_props, read from the protobuf wire format: `upres run` needs these
    few strings, and importing onnx to get them cost ~0.1 s of every start."""
    try:
        data = memoryview(Path(path).read_bytes())
    except OSError as exc:
        raise ModelError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    if not data:
        raise ModelError(f"{path}: not an ONNX model (empty file)")
    props: dict[str, str] = {}
    graph = False
    try:
        for number, body in _fields(data):
            graph = graph or (number == _GRAPH and body is not None)
            if number != _METADATA_PROPS or body is None:
                continue
            entry = {n: bytes(v).decode("utf-8") for n, v in _fields(body) if v is not None}
            props[entry.get(_KEY, "")] = entry.get(_VALUE, "")
    except (ValueError, UnicodeDecodeError) as exc:
        raise ModelError(f"{path}: not an ONNX model ({exc})") from None
    if not graph:
        # Bytes that happen to parse as protobuf fields, but no ONNX model: it always has a graph.
        raise ModelError(f"{path}: not an ONNX model (no graph in it)")
    return props


def write_props(model: onnx.ModelProto, props: dict[str, str]) -> None:
    """Replace upres.* metadata in place, keeping other props."""
    keep = [(p.key, p.value) for p in model.metadata_props if not p.key.startswith(PREFIX)]
    del model.metadata_props[:]
    for key, value in [*keep, *sorted(props.items())]:
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value


def read_info(path: Path) -> ModelInfo | None:
    """The upres metadata of a model file (None for a foreign model); ModelError when the file is
    no ONNX model or its metadata could not describe a model upres can run."""
    props = read_props(path)
    try:
        info = ModelInfo.from_props(props)
    except ValueError as exc:
        raise ModelError(f"{path}: unreadable upres metadata ({exc})") from None
    if info is not None:
        check_info(info, path)
    return info


def check_info(info: ModelInfo, path: Path | str) -> None:
    """Refuse values no tile model can have, before any image fails on them."""
    if info.scale < 1:
        raise ModelError(f"{path}: its metadata says scale {info.scale}; a model upscales x1 or more")
    if info.receptive_field < 0:
        raise ModelError(f"{path}: its metadata says receptive field {info.receptive_field}; "
                         "it must be 0 or more")
    if info.alignment < 1:
        raise ModelError(f"{path}: its metadata says alignment {info.alignment}; it must be 1 or more")
    if info.input_channels < 1 or info.output_channels < 1:
        raise ModelError(f"{path}: its metadata says {info.input_channels} -> {info.output_channels} "
                         "channels")
    if info.io_dtype not in IO_DTYPES:
        raise ModelError(f"{path}: its metadata says io_dtype {info.io_dtype}; upres runs "
                         f"{'/'.join(IO_DTYPES)} image models")
