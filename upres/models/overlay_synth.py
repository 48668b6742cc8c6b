"""Synthetic overlays rendered over photos, with the mask of the pixels they visibly changed.

Captions in varied fonts, sizes, colours, rotations, outlines and opacities; film-camera date stamps
(seven-segment digits with a glow, or a monospace font); logos and stamps as simple shapes; thin
scratches. This is the overlay detector's training data and its held-out evaluation set, so it uses
numpy, Pillow and OpenCV only (no torch): benchmarks import it too.

Everything random comes from one numpy Generator: the same photo, seed and font list give the same
bytes. The default font list is the TrueType/OpenType fonts under the system font folders plus
Pillow's built-in scalable font, so a machine without system fonts still renders text (with fewer
typefaces, hence different bytes than a machine with them).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from upres.models import seven_segment

FONT_DIRS = (Path("/usr/share/fonts"), Path("/usr/local/share/fonts"))
KINDS = ("text", "date", "logo", "scratch")
SUPERSAMPLE = 4  # shapes and strokes are drawn at 4x and box-filtered down: antialiased edges

FontRef = Path | None  # None = Pillow's built-in font

WORDS = (
    "Summer", "holiday", "beach", "Grandma", "wedding", "birthday", "Paris", "family", "picnic",
    "Christmas", "school", "class of", "photo", "studio", "PROOF", "SAMPLE", "COPY", "archive",
    "Kodak", "print", "No.", "collection", "museum", "Property of", "lake", "house", "garden",
    "John", "Mary", "with", "and", "at the", "our", "first", "day", "trip", "visit", "mountains",
    "river", "harbour", "portrait", "negative", "roll", "frame", "DRAFT", "CONFIDENTIAL", "(c)",
)
PALETTE = (
    (255, 255, 255), (0, 0, 0), (250, 220, 40), (230, 30, 30), (255, 140, 20), (30, 60, 200),
    (20, 160, 60), (200, 200, 200), (60, 60, 60),
)
DATE_COLOURS = ((255, 150, 20), (255, 120, 0), (255, 200, 40), (255, 90, 20), (255, 175, 60))


@dataclass(frozen=True)
class SynthConfig:
    """What the generator draws.

    max_overlays: each non-blank image gets 1..max_overlays overlays.
    blank_fraction: share of images left untouched: negatives, where the detector must stay quiet.
    kind_weights: relative frequencies of KINDS.
    text_px: (min, max) text and digit height in pixels, drawn log-uniformly.
    mask_alpha / mask_change: a pixel is in the mask when the overlays' combined alpha exceeds
        mask_alpha and they moved it by at least mask_change levels of 255 in some channel; overlay
        pixels that match the photo underneath are invisible, so no detector can (or need) find them.
    degrade: blur, noise and JPEG after compositing, like a scanned or re-saved print (mask unchanged).
    """

    max_overlays: int = 3
    blank_fraction: float = 0.1
    kind_weights: tuple[float, float, float, float] = (0.5, 0.2, 0.18, 0.12)
    text_px: tuple[int, int] = (8, 64)
    mask_alpha: float = 0.1
    mask_change: float = 8.0
    degrade: bool = True


@functools.cache
def system_fonts() -> tuple[Path, ...]:
    found: list[Path] = []
    for root in FONT_DIRS:
        if root.is_dir():
            found += [p for p in root.rglob("*") if p.suffix.lower() in (".ttf", ".otf")]
    return tuple(sorted(found))


def default_fonts() -> tuple[FontRef, ...]:
    return (*system_fonts(), None)


@functools.lru_cache(maxsize=1024)
def _font(ref: FontRef, size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    if ref is None:
        return ImageFont.load_default(size=size)
    return ImageFont.truetype(str(ref), size)


def _log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(math.exp(rng.uniform(math.log(lo), math.log(max(lo, hi)))))


def _colour(rng: np.random.Generator) -> tuple[int, int, int]:
    if rng.random() < 0.7:
        return PALETTE[int(rng.integers(len(PALETTE)))]
    r, g, b = rng.integers(0, 256, 3)
    return int(r), int(g), int(b)


def _contrast(rgb: tuple[int, int, int]) -> tuple[int, int, int]:
    return (0, 0, 0) if sum(rgb) > 380 else (255, 255, 255)


def _random_text(rng: np.random.Generator) -> str:
    style = rng.random()
    if style < 0.55:
        words = [WORDS[int(i)] for i in rng.integers(0, len(WORDS), int(rng.integers(1, 5)))]
        if rng.random() < 0.4:
            words.append(str(int(rng.integers(1890, 2030))))
        text = " ".join(words)
    elif style < 0.8:
        letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 .,-#&"
        text = "".join(letters[int(i)] for i in rng.integers(0, len(letters), int(rng.integers(2, 16))))
    else:
        text = f"(c) {int(rng.integers(1900, 2030))} {WORDS[int(rng.integers(len(WORDS)))]}"
    if rng.random() < 0.15:
        cut = int(rng.integers(1, max(2, len(text))))
        text = text[:cut].rstrip() + "\n" + text[cut:].lstrip()
    if rng.random() < 0.25:
        text = text.upper()
    return text.strip() or "A"


def _solid(alpha: np.ndarray, rgb: tuple[int, int, int]) -> Image.Image:
    """An RGBA patch of one colour with the given uint8 alpha."""
    h, w = alpha.shape
    colour = np.broadcast_to(np.array(rgb, np.uint8), (h, w, 3))
    return Image.fromarray(np.dstack([colour, alpha]), "RGBA")


def _downsample(alpha_ss: Image.Image) -> np.ndarray:
    w, h = alpha_ss.size
    small = alpha_ss.resize((max(1, w // SUPERSAMPLE), max(1, h // SUPERSAMPLE)), Image.Resampling.BOX)
    return np.asarray(small)


def _with_opacity(patch: Image.Image, opacity: float) -> Image.Image:
    rgba = np.asarray(patch).copy()
    rgba[..., 3] = np.rint(rgba[..., 3].astype(np.float32) * opacity).astype(np.uint8)
    return Image.fromarray(rgba, "RGBA")


def _rotate(patch: Image.Image, rng: np.random.Generator, p: float, max_deg: float) -> Image.Image:
    if rng.random() >= p:
        return patch
    angle = float(rng.uniform(-max_deg, max_deg))
    if rng.random() < 0.1:
        angle = 90.0 if rng.random() < 0.5 else -90.0  # captions along a side
    return patch.rotate(angle, resample=Image.Resampling.BICUBIC, expand=True)


def _text_patch(rng: np.random.Generator, cfg: SynthConfig, fonts: Sequence[FontRef]) -> Image.Image:
    size = max(6, round(_log_uniform(rng, *cfg.text_px)))
    font = _font(fonts[int(rng.integers(len(fonts)))], size)
    text = _random_text(rng)
    fill = _colour(rng)
    stroke = max(1, round(size * rng.uniform(0.04, 0.12))) if rng.random() < 0.3 else 0
    stroke_fill = _contrast(fill) if rng.random() < 0.7 else _colour(rng)
    shadow = int(rng.integers(1, max(2, size // 10) + 1)) if rng.random() < 0.2 else 0
    probe = ImageDraw.Draw(Image.new("L", (1, 1)))
    x0, y0, x1, y1 = probe.textbbox((0, 0), text, font=font, stroke_width=stroke)
    margin = 2 + shadow
    # Transparent pixels carry the fill colour so resampling does not pull dark fringes in.
    patch = Image.new("RGBA", (int(x1 - x0 + 2 * margin), int(y1 - y0 + 2 * margin)), (*fill, 0))
    draw = ImageDraw.Draw(patch)
    origin = (margin - x0, margin - y0)
    if shadow:
        draw.text((origin[0] + shadow, origin[1] + shadow), text, font=font, fill=(*_contrast(fill), 255),
                  stroke_width=stroke, stroke_fill=(*_contrast(fill), 255))
    draw.text(origin, text, font=font, fill=(*fill, 255), stroke_width=stroke,
              stroke_fill=(*stroke_fill, 255))
    patch = _with_opacity(patch, float(rng.uniform(0.35, 1.0)) if rng.random() < 0.4 else 1.0)
    return _rotate(patch, rng, 0.45, 35.0)


def _date_text(rng: np.random.Generator) -> str:
    y, m, d = int(rng.integers(1970, 2015)), int(rng.integers(1, 13)), int(rng.integers(1, 29))
    formats = (f"'{y % 100:02d} {m:2d} {d:2d}", f"{y}.{m:02d}.{d:02d}", f"{m:02d}/{d:02d}/{y % 100:02d}",
               f"{y % 100:02d}-{m:02d}-{d:02d}", f"{d:2d} {m:2d} '{y % 100:02d}", f"{y} {m} {d}")
    return formats[int(rng.integers(len(formats)))]


def date_glyph(text: str, height: float, fonts: Sequence[FontRef], rng: np.random.Generator,
               min_font_px: int) -> np.ndarray:
    """A date stamp's coverage (uint8): seven-segment digits 70% of the time, else a monospace
    font (at least ``min_font_px``)."""
    if rng.random() < 0.7:
        polys, width = seven_segment.layout(text, height * SUPERSAMPLE, float(rng.uniform(0.0, 0.2)))
        pad = SUPERSAMPLE * 4
        canvas = Image.new("L", (math.ceil(width) + 2 * pad, math.ceil(height * SUPERSAMPLE * 1.3) + 2 * pad))
        draw = ImageDraw.Draw(canvas)
        for poly in polys:
            draw.polygon([(x + pad, y + pad) for x, y in poly], fill=255)
        return _downsample(canvas)
    mono: list[FontRef] = [f for f in fonts if f is not None and "mono" in f.name.lower()] or [None]
    font = _font(mono[int(rng.integers(len(mono)))], max(min_font_px, round(height)))
    probe = ImageDraw.Draw(Image.new("L", (1, 1)))
    x0, y0, x1, y1 = probe.textbbox((0, 0), text, font=font)
    canvas = Image.new("L", (int(x1 - x0 + 8), int(y1 - y0 + 8)))
    ImageDraw.Draw(canvas).text((4 - x0, 4 - y0), text, font=font, fill=255)
    return np.asarray(canvas)


def _date_patch(rng: np.random.Generator, cfg: SynthConfig, fonts: Sequence[FontRef]) -> Image.Image:
    height = _log_uniform(rng, cfg.text_px[0], min(cfg.text_px[1], 40))
    colour = DATE_COLOURS[int(rng.integers(len(DATE_COLOURS)))]
    alpha = date_glyph(_date_text(rng), height, fonts, rng, min_font_px=6)
    if rng.random() < 0.6:
        # Burned-in stamps bloom: a soft halo around the strokes.
        glow = cv2.GaussianBlur(alpha.astype(np.float32), (0, 0), max(0.6, 0.08 * height))
        alpha = np.maximum(alpha, np.clip(glow * rng.uniform(0.5, 1.0), 0, 255)).astype(np.uint8)
    opacity = float(rng.uniform(0.7, 1.0))
    return _with_opacity(_solid(alpha, colour), opacity)


def _logo_patch(rng: np.random.Generator, canvas_hw: tuple[int, int], cfg: SynthConfig,
                fonts: Sequence[FontRef]) -> Image.Image:
    side = max(12, round(rng.uniform(0.06, 0.3) * min(canvas_hw)))
    ss = side * SUPERSAMPLE
    ratio = float(rng.uniform(0.5, 1.0)) if rng.random() < 0.5 else 1.0
    w, h = (ss, round(ss * ratio)) if rng.random() < 0.5 else (round(ss * ratio), ss)
    line = round(rng.uniform(1.0, max(1.5, side / 12)) * SUPERSAMPLE)
    canvas = Image.new("L", (w + 2 * line, h + 2 * line))
    draw = ImageDraw.Draw(canvas)
    box = (line, line, line + w - 1, line + h - 1)
    filled = rng.random() < 0.3
    fill, outline = (255 if filled else None), (None if filled else 255)
    shape = int(rng.integers(4))
    if shape == 0:
        draw.ellipse(box, fill=fill, outline=outline, width=line)
    elif shape == 1:
        draw.rectangle(box, fill=fill, outline=outline, width=line)
    elif shape == 2:
        draw.rounded_rectangle(box, radius=min(w, h) // 5, fill=fill, outline=outline, width=line)
    else:
        n = int(rng.integers(3, 9))
        star = rng.random() < 0.4
        cx, cy, r = line + w / 2, line + h / 2, min(w, h) / 2
        points = []
        for k in range(n * (2 if star else 1)):
            rr = r * (0.45 if star and k % 2 else 1.0)
            a = math.pi * 2 * k / (n * (2 if star else 1)) - math.pi / 2
            points.append((cx + rr * math.cos(a), cy + rr * math.sin(a)))
        if outline is None:
            draw.polygon(points, fill=fill)
        else:
            draw.line([*points, points[0]], fill=255, width=line, joint="curve")
    if rng.random() < 0.35:
        # A stamp: a short word inside the shape, knocked out of a filled one.
        font = _font(fonts[int(rng.integers(len(fonts)))], max(8, round(min(w, h) * 0.22)))
        word = WORDS[int(rng.integers(len(WORDS)))].upper()
        draw.text((line + w / 2, line + h / 2), word, font=font, fill=0 if filled else 255, anchor="mm")
    alpha = _downsample(canvas)
    opacity = float(rng.uniform(0.25, 0.95))
    return _rotate(_with_opacity(_solid(alpha, _colour(rng)), opacity), rng, 0.5, 45.0)


def _scratch_layer(rng: np.random.Generator, canvas_hw: tuple[int, int]) -> Image.Image:
    h, w = canvas_hw
    canvas = Image.new("L", (w * SUPERSAMPLE, h * SUPERSAMPLE))
    draw = ImageDraw.Draw(canvas)
    for _ in range(int(rng.integers(1, 4))):
        x, y = rng.uniform(0, w), rng.uniform(0, h)
        angle = rng.uniform(0, 2 * math.pi)
        step = math.hypot(h, w) * rng.uniform(0.2, 1.0) / 24
        points = []
        for _ in range(25):
            points.append((x * SUPERSAMPLE, y * SUPERSAMPLE))
            angle += rng.normal(0.0, 0.06)  # scratches wander slightly
            x, y = x + step * math.cos(angle), y + step * math.sin(angle)
        width = max(1, round(rng.uniform(0.5, 2.5) * SUPERSAMPLE))
        draw.line(points, fill=255, width=width, joint="curve")
    alpha = _downsample(canvas)
    grey = int(rng.integers(200, 256)) if rng.random() < 0.6 else int(rng.integers(0, 50))
    return _with_opacity(_solid(alpha, (grey, grey, grey)), float(rng.uniform(0.5, 1.0)))


def _place(patch: Image.Image, canvas_hw: tuple[int, int], rng: np.random.Generator,
           corner: bool) -> Image.Image:
    """A full-canvas RGBA layer with `patch` pasted at a random spot (partly outside is fine)."""
    h, w = canvas_hw
    pw, ph = patch.size
    if corner:  # date stamps sit near the bottom-right corner
        x = round(w - pw - rng.uniform(0.02, 0.1) * w)
        y = round(h - ph - rng.uniform(0.02, 0.1) * h)
    else:
        x = int(rng.integers(-pw // 3, max(-pw // 3 + 1, w - 2 * pw // 3)))
        y = int(rng.integers(-ph // 3, max(-ph // 3 + 1, h - 2 * ph // 3)))
    layer = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    layer.paste(patch, (x, y))
    return layer


def _layer(kind: str, rng: np.random.Generator, canvas_hw: tuple[int, int], cfg: SynthConfig,
           fonts: Sequence[FontRef]) -> Image.Image:
    if kind == "text":
        return _place(_text_patch(rng, cfg, fonts), canvas_hw, rng, corner=False)
    if kind == "date":
        return _place(_date_patch(rng, cfg, fonts), canvas_hw, rng, corner=rng.random() < 0.6)
    if kind == "logo":
        return _place(_logo_patch(rng, canvas_hw, cfg, fonts), canvas_hw, rng, corner=False)
    return _scratch_layer(rng, canvas_hw)


def _degrade(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    out = img
    if rng.random() < 0.4:
        out = cv2.GaussianBlur(out, (0, 0), float(rng.uniform(0.3, 0.9)))
    if rng.random() < 0.4:
        noise = rng.normal(0.0, rng.uniform(1.0, 5.0), out.shape).astype(np.float32)
        out = np.clip(np.rint(out.astype(np.float32) + noise), 0, 255).astype(np.uint8)
    if rng.random() < 0.4:
        quality = int(rng.integers(50, 96))
        bgr = np.ascontiguousarray(out[..., ::-1])
        ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
        if ok:
            decoded = cv2.imdecode(buf, cv2.IMREAD_COLOR)
            assert decoded is not None, "OpenCV could not decode its own JPEG"
            out = decoded[..., ::-1]
    return np.ascontiguousarray(out)


def render_overlays(
    photo: np.ndarray,
    rng: np.random.Generator,
    config: SynthConfig | None = None,
    fonts: Sequence[FontRef] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Draw random overlays over `photo` (H x W x 3 uint8 RGB).

    Returns (composited H x W x 3 uint8, mask H x W bool of the pixels the overlays visibly changed).
    """
    if photo.ndim != 3 or photo.shape[2] != 3 or photo.dtype != np.uint8:
        raise ValueError(f"render_overlays: photo must be H x W x 3 uint8, got {photo.shape} {photo.dtype}")
    cfg = config or SynthConfig()
    fonts = tuple(fonts) if fonts is not None else default_fonts()
    if not fonts:
        raise ValueError("render_overlays: empty font list (pass None for Pillow's built-in font)")
    hw = (photo.shape[0], photo.shape[1])
    base = photo.astype(np.float32)
    out = base.copy()
    cover: np.ndarray = np.zeros(hw, np.float32)
    if rng.random() >= cfg.blank_fraction:
        weights = np.asarray(cfg.kind_weights, np.float64) / sum(cfg.kind_weights)
        for _ in range(int(rng.integers(1, cfg.max_overlays + 1))):
            kind = KINDS[int(rng.choice(len(KINDS), p=weights))]
            rgba = np.asarray(_layer(kind, rng, hw, cfg, fonts), np.float32)
            a = rgba[..., 3:] / 255.0
            out = out * (1.0 - a) + rgba[..., :3] * a
            cover = 1.0 - (1.0 - cover) * (1.0 - a[..., 0])
    composite = np.clip(np.rint(out), 0, 255).astype(np.uint8)
    changed = np.abs(composite.astype(np.float32) - base).max(axis=2) >= cfg.mask_change
    mask = (cover > cfg.mask_alpha) & changed
    if cfg.degrade:
        composite = _degrade(composite, rng)
    return composite, mask


def synthesize(photo: np.ndarray, seed: int, config: SynthConfig | None = None,
               fonts: Sequence[FontRef] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """`render_overlays` with a fresh Generator from `seed`: same inputs, same bytes."""
    return render_overlays(photo, np.random.default_rng(seed), config, fonts)
