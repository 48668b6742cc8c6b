"""Previews of part of an image that equal the accepted output there, sample for sample.

The clean runs only the regions of the whole mask whose box meets the area (regions are
independent, so their pixels are the whole image's clean). The upscale runs the chain on the
area grown by the chain's exact halo (the receptive field of its networks) and keeps the area's
output, as each tile of `upres run`'s plan does: the tiled runtime's own promise (tiled equals
whole) makes that the final output there. Both are quantised as the output is.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from upres.cleaning.masks import MAX_MASKED
from upres.cleaning.pipeline import seed_of
from upres.imageio import to_output_samples
from upres.kernels.masks import final_mask
from upres.runtime.blend import core_of
from upres.runtime.denoise import choose
from upres.runtime.tiling import Rect, Tile
from upres.studio.edits import Edits
from upres.studio.engines import Engines
from upres.studio.session import ImageSession
from upres.studio.settings import StudioSettings

STAGES = ("clean", "upscale")
# The most input pixels one preview covers: the page asks for what is in view, and a larger view
# is shown zoomed out, where a preview at full resolution would not be seen anyway.
MAX_CLEAN_PIXELS = 2048 * 2048
MAX_UPSCALE_PIXELS = 512 * 512


class PreviewError(ValueError):
    """A preview that cannot be made as asked (HTTP 400)."""


@dataclass(frozen=True)
class Preview:
    rect: Rect  # input pixels covered
    scale: int  # output pixels per input pixel
    samples: np.ndarray  # (h * scale, w * scale, C) uint8/uint16: the output's samples there


def clip_rect(rect: Rect, height: int, width: int) -> Rect:
    r = Rect(max(0, rect.y0), min(height, rect.y1), max(0, rect.x0), min(width, rect.x1))
    if r.height < 1 or r.width < 1:
        raise PreviewError("the preview area lies outside the image")
    return r


def grown(rect: Rect, halo: int, height: int, width: int) -> Rect:
    return Rect(max(0, rect.y0 - halo), min(height, rect.y1 + halo),
                max(0, rect.x0 - halo), min(width, rect.x1 + halo))


def final_for(session: ImageSession, edits: Edits, settings: StudioSettings) -> np.ndarray:
    """The mask the clean fills: the edited mask, grown by --grow and its small holes closed."""
    mask = final_mask(session.mask(edits), settings.grow)
    if mask.sum() > MAX_MASKED * mask.size:
        raise PreviewError(f"the mask covers more than {MAX_MASKED:.0%} of the image: nothing left "
                           "to fill from")
    return mask


def make_preview(session: ImageSession, edits: Edits, settings: StudioSettings, engines: Engines,
                 rect: Rect, stage: str) -> Preview:
    if stage not in STAGES:
        raise PreviewError(f"stage must be one of {', '.join(STAGES)}, got {stage!r}")
    h, w = session.shape
    rect = clip_rect(rect, h, w)
    upscale = stage == "upscale" and settings.upscale
    limit = MAX_UPSCALE_PIXELS if upscale else MAX_CLEAN_PIXELS
    if rect.height * rect.width > limit:
        raise PreviewError(f"the preview area is {rect.width}x{rect.height} input pixels; at most "
                           f"{limit} pixels at once: zoom in")
    setup = engines.setup(settings) if upscale else None
    needed = grown(rect, setup.chain.halo, h, w) if setup is not None else rect
    mask = final_for(session, edits, settings)
    image = session.image.rgb
    # auto denoise measures the whole cleaned image, as Accept does: then the whole is cleaned.
    measure_whole = setup is not None and setup.denoise.auto
    if mask.any():
        cleaner = engines.cleaner(settings)
        image, _ = cleaner.clean(image, mask, seed_of(session.sha),
                                 within=None if measure_whole else needed)
    crop = image[needed.y0 : needed.y1, needed.x0 : needed.x1]
    scale = 1
    if setup is not None:
        scale = setup.scale
        chain = setup.chain_for(choose(setup.denoise, image).strength)
        tile = Tile(0, 0, 0, rect, needed)
        crop = np.clip(core_of(tile, chain(np.ascontiguousarray(crop)), scale), 0.0, 1.0)
    meta = session.meta
    return Preview(rect, scale, to_output_samples(np.ascontiguousarray(crop, np.float32), None,
                                                  meta.mode, meta.bit_depth))
