"""Refine network: adds high-frequency texture to a coarse output as a residual.

Input: coarse RGB + its Sobel edge magnitude (4 channels, output space). Output: a 3-channel
residual, composed by `upres.kernels.edges.compose` with an edge gate so strong edges stay put.
Working in output space means one refine model serves every scale. With ``unshuffle`` = 2 the
convolutions run at half the output resolution on 2x2 pixel blocks (space-to-depth in, depth-to-space
out): a quarter of the positions for the same reach, so tile origins must be even (alignment 2).
Odd sides are extended by their last row and column inside the network and the output cut back,
so any size runs (the exporter's probes and ONNX Runtime see a plain fully-convolutional graph).
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
    unshuffle: int = 1  # > 1: run on unshuffle x unshuffle pixel blocks (see the module doc)


class RefineNet(nn.Module):
    def __init__(self, config: RefineConfig) -> None:
        super().__init__()
        self.config = config
        c, u = config.channels, config.unshuffle
        # Space-to-depth as a fixed one-hot strided convolution: pixel_unshuffle's channel order,
        # but it takes any size (a partial block at the end reads the extended edge).
        blocks = torch.zeros(4 * u * u, 4, u, u)
        for ch in range(4):
            for i in range(u):
                for j in range(u):
                    blocks[ch * u * u + i * u + j, ch, i, j] = 1.0
        self.register_buffer("blocks", blocks, persistent=False)
        convs = [nn.Conv2d(4 * u * u, c, 3, padding=1)]
        convs += [nn.Conv2d(c, c, 3, padding=1) for _ in range(config.layers - 2)]
        self.hidden = nn.ModuleList(convs)
        self.out = nn.Conv2d(c, 3 * u * u, 3, padding=1)
        nn.init.zeros_(self.out.weight)
        assert self.out.bias is not None
        nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        u = self.config.unshuffle
        h, w = x.shape[-2:]
        if u > 1:
            blocks: torch.Tensor = self.blocks  # type: ignore[assignment]  # a registered buffer
            x = F.conv2d(F.pad(x, (0, u - 1, 0, u - 1), mode="replicate"), blocks, stride=u)
        for conv in self.hidden:
            x = F.relu(conv(x))
        x = self.out(x)
        return F.pixel_shuffle(x, u)[..., :h, :w] if u > 1 else x
