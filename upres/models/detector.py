"""Overlay detector: a small fully-convolutional net marking text, stamps, logos and scratches.

RGB in [0, 1] -> one logit per pixel at full resolution (overlay where > 0).

Shape of the network and why:
- Two 3x3 convs at full resolution keep thin strokes and exact mask edges.
- One stride-2 conv, then residual 3x3 convs with dilations 1, 2, 4, 8 at half resolution: the reach
  (about 36 px each side) to tell a letter from a twig cheaply, a quarter of the full-resolution cost.
- A 1x1 conv + pixel shuffle back up, cropped to the input size (odd sizes), fused with the
  full-resolution features, and a 1x1 head.
Only convolutions and pointwise ops (ReLU, add, concat): no normalisation over image statistics and
no global pooling, so every output depends on a bounded neighbourhood and tiles can be exact. The one
stride makes the net equivariant to shifts by 2 pixels only, so tile origins must be even: the
exporter measures that (`upres.alignment`) and the runtime aligns its tiles to it.
ReLU rather than PReLU so ONNX Runtime fuses Conv+ReLU when the model is quantized to INT8.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class DetectorConfig:
    fine: int = 16  # channels at full resolution
    coarse: int = 32  # channels at half resolution
    dilations: tuple[int, ...] = (1, 2, 4, 8)


class OverlayDetector(nn.Module):
    stride = 2

    def __init__(self, config: DetectorConfig) -> None:
        super().__init__()
        self.config = config
        f, c = config.fine, config.coarse
        self.fine1 = nn.Conv2d(3, f, 3, padding=1)
        self.fine2 = nn.Conv2d(f, f, 3, padding=1)
        self.down = nn.Conv2d(f, c, 3, stride=self.stride, padding=1)
        self.body = nn.ModuleList(nn.Conv2d(c, c, 3, padding=d, dilation=d) for d in config.dilations)
        self.up = nn.Conv2d(c, f * self.stride**2, 1)
        self.shuffle = nn.PixelShuffle(self.stride)
        self.fuse = nn.Conv2d(2 * f, f, 3, padding=1)
        self.head = nn.Conv2d(f, 1, 1)
        # Overlays cover a few percent of a photo: start from that prior, not from 50 %.
        assert self.head.bias is not None
        nn.init.constant_(self.head.bias, -3.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        fine = F.relu(self.fine2(F.relu(self.fine1(x))))
        y = F.relu(self.down(fine))
        for conv in self.body:
            y = y + F.relu(conv(y))
        up = self.shuffle(self.up(y))[..., :h, :w]
        return self.head(F.relu(self.fuse(torch.cat([fine, up], dim=1))))


def detection_loss(logits: torch.Tensor, target: torch.Tensor, dice_weight: float = 0.5) -> torch.Tensor:
    """Per-pixel BCE plus a soft Dice term over the batch.

    Overlay pixels are a few percent of a photo; BCE alone settles for "nothing here" on thin strokes,
    and Dice, which scores only the overlap with the overlay, pulls recall back up.
    """
    bce = F.binary_cross_entropy_with_logits(logits, target)
    if dice_weight <= 0:
        return bce
    p = torch.sigmoid(logits)
    dice = 1.0 - (2.0 * (p * target).sum() + 1.0) / (p.sum() + target.sum() + 1.0)
    return bce + dice_weight * dice
