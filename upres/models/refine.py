"""Refine network: adds high-frequency texture to a coarse output as a residual.

Input: coarse RGB + its Sobel edge magnitude (4 channels, output space). Output: a 3-channel
residual, composed by `upres.kernels.edges.compose` with an edge gate so strong edges stay put.
Working in output space means one refine model serves every scale.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class RefineConfig:
    channels: int = 24
    layers: int = 5


class RefineNet(nn.Module):
    def __init__(self, config: RefineConfig) -> None:
        super().__init__()
        self.config = config
        c = config.channels
        convs = [nn.Conv2d(4, c, 3, padding=1)]
        convs += [nn.Conv2d(c, c, 3, padding=1) for _ in range(config.layers - 2)]
        self.hidden = nn.ModuleList(convs)
        self.out = nn.Conv2d(c, 3, 3, padding=1)
        nn.init.zeros_(self.out.weight)
        assert self.out.bias is not None
        nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv in self.hidden:
            x = F.relu(conv(x))
        return self.out(x)
