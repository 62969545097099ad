"""sr_core.evaluation.peer: a peer's ONNX model behind our model contract (a tiny ONNX model stands in for the
peer; the real EVOLAND model is only read from ../shared, and its test skips without it)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from sr_core.archs._common import bicubic_upsample
from sr_core.bands import MODEL_BANDS_10
from sr_core.degradation import model_input_10band
from sr_core.evaluation.peer import OnnxPeer, PeerConvention, load_peer, peer_convention, to_peer_input
from sr_core.models.export import export_onnx

REPO = Path(__file__).resolve().parents[3]
REAL_PEER = REPO.parent / "shared" / "peers" / "evoland_carn_light" / "carn_light.onnx"
#: The tiny peer's band order: not ours, so the adapter must reorder.
PEER_ORDER = ("B8A", "B02", "B03", "B04", "B08", "B05", "B06", "B07", "B11", "B12")


class _Nearest(nn.Module):
    """DN in, DN out: nearest x2, band k scaled by (1 + k / 100) so that a band mix-up shows."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = 1.0 + torch.arange(10, dtype=x.dtype).reshape(1, 10, 1, 1) / 100.0
        return F.interpolate(x * w, scale_factor=2, mode="nearest")


def tiny_peer(folder: Path) -> OnnxPeer:
    """Export the tiny peer to ``folder/tiny-peer.onnx`` with a ``.derived.yaml`` naming its band order."""
    path = Path(folder) / "tiny-peer.onnx"
    export_onnx(_Nearest().eval(), path, torch.zeros(1, 10, 8, 8), input_names=("input",), output_names=("output",))
    path.with_suffix(".derived.yaml").write_text(
        "bands: [" + ", ".join(b.replace("B0", "B") for b in PEER_ORDER) + "]\nfactor: 2.0\nmargin: 8\n"
    )
    return load_peer(path, threads=1, tile=16)


def _input(seed: int = 0, h: int = 20, w: int = 24) -> tuple[np.ndarray, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    b10 = torch.rand(1, 4, h, w, generator=g, dtype=torch.float64) * 0.3
    b20 = torch.rand(1, 6, h // 2, w // 2, generator=g, dtype=torch.float64) * 0.3
    return model_input_10band(b10, b20).numpy().astype(np.float32), b20


def test_convention_from_the_description(tmp_path):
    peer = tiny_peer(tmp_path)
    c = peer.convention
    assert c.bands == PEER_ORDER and c.factor == 2 and c.margin == 8 and c.dn_scale == 10000.0
    assert c.upsample_20m == "bicubic" and c.source.endswith("tiny-peer.derived.yaml")
    assert (peer.scale, peer.margin, peer.bands, peer.out_bands) == (2, 4, MODEL_BANDS_10, MODEL_BANDS_10)
    assert peer_convention(tmp_path / "none.onnx") == PeerConvention()  # no description: carn_light's
    bad = tmp_path / "bad.onnx"
    bad.with_suffix(".yaml").write_text("bands: [B02, B03]\n")
    with pytest.raises(ValueError, match="bad.yaml: peer bands"):
        peer_convention(bad)


def test_input_mapping_closed_form():
    x, b20 = _input()
    conv = PeerConvention(bands=PEER_ORDER)
    px = to_peer_input(x, conv)
    assert px.shape == (1, 10, 20, 24) and px.dtype == np.float32
    up = bicubic_upsample(b20.float().double(), 2).numpy() * 10000  # 20 m bands: bicubic of the native values
    ours = {b: k for k, b in enumerate(MODEL_BANDS_10)}
    for j, band in enumerate(PEER_ORDER):
        k = ours[band]
        want = x[0, k] * 10000 if k < 4 else up[0, k - 4]
        np.testing.assert_allclose(px[0, j], want, rtol=1e-6, atol=1e-3)
    with pytest.raises(ValueError, match="must be even"):
        to_peer_input(x[..., :19, :], conv)


def test_peer_output_back_in_our_contract(tmp_path):
    peer = tiny_peer(tmp_path)
    x, _ = _input(1, 36, 44)  # larger than its tile: the peer's own tiling is seamless
    y = peer(x)
    assert y.shape == (1, 10, 72, 88) and y.dtype == np.float32
    px = to_peer_input(x, peer.convention)
    for j, band in enumerate(PEER_ORDER):
        k = MODEL_BANDS_10.index(band)
        want = np.repeat(np.repeat(px[0, j], 2, 0), 2, 1) * (1 + j / 100) / 10000
        np.testing.assert_allclose(y[0, k], want, rtol=1e-5, atol=1e-7)
    # the 10 m bands of a nearest peer: our input's 10 m bands in 2 x 2 blocks (scaled by its band factor)
    np.testing.assert_allclose(y[0, 0, ::2, ::2], x[0, 0] * (1 + PEER_ORDER.index("B02") / 100), rtol=1e-5)


def test_missing_or_wrong_peer_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_peer(tmp_path / "absent.onnx")
    (tmp_path / "model.pt").write_bytes(b"x")
    with pytest.raises(ValueError, match="an ONNX file"):
        load_peer(tmp_path / "model.pt")
    (tmp_path / "broken.onnx").write_bytes(b"not a graph")
    with pytest.raises(ValueError, match="cannot load it"):
        load_peer(tmp_path / "broken.onnx")


@pytest.mark.skipif(not REAL_PEER.is_file(), reason=f"the peer model is not at {REAL_PEER} (shared data)")
def test_real_peer_runs_on_the_sample():
    from sr_core.datasets.patches import SceneTensors, wald_scene_input
    from sr_core.io import load_sample

    s = load_sample()
    scene = SceneTensors(s.id, s.product_level, torch.from_numpy(s.bands10[:, :64, :64].copy()),
                         torch.from_numpy(s.bands20[:, :32, :32].copy()))
    batch = wald_scene_input(scene)
    peer = load_peer(REAL_PEER, threads=1)
    y = peer(batch.lr.numpy())
    assert y.shape == (1, 10, 64, 64) and bool(np.isfinite(y).all())
    err = lambda a: float(((a[0, :4, 8:-8, 8:-8] - batch.hr10.numpy()[0, :, 8:-8, 8:-8]) ** 2).mean())  # noqa: E731
    bic = F.interpolate(batch.lr10.double(), scale_factor=2, mode="bicubic", align_corners=False).numpy()
    assert err(y) < err(bic)  # reflectance in, reflectance out: it sharpens the 10 m bands
