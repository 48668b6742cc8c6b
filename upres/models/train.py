"""Training loop for the coarse and refine networks: seeded, checkpointed, resumable."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F

from upres.core.atomic import atomic_output, atomic_write_text
from upres.kernels.scan_recipe import ScanRecipe
from upres.models import edge_ops
from upres.models.data import PatchSampler
from upres.models.detect_data import DamageSampler, OverlaySampler, load_hard_negatives
from upres.models.detector import detection_loss
from upres.models.fill_data import FillSampler
from upres.models.fill_net import masked_l1
from upres.models.losses import RefineLossSchedule
from upres.models.refine import RefineConfig, RefineNet
from upres.models.registry import spec

CHECKPOINT_NAME = "checkpoint.pt"


@dataclass(frozen=True)
class TrainConfig:
    model: str
    data: tuple[Path, ...]
    out: Path
    steps: int = 10000
    batch: int = 16
    lr_patch: int = 32
    learning_rate: float = 2e-3
    warmup_steps: int = 200
    seed: int = 0
    checkpoint_every: int = 500
    threads: int = 0  # 0 = torch default
    stop_after: int = 0  # > 0: checkpoint and stop at this step (the LR schedule still spans `steps`)
    recipe: ScanRecipe | None = None  # degrade LR by the scan recipe (restoration models)
    refine_schedule: RefineLossSchedule = field(default_factory=RefineLossSchedule)
    coarse_weights: tuple[Path, ...] = ()  # refine: frozen coarse models (one per scale)
    teacher_weights: Path | None = None  # refine: distil this refine network's output instead
    init_weights: Path | None = None  # start (not resume) from these weights: fine-tuning
    hard_negatives: Path | None = None  # thin-detect: crops around these (benchmarks/thin_mine.py)
    hard_share: float = 0.25  # thin-detect: the share of crops taken around a hard negative


def _learning_rate(cfg: TrainConfig, step: int) -> float:
    if step < cfg.warmup_steps:
        return cfg.learning_rate * (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    return 1e-6 + 0.5 * (cfg.learning_rate - 1e-6) * (1 + math.cos(math.pi * progress))


def _atomic_save(obj: object, path: Path) -> None:
    with atomic_output(path) as tmp:
        torch.save(obj, tmp)


def load_state(path: Path) -> tuple[str, dict[str, torch.Tensor]]:
    """(model name, state dict) from a weights file written by `train`."""
    blob = torch.load(path, map_location="cpu", weights_only=True)
    return blob["model"], blob["state_dict"]


def load_model(path: Path) -> torch.nn.Module:
    name, state = load_state(path)
    model = spec(name).build()
    model.load_state_dict(state)
    return model.eval()


def load_refine(path: Path) -> torch.nn.Module:
    """A refine network of any shape (channels, depth, pixel blocks), read from its weights."""
    _, state = load_state(path)
    hidden = sorted(k for k in state if k.startswith("hidden.") and k.endswith(".weight"))
    channels, in_channels = state[hidden[0]].shape[:2]
    config = RefineConfig(channels=int(channels), layers=len(hidden) + 1,
                          unshuffle=math.isqrt(int(in_channels) // 4))
    model = RefineNet(config)
    model.load_state_dict(state)
    return model.eval()


class _Task(Protocol):
    def __init__(self, cfg: TrainConfig) -> None: ...

    def loss(self, model: torch.nn.Module, step: int, cfg: TrainConfig) -> torch.Tensor: ...


class _Prefetch:
    """Batch k+1 is built in a thread while the network steps on batch k.

    Degradation, font rendering and inpainting release the GIL for most of their work, so the
    sampler runs beside the step; batch k is still a pure function of k.
    """

    def __init__(self, make: Callable[[int, int], tuple[np.ndarray, np.ndarray]]) -> None:
        self.make = make
        self.pool = ThreadPoolExecutor(max_workers=1)
        self.pending: dict[int, Future[tuple[np.ndarray, np.ndarray]]] = {}

    def __call__(self, step: int, size: int) -> tuple[np.ndarray, np.ndarray]:
        future = self.pending.pop(step, None) or self.pool.submit(self.make, step, size)
        self.pending = {step + 1: self.pool.submit(self.make, step + 1, size)}
        return future.result()


class _CoarseTask:
    def __init__(self, cfg: TrainConfig) -> None:
        self.sampler = PatchSampler(
            list(cfg.data), spec(cfg.model).scale, cfg.lr_patch, cfg.seed, cfg.recipe
        )
        self.batch = _Prefetch(self.sampler.batch)

    def loss(self, model: torch.nn.Module, step: int, cfg: TrainConfig) -> torch.Tensor:
        lr, hr = self.batch(step, cfg.batch)
        return F.l1_loss(model(torch.from_numpy(lr)), torch.from_numpy(hr))


class _RefineTask:
    """Refine learns on the frozen coarse models' outputs, alternating scales batch by batch."""

    def __init__(self, cfg: TrainConfig) -> None:
        if not cfg.coarse_weights:
            raise ValueError("training refine needs --coarse WEIGHTS (one or more coarse models)")
        self.coarse = [load_model(p) for p in cfg.coarse_weights]
        self.samplers = []
        for m in self.coarse:
            scale = int(m.config.scale)  # type: ignore[union-attr, arg-type]
            # Same HR patch size for every scale: output-space patches.
            lr_patch = max(8, cfg.lr_patch * 4 // scale)
            self.samplers.append(
                PatchSampler(list(cfg.data), scale, lr_patch, cfg.seed, cfg.recipe)
            )
        self.teacher = load_refine(cfg.teacher_weights) if cfg.teacher_weights else None

    def loss(self, model: torch.nn.Module, step: int, cfg: TrainConfig) -> torch.Tensor:
        k = step % len(self.coarse)
        lr, hr = self.samplers[k].batch(step, cfg.batch)
        with torch.no_grad():
            coarse = self.coarse[k](torch.from_numpy(lr)).clamp(0.0, 1.0)
        edge = edge_ops.sobel_magnitude(coarse)
        cond = coarse
        sched = cfg.refine_schedule
        if sched.cond_noise > 0:
            gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step)
            cond = coarse + sched.cond_noise * torch.randn(coarse.shape, generator=gen)
        residual = model(torch.cat([cond, edge], dim=1))
        out = edge_ops.compose(coarse, residual, edge, texture=1.0)
        target = torch.from_numpy(hr)
        if self.teacher is not None:
            # Distillation: the teacher's composed output is the target, so what the edge gate
            # hides does not count and the student learns the teacher's texture, not the HR's.
            with torch.no_grad():
                target = edge_ops.compose(coarse, self.teacher(torch.cat([coarse, edge], dim=1)),
                                          edge, texture=1.0)
        return sched.loss(out, target, step / max(1, cfg.steps))


class _DetectTask:
    """A detector learns on synthetic overlays or damage over training-photo crops of `lr_patch` px."""

    def __init__(self, cfg: TrainConfig) -> None:
        if spec(cfg.model).synth == "damage":
            hard = load_hard_negatives(cfg.hard_negatives) if cfg.hard_negatives else None
            self.sampler: DamageSampler | OverlaySampler = DamageSampler(
                list(cfg.data), cfg.lr_patch, cfg.seed, hard=hard, hard_share=cfg.hard_share)
        elif cfg.hard_negatives is not None:
            raise ValueError(f"--hard-negatives is for thin-detect, not {cfg.model}")
        else:
            self.sampler = OverlaySampler(list(cfg.data), cfg.lr_patch, cfg.seed)

    def loss(self, model: torch.nn.Module, step: int, cfg: TrainConfig) -> torch.Tensor:
        images, masks = self.sampler.batch(step, cfg.batch)
        return detection_loss(model(torch.from_numpy(images)), torch.from_numpy(masks))


class _FillTask:
    """The learned fill learns to correct Telea inside overlay masks over training-photo crops."""

    def __init__(self, cfg: TrainConfig) -> None:
        self.sampler = FillSampler(list(cfg.data), cfg.lr_patch, cfg.seed)
        self.batch = _Prefetch(self.sampler.fill_batch)

    def loss(self, model: torch.nn.Module, step: int, cfg: TrainConfig) -> torch.Tensor:
        inputs, targets = (torch.from_numpy(a) for a in self.batch(step, cfg.batch))
        return masked_l1(model(inputs), targets, inputs[:, 3:4])


def train(cfg: TrainConfig, progress: Callable[[int, float], None] | None = None) -> Path:
    """Train (or resume) `cfg.model`; returns the path of the final weights file."""
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)
    cfg.out.mkdir(parents=True, exist_ok=True)
    model = spec(cfg.model).build()
    tasks: dict[str, type[_Task]] = {"refine": _RefineTask, "detect": _DetectTask, "fill": _FillTask}
    task = tasks.get(spec(cfg.model).kind, _CoarseTask)(cfg)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.learning_rate)
    start, log = 0, []
    ckpt = cfg.out / CHECKPOINT_NAME
    if ckpt.exists():
        blob = torch.load(ckpt, map_location="cpu", weights_only=False)
        if blob["model"] != cfg.model:
            raise ValueError(f"{ckpt} holds {blob['model']}, not {cfg.model}: use another --out")
        model.load_state_dict(blob["state_dict"])
        opt.load_state_dict(blob["optimizer"])
        start, log = blob["step"], blob["log"]
    elif cfg.init_weights is not None:
        kind, state = load_state(cfg.init_weights)
        if not spec(kind).same_network(spec(cfg.model)):
            raise ValueError(f"{cfg.init_weights} holds {kind}, not {cfg.model}")
        model.load_state_dict(state)
    t0 = time.monotonic()
    elapsed_before = log[-1]["seconds"] if log else 0.0
    running = None
    model.train()
    end = min(cfg.steps, cfg.stop_after) if cfg.stop_after > 0 else cfg.steps
    for step in range(start, end):
        for group in opt.param_groups:
            group["lr"] = _learning_rate(cfg, step)
        loss = task.loss(model, step, cfg)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        value = float(loss.detach())
        running = value if running is None else 0.98 * running + 0.02 * value
        if progress is not None:
            progress(step + 1, running)
        done = step + 1
        if done % cfg.checkpoint_every == 0 or done == end:
            seconds = elapsed_before + time.monotonic() - t0
            log.append({"step": done, "loss": running, "seconds": seconds})
            _atomic_save(
                {"model": cfg.model, "state_dict": model.state_dict(),
                 "optimizer": opt.state_dict(), "step": done, "log": log},
                ckpt,
            )
    if end < cfg.steps:
        return ckpt
    final = cfg.out / f"{cfg.model}.pt"
    _atomic_save({"model": cfg.model, "state_dict": model.state_dict()}, final)
    meta = {
        "model": cfg.model,
        "steps": cfg.steps,
        "batch": cfg.batch,
        "lr_patch": cfg.lr_patch,
        "seed": cfg.seed,
        "data": [p.name for p in cfg.data],  # folder names: where they live is local
        "train_seconds": log[-1]["seconds"] if log else 0.0,
        "final_loss": log[-1]["loss"] if log else None,
        "scan_recipe": asdict(cfg.recipe) if cfg.recipe else None,
        "refine_schedule": asdict(cfg.refine_schedule),
        "parameters": sum(p.numel() for p in model.parameters()),
        "init_weights": cfg.init_weights.name if cfg.init_weights else None,
        "teacher_weights": cfg.teacher_weights.name if cfg.teacher_weights else None,
        "hard_negatives": cfg.hard_negatives.name if cfg.hard_negatives else None,
        "hard_share": cfg.hard_share if cfg.hard_negatives else None,
    }
    atomic_write_text(cfg.out / f"{cfg.model}.train.json", json.dumps(meta, indent=2))
    return final
