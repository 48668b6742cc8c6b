"""Seven-segment digits as polygons: the look of a film camera's burned-in date stamp.

Pure geometry (no drawing), so the overlay generator can draw them supersampled, slanted and glowing.
"""

from __future__ import annotations

# Segments a..g per character (a top, b top-right, c bottom-right, d bottom, e bottom-left,
# f top-left, g middle), the usual labelling.
SEGMENTS: dict[str, str] = {
    "0": "abcdef", "1": "bc", "2": "abdeg", "3": "abcdg", "4": "bcfg", "5": "acdfg",
    "6": "acdefg", "7": "abc", "8": "abcdefg", "9": "abcdfg", "-": "g",
}
CHARS = frozenset(SEGMENTS) | {"'", ".", " ", "/"}

Point = tuple[float, float]


def _bar(x0: float, y0: float, x1: float, y1: float, t: float) -> list[Point]:
    """A segment from (x0, y0) to (x1, y1) of thickness t with pointed ends (a flat hexagon)."""
    h = t / 2
    if y0 == y1:  # horizontal
        return [(x0, y0), (x0 + h, y0 - h), (x1 - h, y0 - h), (x1, y0), (x1 - h, y0 + h), (x0 + h, y0 + h)]
    return [(x0, y0), (x0 + h, y0 + h), (x0 + h, y1 - h), (x0, y1), (x0 - h, y1 - h), (x0 - h, y0 + h)]


def _digit(ch: str, w: float, ht: float, t: float) -> list[list[Point]]:
    mid = ht / 2
    bars = {
        "a": (0, 0, w, 0), "g": (0, mid, w, mid), "d": (0, ht, w, ht),
        "f": (0, 0, 0, mid), "b": (w, 0, w, mid), "e": (0, mid, 0, ht), "c": (w, mid, w, ht),
    }
    gap = t * 0.15  # the thin dark gap between neighbouring segments of a real display
    polys = []
    for seg in SEGMENTS[ch]:
        x0, y0, x1, y1 = bars[seg]
        if y0 == y1:
            polys.append(_bar(x0 + gap, y0, x1 - gap, y1, t))
        else:
            polys.append(_bar(x0, y0 + gap, x1, y1 - gap, t))
    return polys


def layout(text: str, height: float, slant: float = 0.0) -> tuple[list[list[Point]], float]:
    """Polygons of `text` (digits, ' . / - and spaces) with digit height `height`.

    Returns (polygons, total width); coordinates start near (0, 0) and grow right/down.
    `slant` >= 0 leans the glyphs forward (the top moves right by slant * height), as on many stamps.
    """
    if slant < 0:
        raise ValueError(f"slant must be >= 0, got {slant}")
    t = max(1.0, height * 0.14)
    w = height * 0.5
    pad = t
    polys: list[list[Point]] = []
    x = pad
    for ch in text:
        if ch not in CHARS:
            raise ValueError(f"seven-segment text cannot show {ch!r} (in {text!r})")
        if ch in SEGMENTS:
            polys += [[(px + x, py + pad) for px, py in p] for p in _digit(ch, w, height, t)]
            x += w + 2.2 * t
        elif ch == "'":
            polys.append([(x, pad), (x + t, pad), (x + t, pad + height * 0.3), (x, pad + height * 0.3)])
            x += 2.2 * t
        elif ch == ".":
            y = pad + height
            polys.append([(x, y - t), (x + t, y - t), (x + t, y), (x, y)])
            x += 2.2 * t
        elif ch == "/":
            top, bottom = pad, pad + height
            polys.append([(x + w * 0.6, top), (x + w * 0.6 + t, top), (x + t, bottom), (x, bottom)])
            x += w * 0.6 + 2.2 * t
        else:  # space
            x += w * 0.8
    if slant:
        bottom = pad + height
        polys = [[(px + slant * (bottom - py), py) for px, py in p] for p in polys]
    return polys, x + pad + slant * height
