"""A strided foreign model (pixel-unshuffle inside): its alignment is probed, and tiled == whole."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

torch = pytest.importorskip("torch")

from upres.cli import app  # noqa: E402
from upres.runtime.catalog import resolve  # noqa: E402


class _Strided(torch.nn.Module):
    """x2 SR through half resolution: unshuffle 2, two convs, shuffle 4."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.down = torch.nn.PixelUnshuffle(2)
        self.body = torch.nn.Sequential(torch.nn.Conv2d(12, 24, 3, padding=1), torch.nn.ReLU(),
                                        torch.nn.Conv2d(24, 48, 3, padding=1))
        self.up = torch.nn.PixelShuffle(4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up(self.body(self.down(x))) * 0.5 + 0.25


@pytest.fixture
def strided_model(tmp_path: Path) -> Path:
    path = tmp_path / "strided.onnx"
    torch.onnx.export(_Strided().eval(), (torch.rand(1, 3, 32, 32),), str(path),
                      input_names=["input"], output_names=["output"], dynamo=False,
                      dynamic_axes={"input": {2: "h", 3: "w"}, "output": {2: "h2", 3: "w2"}})
    return path


def test_probe_measures_the_stride_and_tiles_equal_the_whole(
        tmp_path: Path, strided_model: Path, photo: np.ndarray, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UPRES_CACHE_DIR", str(tmp_path / "cache"))
    ref = resolve(strided_model)
    assert ref.probed and ref.info.scale == 2 and ref.info.alignment == 2
    src = tmp_path / "in.png"
    Image.fromarray(photo[:90, :110]).save(src)
    outs = {}
    for tile in ("0", "24", "32"):
        result = CliRunner().invoke(app, ["run", str(src), "-o", str(tmp_path / tile), "--model",
                                          str(strided_model), "--scale", "2", "--tile", tile,
                                          "--threads", "1"])
        assert result.exit_code == 0, result.output
        outs[tile] = (tmp_path / tile / "in.png").read_bytes()
        plan = json.loads((tmp_path / tile / "in.png.json").read_text())["plan"]
        assert (plan["grid"]["tiles"] > 1) == (tile != "0")
    assert outs["24"] == outs["0"] and outs["32"] == outs["0"]
