"""The calibration report: a JSON file beside the model and model metadata props (the CLI
renders it as a table: `upres.cli.render_calibration`)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import onnx

from upres.calibration.accuracy import Accuracy, SpeedRun
from upres.core.atomic import atomic_write_text
from upres.core.model import PREFIX

CAL_PREFIX = PREFIX + "calibration."


@dataclass(frozen=True)
class LayerCost:
    """Sensitivity of one node: the model with only this node quantized, against FP32."""

    node: str
    op_type: str
    psnr_vs_fp32: float


@dataclass
class CalibrationReport:
    precision: str  # "int8" or "fp16"
    model: str
    model_sha256: str
    output: str
    method: str  # int8: minmax / entropy / percentile; fp16: "ranges"
    samples: int
    seed: int
    calibration_images: int
    calibration_sha256: str
    heldout_images: int
    heldout_sha256: str
    exclude_mode: str  # "auto", "manual" or "none" (fp16: "ranges")
    excluded_nodes: list[str]
    max_loss_db: float | None
    accuracy: Accuracy
    speed: SpeedRun | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    sensitivity: list[LayerCost] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    evaluation: dict[str, Any] = field(default_factory=dict)  # e.g. Set5/Set14 summaries
    machine: dict[str, Any] = field(default_factory=dict)  # CPU features the speed depends on

    @property
    def target_met(self) -> bool:
        return self.max_loss_db is None or self.accuracy.loss_db <= self.max_loss_db

    @property
    def json_path(self) -> Path:
        return json_path_for(Path(self.output))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["accuracy"]["loss_db"] = self.accuracy.loss_db
        d["target_met"] = self.target_met
        if self.speed is not None:
            d["speed"]["speedup"] = self.speed.speedup(self.precision) if self.precision in \
                self.speed.models else None
            d["speed"]["contended"] = self.speed.contended
        return d

    def write_json(self, path: Path | None = None) -> Path:
        path = path or self.json_path
        atomic_write_text(path, json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n")
        return path

    def to_props(self) -> dict[str, str]:
        """Metadata for the model file. Timings stay out (they are in the JSON): they differ on
        every run, and the model bytes should depend only on the model, the images and the seed."""
        a = self.accuracy
        values: dict[str, object] = {
            "set_sha256": self.calibration_sha256,
            "images": self.calibration_images,
            "samples": self.samples,
            "seed": self.seed,
            "method": self.method,
            "exclude_mode": self.exclude_mode,
            "excluded_nodes": json.dumps(self.excluded_nodes),
            "heldout_sha256": self.heldout_sha256,
            "heldout_images": self.heldout_images,
            "heldout_crops": a.crops,
            "psnr_fp32_hr": f"{a.psnr_fp32_hr:.3f}",
            "psnr_hr": f"{a.psnr_hr:.3f}",
            "psnr_vs_fp32": f"{a.psnr_vs_fp32:.3f}",
            "loss_db": f"{a.loss_db:.3f}",
            "max_abs_error": f"{a.max_abs:.3g}",
            "max_loss_db": "" if self.max_loss_db is None else self.max_loss_db,
            "source_sha256": self.model_sha256,
            "settings": json.dumps(self.settings, sort_keys=True),
        }
        return {CAL_PREFIX + k: str(v) for k, v in values.items()}


def json_path_for(model_out: Path) -> Path:
    """OUT.onnx -> OUT.json (coarse-x4.int8.onnx -> coarse-x4.int8.json)."""
    return model_out.with_suffix(".json")


def kept_props(model: onnx.ModelProto) -> dict[str, str]:
    """The source's upres.* props (ModelInfo and others such as upres.version), minus stale
    calibration ones: the output keeps the source's provenance, then gets its own on top."""
    return {p.key: p.value for p in model.metadata_props
            if p.key.startswith(PREFIX) and not p.key.startswith(CAL_PREFIX)}
