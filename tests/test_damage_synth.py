"""The clean benchmark's overlays: each kind is drawn alone, reproducibly, with the true mask the
benchmark scores against (overlay alpha above 0.1 that moved the pixel by 8 levels or more)."""

from __future__ import annotations

import numpy as np
import pytest

from upres.models import damage_synth


def _photo() -> np.ndarray:
    yy, xx = np.mgrid[0:160, 0:240]
    rgb = np.stack([90 + 60 * np.sin(xx / 17.0), 110 + 50 * np.cos(yy / 13.0), 100 + 0 * xx], axis=2)
    return np.clip(rgb, 0, 255).astype(np.uint8)


@pytest.mark.parametrize("kind", damage_synth.KINDS)
def test_each_kind_is_reproducible_and_its_mask_marks_what_moved(kind: str) -> None:
    photo = _photo()
    comp, true = damage_synth.render(photo, kind, 11, fonts=(None,))
    again, true_again = damage_synth.render(photo, kind, 11, fonts=(None,))
    assert np.array_equal(comp, again) and np.array_equal(true, true_again)
    assert comp.shape == photo.shape and comp.dtype == np.uint8
    moved = np.abs(comp.astype(np.int16) - photo).max(axis=2)
    assert true.any()
    assert (moved[true] >= damage_synth.MASK_CHANGE).all()
    assert damage_synth.render(photo, kind, 12, fonts=(None,))[0].tobytes() != comp.tobytes()


def test_a_stamp_is_a_frame_round_its_words_in_one_ink() -> None:
    photo = np.full((200, 300, 3), 128, np.uint8)
    comp, true = damage_synth.render(photo, "stamp", 5, fonts=(None,))
    ys, xs = np.nonzero(true)
    box = true[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    # A frame: ink along every side of its box, the inside mostly bare paper between the words.
    edge = max(2, min(box.shape) // 8)
    for side in (box[:edge], box[-edge:], box[:, :edge], box[:, -edge:]):
        assert side.any()
    assert box.mean() < 0.4
    # One ink: every marked pixel moved in the same direction of colour.
    moved = comp[true].astype(np.float32) - 128
    unit = moved / np.linalg.norm(moved, axis=1, keepdims=True)
    assert (unit @ unit.mean(axis=0) / np.linalg.norm(unit.mean(axis=0)) > 0.95).all()


def test_unknown_kinds_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown kind"):
        damage_synth.render(_photo(), "logo", 0)
