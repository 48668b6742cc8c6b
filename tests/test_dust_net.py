"""Dust specks by default: thin-detect's sure, grey specks, taken only where a photo holds a crowd
of them on many surfaces, and never on a black-and-white or toned print."""

from __future__ import annotations

import cv2
import numpy as np
from PIL import Image
from support import SAMPLE

from upres.cleaning import auto_mask, dust_net, thin_net
from upres.models.damage_synth import render


def _photo() -> np.ndarray:
    with Image.open(SAMPLE) as im:
        rgb = np.asarray(im.convert("RGB"))
    return cv2.resize(rgb, (480, 320), interpolation=cv2.INTER_CUBIC)


def test_a_dusty_photo_gets_its_specks_filled_and_a_clean_one_none() -> None:
    photo = _photo()
    assert not auto_mask.detect_auto(photo / 255.0, text=False).mask.any()
    dusty, true = render(photo, "dust", 1)
    auto = auto_mask.detect_auto(dusty / 255.0, text=False, scratch=False)
    specks = [d for d in auto.detections if d.status == "filled"]
    assert len(specks) >= dust_net.SpeckRule().min_count
    assert all(d.kind == "speck" and d.detector == auto_mask.THIN for d in specks)
    assert (auto.mask & true).sum() >= 0.3 * true.sum()
    assert (auto.mask & ~true).sum() <= true.sum()  # the specks' soft rims, no more
    assert not auto_mask.detect_auto(dusty / 255.0, text=False, scratch=False, dust=False).mask.any()


def test_no_dust_looked_for_on_a_gray_print() -> None:
    dusty, _ = render(_photo(), "dust", 1)
    gray = np.repeat(cv2.cvtColor(dusty, cv2.COLOR_RGB2GRAY)[..., None], 3, axis=2)
    auto = auto_mask.detect_auto(gray / 255.0, text=False, scratch=False)
    assert not auto.mask.any()
    assert len(auto.notes) == 1 and auto.notes[0].startswith("no dust specks looked for")


def _crowd(n: int, cells: bool = True, surfaces: bool = True) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(3)
    ys = rng.integers(0, 300, n) if cells else np.full(n, 10)
    xs = rng.integers(0, 400, n) if cells else np.full(n, 10)
    luma = np.linspace(40, 220, n) if surfaces else np.full(n, 120.0)
    return ys, xs, np.repeat(luma[:, None], 3, axis=1)


def test_dust_is_a_crowd_over_the_photo_on_many_surfaces() -> None:
    rule = dust_net.SpeckRule()
    assert dust_net.crowded(*_crowd(12), (300, 400), rule)
    assert not dust_net.crowded(*_crowd(rule.min_count - 1), (300, 400), rule)
    assert not dust_net.crowded(*_crowd(12, cells=False), (300, 400), rule)  # one corner's
    assert not dust_net.crowded(*_crowd(12, surfaces=False), (300, 400), rule)  # daisies on a lawn


def test_a_speck_of_the_scene_s_colour_is_not_sure() -> None:
    rule = dust_net.SpeckRule()
    speck = dust_net.SpeckReads(side=3, area=6, peak=8.0, contrast=60.0, noise=2.0, chroma=4.0,
                                ring_chroma=30.0, level=240.0, surface=(90.0, 120.0, 60.0))
    assert dust_net.sure(speck, rule)
    assert not dust_net.sure(dust_net.SpeckReads(**{**speck.__dict__, "chroma": 40.0}), rule)  # a berry
    assert not dust_net.sure(dust_net.SpeckReads(**{**speck.__dict__, "peak": 5.0}), rule)
    assert not dust_net.sure(dust_net.SpeckReads(**{**speck.__dict__, "contrast": 10.0}), rule)


def test_reads_of_a_white_speck_on_grass() -> None:
    crop = np.zeros((13, 13, 3), np.uint8)
    crop[:] = (60, 120, 40)
    crop[5:8, 5:8] = 245
    part = np.zeros((13, 13), bool)
    part[5:8, 5:8] = True
    r = dust_net.reads(crop, part, 7.0)
    assert r is not None and r.side == 3 and r.area == 9 and r.chroma == 0.0
    assert r.ring_chroma == 80.0 and r.surface == (60.0, 120.0, 40.0) and r.noise == 0.0
    assert r.contrast > 100 and r.level > 240
    f = dust_net.reads(crop.astype(np.float32) / 255.0, part, 7.0)
    assert f is not None and abs(f.contrast - r.contrast) < 1e-3


def _specks_on_a_ramp(peaks: list[float]) -> tuple[thin_net.Parts, np.ndarray]:
    """White 3 px specks over a photo whose luma runs 30..200 left to right, one per 40 px
    column, each with the network's logit from ``peaks`` on it (-8 elsewhere)."""
    h, w = 200, 40 * len(peaks)
    image = np.repeat(np.linspace(30, 200, w, dtype=np.float32)[None, :, None], 3, axis=2)
    image = np.ascontiguousarray(np.broadcast_to(image, (h, w, 3))).astype(np.uint8)
    logits = np.full((h, w), -8.0, np.float32)
    for k, peak in enumerate(peaks):
        y, x = 20 + (k * 53) % 160, 40 * k + 18
        image[y : y + 3, x : x + 3] = 250
        logits[y : y + 3, x : x + 3] = peak
    return thin_net.Parts.of(logits, thin_net.LOW), image


def test_a_dusty_photo_s_less_sure_specks_are_taken_and_a_clean_one_s_not() -> None:
    rule = dust_net.SpeckRule()
    sure, unsure = [rule.min_peak + 1] * rule.min_count, [rule.then_peak + 0.5] * 4
    found = dust_net.find(*_specks_on_a_ramp(sure + unsure), rule)
    assert len(found) == len(sure) + len(unsure)  # the photo is known dusty
    assert dust_net.find(*_specks_on_a_ramp(sure[1:] + unsure), rule) == []  # not a crowd
    fainter = [rule.then_peak - 0.5] * 4
    assert len(dust_net.find(*_specks_on_a_ramp(sure + fainter), rule)) == len(sure)
    strict = dust_net.SpeckRule(then_peak=rule.min_peak)
    assert len(dust_net.find(*_specks_on_a_ramp(sure + unsure), strict)) == len(sure)


def test_a_few_surer_specks_over_the_photo_prove_it_dusty_too() -> None:
    """The default's second proof: 3 specks of logit 9 or more over 3 cells, 40 levels apart."""
    also = dust_net.DEFAULT.also
    assert also is not None
    surer, unsure = [also.min_peak + 1] * also.min_count, [dust_net.DEFAULT.then_peak + 0.5] * 2
    found = dust_net.find(*_specks_on_a_ramp(surer + unsure))  # the default rule
    assert len(found) == len(surer) + len(unsure)
    assert dust_net.find(*_specks_on_a_ramp(surer + unsure), dust_net.SpeckRule()) == []  # 3, not 8
    assert dust_net.find(*_specks_on_a_ramp([also.min_peak - 0.5] * also.min_count + unsure)) == []
    assert dust_net.find(*_specks_on_a_ramp(surer[1:] + unsure)) == []  # two are not a crowd
