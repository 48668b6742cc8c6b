"""`upres studio`'s API end to end on real images, real ONNX Runtime and real files (Starlette's
TestClient): listing, tiles, edits, previews equal to the accepted output, Accept equal to
`upres clean`, resume, and what it refuses (other origins, other hosts, paths outside FOLDER)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from studio_support import scan_folder
from typer.testing import CliRunner

pytest.importorskip("starlette")
pytest.importorskip("httpx")
from starlette.testclient import TestClient

from upres.cli import app as cli_app
from upres.studio.engines import Engines
from upres.studio.security import allowed_hosts
from upres.studio.server import create_app

BASE = "http://127.0.0.1:8765"
FAST = {"mode": "faithful", "scale": 2, "fill": "telea", "texture": 0.0}  # no refine pass: quick
STROKE = {"op": "paint", "radius": 4, "points": [[40, 30], [90, 40], [130, 42]]}


@pytest.fixture(scope="module")
def engines() -> Engines:
    return Engines()  # ONNX Runtime sessions shared by the tests, as one studio shares them


def client(folder: Path, engines: Engines, output: Path | None = None) -> TestClient:
    return TestClient(create_app(folder, output, allowed_hosts("127.0.0.1", 8765), engines), base_url=BASE)


def png(response) -> np.ndarray:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    return np.asarray(Image.open(io.BytesIO(response.content)))


def test_lists_tiles_and_edits(tmp_path: Path, engines: Engines) -> None:
    folder = scan_folder(tmp_path)
    c = client(folder, engines)
    listed = c.get("/api/images").json()["images"]
    assert [(i["image"], i["state"], i["width"], i["height"]) for i in listed] == [
        ("a.png", "new", 240, 160), ("sub/b.png", "new", 128, 96)]
    info = c.get("/api/image", params={"image": "a.png"}).json()
    assert info["levels"] == 1 and info["revision"] == 0
    tile = png(c.get("/api/tile", params={"image": "a.png", "level": 0, "x": 0, "y": 0}))
    assert tile.shape == (160, 240, 3)
    assert (tile == np.asarray(Image.open(folder / "a.png"))).all()
    r = c.put("/api/edits", params={"image": "a.png"}, json={"strokes": [STROKE]})
    assert r.status_code == 200 and r.json()["revision"] == 1
    assert r.json()["mask_pixels"] > info["mask_pixels"]
    overlay = png(c.get("/api/overlay", params={"image": "a.png", "level": 0, "x": 0, "y": 0}))
    assert overlay.shape == (160, 240, 4) and overlay[40, 90, 3] > 0 and overlay[5, 5, 3] == 0
    # Undo is the shorter list; the mask is the detector's again.
    r = c.put("/api/edits", params={"image": "a.png"}, json={"strokes": []})
    assert r.json()["mask_pixels"] == info["mask_pixels"]
    erase = {"op": "erase", "radius": 500, "points": [[120, 80]]}
    assert c.put("/api/edits", params={"image": "a.png"},
                 json={"strokes": [STROKE, erase]}).json()["mask_pixels"] == 0
    for bad in ({"strokes": [{"op": "paint", "radius": 4}]}, {"strokes": "x"},
                {"strokes": [{"op": "fill", "radius": 4, "points": [[1, 1]]}]}):
        assert c.put("/api/edits", params={"image": "a.png"}, json=bad).status_code == 400
    assert c.get("/api/tile", params={"image": "a.png", "level": 0, "x": 9, "y": 0}).status_code == 404


def test_previews_equal_the_accepted_output_and_accept_equals_upres_clean(
        tmp_path: Path, engines: Engines) -> None:
    folder = scan_folder(tmp_path)
    c = client(folder, engines)
    c.put("/api/edits", params={"image": "a.png"}, json={"strokes": [STROKE]})
    for settings in ({**FAST, "texture": 0.5, "fill": "fsr", "grain": 0.5}, FAST):
        rect = [70, 20, 170, 90]  # crosses the stroke and the image's middle, away from its border
        up = png(c.post("/api/preview", params={"image": "a.png"},
                        json={"rect": rect, "stage": "upscale", "settings": settings}))
        cleaned = png(c.post("/api/preview", params={"image": "a.png"},
                             json={"rect": rect, "stage": "clean", "settings": settings}))
        done = c.post("/api/accept", params={"image": "a.png"}, json={"settings": settings})
        assert done.status_code == 200, done.text
        out = folder / "cleaned"
        final = np.asarray(Image.open(out / "a.png"))
        s = settings["scale"]
        assert up.shape == (70 * s, 100 * s, 3)
        # The preview is the output there, sample for sample: same regions, exact halo.
        assert (up == final[20 * s : 90 * s, 70 * s : 170 * s]).all()
        no_upscale = {**settings, "upscale": False}
        c.post("/api/accept", params={"image": "a.png"}, json={"settings": no_upscale})
        assert (cleaned == np.asarray(Image.open(out / "a.png"))[20:90, 70:170]).all()
        # The command Accept reports writes the same bytes: output, final mask, sidecar.
        command = c.post("/api/accept", params={"image": "a.png"}, json={"settings": settings}).json()
        assert command["status"] == "done" and command["command"][0] == "upres"
        args = command["command"][1:]
        twin = tmp_path / "twin"
        args[args.index("-o") + 1] = str(twin)
        result = CliRunner().invoke(cli_app, [*args, "--quiet"])
        assert result.exit_code == 0, result.output
        for name in ("a.png", "a.mask.png"):
            assert (out / name).read_bytes() == (twin / name).read_bytes(), name
        ours, theirs = (json.loads((d / "a.png.json").read_text()) for d in (out, twin))
        for record in (ours, theirs):
            # Measured, not chosen: the seconds, and the process's RSS the memory plan starts from
            # (two runs of the command differ there too).
            record.pop("timings")
            for measured in ("baseline", "total"):
                record["plan"]["estimate"].pop(measured)
        assert ours == theirs


def test_progress_is_kept_and_resumed(tmp_path: Path, engines: Engines) -> None:
    folder = scan_folder(tmp_path)
    c = client(folder, engines)
    c.put("/api/edits", params={"image": "sub/b.png"}, json={"strokes": [STROKE], "hidden": ["overlay"]})
    assert c.post("/api/accept", params={"image": "a.png"}, json={"settings": FAST}).status_code == 200
    assert (folder / "cleaned" / "a.png").is_file() and (folder / "cleaned" / "a.mask.png").is_file()
    # A new server on the same folder (the studio closed and reopened) finds it all again.
    again = client(folder, engines)
    states = {i["image"]: i["state"] for i in again.get("/api/images").json()["images"]}
    assert states == {"a.png": "accepted", "sub/b.png": "edited"}
    info = again.get("/api/image", params={"image": "sub/b.png"}).json()
    assert info["edits"]["strokes"][0]["points"][0] == [40.0, 30.0] and info["edits"]["hidden"] == ["overlay"]
    assert again.get("/api/image", params={"image": "a.png"}).json()["settings"]["mode"] == "faithful"
    # The sub-folder keeps its layout in the output, as `upres clean FOLDER` would write it.
    assert again.post("/api/accept", params={"image": "sub/b.png"},
                      json={"settings": FAST}).status_code == 200
    assert (folder / "cleaned" / "sub" / "b.png").is_file()
    # An edit after accepting makes it "edited" again; the output stays until the next accept.
    again.put("/api/edits", params={"image": "a.png"}, json={"strokes": []})
    states = {i["image"]: i["state"] for i in again.get("/api/images").json()["images"]}
    assert states == {"a.png": "edited", "sub/b.png": "accepted"}
    # The output folder is not an input: its files are never listed.
    assert len(again.get("/api/images").json()["images"]) == 2


def test_serves_and_writes_only_inside_folder_and_output(tmp_path: Path, engines: Engines) -> None:
    folder = scan_folder(tmp_path)
    secret = tmp_path / "secret.png"
    Image.new("RGB", (8, 8)).save(secret)
    (folder / "link.png").symlink_to(secret)  # a link out of FOLDER is not FOLDER's to serve
    c = client(folder, engines)
    assert [i["image"] for i in c.get("/api/images").json()["images"]] == ["a.png", "sub/b.png"]
    for name in ("../secret.png", "link.png", "/etc/passwd", str(secret), "sub/../../secret.png",
                 "cleaned/.studio/images/a.png.json", ""):
        for path in ("/api/image", "/api/tile", "/api/overlay"):
            r = c.get(path, params={"image": name, "level": 0, "x": 0, "y": 0})
            assert r.status_code == 404, (path, name)
        r = c.put("/api/edits", params={"image": name}, json={"strokes": []})
        assert r.status_code == 404, name
        assert c.post("/api/accept", params={"image": name}, json={}).status_code == 404
    assert c.get("/static/../workspace.py").status_code == 404
    assert c.get("/static/app.js").status_code == 200
    # A symlink planted in the output folder cannot lead a write outside it.
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (folder / "cleaned").mkdir()
    (folder / "cleaned" / "sub").symlink_to(outside)
    r = c.post("/api/accept", params={"image": "sub/b.png"}, json={"settings": FAST})
    assert r.status_code == 404 and not any(outside.iterdir())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["elsewhere", "scans", "secret.png"]


def test_refuses_other_origins_and_hosts(tmp_path: Path, engines: Engines) -> None:
    folder = scan_folder(tmp_path)
    c = client(folder, engines)
    assert c.get("/").status_code == 200 and "<canvas" in c.get("/").text
    assert "default-src 'self'" in c.get("/").headers["content-security-policy"]
    ok = {"origin": BASE}
    assert c.put("/api/edits", params={"image": "a.png"}, json={"strokes": []}, headers=ok).status_code == 200
    refused = [({"origin": "http://evil.example"}, "GET"), ({"origin": "http://127.0.0.1:9999"}, "GET"),
               ({"origin": "null"}, "PUT"), ({"host": "evil.example"}, "GET"),
               ({"host": "evil.example:8765"}, "PUT"), ({"sec-fetch-site": "cross-site"}, "GET"),
               ({"content-type": "text/plain"}, "PUT"),
               ({"content-type": "application/x-www-form-urlencoded"}, "PUT")]
    for headers, method in refused:
        if method == "GET":
            r = c.get("/api/images", headers=headers)
        else:
            r = c.request("PUT", "/api/edits", params={"image": "a.png"}, content=b'{"strokes": []}',
                          headers={"content-type": "application/json", **headers})
        assert r.status_code == 403, headers
    assert not (folder / "cleaned" / ".studio" / "images" / "a.png.json").read_text().count("evil")


def test_loopback_names_and_warning_for_other_hosts() -> None:
    from upres.studio.security import is_loopback

    assert allowed_hosts("127.0.0.1", 80) == {"127.0.0.1:80", "localhost:80", "[::1]:80"}
    assert allowed_hosts("192.168.1.5", 80) == {"192.168.1.5:80"}
    assert is_loopback("::1") and is_loopback("localhost") and not is_loopback("0.0.0.0")
    result = CliRunner().invoke(cli_app, ["studio", "/nonexistent-folder"])
    assert result.exit_code == 2


def test_run_start_up_does_not_load_the_studio() -> None:
    import subprocess
    import sys

    code = ("import sys; from upres.cli.application import build_app; build_app('run')\n"
            "loaded = [m for m in sys.modules if m.startswith(('upres.studio', 'starlette', 'uvicorn'))]\n"
            "assert not loaded, loaded\n")
    subprocess.run([sys.executable, "-c", code], check=True)
