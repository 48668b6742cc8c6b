"""`--mask auto`: the mask from confident detections only, kept off faces and capped in area.

Precision first: a photo without defects must come out unchanged, and what is wrongly masked is
repainted, so

- text comes from PaddleOCR's detection network (lines whose mean probability reaches its box
  threshold) and is taken only where its recognition network reads the line as text
  (``text_read``: stripes, railings and fur look like lines but read as nothing), cut down to
  the glyph pixels (``text_detect.strokes``) and to what the overlay detector sees of them
  (``detect``); a line that does not read is still taken when
  its strokes are in a camera date imprint's ink, and the detector runs again over the image's
  warm ink alone for the date stamps it does not see in the photo (``date_ink``);
- scratches from the thin-detect network (``thin_net``): by default its sure ones (long,
  confident, standing out from both sides alike, grey over the photo: ``thin_net.SURE``) and, on
  a photo with one, its less sure grey ones (``SURE.then``); with ``thin`` a looser rule that
  takes hair and shorter scratches, and some of the scene's own long thin lines with them (``thin_net.THIN``);
- dust from the same network's run: its sure grey specks, only where a photo holds a crowd of
  them over its frame and on many surfaces, and then its less sure ones too (``dust_net``);
- nothing larger than a speck is filled inside a face (``faces``);
- at most ``max_area`` of the image is masked: detections are taken most confident first and the
  rest is left unfilled, the image flagged for review.

Every detection is recorded (detector, kind, box, score, pixels) with what became of it: filled,
or refused and why. The record goes into the output's sidecar.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from upres.cleaning import date_ink, detect, dust_net, faces, text_detect, text_read, thin_net
from upres.kernels.masks import grow

# Of the image: more than the largest caption and a stamp (the benchmark's captions cover up to 9%
# of their photo); the rest is for a person.
DEFAULT_MAX_AREA = 0.12
THIN = "thin-detect"
DATE_INK = f"{text_detect.NAME} on date ink"  # the text network run over date_ink.ink_image
NEW_SHARE = 0.1  # of a date-ink line's glyphs, not already taken as text, for it to count
OVERLAY = detect.MODEL_NAME
# A text line's strokes are kept where the overlay detector sees an overlay too (its logit above
# OVERLAY_LOGIT within OVERLAY_REACH px): on textured ground (a translucent caption over a
# cheetah's spots) the median cut of text_detect.strokes takes the texture with the letters. A
# line it sees under OVERLAY_SEEN of (small, faint captions it misses) keeps its strokes as cut.
# Chosen on BSD200 training photos (docs/CLEAN_DETECT.md).
OVERLAY_LOGIT = -2.0
OVERLAY_REACH = 1
OVERLAY_SEEN = 0.3


@dataclass
class Detection:
    detector: str
    kind: str  # "text", "scratch" or "speck"
    box: tuple[int, int, int, int]  # y0, y1, x0, x1
    pixels: np.ndarray  # bool, the box's size
    score: float
    status: str = "filled"  # or "refused"
    reason: str = ""
    reading: text_read.Reading | None = None  # what the recogniser read in a text line
    unseen: int = 0  # pixels left out: the overlay detector did not see them (text only)


    def record(self) -> dict[str, Any]:
        out: dict[str, Any] = {"detector": self.detector, "kind": self.kind, "box": list(self.box),
                               "score": round(self.score, 3), "pixels": int(self.pixels.sum()),
                               "status": self.status}
        if self.reason:
            out["reason"] = self.reason
        if self.unseen:
            out["unseen_by_overlay_detect"] = self.unseen
        if self.reading is not None:
            out["read"] = self.reading.text
            out["read_confidence"] = round(self.reading.confidence, 3)
            if self.reading.again is not None:
                out["read_again"] = self.reading.again.text
                out["read_again_confidence"] = round(self.reading.again.confidence, 3)
        return out


@dataclass
class AutoMask:
    mask: np.ndarray
    detections: list[Detection] = field(default_factory=list)
    detectors: dict[str, str | None] = field(default_factory=dict)  # SHA-256 or version; None: absent
    faces: list[tuple[int, int, int, int]] = field(default_factory=list)
    review: list[str] = field(default_factory=list)  # why a person should look at this image
    notes: list[str] = field(default_factory=list)  # what was not looked for, and why

    def by_kind(self) -> dict[str, np.ndarray]:
        """The filled detections' pixels as one full-size bool mask per kind; their union is
        ``mask``."""
        out: dict[str, np.ndarray] = {}
        for d in self.detections:
            if d.status == "filled":
                y0, y1, x0, x1 = d.box
                out.setdefault(d.kind, np.zeros(self.mask.shape, bool))[y0:y1, x0:x1] |= d.pixels
        return out

    def stroke_width(self) -> float:
        """The stroke width the mask's grow is set from: of its filled text and scratches, its
        specks left out unless it holds nothing else (a photo's dust, 1-6 px, would narrow its
        captions' grow); 0.0 for an empty mask."""
        kinds = self.by_kind()
        lines = [m for k, m in kinds.items() if k != "speck"]
        if not lines:
            return float(detect.estimate_stroke_width(self.mask)) if self.mask.any() else 0.0
        return float(detect.estimate_stroke_width(np.logical_or.reduce(lines)))

    def record(self) -> dict[str, Any]:
        return {"detectors": self.detectors, "faces": [[int(v) for v in b] for b in self.faces],
                "detections": [d.record() for d in self.detections],
                "refused": sum(d.status == "refused" for d in self.detections), "review": self.review,
                "notes": self.notes}


def _text(image: np.ndarray, threads: int) -> list[Detection]:
    lines = text_detect.detector(threads).lines(image)
    out = []
    for line in lines:
        glyphs = text_detect.strokes(line, image)
        if not glyphs.any():
            continue
        reading = text_read.reader(threads).read_line(image, line)
        found = Detection(text_detect.NAME, "text", line.box, glyphs, line.score, reading=reading)
        if not reading.is_text():
            again = reading.again
            found.reason = (f"not read as text ({reading.characters} character(s) at "
                            f"{reading.confidence:.2f}; {text_read.NAME})" if again is None else
                            f"not read as text again with a margin ({reading.characters} "
                            f"character(s) at {reading.confidence:.2f}, then {again.characters} "
                            f"at {again.confidence:.2f}; {text_read.NAME})")
            if date_ink.is_date_imprint(line, image, glyphs):
                found.reason += ", taken: a date imprint's ink (warm light, date_ink)"
            else:
                found.status = "refused"
        out.append(found)
    return out


def _date_imprints(image: np.ndarray, text: np.ndarray, threads: int) -> list[Detection]:
    out = []
    for line, glyphs in date_ink.imprint_lines(image, text_detect.detector(threads)):
        y0, y1, x0, x1 = line.box
        new = glyphs & ~text[y0:y1, x0:x1]
        if new.sum() < NEW_SHARE * glyphs.sum():
            continue  # a line the text detection has taken already
        out.append(Detection(DATE_INK, "text", line.box, new, line.score,
                             reason="a date imprint: a line of its warm ink (date_ink)"))
    return out


def _cut_to_overlay(detections: list[Detection], image: np.ndarray, threads: int) -> str | None:
    """Text detections cut to the pixels the overlay detector sees (OVERLAY_LOGIT); returns its
    SHA-256, or None where no text was taken (the detector does not run)."""
    text = [d for d in detections if d.kind == "text" and d.status == "filled"]
    if not text:
        return None
    where = np.zeros(image.shape[:2], bool)
    for d in text:
        y0, y1, x0, x1 = d.box
        where[y0:y1, x0:x1] |= d.pixels
    net = detect.detector(threads)
    # Every tile within reach of a stroke runs, so the grown map equals the whole image's there.
    seen = grow(net.logits(image, where=grow(where, OVERLAY_REACH)) > OVERLAY_LOGIT, OVERLAY_REACH)
    for d in text:
        y0, y1, x0, x1 = d.box
        kept = d.pixels & seen[y0:y1, x0:x1]
        n, total = int(kept.sum()), int(d.pixels.sum())
        if OVERLAY_SEEN * total <= n < total:
            d.pixels, d.unseen = kept, total - n
    return net.sha256


def _thin(found: list[thin_net.ThinFound], text: np.ndarray) -> list[Detection]:
    out = []
    for t in found:
        y0, y1, x0, x1 = t.box
        if (t.pixels & text[y0:y1, x0:x1]).any():
            continue  # part of a caption's strokes (an i's dot): the text detection has it
        out.append(Detection(THIN, t.kind, t.box, t.pixels, t.score))
    return out


def _gated(what: str, gate: float, spread: float, notes: list[str], hint: str = "") -> bool:
    """Whether a rule whose colour gate is ``gate`` stays off a photo of this colour spread
    (noted, with ``hint``)."""
    if spread >= gate:
        return False
    notes.append(f"no {what} looked for: colour spread {spread:.1f} is under {gate:g} (a "
                 "black-and-white or toned photo, whose colours cannot tell them from the scene's "
                 f"own{hint})")
    return True


def _lines_and_specks(image: np.ndarray, text: np.ndarray, threads: int, rule: thin_net.Thresholds | None,
                      dust: bool, notes: list[str]) -> list[Detection]:
    """Scratches by ``rule`` and, with ``dust``, sure specks, from one run of thin-detect; none
    where the photo's colours are under a rule's gate."""
    speck_rule = dust_net.DEFAULT if dust else None
    gates = [r.min_colour_spread for r in (rule, speck_rule) if r is not None]
    spread = thin_net.colour_spread(image) if max(gates, default=0.0) > 0 else np.inf
    if rule is not None and _gated("sure scratches", rule.min_colour_spread, spread, notes,
                                   "; --detect text,thin looks for scratches"):
        rule = None
    if speck_rule is not None and _gated("dust specks", speck_rule.min_colour_spread, spread, notes):
        speck_rule = None
    if rule is None and speck_rule is None:
        return []
    logits = thin_net.detector(threads).logits(image, thin_net.TILE)
    parts = thin_net.Parts.of(logits, thin_net.LOW)  # the specks'; the scratches' too at their LOW
    found = [] if rule is None else \
        thin_net.components(logits, rule, image, parts if rule.low == thin_net.LOW else None)
    if speck_rule is not None:
        found += [sp.found() for sp in dust_net.find(parts, image, speck_rule)]
    return _thin(found, text)


def _keep_off_faces(detections: list[Detection], face: np.ndarray) -> None:
    for d in detections:
        if d.status != "filled":
            continue
        y0, y1, x0, x1 = d.box
        on_face = d.pixels & face[y0:y1, x0:x1]
        if int(on_face.sum()) <= faces.SPECK:
            continue
        d.pixels = d.pixels & ~on_face
        if not d.pixels.any():
            d.status, d.reason = "refused", "on a face"
        else:
            d.reason = f"{int(on_face.sum())} px on a face left unfilled"


def _cap(detections: list[Detection], shape: tuple[int, int], max_area: float) -> list[str]:
    budget = max_area * shape[0] * shape[1]
    used = 0
    over = 0
    for d in sorted((d for d in detections if d.status == "filled"), key=lambda d: -d.score):
        n = int(d.pixels.sum())
        if used + n > budget:
            d.status, d.reason = "refused", f"over the auto-mask cap ({max_area:.1%} of the image)"
            over += 1
            continue
        used += n
    return [f"{over} detection(s) over the auto-mask cap of {max_area:.1%} left unfilled"] if over else []


def detect_auto(image: np.ndarray, max_area: float = DEFAULT_MAX_AREA, threads: int = 1,
                text: bool = True, scratch: bool = True, thin: bool = False, dust: bool = True) -> AutoMask:
    """The automatic mask of an H x W x 3 float32 RGB image in [0, 1], with its record: text,
    sure scratches (``scratch``) or scratches by the looser rule (``thin``, in place of them),
    sure dust specks on a dusty photo (``dust``)."""
    if not 0.0 < max_area <= 1.0:
        raise ValueError(f"--max-auto-area must be within (0, 1], got {max_area}")
    h, w = image.shape[:2]
    lines = thin or scratch
    detectors: dict[str, str | None] = {THIN: thin_net.detector(threads).sha256} if lines or dust else {}
    detections: list[Detection] = []
    text_px = np.zeros((h, w), bool)
    if text and text_read.available():
        detections += _text(image, threads)
        detectors[text_detect.NAME] = text_detect.detector(threads).sha256
        detectors[text_read.NAME] = text_read.reader(threads).sha256
        for d in detections:
            if d.status == "filled":
                y0, y1, x0, x1 = d.box
                text_px[y0:y1, x0:x1] |= d.pixels
        for d in _date_imprints(image, text_px, threads):
            y0, y1, x0, x1 = d.box
            text_px[y0:y1, x0:x1] |= d.pixels
            detections.append(d)
        cut_by = _cut_to_overlay(detections, image, threads)
        if cut_by is not None:
            detectors[OVERLAY] = cut_by
    elif text:
        detectors[text_detect.NAME] = None
    notes: list[str] = []
    if lines or dust:
        rule = (thin_net.THIN if thin else thin_net.SURE) if lines else None
        detections += _lines_and_specks(image, text_px, threads, rule, dust, notes)
    boxes = faces.face_boxes(image)
    _keep_off_faces(detections, faces.face_area((h, w), boxes))
    review = _cap(detections, (h, w), max_area)
    mask = np.zeros((h, w), bool)
    for d in detections:
        if d.status == "filled":
            y0, y1, x0, x1 = d.box
            mask[y0:y1, x0:x1] |= d.pixels
    return AutoMask(mask, detections, detectors, boxes, review, notes)
