"""Coarse super-resolution network: structure recovery trained for fidelity (L1).

Pure 3x3 convolutions, ReLU and a pixel-shuffle tail on top of a bicubic upsample of the input.
No normalisation over image statistics and no global attention: every output pixel depends only on
a fixed LR neighbourhood, which is what lets the runtime tile exactly.
ReLU (not PReLU) so ONNX Runtime fuses Conv+ReLU into QLinearConv when quantized to INT8.
"""

from __future__ import annotations

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
        # Start as plain bicubic: the network learns only the correction.
        nn.init.zeros_(self.upsample.weight)
        nn.init.zeros_(self.upsample.bias)

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        s = self.config.scale
        base = F.interpolate(lr, scale_factor=s, mode="bicubic", align_corners=False)
        feat = self.head(lr)
        feat = feat + self.body_tail(self.body(feat))
        return base + self.shuffle(self.upsample(feat))
