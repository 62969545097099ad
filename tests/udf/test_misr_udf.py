"""The multi-image UDF (udf/misr_udf.py, udf.contract.misr_udf_apply): t reduced to one date, per-date masks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sr_core.inference import cube as sc
from sr_core.inference.misr import MISRWarning
from udf import contract as uc
from udf.testing import make_package, nearest_resample, random_s2_cube

UDF_FILE = Path(__file__).resolve().parents[2] / "udf" / "misr_udf.py"
DN = 10000.0
pytestmark = pytest.mark.filterwarnings("ignore::sr_core.inference.cube.TilingWarning")  # tiny chunks on purpose


@pytest.fixture(scope="session")
def hrn(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("misr_models") / "tiny-highresnet-x2"
    make_package(folder, arch="highresnet", seed=5, frames=4)
    return folder


@pytest.fixture(scope="session")
def rams(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("misr_models") / "tiny-rams-x2"
    make_package(folder, arch="rams", seed=6, frames=2, arch_kwargs={"num_blocks": 0}, onnx=False)
    return folder


def cube(seed: int, dates: int = 3, h: int = 10, w: int = 10):
    da = random_s2_cube(h, w, dates=dates, seed=seed)
    da.loc[dict(bands="SCL")] = 4.0  # vegetation: valid everywhere unless a test says otherwise
    return da


def test_misr_reduces_t_to_the_anchor_date_and_engines_agree(hrn):
    da = cube(1)
    a = uc.misr_udf_apply(da, {"model": str(hrn), "mode": "upscale"})
    b = uc.misr_udf_apply(da, {"model": str(hrn), "mode": "upscale", "engine": "torch"})
    assert a.dims == ("t", "bands", "y", "x") and a.shape == (1, 10, 20, 20)
    assert a.t.values[0] == da.t.values[-1]  # all dates equally clear: the anchor is the latest
    assert list(a.bands.values) == list(da.bands.values[:10])  # SCL dropped
    assert np.isfinite(a.values).all()
    assert np.abs(a.values - b.values).max() <= 1e-4 * DN  # ONNX with fixed T=4 (one padded revisit) == torch
    # the revisits really are fused: the result depends on every date
    c = uc.misr_udf_apply(da.isel(t=[0, 1]), {"model": str(hrn), "mode": "upscale", "engine": "torch"})
    assert np.abs(c.values - b.values).max() > 1.0


def test_resampled_mode_keeps_the_grid(hrn):
    da = cube(2)
    up = uc.misr_udf_apply(da, {"model": str(hrn), "mode": "upscale", "engine": "torch"})
    res = uc.misr_udf_apply(nearest_resample(da, 2), {"model": str(hrn), "engine": "torch"})
    assert res.shape == (1, 10, 20, 20)
    np.testing.assert_array_equal(res.values, up.values)


def test_scl_clouds_are_filled_with_the_median_of_the_valid_dates(hrn):
    da = cube(3)
    ctx = {"model": str(hrn), "mode": "upscale", "engine": "torch"}
    cloudy = da.copy()
    cloudy[1, :10, 2:6, 3:7] = 9999.0  # garbage under a cloud on date 1
    cloudy[1, 10, 2:6, 3:7] = 9.0  # SCL: cloud high probability
    filled = da.copy()
    med = np.median(da.values[[0, 2], :10, 2:6, 3:7], axis=0)
    filled[1, :10, 2:6, 3:7] = med
    a = uc.misr_udf_apply(cloudy, ctx)
    b = uc.misr_udf_apply(filled, ctx)
    np.testing.assert_allclose(a.values, b.values, atol=1e-4 * DN)
    # the same cloud left unflagged changes the result
    unflagged = cloudy.copy()
    unflagged[1, 10] = 4.0
    assert np.abs(uc.misr_udf_apply(unflagged, ctx).values - b.values).max() > 10.0


def test_mostly_invalid_dates_are_left_out(hrn):
    da = cube(4)
    ctx = {"model": str(hrn), "mode": "upscale", "engine": "torch", "min_valid": 0.5}
    bad = da.copy()
    bad[2, :10, :8, :] = np.nan  # date 2 is 80 % nodata
    a = uc.misr_udf_apply(bad, ctx)
    b = uc.misr_udf_apply(da.isel(t=[0, 1]), ctx)
    np.testing.assert_allclose(a.values, b.values, atol=1e-4 * DN)
    assert a.t.values[0] == da.t.values[1]  # the anchor: the (latest) clearest of the used dates


def test_pixels_invalid_on_every_date_stay_nodata_and_all_invalid_skips_the_model(hrn):
    da = cube(5)
    ctx = {"model": str(hrn), "mode": "upscale", "engine": "torch"}
    da[:, 10, 4:6, 4:6] = 3.0  # cloud shadow on every date
    out = uc.misr_udf_apply(da, ctx).values[0]
    hole = np.zeros((20, 20), bool)
    hole[8:12, 8:12] = True
    assert np.isnan(out[:, hole]).all() and np.isfinite(out[:, ~hole]).all()
    da[:, 10] = 8.0
    assert np.isnan(uc.misr_udf_apply(da, ctx).values).all()


def test_rams_keeps_the_dates_with_most_valid_pixels(rams):
    """RAMS built for 2 revisits gets 3: the one with fewest valid pixels (date 0) is left out."""
    da = cube(6)
    ctx = {"model": str(rams), "mode": "upscale", "engine": "torch", "min_valid": 0.0}
    da[0, 10, :3, :] = 9.0
    a = uc.misr_udf_apply(da, ctx)
    b = uc.misr_udf_apply(da.isel(t=[1, 2]), ctx)
    np.testing.assert_allclose(a.values, b.values, atol=1e-4 * DN)


def test_misr_udf_file_through_openeo_and_bad_context(hrn):
    import openeo
    from openeo.udf.run_code import execute_local_udf

    da = cube(7)
    udf = openeo.UDF(UDF_FILE.read_text(), context={"model": str(hrn), "mode": "upscale"})
    res = execute_local_udf(udf, da).get_datacube_list()[0].get_array()
    direct = uc.misr_udf_apply(da, {"model": str(hrn), "mode": "upscale"})
    assert res.shape == direct.shape and np.abs(res.values - direct.values).max() <= 1e-4 * DN
    with pytest.raises(ValueError, match="scl_invalid.*0..11"):
        uc.misr_udf_apply(da, {"model": str(hrn), "scl_invalid": [42]})
    with pytest.raises(ValueError, match="min_valid.*\\[0, 1\\]"):
        uc.misr_udf_apply(da, {"model": str(hrn), "min_valid": 2})


def test_misr_apply_metadata_keeps_the_output_bands_and_divides_the_step(hrn):
    from openeo.metadata import Band, BandDimension, CubeMetadata, SpatialDimension

    ns: dict = {}
    exec(UDF_FILE.read_text(), ns)
    labels = ["B2", "B03", "B04", "B08", "B05", "B06", "B07", "B8A", "B11", "B12", "SCL"]
    md = CubeMetadata(dimensions=[
        BandDimension(name="bands", bands=[Band(b) for b in labels]),
        SpatialDimension(name="x", extent=[0, 100], crs=32631, step=10),
        SpatialDimension(name="y", extent=[0, 100], crs=32631, step=10),
    ])
    up = ns["apply_metadata"](md, {"model": str(hrn), "mode": "upscale"})
    assert up.band_names == labels[:10] and [d.step for d in up.spatial_dimensions] == [5.0, 5.0]
    same = ns["apply_metadata"](md, {"model": str(hrn)})
    assert same.band_names == labels[:10] and [d.step for d in same.spatial_dimensions] == [10, 10]


# ------------------------------------------------------------------------------------------- anchor, fallback


@pytest.fixture(scope="session")
def anchor_zero(tmp_path_factory) -> Path:
    """An anchor-referenced HighRes-net with all weights 0: its output is exactly bicubic(anchor)."""

    folder = tmp_path_factory.mktemp("misr_models") / "zero-anchor-x2"
    make_package(folder, arch="highresnet_anchor", weight_std=0.0, onnx=False)
    return folder


@pytest.fixture(scope="session")
def sisr_pkg(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("misr_models") / "tiny-edsr-x2"
    make_package(folder, arch="edsr", seed=8)
    return folder


def _bicubic_dn(da_date) -> np.ndarray:
    import torch

    from sr_core.archs._common import bicubic_upsample

    x = torch.from_numpy(np.asarray(da_date.values[:10], np.float64))[None] / DN
    return bicubic_upsample(x, 2).numpy()[0] * DN


def test_shipped_model_runs_by_default_and_fuses_the_revisits(tmp_path):
    from sr_core.models import list_models

    if "s2sr-misr-x2" not in list_models():
        pytest.skip("s2sr-misr-x2 not shipped in this checkout")
    da = cube(11, dates=3, h=24, w=24)
    out = uc.misr_udf_apply(da, {"mode": "upscale"})
    assert out.shape == (1, 10, 48, 48) and list(out.bands.values) == list(da.bands.values[:10])
    assert np.isfinite(out.values).all()
    # the 10 m bands use the revisits: fewer revisits give another output there
    k = list(da.t.values).index(out.t.values[0])
    fewer = uc.misr_udf_apply(da.isel(t=sorted({k, (k + 1) % 3})), {"mode": "upscale",
                                                                    "anchor": str(out.t.values[0])[:10]})
    assert fewer.t.values[0] == out.t.values[0]
    assert np.abs(out.values[:, :4] - fewer.values[:, :4]).max() > 0.05


def test_anchor_is_fed_first_and_labels_the_output(anchor_zero):
    da = cube(12, dates=4)
    ctx = {"model": str(anchor_zero), "mode": "upscale", "engine": "torch"}
    da[0, 10, :2, :] = 9.0  # date 0 partly cloudy
    da[3, 10, :1, :] = 9.0  # date 3 a little cloudy: the clearest are dates 1 and 2 -> the later one (2)
    out = uc.misr_udf_apply(da, ctx)
    assert out.t.values[0] == da.t.values[2]
    np.testing.assert_allclose(out.values[0, :4], _bicubic_dn(da.isel(t=2))[:4], rtol=0, atol=1e-3 * DN)
    chosen = uc.misr_udf_apply(da, {**ctx, "anchor": str(da.t.values[1])[:10]})
    assert chosen.t.values[0] == da.t.values[1]
    np.testing.assert_allclose(chosen.values[0, :4], _bicubic_dn(da.isel(t=1))[:4], rtol=0, atol=1e-3 * DN)
    assert uc.misr_udf_apply(da, {**ctx, "anchor": "latest"}).t.values[0] == da.t.values[3]
    with pytest.raises(ValueError, match="matches no date"):
        uc.misr_udf_apply(da, {**ctx, "anchor": "1999-01-01"})


def test_unsorted_dates_are_sorted(hrn):
    da = cube(13, dates=3)
    ctx = {"model": str(hrn), "mode": "upscale", "engine": "torch", "anchor": "first"}
    a = uc.misr_udf_apply(da, ctx)
    b = uc.misr_udf_apply(da.isel(t=[2, 0, 1]), ctx)
    np.testing.assert_array_equal(a.values, b.values)
    assert b.t.values[0] == da.t.values[0]


def test_single_date_falls_back_to_sisr_with_a_warning(hrn, sisr_pkg):
    from sr_core.models import load_predictor

    da = cube(14, dates=3)
    da[1:, 10] = 9.0  # only date 0 is usable
    ctx = {"model": str(hrn), "mode": "upscale", "engine": "torch", "sisr_model": str(sisr_pkg)}
    with pytest.warns(MISRWarning, match="single usable date"):
        out = uc.misr_udf_apply(da, ctx)
    ref = sc.superresolve_dataarray(da.isel(t=[0]), predictor=load_predictor(sisr_pkg, engine="torch"),
                                    mode="upscale")
    assert out.t.values[0] == da.t.values[0] and out.shape == (1, 10, 20, 20)
    np.testing.assert_allclose(out.values, ref.values[:, :10], rtol=0, atol=1e-6 * DN)
    with pytest.warns(MISRWarning, match="MISR network on one frame"):
        one = uc.misr_udf_apply(da, {**ctx, "sisr_model": None})
    assert one.shape == (1, 10, 20, 20) and np.isfinite(one.values).all()


def test_misr_process_graph(hrn):
    from udf.process_graph import build_process_graph

    aoi = dict(west=5.0, south=51.0, east=5.05, north=51.04, start="2024-06-01", end="2024-07-01")
    cube_ = build_process_graph(**aoi, model=hrn, misr=True, anchor="latest")
    n = {v["process_id"]: v for v in cube_.flat_graph().values()}
    assert not ({"reduce_dimension", "aggregate_temporal", "aggregate_temporal_period"} & set(n))
    an = n["apply_neighborhood"]["arguments"]
    assert an["size"][-1] == {"dimension": "t", "value": None}
    run = an["process"]["process_graph"]["runudf1"]["arguments"]
    assert run["udf"] == UDF_FILE.read_text() and run["context"]["anchor"] == "latest"
    opts, extra = uc.parse_misr_context(run["context"])  # valid for the UDF itself
    assert extra["anchor"] == "latest" and opts.model == "tiny-highresnet-x2"
    with pytest.raises(ValueError, match="misr=True"):
        build_process_graph(**aoi, model=hrn, anchor="latest")


@pytest.fixture(scope="session")
def misr_sisr_pkgs(tmp_path_factory) -> tuple[Path, Path]:
    """A random 10-band ``misr_sisr`` package and the single-image package made of its ``sisr`` part."""
    import torch

    from sr_core.models import ModelCard, load_torch_model
    from sr_core.models.export import save_model_package
    from sr_core.models.network import SRModel

    root = tmp_path_factory.mktemp("misr_models")
    sk = {"in_channels": 10, "scale": 2, "num_features": 8, "num_blocks": 1}
    make_package(root / "tiny-misr-sisr", arch="misr_sisr", seed=9, frames=4,
                 arch_kwargs={"num_features": 6, "num_blocks": 1, "sisr_kwargs": sk})
    model, card = load_torch_model(root / "tiny-misr-sisr")
    single = SRModel(model.net.sisr, card.mean, card.std, list(range(10))).eval()
    scard = ModelCard(name="tiny-misr-sisr-single", version="0.0-random", arch="s2fast", arch_kwargs=sk,
                      bands=card.bands, out_bands=card.out_bands, scale=2, input_resolution_m=10.0,
                      receptive_field=int(model.net.sisr.receptive_field), mean=card.mean, std=card.std,
                      description="The single-image part of tiny-misr-sisr.")
    with torch.no_grad():
        save_model_package(single, scard, root / "tiny-misr-sisr-single", export_onnx_file=False)
    return root / "tiny-misr-sisr", root / "tiny-misr-sisr-single"


@pytest.mark.parametrize("mode", ["upscale", "resampled"])
def test_ten_band_misr_sisr_gives_the_single_image_20m_bands_of_the_anchor(misr_sisr_pkgs, mode):
    misr_pkg, single_pkg = misr_sisr_pkgs
    da = cube(21, dates=3, h=24, w=24)
    if mode == "resampled":
        da = nearest_resample(da, 2)
    ctx = {"model": str(misr_pkg), "mode": mode, "engine": "torch"}
    out = uc.misr_udf_apply(da, ctx)
    assert out.shape[:2] == (1, 10) and list(out.bands.values) == list(da.bands.values[:10])
    anchor = da.sel(t=out.t.values).drop_sel(bands="SCL")
    from sr_core.models import load_predictor

    one = sc.superresolve_dataarray(anchor, predictor=load_predictor(str(single_pkg), engine="torch"),
                                    mode=mode)
    np.testing.assert_allclose(out.values[:, 4:], one.values[:, 4:], rtol=0, atol=0.05)  # DN
    assert np.abs(out.values[:, :4] - one.values[:, :4]).max() > 1.0  # the revisits change the 10 m bands
    onnx = uc.misr_udf_apply(da, {**ctx, "engine": "onnx"})
    assert np.abs(onnx.values - out.values).max() <= 1e-4 * DN


@pytest.mark.parametrize("ky, kx", [(1, 2), (3, 3)])
def test_resampled_mode_off_the_native_grids_with_nodata(hrn, ky, kx):
    """A cube starting off the 10 m / 20 m grids, with a NaN border whose edge is off the blocks and single NaN
    pixels on some dates: accepted; equal to the upscale run on the 10 m pixels it touches where no input
    pixel is missing; nodata exactly where a pixel is missing on every date."""
    from udf.local import resample_spatial_local

    da = cube(3, h=12, w=12)
    clean = resample_spatial_local(da, 5, offset=(ky, kx))
    up = uc.misr_udf_apply(da.isel(y=slice(ky // 2, None), x=slice(kx // 2, None)),
                           {"model": str(hrn), "mode": "upscale", "engine": "torch"})
    h, w = clean.sizes["y"], clean.sizes["x"]
    want = up.values[..., ky % 2 : ky % 2 + h, kx % 2 : kx % 2 + w]
    np.testing.assert_array_equal(uc.misr_udf_apply(clean, {"model": str(hrn), "engine": "torch"}).values, want)
    bad = clean.copy()
    bad.values[:, :, :, :3] = np.nan  # a border 3 px wide on every date
    bad.values[0, 1, 7, 9] = np.nan  # one date only: the other dates have data there
    bad.values[:, 4, 11, 6] = np.nan  # every date
    out = uc.misr_udf_apply(bad, {"model": str(hrn), "engine": "torch"})
    holes = np.zeros((h, w), bool)
    holes[:, :3] = True
    holes[11, 6] = True
    assert np.isnan(out.values[0][:, holes]).all() and np.isfinite(out.values[0][:, ~holes]).all()
