"""The usual PyTorch eager tiling loop, as Real-ESRGAN's `tile_process` does it.

Written from its description: split the input into `tile` x `tile` pieces, pad each with
`tile_pad` input pixels (clipped at the border), run the model, crop the padding off the output,
paste. No blending. This is the baseline upres is measured against.
"""

from __future__ import annotations

import math

import numpy as np
import torch


@torch.inference_mode()
def tile_process(model: torch.nn.Module, img: np.ndarray, scale: int, tile: int = 256,
                 tile_pad: int = 10) -> np.ndarray:
    """(H, W, 3) float32 [0, 1] -> (H*s, W*s, 3) float32."""
    x = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))[None]
    _, c, h, w = x.shape
    out = torch.zeros((1, c, h * scale, w * scale), dtype=x.dtype)
    for ty in range(math.ceil(h / tile)):
        for tx in range(math.ceil(w / tile)):
            y0, x0 = ty * tile, tx * tile
            y1, x1 = min(y0 + tile, h), min(x0 + tile, w)
            py0, px0 = max(y0 - tile_pad, 0), max(x0 - tile_pad, 0)
            py1, px1 = min(y1 + tile_pad, h), min(x1 + tile_pad, w)
            res = model(x[:, :, py0:py1, px0:px1])
            oy, ox = (y0 - py0) * scale, (x0 - px0) * scale
            out[:, :, y0 * scale : y1 * scale, x0 * scale : x1 * scale] = \
                res[:, :, oy : oy + (y1 - y0) * scale, ox : ox + (x1 - x0) * scale]
    return out[0].clamp(0, 1).numpy().transpose(1, 2, 0)
