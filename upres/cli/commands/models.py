"""`upres train`, `export`, `inspect` and `eval`: the model commands."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from upres.cli.options import DenoiseOpt, choice_option, denoise_option, err, fail, out, real_console
from upres.core.choices import Mode


def train(
    model: Annotated[str, typer.Argument(
        help="coarse-x2|4, restore-x2|4, refine, overlay-detect, thin-detect or fill")],
    data: Annotated[list[Path], typer.Option("--data", help="folder of HR training images")],
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="checkpoint/output folder")],
    steps: int = 10000,
    batch: int = 16,
    patch: Annotated[int, typer.Option(help="LR patch (refine: output/4; *-detect, fill: crop)")] = 32,
    learning_rate: float = 2e-3,
    seed: int = 0,
    threads: int = 0,
    stop_after: Annotated[int, typer.Option(help="checkpoint and stop at this step")] = 0,
    coarse: Annotated[list[Path] | None, typer.Option(help="refine: coarse weights")] = None,
    degrade: Annotated[bool, typer.Option(help="LR by the scan degradation recipe (restore-x*)")] = False,
    texture_weight: Annotated[float, typer.Option(help="refine: texture terms vs fidelity")] = 0.1,
    freq_weight: Annotated[float, typer.Option(help="refine: FFT-magnitude term")] = 1.0,
    grad_weight: Annotated[float, typer.Option(help="refine: gradient L1 term")] = 1.0,
    freq_warmup: Annotated[float, typer.Option(help="refine: ramp of the FFT term")] = 0.3,
    cond_noise: Annotated[float, typer.Option(help="refine: noise on its input")] = 0.0,
    spectrum_window: Annotated[int, typer.Option(help="refine: local FFT window, 0 = patch")] = 0,
    fidelity_sigma: Annotated[float, typer.Option(help="refine: L1 on low-passes, 0 = off")] = 0.0,
    init: Annotated[Path | None, typer.Option(help="start from these weights (fine-tune)")] = None,
    teacher: Annotated[Path | None, typer.Option(help="refine: distil these refine weights")] = None,
    hard_negatives: Annotated[Path | None, typer.Option(
        help="thin-detect: JSON of benchmarks/thin_mine.py, crops around its structures")] = None,
    hard_share: Annotated[float, typer.Option(help="thin-detect: share of crops around them")] = 0.25,
) -> None:
    """Train a network from folders of HR training images (resumes from --out)."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from upres.kernels.scan_recipe import ScanRecipe
    from upres.models.losses import RefineLossSchedule
    from upres.models.registry import SPECS
    from upres.models.train import TrainConfig
    from upres.models.train import train as run_training

    if model not in SPECS:
        raise fail(f"unknown model {model!r}; choose from {', '.join(SPECS)}")
    for folder in data:
        if not folder.is_dir():
            raise fail(f"--data {folder}: not a folder")
    for option, path in (("--init", init), ("--teacher", teacher), ("--hard-negatives", hard_negatives)):
        if path is not None and not path.is_file():
            raise fail(f"{option} {path}: no such file")
    if not 0.0 <= hard_share <= 1.0:
        raise fail(f"--hard-share must be within [0, 1], got {hard_share}")
    cfg = TrainConfig(
        model=model, data=tuple(data), out=out_dir, steps=steps, batch=batch, lr_patch=patch,
        learning_rate=learning_rate, seed=seed, threads=threads, stop_after=stop_after,
        recipe=ScanRecipe() if degrade else None,
        refine_schedule=RefineLossSchedule(
            texture_weight=texture_weight, freq_weight=freq_weight, grad_weight=grad_weight,
            freq_warmup=freq_warmup, cond_noise=cond_noise, spectrum_window=spectrum_window,
            fidelity_sigma=fidelity_sigma),
        coarse_weights=tuple(coarse or ()),
        init_weights=init,
        teacher_weights=teacher,
        hard_negatives=hard_negatives,
        hard_share=hard_share,
    )
    if not err.is_terminal:
        # A log file gets a line every 50 steps instead of a bar it cannot show.
        def log_line(step: int, loss: float) -> None:
            if step % 50 == 0 or step == steps:
                err.print(f"train {model} {step}/{steps} loss {loss:.5f}", highlight=False)

        final = run_training(cfg, log_line)
    else:
        with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/"
                      "{task.total}"), TextColumn("loss {task.fields[loss]:.5f}"),
                      TimeRemainingColumn(), console=real_console(err)) as bar:
            task = bar.add_task(f"train {model}", total=steps, loss=0.0)
            final = run_training(cfg, lambda step, loss: bar.update(task, completed=step, loss=loss))
    out.print(f"weights: {final}")


def export(
    weights: Annotated[Path, typer.Argument(help="weights .pt written by `upres train`")],
    output: Annotated[Path, typer.Option("--output", "-o", help="ONNX file to write")],
) -> None:
    """Export trained weights to ONNX (parity-checked, receptive field in the metadata)."""
    if not weights.is_file():
        raise fail(f"{weights}: no such weights file")
    from upres.export.onnx_export import export_weights

    report = export_weights(weights, output)
    out.print(f"{report.path}: parity max abs error {report.parity_max_abs:.2e}, "
              f"receptive field {report.info.receptive_field} px")


def inspect(model: Annotated[str, typer.Argument(help="model name or path to .onnx")]) -> None:
    """Show a model's scale, receptive field, size and cost (probing foreign models once)."""
    from dataclasses import asdict

    from upres.core.errors import BackendUnavailable
    from upres.runtime.catalog import resolve

    try:
        ref = resolve(model)
    except (FileNotFoundError, ValueError, BackendUnavailable) as exc:  # ModelError is a ValueError
        raise fail(str(exc)) from None
    table = Table(title=str(ref.path), show_header=False)
    for key, value in asdict(ref.info).items():
        table.add_row(key, str(value))
    table.add_row("file_sha256", ref.sha256)
    table.add_row("source", "probed (no upres metadata)" if ref.probed else "upres metadata")
    out.print(table)
    from upres.cli.commands.build import engine_table
    from upres.gpu.engine_cache import EngineCache

    engines = engine_table(EngineCache(), ref.sha256)
    if engines is not None:
        out.print(engines)


def evaluate(
    data: Annotated[Path, typer.Option("--data", help="folder of HR test images")],
    scale: int = 4,
    mode: str = "faithful",
    texture: float = 0.5,
    model: Annotated[str | None, typer.Option(help="model name or .onnx path")] = None,
    precision: str = "fp32",
    denoise: DenoiseOpt = "auto",
    degrade: Annotated[str, typer.Option(
        "--degrade", help="clean | noise | jpeg | blur-noise-jpeg | grain | scan: damage done to "
        "the LR, reproducibly (docs/RESTORATION.md)")] = "clean",
    threads: int = 0,
    json_out: Annotated[Path | None, typer.Option("--json", help="write results as JSON")] = None,
) -> None:
    """PSNR/SSIM (Y, BT.601, shave=scale) against bicubic on a test folder, clean or degraded."""
    from upres.degraded_eval import DEGRADATIONS, bicubic, chain_upscale, evaluate_degraded, summary
    from upres.runtime.chain_factory import build_chain

    if not data.is_dir():
        raise fail(f"--data {data}: not a folder")
    if degrade not in DEGRADATIONS:
        raise fail(f"--degrade must be one of {', '.join(DEGRADATIONS)}, got {degrade!r}")
    chosen = choice_option(Mode, mode)
    try:
        setup = build_chain(chosen, scale, model, texture, "ort-cpu", precision, threads,
                            denoise=denoise_option(denoise))
    except (ValueError, FileNotFoundError) as exc:
        raise fail(str(exc)) from None
    scores = evaluate_degraded(data, scale, degrade, chain_upscale(setup))
    base = evaluate_degraded(data, scale, degrade, bicubic(scale))
    table = Table(title=f"{data.name} x{scale} {mode}, {degrade} input, denoise {setup.denoise}")
    for col in ("image", "PSNR", "SSIM", "bicubic PSNR", "bicubic SSIM", "denoise"):
        table.add_column(col)
    for s, b in zip(scores, base, strict=True):
        table.add_row(s.name, f"{s.psnr:.2f}", f"{s.ssim:.4f}", f"{b.psnr:.2f}", f"{b.ssim:.4f}",
                      f"{s.strength:.1f}" if s.strength is not None else "")
    total, bic = summary(scores), summary(base)
    table.add_row("mean", f"{total['psnr']:.2f}", f"{total['ssim']:.4f}", f"{bic['psnr']:.2f}",
                  f"{bic['ssim']:.4f}", f"{total.get('strength', 0.0):.2f}")
    out.print(table)
    if json_out:
        record = {"data": str(data), "scale": scale, "mode": mode, "texture": texture,
                  "degrade": degrade, "denoise": str(setup.denoise),
                  "summary": {**total, "bicubic_psnr": bic["psnr"], "bicubic_ssim": bic["ssim"]},
                  "images": [s.__dict__ for s in scores]}
        json_out.write_text(json.dumps(record, indent=2))
