"""Training losses: L1 fidelity, FFT-magnitude frequency loss, gradient loss, and their schedule."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


def fft_magnitude_loss(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """L1 between the FFT magnitudes (orthonormal), which rewards restoring lost high frequencies."""
    fo = torch.fft.rfft2(out, norm="ortho").abs()
    ft = torch.fft.rfft2(target, norm="ortho").abs()
    return F.l1_loss(fo, ft)


def gradient_loss(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """L1 between horizontal and vertical finite differences."""
    dxo, dxt = out[..., :, 1:] - out[..., :, :-1], target[..., :, 1:] - target[..., :, :-1]
    dyo, dyt = out[..., 1:, :] - out[..., :-1, :], target[..., 1:, :] - target[..., :-1, :]
    return F.l1_loss(dxo, dxt) + F.l1_loss(dyo, dyt)


@dataclass(frozen=True)
class RefineLossSchedule:
    """The refine stage's knobs.

    texture_weight: weight of the texture terms (frequency + gradient) against L1 fidelity.
    freq_warmup: fraction of training over which the frequency term ramps from 0 to full, so the
        network first learns a faithful residual and only then is pushed towards texture.
    cond_noise: sigma of noise added to the refine's conditioning input (0 = it sees exactly what
        the runtime feeds it; more makes it tolerant of a weaker coarse stage).
    """

    texture_weight: float = 0.1
    freq_weight: float = 1.0
    grad_weight: float = 1.0
    freq_warmup: float = 0.3
    cond_noise: float = 0.0

    def freq_factor(self, progress: float) -> float:
        if self.freq_warmup <= 0:
            return 1.0
        return min(1.0, progress / self.freq_warmup)

    def loss(self, out: torch.Tensor, target: torch.Tensor, progress: float) -> torch.Tensor:
        texture = self.freq_factor(progress) * self.freq_weight * fft_magnitude_loss(out, target)
        texture = texture + self.grad_weight * gradient_loss(out, target)
        return F.l1_loss(out, target) + self.texture_weight * texture
