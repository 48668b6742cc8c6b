"""Training batches for the learned fill: overlay masks over training-photo crops, Telea-filled.

The masks are the true masks of the synthetic overlays (captions, date stamps, logos, scratches),
grown as `upres clean` grows a user's mask, so the net learns the holes it will be given; the
input is exactly what the runtime feeds it (the same inpainting, the same mask channel).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from upres.kernels.inpaint import inpaint_planes
from upres.kernels.masks import final_mask
from upres.models.detect_data import OverlaySampler
from upres.models.overlay_synth import SynthConfig, render_overlays

# Overlays without scan degradations: the target is the clean photo, and blur or JPEG over the
# whole crop would make the known pixels disagree with it.
CLEAN_OVERLAYS = SynthConfig(blank_fraction=0.0, degrade=False)
# Mask growth drawn per sample around the user-mask default of 2 px.
GROW_CHOICES = (1, 2, 2, 3, 4)


class FillSampler(OverlaySampler):
    """Deterministic batches: batch k depends only on (seed, k), the photos and the font list."""

    def __init__(self, folders: list[Path], patch: int, seed: int = 0) -> None:
        super().__init__(folders, patch, seed, CLEAN_OVERLAYS)

    def sample(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(Telea-filled crop, clean crop, hole mask) as P x P x 3, P x P x 3 float32, P x P bool."""
        while True:
            clean = self.random_crop(rng)
            marked, true_mask = render_overlays(clean, rng, self.config, self.fonts)
            holes = final_mask(true_mask, int(rng.choice(GROW_CHOICES)))
            if holes.any() and not holes.all():
                break
        filled = inpaint_planes(marked.astype(np.float32) / 255.0, holes)
        return np.clip(filled, 0.0, 1.0), clean.astype(np.float32) / 255.0, holes

    def fill_batch(self, index: int, size: int) -> tuple[np.ndarray, np.ndarray]:
        """(inputs N x 4 x P x P: filled RGB + hole mask, targets N x 3 x P x P: the clean crops)."""
        rng = np.random.default_rng([self.seed, index])
        inputs, targets = [], []
        for _ in range(size):
            filled, clean, holes = self.sample(rng)
            inputs.append(np.concatenate([filled, holes[..., None].astype(np.float32)], axis=2))
            targets.append(clean)
        x = np.stack(inputs).transpose(0, 3, 1, 2)
        y = np.stack(targets).transpose(0, 3, 1, 2)
        return np.ascontiguousarray(x), np.ascontiguousarray(y)
