"""Torch twin of `upres.kernels.edges` for training (NCHW tensors)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from upres.kernels.edges import GATE_KNEE, LUMA_WEIGHTS, SOBEL_NORM

_SOBEL_X = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])


def luma(rgb: torch.Tensor) -> torch.Tensor:
    r, g, b = LUMA_WEIGHTS
    return r * rgb[:, 0:1] + g * rgb[:, 1:2] + b * rgb[:, 2:3]


def sobel_magnitude(rgb: torch.Tensor) -> torch.Tensor:
    """(N, 1, H, W) normalised Sobel magnitude of the luma, replicate borders."""
    y = F.pad(luma(rgb), (1, 1, 1, 1), mode="replicate")
    kx = _SOBEL_X.to(rgb.dtype).to(rgb.device).view(1, 1, 3, 3)
    ky = kx.transpose(2, 3)
    gx = F.conv2d(y, kx)
    gy = F.conv2d(y, ky)
    return torch.sqrt(gx * gx + gy * gy + 1e-12) / SOBEL_NORM


def edge_gate(edge: torch.Tensor, knee: float = GATE_KNEE) -> torch.Tensor:
    e = edge / knee
    return torch.exp(-(e * e))


def compose(
    coarse: torch.Tensor, residual: torch.Tensor, edge: torch.Tensor, texture: float
) -> torch.Tensor:
    return torch.clamp(coarse + texture * edge_gate(edge) * residual, 0.0, 1.0)
