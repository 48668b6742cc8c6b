"""Measure a model's receptive field on the exported graph itself, with ONNX Runtime.

An impulse at one input pixel changes a block of output pixels; the farthest changed output pixel,
mapped back to input coordinates, is the receptive field radius. Outputs outside it are computed from
identical inputs, so they are bit-identical and the measurement needs no tolerance.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

RunFn = Callable[[np.ndarray], np.ndarray]


def _reach(run: RunFn, base: np.ndarray, y: int, x: int, scale: int) -> int:
    poked = base.copy()
    poked[:, :, y, x] = 1.0 - poked[:, :, y, x] + 0.5
    diff = np.any(run(poked) != run(base), axis=(0, 1))
    rows, cols = np.nonzero(diff)
    if rows.size == 0:
        return 0
    # Input pixel (y, x) covers output rows [y*s, y*s + s); reach in whole input pixels.
    up = y - rows.min() // scale
    down = rows.max() // scale - y
    left = x - cols.min() // scale
    right = cols.max() // scale - x
    return int(max(up, down, left, right))


def probe_receptive_field(
    run: RunFn, channels: int, scale: int, size: int = 96, seed: int = 0, trials: int = 3,
    max_size: int = 384,
) -> int:
    """Largest reach (input pixels) over a few impulses on random backgrounds.

    The probe doubles from `size` while the reach touches its border (networks with a wide context,
    like the fill network, need more than the SR models' 96 px); past `max_size` it raises.
    """
    rng = np.random.default_rng(seed)
    while True:
        reach = 0
        for t in range(trials):
            base = rng.random((1, channels, size, size), dtype=np.float32)
            y = size // 2 + t
            x = size // 2 - t
            reach = max(reach, _reach(run, base, y, x, scale))
        if reach < size // 2 - trials:
            return reach
        if size * 2 > max_size:
            raise ValueError(
                f"receptive field reaches the {size}px probe's border: the model may be global "
                "(attention or image-wide statistics), which cannot be tiled exactly"
            )
        size *= 2


def probe_alignment(run: RunFn, channels: int, scale: int, reach: int, max_shift: int = 8,
                    seed: int = 0) -> int:
    """Smallest shift (input pixels) the model is equivariant to: tile origins must be multiples of it.

    A model that downsamples with stride s inside samples a shifted image on another grid unless the
    shift is a multiple of s; its outputs then differ by far more than float rounding. Outputs are
    compared only farther than `reach` from every border, where padding cannot touch them.
    """
    margin = reach + 2
    # Every run takes the same size, a multiple of 16: a strided model may accept only multiples
    # of its stride, and a shifted crop must not be refused for its size.
    size = -(-(2 * margin + 16) // 16) * 16
    x = np.random.default_rng(seed).random((1, channels, size + max_shift, size + max_shift),
                                           dtype=np.float32)
    ref = run(np.ascontiguousarray(x[:, :, :size, :size]))
    lo = margin
    for shift in range(1, max_shift + 1):
        hi = size - shift - margin
        got = run(np.ascontiguousarray(x[:, :, shift : shift + size, shift : shift + size]))
        got = got[:, :, lo * scale : hi * scale, lo * scale : hi * scale]
        want = ref[:, :, (lo + shift) * scale : (hi + shift) * scale,
                   (lo + shift) * scale : (hi + shift) * scale]
        # Same sums over the same inputs: only the kernels' blocking can change the rounding.
        if float(np.max(np.abs(got - want))) <= 1e-4 * (1.0 + float(np.max(np.abs(want)))):
            return shift
    raise ValueError(f"model is not shift-equivariant for any shift up to {max_shift} px: "
                     "it cannot be tiled exactly")


def probe_scale(run: RunFn, channels: int, size: int = 16) -> int:
    """Output/input size ratio of an SR model (must be an integer, same on both axes)."""
    out = run(np.zeros((1, channels, size, size + 2), np.float32))
    if out.ndim != 4:
        raise ValueError(f"model maps a {size}x{size + 2} image to shape {tuple(out.shape)}: "
                         "not an image (N, C, H, W)")
    sh, sw = out.shape[2] / size, out.shape[3] / (size + 2)
    if sh != sw or sh != int(sh) or sh < 1:
        raise ValueError(f"model maps {size}x{size + 2} to {out.shape[2]}x{out.shape[3]}: "
                         "not an integer, uniform scale")
    return int(sh)
