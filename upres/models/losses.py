"""Training losses: L1 fidelity, FFT-magnitude frequency loss, gradient loss, and their schedule."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


def fft_magnitude_loss(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """L1 between the FFT magnitudes (orthonormal), which rewards restoring lost high frequencies."""
    fo = torch.fft.rfft2(out, norm="ortho").abs()
    ft = torch.fft.rfft2(target, norm="ortho").abs()
    return F.l1_loss(fo, ft)


def _hann_windows(x: torch.Tensor, size: int) -> torch.Tensor:
    """Overlapping (stride size/2) Hann-weighted size x size windows: (N*C*L, size, size)."""
    n, c = x.shape[:2]
    cols = F.unfold(x.reshape(n * c, 1, *x.shape[2:]), size, stride=size // 2)
    patches = cols.transpose(1, 2).reshape(-1, size, size)
    hann = torch.hann_window(size, periodic=False, dtype=x.dtype, device=x.device)
    return patches * (hann[:, None] * hann[None, :])


def local_fft_magnitude_loss(out: torch.Tensor, target: torch.Tensor, window: int) -> torch.Tensor:
    """FFT-magnitude L1 over small overlapping windows.

    The magnitude ignores phase, so texture placed a pixel off is not punished the way L1 punishes it
    (L1 on texture it cannot place exactly drives a network to blur); the small window keeps the
    texture where the target has it, which a whole-patch spectrum does not.
    """
    fo = torch.fft.rfft2(_hann_windows(out, window), norm="ortho").abs()
    ft = torch.fft.rfft2(_hann_windows(target, window), norm="ortho").abs()
    return F.l1_loss(fo, ft)


def gradient_loss(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """L1 between horizontal and vertical finite differences."""
    dxo, dxt = out[..., :, 1:] - out[..., :, :-1], target[..., :, 1:] - target[..., :, :-1]
    dyo, dyt = out[..., 1:, :] - out[..., :-1, :], target[..., 1:, :] - target[..., :-1, :]
    return F.l1_loss(dxo, dxt) + F.l1_loss(dyo, dyt)


def gaussian_lowpass(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur (reflect borders) of an NCHW tensor."""
    radius = max(1, math.ceil(3 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = k / k.sum()
    c = x.shape[1]
    x = F.pad(x, (radius, radius, radius, radius), mode="reflect")
    x = F.conv2d(x, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(x, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


@dataclass(frozen=True)
class RefineLossSchedule:
    """The refine stage's knobs.

    texture_weight: weight of the texture terms (frequency + gradient) against L1 fidelity.
    freq_warmup: fraction of training over which the frequency term ramps from 0 to full, so the
        network first learns a faithful residual and only then is pushed towards texture.
    cond_noise: sigma of noise added to the refine's conditioning input (0 = it sees exactly what
        the runtime feeds it; more makes it tolerant of a weaker coarse stage).
    spectrum_window: 0 = one FFT over the whole patch; > 0 = FFT magnitudes over overlapping windows
        of this size (phase-free but local).
    fidelity_sigma: 0 = L1 fidelity on the images; > 0 = L1 on their Gaussian low-passes, leaving the
        band above it to the texture terms.
    """

    texture_weight: float = 0.1
    freq_weight: float = 1.0
    grad_weight: float = 1.0
    freq_warmup: float = 0.3
    cond_noise: float = 0.0
    spectrum_window: int = 0
    fidelity_sigma: float = 0.0

    def freq_factor(self, progress: float) -> float:
        if self.freq_warmup <= 0:
            return 1.0
        return min(1.0, progress / self.freq_warmup)

    def loss(self, out: torch.Tensor, target: torch.Tensor, progress: float) -> torch.Tensor:
        if self.spectrum_window > 0:
            spectrum = local_fft_magnitude_loss(out, target, self.spectrum_window)
        else:
            spectrum = fft_magnitude_loss(out, target)
        texture = self.freq_factor(progress) * self.freq_weight * spectrum
        if self.grad_weight:
            texture = texture + self.grad_weight * gradient_loss(out, target)
        if self.fidelity_sigma > 0:
            fidelity = F.l1_loss(gaussian_lowpass(out, self.fidelity_sigma),
                                 gaussian_lowpass(target, self.fidelity_sigma))
        else:
            fidelity = F.l1_loss(out, target)
        return fidelity + self.texture_weight * texture
