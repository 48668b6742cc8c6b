"""Coarse super-resolution network: structure recovery trained for fidelity (L1).

Pure 3x3 convolutions, ReLU and a pixel-shuffle tail on top of a bicubic upsample of the input.
No normalisation over image statistics and no global attention: every output pixel depends only on
a fixed LR neighbourhood, which is what lets the runtime tile exactly.
ReLU (not PReLU) so ONNX Runtime fuses Conv+ReLU into QLinearConv when quantized to INT8.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class CoarseConfig:
    scale: int = 4
    channels: int = 32
    blocks: int = 6


class ResidualBlock(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.relu(self.conv1(x)))


def _cubic(x: float, a: float = -0.75) -> float:
    """Keys' cubic convolution kernel with PyTorch's a = -0.75."""
    x = abs(x)
    if x <= 1:
        return (a + 2) * x**3 - (a + 3) * x**2 + 1
    if x < 2:
        return a * x**3 - 5 * a * x**2 + 8 * a * x - 4 * a
    return 0.0


def bicubic_phase_weights(scale: int) -> torch.Tensor:
    """(scale, 5) taps over LR offsets -2..2 for each output phase.

    Output row i = j*s + p samples the input at j + (p + 0.5)/s - 0.5 (align_corners=False).
    """
    taps = torch.zeros(scale, 5, dtype=torch.float64)
    for p in range(scale):
        src = (p + 0.5) / scale - 0.5
        base = math.floor(src)
        for k in range(base - 1, base + 3):
            taps[p, k + 2] = _cubic(src - k)
    return taps


class BicubicUpsample(nn.Module):
    """Bicubic upsampling as replicate-pad + fixed grouped conv + pixel shuffle.

    Equals F.interpolate(mode="bicubic", align_corners=False) (borders clamp, like replicate
    padding) to float rounding, and exports to Pad/Conv/DepthToSpace, which ONNX Runtime runs
    an order of magnitude faster than its cubic Resize.
    """

    def __init__(self, scale: int, channels: int = 3) -> None:
        super().__init__()
        taps = bicubic_phase_weights(scale)
        kernel = torch.einsum("yi,xj->yxij", taps, taps).reshape(scale * scale, 1, 5, 5)
        self.register_buffer("kernel", kernel.repeat(channels, 1, 1, 1).float(), persistent=False)
        self.channels = channels

    def phases(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C*s*s, H, W): the upsampled image before the pixel shuffle."""
        kernel: torch.Tensor = self.kernel  # type: ignore[assignment]  # a registered buffer
        return F.conv2d(F.pad(x, (2, 2, 2, 2), mode="replicate"), kernel,
                        groups=self.channels)


class CoarseSR(nn.Module):
    """out = bicubic(lr) + pixel_shuffle(body(lr)); input and output RGB in [0, 1], NCHW."""

    def __init__(self, config: CoarseConfig) -> None:
        super().__init__()
        if config.scale not in (2, 3, 4):
            raise ValueError(f"CoarseSR: scale must be 2, 3 or 4, got {config.scale}")
        self.config = config
        c = config.channels
        self.head = nn.Conv2d(3, c, 3, padding=1)
        self.body = nn.Sequential(*[ResidualBlock(c) for _ in range(config.blocks)])
        self.body_tail = nn.Conv2d(c, c, 3, padding=1)
        self.upsample = nn.Conv2d(c, 3 * config.scale**2, 3, padding=1)
        self.shuffle = nn.PixelShuffle(config.scale)
        self.bicubic = BicubicUpsample(config.scale)
        # Start as plain bicubic: the network learns only the correction.
        nn.init.zeros_(self.upsample.weight)
        assert self.upsample.bias is not None
        nn.init.zeros_(self.upsample.bias)

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        feat = self.head(lr)
        feat = feat + self.body_tail(self.body(feat))
        # One pixel shuffle for both branches: bicubic base + learned correction.
        return self.shuffle(self.bicubic.phases(lr) + self.upsample(feat))
