"""Training damage for the thin-structure detector: scratches, hair, creases, fibres and dust over
photo crops, with look-alikes that are *not* damage drawn beside them.

The damage is drawn as a family, not as one recipe: paths that are straight, wandering or curled;
1-4.5 px wide, sharp or soft (blurred by 0.3-1.2 px), faded along their length; bright or dark, as
a flat grey, an offset from the photo or a near-grey tint, opaque or partly; creases as a bright and
a dark line side by side; dust as round, elongated or ragged specks of 1-7 px and small clumps.

A network that learned only "thin and contrasting" would mark every twig and wire. The look-alikes,
left out of the mask, are what a photo has and damage does not: saturated colour, thin lines in
repeating gratings (fences, stripes, fabric), step edges with an optical blur, clusters of
coloured dots (foliage, flowers), branches that fork and taper, fur and grass (many strands lying
one way), glints and stars, all soft as a lens draws them and in the photo's own tones; the
crops' own twigs, fur and grass are negatives too.

Unlike ``damage_synth`` (the benchmark's overlays, drawn with its own seeds), this module has its
own generators, so the benchmark measures damage the detector has not been fitted to. Everything
random comes from the Generator passed in. The mask rule is the benchmark's: alpha above 0.1 that
moved the pixel by 8 levels or more.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image, ImageDraw

from upres.models import overlay_synth as synth

SS = synth.SUPERSAMPLE
MASK_ALPHA = 0.1
MASK_CHANGE = 8.0


@dataclass(frozen=True)
class DamageConfig:
    blank: float = 0.2  # crops with no damage at all (clean photos must stay clean)
    max_items: int = 3  # damage items per damaged crop
    lookalikes: float = 0.5  # crops that get look-alikes
    degrade: float = 0.5  # crops blurred, noised or JPEG'd after compositing (scans are)
    lines: float = 0.6  # damage items that are lines (the rest: dust)


def _path(rng: np.random.Generator, hw: tuple[int, int], curl: float, length: float,
          steps: int) -> list[tuple[float, float]]:
    """A path of `steps` points that may start outside the crop (scratches run across photos)."""
    h, w = hw
    x, y = rng.uniform(-0.2 * w, 1.2 * w), rng.uniform(-0.2 * h, 1.2 * h)
    angle = rng.uniform(0, 2 * math.pi)
    drift = rng.normal(0.0, curl / 3)  # a steady bend as well as a wander
    step = length / steps
    pts = []
    for _ in range(steps):
        pts.append((x * SS, y * SS))
        angle += drift + rng.normal(0.0, curl)
        x, y = x + step * math.cos(angle), y + step * math.sin(angle)
    return pts


def _width(rng: np.random.Generator) -> int:
    return max(SS, round(math.exp(rng.uniform(math.log(0.9), math.log(4.5))) * SS))


def _lines(rng: np.random.Generator, hw: tuple[int, int]) -> np.ndarray:
    """Alpha of one scratch, hair or fibre."""
    diag = math.hypot(*hw)
    canvas = Image.new("L", (hw[1] * SS, hw[0] * SS))
    draw = ImageDraw.Draw(canvas)
    style = rng.random()
    if style < 0.35:  # a straight scratch across the crop
        pts = _path(rng, hw, 0.0, diag * rng.uniform(0.6, 1.6), 8)
    elif style < 0.7:  # a wandering scratch
        pts = _path(rng, hw, rng.uniform(0.02, 0.12), diag * rng.uniform(0.4, 1.4), 30)
    elif style < 0.9:  # a hair: curls
        pts = _path(rng, hw, rng.uniform(0.15, 0.45), diag * rng.uniform(0.3, 1.0), 40)
    else:  # a short fibre
        pts = _path(rng, hw, rng.uniform(0.1, 0.4), rng.uniform(6, 25), 12)
    draw.line(pts, fill=255, width=_width(rng) if style < 0.9 else SS, joint="curve")
    return synth._downsample(canvas).astype(np.float32) / 255.0


def _specks(rng: np.random.Generator, hw: tuple[int, int]) -> np.ndarray:
    """Alpha of dust: 1-12 specks, round, elongated or ragged, sometimes in a clump."""
    canvas = Image.new("L", (hw[1] * SS, hw[0] * SS))
    draw = ImageDraw.Draw(canvas)
    cx0, cy0 = rng.uniform(0, hw[1]), rng.uniform(0, hw[0])
    clump = rng.random() < 0.25
    for _ in range(int(rng.integers(1, 13))):
        if clump:
            cx, cy = cx0 + rng.normal(0, 4), cy0 + rng.normal(0, 4)
        else:
            cx, cy = rng.uniform(0, hw[1]), rng.uniform(0, hw[0])
        r = math.exp(rng.uniform(math.log(0.5), math.log(3.5)))
        cx, cy, rs = cx * SS, cy * SS, r * SS
        shape = rng.random()
        if shape < 0.5:
            draw.ellipse((cx - rs, cy - rs, cx + rs, cy + rs), fill=255)
        elif shape < 0.75:  # elongated, any direction
            a, e = rng.uniform(0, math.pi), rng.uniform(0.3, 0.7)
            pts = [(cx + rs * math.cos(t) * math.cos(a) - e * rs * math.sin(t) * math.sin(a),
                    cy + rs * math.cos(t) * math.sin(a) + e * rs * math.sin(t) * math.cos(a))
                   for t in np.linspace(0, 2 * math.pi, 12, endpoint=False)]
            draw.polygon(pts, fill=255)
        else:  # ragged
            n = int(rng.integers(4, 9))
            pts = [(cx + rs * rng.uniform(0.4, 1.4) * math.cos(2 * math.pi * k / n),
                    cy + rs * rng.uniform(0.4, 1.4) * math.sin(2 * math.pi * k / n)) for k in range(n)]
            draw.polygon(pts, fill=255)
    return synth._downsample(canvas).astype(np.float32) / 255.0


def _fade(rng: np.random.Generator, alpha: np.ndarray) -> np.ndarray:
    """Soft (blurred), partly opaque, and faded along its length (a smooth random field)."""
    if rng.random() < 0.4:
        alpha = np.clip(cv2.GaussianBlur(alpha, (0, 0), float(rng.uniform(0.3, 1.2))) * 1.3, 0, 1)
    alpha = alpha * float(rng.uniform(0.5, 1.0))
    if rng.random() < 0.4:
        h, w = alpha.shape
        field = cv2.resize(rng.uniform(0.2, 1.0, (max(2, h // 24), max(2, w // 24))).astype(np.float32),
                           (w, h), interpolation=cv2.INTER_LINEAR)
        alpha = alpha * field
    return alpha.astype(np.float32)


def _tone(rng: np.random.Generator, base: np.ndarray, bright: bool) -> np.ndarray:
    """What the damage looks like where it is opaque: flat grey, an offset, or a near-grey tint."""
    mode = rng.random()
    sign = 1.0 if bright else -1.0
    if mode < 0.45:
        level = rng.uniform(200, 255) if bright else rng.uniform(0, 50)
        return np.full_like(base, np.float32(level))
    if mode < 0.8:  # emulsion lifted or dirt over the print: the photo shifted
        return np.clip(base + sign * rng.uniform(30, 130), 0, 255).astype(np.float32)
    level = rng.uniform(190, 250) if bright else rng.uniform(5, 60)
    tint = rng.uniform(-15, 15, 3)
    return np.broadcast_to(np.clip(level + tint, 0, 255).astype(np.float32), base.shape).copy()


def _crease(alpha: np.ndarray, colour: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A fold: the line and, 1-3 px beside it, its shadow (or highlight) of the other polarity."""
    d = int(rng.integers(1, 4))
    dy, dx = (d, 0) if rng.random() < 0.5 else (0, d)
    other = np.zeros_like(alpha)
    other[dy:, dx:] = alpha[: alpha.shape[0] - dy, : alpha.shape[1] - dx]
    flipped = 255.0 - colour
    colour = np.where((other > alpha)[..., None], flipped, colour)
    return np.maximum(alpha, other), colour


def _twig(rng: np.random.Generator, draw: ImageDraw.ImageDraw, hw: tuple[int, int]) -> None:
    """A branch that forks and tapers: a scratch does neither."""
    stack = [(_path(rng, hw, rng.uniform(0.02, 0.15), math.hypot(*hw) * rng.uniform(0.3, 0.8), 10),
              rng.uniform(1.5, 4.0), 0)]
    while stack:
        pts, width, depth = stack.pop()
        for k in range(len(pts) - 1):  # thinner towards the tip
            w = max(1, round(width * (1 - 0.6 * k / len(pts)) * SS))
            draw.line(pts[k : k + 2], fill=255, width=w)
        if depth < 2:
            for _ in range(int(rng.integers(1, 4))):
                x, y = pts[int(rng.integers(1, len(pts)))]
                angle = rng.uniform(0, 2 * math.pi)
                n, step = 6, rng.uniform(3, 8) * SS
                child = [(x + step * k * math.cos(angle), y + step * k * math.sin(angle)) for k in range(n)]
                stack.append((child, width * 0.6, depth + 1))


def _fur(rng: np.random.Generator, draw: ImageDraw.ImageDraw, hw: tuple[int, int]) -> None:
    """Hair and fur, grass: many fine strands lying mostly one way (one strand alone is damage)."""
    angle = rng.uniform(0, 2 * math.pi)
    for _ in range(int(rng.integers(12, 40))):
        x, y = rng.uniform(0, hw[1]), rng.uniform(0, hw[0])
        a, length = angle + rng.normal(0, 0.25), rng.uniform(6, 30)
        bend = rng.normal(0, 0.05)
        pts = []
        for _ in range(6):
            pts.append((x * SS, y * SS))
            a += bend
            x, y = x + length / 5 * math.cos(a), y + length / 5 * math.sin(a)
        draw.line(pts, fill=255, width=max(SS, round(rng.uniform(0.8, 2.0) * SS)), joint="curve")


def _glints(rng: np.random.Generator, draw: ImageDraw.ImageDraw, hw: tuple[int, int]) -> None:
    """Stars and glints with a cross of rays (plain round specks are left out: dust is those)."""
    for _ in range(int(rng.integers(1, 6))):
        x, y = rng.uniform(0, hw[1]) * SS, rng.uniform(0, hw[0]) * SS
        r = rng.uniform(0.6, 2.5) * SS
        draw.ellipse((x - r, y - r, x + r, y + r), fill=255)
        ray = rng.uniform(3, 9) * SS
        a = rng.uniform(0, math.pi / 2)
        for t in (a, a + math.pi / 2):
            c, s = ray * math.cos(t), ray * math.sin(t)
            draw.line([(x - c, y - s), (x + c, y + s)], fill=160, width=SS)


def _natural(rng: np.random.Generator, base: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(colour, alpha) of thin things photos are full of, in the photo's own tones (darker or
    lighter, never flat grey): twigs, fur, glints. Seen through a lens, so always a little soft."""
    hw = base.shape[:2]
    canvas = Image.new("L", (hw[1] * SS, hw[0] * SS))
    draw = ImageDraw.Draw(canvas)
    kind = rng.random()
    bright = kind >= 0.75 or rng.random() < 0.3
    (_twig if kind < 0.4 else _fur if kind < 0.75 else _glints)(rng, draw, hw)
    alpha = synth._downsample(canvas).astype(np.float32) / 255.0
    alpha = np.asarray(cv2.GaussianBlur(alpha, (0, 0), float(rng.uniform(0.6, 1.4))), np.float32)
    alpha = np.clip(alpha * float(rng.uniform(0.6, 1.3)), 0, 1)
    gain = rng.uniform(1.3, 2.2) if bright else rng.uniform(0.15, 0.6)
    colour = base.mean(axis=(0, 1), keepdims=True) * 0.3 + base * 0.7
    return np.clip(colour * gain + rng.uniform(-10, 10, 3), 0, 255).astype(np.float32), alpha


def _lookalike(rng: np.random.Generator, base: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(colour, alpha) of photo structure that is not damage."""
    hw = base.shape[:2]
    if rng.random() < 0.4:
        return _natural(rng, base)
    canvas = Image.new("L", (hw[1] * SS, hw[0] * SS))
    draw = ImageDraw.Draw(canvas)
    kind = rng.random()
    sigma = float(rng.uniform(0.5, 1.4))  # the lens and the enlarger: photo lines are never razor sharp
    if kind < 0.35:  # a grating: fence, blinds, stripes, fabric
        angle = rng.uniform(0, math.pi)
        gap = rng.uniform(3.0, 7.0)
        width = max(SS, round(rng.uniform(1.0, 2.5) * SS))
        c, s = math.cos(angle), math.sin(angle)
        cx, cy, diag = hw[1] / 2, hw[0] / 2, math.hypot(*hw)
        for k in range(-int(diag / gap), int(diag / gap) + 1):
            ox, oy = cx + k * gap * -s, cy + k * gap * c
            ends = [((ox - diag * c) * SS, (oy - diag * s) * SS),
                    ((ox + diag * c) * SS, (oy + diag * s) * SS)]
            draw.line(ends, fill=255, width=width)
    elif kind < 0.65:  # coloured thin lines: wires, stems, a painted stripe
        for _ in range(int(rng.integers(1, 4))):
            draw.line(_path(rng, hw, rng.uniform(0.0, 0.1), math.hypot(*hw) * rng.uniform(0.5, 1.5), 20),
                      fill=255, width=_width(rng), joint="curve")
    elif kind < 0.85:  # a step edge
        a = rng.uniform(0, 2 * math.pi)
        px, py = rng.uniform(0, hw[1]) * SS, rng.uniform(0, hw[0]) * SS
        far = 4 * math.hypot(*hw) * SS
        draw.polygon([(px + far * math.cos(a + t), py + far * math.sin(a + t)) for t in (0, 1.5, 3.14)] +
                     [(px, py)], fill=255)
    else:  # coloured dots: blossoms, berries, lights
        for _ in range(int(rng.integers(6, 30))):
            x, y = rng.uniform(0, hw[1]) * SS, rng.uniform(0, hw[0]) * SS
            r = rng.uniform(0.8, 3.0) * SS
            draw.ellipse((x - r, y - r, x + r, y + r), fill=255)
    alpha = synth._downsample(canvas).astype(np.float32) / 255.0
    alpha = np.asarray(cv2.GaussianBlur(alpha, (0, 0), sigma), np.float32) * float(rng.uniform(0.5, 1.0))
    if 0.65 <= kind < 0.85:  # an edge: a shift of the photo's brightness and colour
        shifted = base * rng.uniform(0.4, 1.6) + rng.uniform(-40, 40, 3)
        return np.clip(shifted, 0, 255).astype(np.float32), alpha
    hue = np.uint8(rng.integers(0, 180))
    hsv = np.array([[[hue, rng.integers(110, 256), rng.integers(40, 256)]]], np.uint8)
    rgb = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0].astype(np.float32)
    if kind < 0.35 and rng.random() < 0.5:  # gratings come in grey as well: they repeat, damage does not
        rgb = np.full(3, rng.uniform(0, 255), np.float32)
    return np.broadcast_to(rgb, base.shape).copy(), alpha


def render_damage(photo: np.ndarray, rng: np.random.Generator,
                  config: DamageConfig | None = None) -> tuple[np.ndarray, np.ndarray]:
    """`photo` (H x W x 3 uint8 RGB) with damage and look-alikes drawn on; (composite, damage mask)."""
    if photo.ndim != 3 or photo.shape[2] != 3 or photo.dtype != np.uint8:
        raise ValueError(f"render_damage: photo must be H x W x 3 uint8, got {photo.shape} {photo.dtype}")
    cfg = config or DamageConfig()
    hw = photo.shape[:2]
    base = photo.astype(np.float32)
    out = base.copy()
    if rng.random() < cfg.lookalikes:  # under the damage: the photo's own structure
        for _ in range(int(rng.integers(1, 3))):
            colour, a = _lookalike(rng, base)
            out = out * (1 - a[..., None]) + colour * a[..., None]
    under = out.copy()
    cover = np.zeros(hw, np.float32)
    if rng.random() >= cfg.blank:
        for _ in range(int(rng.integers(1, cfg.max_items + 1))):
            alpha = _lines(rng, hw) if rng.random() < cfg.lines else _specks(rng, hw)
            alpha = _fade(rng, alpha)
            colour = _tone(rng, out, rng.random() < 0.55)
            if rng.random() < 0.12:
                alpha, colour = _crease(alpha, colour, rng)
            out = out * (1 - alpha[..., None]) + colour * alpha[..., None]
            cover = 1 - (1 - cover) * (1 - alpha)
    composite = np.clip(np.rint(out), 0, 255).astype(np.uint8)
    changed = np.abs(composite.astype(np.float32) - np.rint(under)).max(axis=2) >= MASK_CHANGE
    mask = (cover > MASK_ALPHA) & changed
    if rng.random() < cfg.degrade:
        composite = synth._degrade(composite, rng)
    return composite, mask
