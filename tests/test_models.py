import pytest
import torch
import torch.nn.functional as F

from upres.models.coarse import BicubicUpsample
from upres.models.registry import SPECS, spec


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_conv_bicubic_equals_interpolate(scale: int) -> None:
    x = torch.rand(2, 3, 11, 16)
    ref = F.interpolate(x, scale_factor=scale, mode="bicubic", align_corners=False)
    got = F.pixel_shuffle(BicubicUpsample(scale).phases(x), scale)
    assert (ref - got).abs().max() < 1e-5


@pytest.mark.parametrize("name", list(SPECS))
@pytest.mark.parametrize(("h", "w"), [(1, 1), (7, 13), (16, 9)])
def test_shapes(name: str, h: int, w: int) -> None:
    model = spec(name).build().eval()
    channels = 4 if spec(name).kind in ("refine", "fill") else 3
    with torch.no_grad():
        out = model(torch.rand(1, channels, h, w))
    s = max(1, spec(name).scale)
    out_channels = 1 if spec(name).kind == "detect" else 3  # the detector: one logit per pixel
    assert out.shape == (1, out_channels, h * s, w * s)


def test_untrained_coarse_is_bicubic() -> None:
    model = spec("coarse-x4").build().eval()
    x = torch.rand(1, 3, 10, 12)
    with torch.no_grad():
        out = model(x)
    ref = F.interpolate(x, scale_factor=4, mode="bicubic", align_corners=False)
    assert (out - ref).abs().max() < 1e-5


def test_coarse_x4_is_small() -> None:
    params = sum(p.numel() for p in spec("coarse-x4").build().parameters())
    assert params < 250_000
