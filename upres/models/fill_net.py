"""Learned fill: a small fully-convolutional net that corrects an inpainted image inside its mask.

Input: 4 channels, the image with its holes already filled by Telea's inpainting (RGB in [0, 1])
and the mask (1 = hole). Output: the RGB image, equal to the input outside the mask (the residual
is multiplied by the mask channel) and corrected inside it.

Shape of the network and why:
- Telea propagates colour smoothly from the hole's rim, which blurs edges that cross a stroke and
  loses shading over wider holes. Continuing them needs context several strokes wide, so the body
  runs at a quarter of the resolution with dilations 1, 2, 4, 8 (a reach of about 80 px each side)
  for a sixteenth of the full-resolution cost.
- Two levels of pixel-shuffle upsampling fuse the coarse estimate with the half- and
  full-resolution features, which keep the stroke edges and the fine structure at the rim exact.
- Only convolutions and pointwise ops: every output depends on a bounded neighbourhood, so tiles
  can be exact; the two strides make the net equivariant to shifts by 4 pixels, which the exporter
  probes (`upres.alignment`) and the runtime aligns its tiles to.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class FillConfig:
    fine: int = 24  # channels at full resolution
    mid: int = 32  # channels at half resolution
    coarse: int = 64  # channels at quarter resolution
    dilations: tuple[int, ...] = (1, 2, 4, 8)


class _Up(nn.Module):
    """Pixel-shuffle x2 of the coarser features, cropped to the finer level's size, then fused."""

    def __init__(self, coarse: int, fine: int) -> None:
        super().__init__()
        self.expand = nn.Conv2d(coarse, fine * 4, 1)
        self.shuffle = nn.PixelShuffle(2)
        self.fuse = nn.Conv2d(2 * fine, fine, 3, padding=1)

    def forward(self, coarse: torch.Tensor, fine: torch.Tensor) -> torch.Tensor:
        h, w = fine.shape[-2:]
        up = self.shuffle(self.expand(coarse))[..., :h, :w]
        return F.relu(self.fuse(torch.cat([fine, up], dim=1)))


class FillNet(nn.Module):
    stride = 4
    in_channels = 4

    def __init__(self, config: FillConfig) -> None:
        super().__init__()
        self.config = config
        f, m, c = config.fine, config.mid, config.coarse
        self.fine1 = nn.Conv2d(self.in_channels, f, 3, padding=1)
        self.fine2 = nn.Conv2d(f, f, 3, padding=1)
        self.down1 = nn.Conv2d(f, m, 3, stride=2, padding=1)
        self.mid = nn.Conv2d(m, m, 3, padding=1)
        self.down2 = nn.Conv2d(m, c, 3, stride=2, padding=1)
        self.body = nn.ModuleList(nn.Conv2d(c, c, 3, padding=d, dilation=d) for d in config.dilations)
        self.up2 = _Up(c, m)
        self.up1 = _Up(m, f)
        self.head = nn.Conv2d(f, 3, 3, padding=1)
        # Start as Telea: the net first learns nothing rather than noise.
        nn.init.zeros_(self.head.weight)
        assert self.head.bias is not None
        nn.init.zeros_(self.head.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        image, holes = x[:, :3], x[:, 3:4]
        fine = F.relu(self.fine2(F.relu(self.fine1(x))))
        mid = F.relu(self.mid(F.relu(self.down1(fine))))
        y = F.relu(self.down2(mid))
        for conv in self.body:
            y = y + F.relu(conv(y))
        out = self.up1(self.up2(y, mid), fine)
        return image + holes * self.head(out)


def masked_l1(output: torch.Tensor, target: torch.Tensor, holes: torch.Tensor) -> torch.Tensor:
    """Mean absolute error over the hole pixels only (everything else is the input by design)."""
    count = holes.sum() * output.shape[1]
    return (holes * (output - target).abs()).sum() / count.clamp(min=1.0)
