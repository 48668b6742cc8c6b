"""The calibration report: a rich table, a JSON file beside the model, and model metadata props."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import onnx
from rich.console import Console
from rich.table import Table

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

    def table(self) -> Table:
        a = self.accuracy
        label = self.precision.upper()
        t = Table(title=f"{label} calibration: {Path(self.output).name}", show_header=False)
        t.add_column("what", style="bold")
        t.add_column("value")
        t.add_row("model", f"{self.model} (sha256 {self.model_sha256[:12]})")
        t.add_row("calibration set", f"{self.calibration_images} images, sha256 "
                  f"{self.calibration_sha256[:12]}, {self.samples} crops, seed {self.seed}")
        t.add_row("method", self.method)
        t.add_row("held-out set", f"{self.heldout_images} images, {a.crops} crops, "
                                  f"sha256 {self.heldout_sha256[:12]}")
        kept = ", ".join(self.excluded_nodes) or "none"
        t.add_row("kept in float", f"{kept} ({self.exclude_mode})")
        t.add_row("PSNR FP32 vs HR", f"{a.psnr_fp32_hr:.3f} dB")
        t.add_row(f"PSNR {label} vs HR", f"{a.psnr_hr:.3f} dB (loss {a.loss_db:+.3f} dB"
                  + (f", budget {self.max_loss_db} dB" if self.max_loss_db is not None else "") + ")")
        t.add_row(f"PSNR {label} vs FP32", f"{a.psnr_vs_fp32:.2f} dB (max abs {a.max_abs:.2e}, "
                                           f"mean abs {a.mean_abs:.2e})")
        if self.speed is not None:
            s = self.speed
            shape = "x".join(str(v) for v in s.input_shape)
            for name, sp in s.models.items():
                t.add_row(f"speed {name}", f"{sp.median_ms:.1f} ms median ({sp.min_ms:.1f}-{sp.max_ms:.1f}, "
                                           f"{sp.runs} runs), {sp.mp_per_s:.2f} MP/s")
            if self.precision in s.models:
                note = " [yellow](CPU shared with other jobs: noisy)[/yellow]" if s.contended else ""
                t.add_row("speed-up", f"x{s.speedup(self.precision):.2f} on {shape}, {s.threads} threads, "
                                      f"load {s.load_before:.1f}{note}")
        t.add_row("target", "[green]met[/green]" if self.target_met else "[red]missed[/red]")
        for note in self.notes:
            t.add_row("note", note)
        return t

    def print(self, console: Console | None = None) -> None:
        (console or Console()).print(self.table())


def json_path_for(model_out: Path) -> Path:
    """OUT.onnx -> OUT.json (coarse-x4.int8.onnx -> coarse-x4.int8.json)."""
    return model_out.with_suffix(".json")


def kept_props(model: onnx.ModelProto) -> dict[str, str]:
    """The source's upres.* props (ModelInfo and others such as upres.version), minus stale
    calibration ones: the output keeps the source's provenance, then gets its own on top."""
    return {p.key: p.value for p in model.metadata_props
            if p.key.startswith(PREFIX) and not p.key.startswith(CAL_PREFIX)}
