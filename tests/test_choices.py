"""The name sets (mode, tile blend, clean blend): parsed once where they enter, written as names."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

import upres
from upres.cleaning.pipeline import CleanSettings
from upres.cli import app
from upres.core.choices import Blend, CleanBlend, FeatherShape, Mode
from upres.studio.settings import SettingsError, StudioSettings


@pytest.mark.parametrize("kind", [Mode, Blend, FeatherShape, CleanBlend])
def test_every_name_parses_to_its_member_and_back(kind: type[Mode]) -> None:
    for member in kind:
        assert kind.parse(member.value) is member
        assert kind.parse(member) is member
        assert str(member) == f"{member}" == member.value
        assert json.dumps({"x": member}) == json.dumps({"x": member.value})


@pytest.mark.parametrize("kind, bad, message", [
    (Mode, "magic", "--mode must be one of deterministic, faithful, hybrid, got 'magic'"),
    (Blend, "smooth", "--blend must be auto, crop or feather, got 'smooth'"),
    (FeatherShape, "square", "the feather shape must be linear or cosine, got 'square'"),
    (CleanBlend, "soft", "--blend must be one of alpha, poisson, got 'soft'"),
    (Mode, "Hybrid", "--mode must be one of deterministic, faithful, hybrid, got 'Hybrid'"),
    (Blend, 1, "--blend must be auto, crop or feather, got 1"),
])
def test_a_bad_name_is_one_line_naming_the_option_and_the_choices(kind: type[Mode], bad: object,
                                                                   message: str) -> None:
    with pytest.raises(ValueError) as caught:
        kind.parse(bad)
    assert str(caught.value) == message


def test_the_tile_blend_is_not_the_clean_blend() -> None:
    with pytest.raises(ValueError, match="--blend must be auto, crop or feather"):
        Blend.parse("alpha")
    with pytest.raises(ValueError, match="--blend must be one of alpha, poisson"):
        CleanBlend.parse("crop")


def test_settings_store_members_and_keep_writing_names() -> None:
    settings = upres.Settings(mode="faithful", blend="feather")
    assert settings.mode is Mode.FAITHFUL and settings.blend is Blend.FEATHER
    assert settings.run_options().blend is Blend.FEATHER
    clean = CleanSettings(blend="poisson")
    assert clean.blend is CleanBlend.POISSON
    assert json.loads(json.dumps(clean.record()))["blend"] == "poisson"
    studio = StudioSettings.from_json({"mode": "deterministic", "blend": "poisson"})
    assert (studio.mode, studio.blend) == (Mode.DETERMINISTIC, CleanBlend.POISSON)
    assert json.loads(json.dumps(studio.record()))["mode"] == "deterministic"


def test_the_studio_refuses_a_bad_name_in_its_own_words() -> None:
    with pytest.raises(SettingsError, match=r"^mode must be one of deterministic, faithful, hybrid, "
                                            r"got 'magic'$"):
        StudioSettings.from_json({"mode": "magic"})
    with pytest.raises(SettingsError, match=r"^blend must be one of alpha, poisson, got 'crop'$"):
        StudioSettings.from_json({"blend": "crop"})


@pytest.mark.parametrize("command, option, bad", [
    ("run", "--blend", "smooth"),
    ("run", "--mode", "magic"),
    ("plan", "--blend", "smooth"),
    ("eval", "--mode", "magic"),
    ("clean", "--blend", "crop"),
])
def test_the_cli_refuses_a_bad_name_on_one_line_with_exit_2(tmp_path: Path, command: str,
                                                            option: str, bad: str) -> None:
    src = tmp_path / "a.png"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(src)
    args = {"run": [str(src), "-o", str(tmp_path / "o")], "plan": [str(src)],
            "eval": ["--data", str(tmp_path)],
            "clean": [str(src), "-o", str(tmp_path / "o"), "--mask", str(src)]}[command]
    result = CliRunner().invoke(app, [command, *args, option, bad])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), result.output
    assert f"{option} must be" in lines[0] and repr(bad) in lines[0]
    assert not (tmp_path / "o").exists()


def test_a_sidecar_records_the_names(tmp_path: Path) -> None:
    src = tmp_path / "in" / "a.png"
    src.parent.mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(src)
    result = CliRunner().invoke(app, ["run", str(src), "-o", str(tmp_path / "o"), "--scale", "2",
                                      "--mode", "deterministic", "--blend", "crop", "-q"])
    assert result.exit_code == 0, result.output
    record = json.loads((tmp_path / "o" / "a.png.json").read_text())
    settings = record.get("settings", record)
    assert settings["mode"] == "deterministic" and settings["blend"] == "crop"
