"""Overlays and defects one kind at a time, as a real archive has them, with their true masks.

The clean benchmark (benchmarks/clean_detect_bench.py) draws each kind alone over a photo so recall
can be told per kind: captions in the machine's TrueType fonts and in OpenCV's Hershey fonts (many
sizes, colours, outlines, shadows), film date stamps, scratches (curved and straight, 1-4 px,
bright and dark, soft and sharp, hair, crease lines), dust specks and rubber stamps (rings and
frames round words or a date, in one ink, unevenly pressed). Unlike
:mod:`upres.models.overlay_synth` (the overlay detector's training mix: translucent, rotated
shapes), captions here are legible, as people burn them in.

Everything random comes from the Generator passed in: the same photo and seed give the same bytes.
The mask rule is overlay_synth's: overlay alpha above 0.1 that moved the pixel by 8 levels or more.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import cv2
import numpy as np
from PIL import Image, ImageDraw

from upres.models import overlay_synth as synth

KINDS = ("caption", "hershey", "date", "scratch", "dust", "stamp")
HERSHEY = (cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_PLAIN, cv2.FONT_HERSHEY_DUPLEX,
           cv2.FONT_HERSHEY_COMPLEX, cv2.FONT_HERSHEY_TRIPLEX, cv2.FONT_HERSHEY_COMPLEX_SMALL,
           cv2.FONT_HERSHEY_SCRIPT_SIMPLEX, cv2.FONT_HERSHEY_SCRIPT_COMPLEX)
MASK_ALPHA = 0.1
MASK_CHANGE = 8.0
SS = synth.SUPERSAMPLE

Layer = tuple[np.ndarray, np.ndarray]  # (H x W x 3 float32 colour, H x W float32 alpha in [0, 1])


def _caption_text(rng: np.random.Generator) -> str:
    words = [synth.WORDS[int(i)] for i in rng.integers(0, len(synth.WORDS), int(rng.integers(1, 4)))]
    if rng.random() < 0.5:
        words.append(str(int(rng.integers(1920, 2025))))
    return " ".join(words)


def _colour(rng: np.random.Generator) -> tuple[int, int, int]:
    return synth.PALETTE[int(rng.integers(len(synth.PALETTE)))] if rng.random() < 0.8 else \
        tuple(int(v) for v in rng.integers(0, 256, 3))  # type: ignore[return-value]


def _paste(canvas_hw: tuple[int, int], patch_alpha: np.ndarray, colour: np.ndarray,
           rng: np.random.Generator, corner: bool) -> Layer:
    """A full-size layer with the patch inside the image (captions are meant to be read)."""
    h, w = canvas_hw
    ph, pw = patch_alpha.shape
    # Too big for this photo: cropped (still partly legible).
    patch_alpha, colour = patch_alpha[: h - 4, : w - 4], colour[: h - 4, : w - 4]
    ph, pw = patch_alpha.shape
    if corner:
        x = max(0, w - pw - int(rng.integers(2, max(3, w // 12))))
        y = max(0, h - ph - int(rng.integers(2, max(3, h // 12))))
    else:
        x, y = int(rng.integers(0, w - pw + 1)), int(rng.integers(0, h - ph + 1))
    alpha = np.zeros((h, w), np.float32)
    rgb = np.zeros((h, w, 3), np.float32)
    alpha[y : y + ph, x : x + pw] = patch_alpha
    rgb[y : y + ph, x : x + pw] = colour
    return rgb, alpha


def _flat(shape: tuple[int, int], rgb: tuple[int, int, int]) -> np.ndarray:
    return np.broadcast_to(np.asarray(rgb, np.float32), (*shape, 3)).copy()


def _with_outline(glyph: np.ndarray, fill: tuple[int, int, int], rng: np.random.Generator,
                  size: int) -> tuple[np.ndarray, np.ndarray]:
    """Glyph alpha (0..1) -> (alpha, colour) with an outline or drop shadow sometimes."""
    colour = _flat(glyph.shape, fill)
    style = rng.random()
    if style < 0.25:  # outline in the contrasting colour
        px = max(1, round(size * 0.08))
        ring = cv2.dilate(glyph, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * px + 1, 2 * px + 1)))
        colour = np.where(glyph[..., None] > 0.5, colour, np.asarray(synth._contrast(fill), np.float32))
        return np.maximum(glyph, ring), colour
    if style < 0.4:  # drop shadow
        d = max(1, size // 12)
        shadow = np.zeros_like(glyph)
        shadow[d:, d:] = glyph[:-d, :-d]
        colour = np.where(glyph[..., None] > 0.5, colour, np.asarray(synth._contrast(fill), np.float32))
        return np.maximum(glyph, shadow), colour
    return glyph, colour


def caption(photo: np.ndarray, rng: np.random.Generator, fonts: Sequence[synth.FontRef]) -> Layer:
    """A caption in a TrueType font (8-56 px), opaque or nearly, level or slightly tilted."""
    size = max(8, round(math.exp(rng.uniform(math.log(9), math.log(56)))))
    font = synth._font(fonts[int(rng.integers(len(fonts)))], size)
    text = _caption_text(rng)
    probe = ImageDraw.Draw(Image.new("L", (1, 1)))
    x0, y0, x1, y1 = probe.textbbox((0, 0), text, font=font)
    m = max(3, size // 6)
    canvas = Image.new("L", (int(x1 - x0 + 2 * m), int(y1 - y0 + 2 * m)))
    ImageDraw.Draw(canvas).text((m - x0, m - y0), text, font=font, fill=255)
    if rng.random() < 0.3:
        canvas = canvas.rotate(float(rng.uniform(-8, 8)), resample=Image.Resampling.BICUBIC, expand=True)
    glyph = np.asarray(canvas, np.float32) / 255.0
    alpha, colour = _with_outline(glyph, _colour(rng), rng, size)
    return _paste(photo.shape[:2], alpha * float(rng.uniform(0.8, 1.0)), colour, rng, rng.random() < 0.3)


def hershey(photo: np.ndarray, rng: np.random.Generator, fonts: Sequence[synth.FontRef]) -> Layer:
    """A caption in one of OpenCV's Hershey stroke fonts (cv2.putText), antialiased or not."""
    face = HERSHEY[int(rng.integers(len(HERSHEY)))]
    scale = float(rng.uniform(0.4, 1.6))
    thick = int(rng.integers(1, 4))
    text = _caption_text(rng)
    (tw, th), base = cv2.getTextSize(text, face, scale, thick)
    m = thick + 3
    canvas = np.zeros((th + base + 2 * m, tw + 2 * m), np.uint8)
    line = cv2.LINE_AA if rng.random() < 0.6 else cv2.LINE_8
    cv2.putText(canvas, text, (m, m + th), face, scale, 255, thick, line)
    glyph = canvas.astype(np.float32) / 255.0
    alpha, colour = _with_outline(glyph, _colour(rng), rng, th)
    return _paste(photo.shape[:2], alpha, colour, rng, rng.random() < 0.3)


def date_stamp(photo: np.ndarray, rng: np.random.Generator, fonts: Sequence[synth.FontRef]) -> Layer:
    """A film camera's date stamp: seven-segment digits (a glow often) or a monospace font."""
    height = math.exp(rng.uniform(math.log(10), math.log(36)))
    glyph = synth.date_glyph(synth._date_text(rng), height, fonts, rng, min_font_px=8)
    glyph = glyph.astype(np.float32) / 255.0
    if rng.random() < 0.5:  # burned-in stamps bloom
        glow = cv2.GaussianBlur(glyph, (0, 0), max(0.6, 0.06 * height))
        glyph = np.maximum(glyph, np.clip(glow * float(rng.uniform(0.5, 0.9)), 0, 1))
    colour = _flat(glyph.shape, synth.DATE_COLOURS[int(rng.integers(len(synth.DATE_COLOURS)))])
    return _paste(photo.shape[:2], glyph * float(rng.uniform(0.8, 1.0)), colour, rng, rng.random() < 0.8)


def _polyline(rng: np.random.Generator, hw: tuple[int, int], curl: float, frac: tuple[float, float],
              steps: int = 40) -> list[tuple[float, float]]:
    h, w = hw
    x, y = rng.uniform(0, w), rng.uniform(0, h)
    angle = rng.uniform(0, 2 * math.pi)
    step = math.hypot(h, w) * rng.uniform(*frac) / steps
    pts = []
    for _ in range(steps):
        pts.append((x * SS, y * SS))
        angle += rng.normal(0.0, curl)
        x, y = x + step * math.cos(angle), y + step * math.sin(angle)
    return pts


def _grey(rng: np.random.Generator, photo: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Bright (emulsion scraped off a print) or dark (a scratch on the negative) defects."""
    level = float(rng.integers(215, 256)) if rng.random() < 0.55 else float(rng.integers(0, 40))
    return _flat(photo.shape[:2], (int(level),) * 3)  # type: ignore[arg-type]


def scratch(photo: np.ndarray, rng: np.random.Generator, fonts: Sequence[synth.FontRef]) -> Layer:
    """1-3 scratches: straight, wandering, or a hair's tight curl; 1-4 px wide; sharp or soft;
    sometimes a crease (a pair of bright and dark lines side by side)."""
    hw = photo.shape[:2]
    canvas = Image.new("L", (hw[1] * SS, hw[0] * SS))
    draw = ImageDraw.Draw(canvas)
    for _ in range(int(rng.integers(1, 4))):
        style = rng.random()
        if style < 0.35:
            pts = _polyline(rng, hw, 0.0, (0.3, 0.9))
        elif style < 0.8:
            pts = _polyline(rng, hw, 0.05, (0.2, 0.8))
        else:  # a hair: short and curly
            pts = _polyline(rng, hw, 0.25, (0.08, 0.25))
        draw.line(pts, fill=255, width=max(SS, round(rng.uniform(1.0, 4.0) * SS)), joint="curve")
    alpha = synth._downsample(canvas).astype(np.float32) / 255.0
    if rng.random() < 0.4:  # soft: out of focus in the enlarger, or scanned through the glass
        alpha = np.asarray(cv2.GaussianBlur(alpha, (0, 0), float(rng.uniform(0.5, 1.0))))
        alpha = np.clip(alpha * 1.3, 0, 1)
    colour = _grey(rng, photo, alpha)
    if rng.random() < 0.15:  # crease: the fold's other side is in shadow
        dark = np.zeros_like(alpha)
        dark[2:, 2:] = alpha[:-2, :-2]
        level = 255.0 - colour[0, 0, 0]
        colour = np.where((dark > alpha)[..., None], np.float32(level), colour)
        alpha = np.maximum(alpha, dark)
    return colour, alpha * float(rng.uniform(0.6, 1.0))


def dust(photo: np.ndarray, rng: np.random.Generator, fonts: Sequence[synth.FontRef]) -> Layer:
    """Film dust: 5-40 specks (1-6 px blobs, some irregular) and now and then a short fibre."""
    hw = photo.shape[:2]
    canvas = Image.new("L", (hw[1] * SS, hw[0] * SS))
    draw = ImageDraw.Draw(canvas)
    for _ in range(int(rng.integers(5, 41))):
        cx, cy = rng.uniform(0, hw[1]) * SS, rng.uniform(0, hw[0]) * SS
        r = rng.uniform(0.6, 3.0) * SS
        if rng.random() < 0.7:
            draw.ellipse((cx - r, cy - r * rng.uniform(0.6, 1.0), cx + r, cy + r), fill=255)
        else:
            n = int(rng.integers(4, 8))
            pts = [(cx + r * rng.uniform(0.5, 1.3) * math.cos(2 * math.pi * k / n),
                    cy + r * rng.uniform(0.5, 1.3) * math.sin(2 * math.pi * k / n)) for k in range(n)]
            draw.polygon(pts, fill=255)
    for _ in range(int(rng.integers(0, 3))):
        draw.line(_polyline(rng, hw, 0.3, (0.02, 0.06), 12), fill=255, width=SS, joint="curve")
    alpha = synth._downsample(canvas).astype(np.float32) / 255.0
    if rng.random() < 0.3:
        alpha = np.clip(cv2.GaussianBlur(alpha, (0, 0), 0.6) * 1.3, 0, 1)
    return _grey(rng, photo, alpha), alpha * float(rng.uniform(0.7, 1.0))


# Rubber-stamp inks: red, blue, violet, black, green.
STAMP_INKS = ((200, 30, 40), (40, 60, 170), (110, 50, 150), (35, 35, 40), (30, 120, 60))
MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")


def stamp(photo: np.ndarray, rng: np.random.Generator, fonts: Sequence[synth.FontRef]) -> Layer:
    """A rubber stamp (an archive's, a studio's, a censor's): a ring, an oval or a frame, single or
    double, round one or two words or a date, in one ink, pressed unevenly (patchy coverage),
    turned up to 30 degrees."""
    h, w = photo.shape[:2]
    side = rng.uniform(0.25, 0.45) * min(h, w)
    shape = int(rng.integers(3))  # ring / oval, rectangle, rounded rectangle
    pw = side * (rng.uniform(1.0, 1.3) if shape == 0 else rng.uniform(1.4, 2.2))
    ph = side * (rng.uniform(0.7, 1.0) if shape == 0 else rng.uniform(0.5, 0.8))
    line = max(1.0, float(rng.uniform(1.0, 3.5)))
    m = 4 * SS
    canvas = Image.new("L", (round(pw * SS) + 2 * m, round(ph * SS) + 2 * m))
    draw = ImageDraw.Draw(canvas)
    rings = [(0.0, line)] + ([(line * 2.5, max(1.0, line * 0.6))] if rng.random() < 0.4 else [])
    for inset, width in rings:
        k = round(inset * SS)
        box = (m + k, m + k, canvas.width - m - k - 1, canvas.height - m - k - 1)
        wide = max(SS, round(width * SS))
        if shape == 0:
            draw.ellipse(box, outline=255, width=wide)
        elif shape == 1:
            draw.rectangle(box, outline=255, width=wide)
        else:
            draw.rounded_rectangle(box, radius=round(min(pw, ph) * SS / 5), outline=255, width=wide)
    words = [synth.WORDS[int(rng.integers(len(synth.WORDS)))].upper()]
    if rng.random() < 0.5:
        day, month = int(rng.integers(1, 29)), MONTHS[int(rng.integers(12))]
        words.append(f"{day} {month} {int(rng.integers(1920, 2000))}")
    ref = fonts[int(rng.integers(len(fonts)))]
    size = max(8, round(ph * rng.uniform(0.16, 0.24))) * SS
    font = synth._font(ref, size)
    widest = max(draw.textlength(word, font=font) for word in words)
    if widest > 0.8 * pw * SS:  # the words fit inside the ring
        size = max(8 * SS, int(size * 0.8 * pw * SS / widest))
        font = synth._font(ref, size)
    for i, word in enumerate(words):
        y = canvas.height / 2 + (i - (len(words) - 1) / 2) * size * 1.2
        draw.text((canvas.width / 2, y), word, font=font, fill=255, anchor="mm")
    if rng.random() < 0.8:
        canvas = canvas.rotate(float(rng.uniform(-30, 30)), resample=Image.Resampling.BICUBIC, expand=True)
    glyph = synth._downsample(canvas).astype(np.float32) / 255.0
    # Uneven pressure: coverage varies smoothly over the stamp, and the ink's grain breaks it up.
    smooth = cv2.GaussianBlur(rng.random(glyph.shape).astype(np.float32), (0, 0), max(2.0, side / 12))
    smooth = (smooth - smooth.min()) / max(1e-6, float(np.ptp(smooth)))
    grain = rng.random(glyph.shape).astype(np.float32)
    press = np.clip(0.65 + 0.35 * smooth + 0.25 * (grain - 0.5), 0.0, 1.0)
    alpha = glyph * press * float(rng.uniform(0.75, 1.0))
    ink = STAMP_INKS[int(rng.integers(len(STAMP_INKS)))]
    return _paste((h, w), alpha, _flat(alpha.shape, ink), rng, rng.random() < 0.3)


DRAW: dict[str, Callable[[np.ndarray, np.random.Generator, Sequence[synth.FontRef]], Layer]] = {
    "caption": caption, "hershey": hershey, "date": date_stamp, "scratch": scratch, "dust": dust,
    "stamp": stamp}


def render(photo: np.ndarray, kind: str, seed: int,
           fonts: Sequence[synth.FontRef] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``photo`` (H x W x 3 uint8 RGB) with one ``kind`` of overlay drawn on; (composite, mask)."""
    if kind not in DRAW:
        raise ValueError(f"unknown kind {kind!r}; one of {', '.join(KINDS)}")
    rng = np.random.default_rng(seed)
    fonts = tuple(fonts) if fonts is not None else tuple(synth.system_fonts()) or (None,)
    colour, alpha = DRAW[kind](photo, rng, fonts)
    base = photo.astype(np.float32)
    a = alpha[..., None]
    composite = np.clip(np.rint(base * (1 - a) + colour * a), 0, 255).astype(np.uint8)
    changed = np.abs(composite.astype(np.float32) - base).max(axis=2) >= MASK_CHANGE
    return composite, (alpha > MASK_ALPHA) & changed
