"""sr_core.io.stac: Sentinel-2 STAC items read through odc-stac, offline: the real item of a product
(tests/data/sentinel2/stac, Earth Search conventions) and its Planetary Computer variant, with their band assets
pointing to local COGs of the pixels of tests/sr_core/io/s2_products.py; ``s2sr superres item.json`` gives what the
SAFE product gives; items without the needed assets or convention are refused naming them."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import numpy as np
import pytest
import rasterio

from s2sr_cli.main import main as cli
from sr_core.bands import MODEL_BANDS_10
from sr_core.inference.scene import superresolve_file
from sr_core.io import open_source
from sr_core.io.stac import StacItemSource, find_asset, is_stac_item, load_item, read_stac_item
from tests.sr_core.io.s2_products import ES_KEYS, L2A_N0509, STAC_ITEM, build_product, write_item
from udf.testing import make_package

ALL = (0, 64, 0, 64)


@pytest.fixture(scope="module")
def product(tmp_path_factory):
    return build_product(tmp_path_factory.mktemp("stac_product"), L2A_N0509, seed=7)


@pytest.fixture(scope="module")
def items(product, tmp_path_factory):
    root = tmp_path_factory.mktemp("stac_items")
    return {style: write_item(product, root / style, style=style) for style in ("earth-search", "planetary")}


@pytest.fixture(scope="module")
def pkg(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("stac_models") / "tiny-edsr-x2"
    make_package(folder, arch="edsr", seed=5)
    return folder


def edited(item: Path, dest: Path, edit) -> Path:
    d = json.loads(item.read_text())
    edit(d)
    dest.mkdir(parents=True, exist_ok=True)
    for f in item.parent.glob("*.tif"):
        (dest / f.name).write_bytes(f.read_bytes())
    out = dest / "item.json"
    out.write_text(json.dumps(d))
    return out


def test_asset_keys_of_the_public_catalogues():
    real = json.loads(STAC_ITEM.read_text())["assets"]  # Earth Search keys, blue and blue_20m both name B02
    assert {b: find_asset(real, b) for b in ES_KEYS} == ES_KEYS
    planetary = {b: {"href": f"{b}.tif"} for b in (*MODEL_BANDS_10, "SCL", "visual")}
    assert {b: find_asset(planetary, b) for b in (*MODEL_BANDS_10, "SCL")} == {b: b for b in (*MODEL_BANDS_10, "SCL")}
    cdse = {f"{b}_{r}m": {"href": "x"} for b in ("B02", "B05") for r in (10, 20, 60)}
    assert (find_asset(cdse, "B02"), find_asset(cdse, "B05")) == ("B02_10m", "B05_20m")
    named = {"b_lo": {"eo:bands": [{"name": "B2"}], "gsd": 20}, "b_hi": {"eo:bands": [{"name": "B02"}], "gsd": 10},
             "tci": {"eo:bands": [{"name": "B04"}, {"name": "B03"}, {"name": "B02"}]}}
    assert (find_asset(named, "B02"), find_asset(named, "B03")) == ("b_hi", None)
    assert is_stac_item(STAC_ITEM) and is_stac_item("https://example.org/item") and not is_stac_item("x.tif")


@pytest.mark.parametrize("style", ["earth-search", "planetary"])
def test_reads_the_pixels_of_the_item(product, items, style):
    with StacItemSource(items[style]) as src:
        assert (src.height, src.width, src.crs) == (64, 64, "EPSG:32701")
        assert src.transform == tuple(product.transform)[:6]
        assert (src.dn_scale, src.add_offset, src.bands) == (10000.0, -1000.0, MODEL_BANDS_10)
        assert src.tags == {"SCENE_ID": "S2A_T01KAB_20230821T221944_L2A", "PRODUCT_LEVEL": "L2A",
                            "PROCESSING_BASELINE": "05.09"}
        want = product.dn_10m()
        np.testing.assert_array_equal(src.read(MODEL_BANDS_10, ALL), want)
        np.testing.assert_array_equal(src.read(["B12", "B03"], (5, 23, 1, 50)), want[[9, 1], 5:23, 1:50])
        assert src.has_scl
        np.testing.assert_array_equal(src.read_scl((3, 40, 7, 9)), product.scl_10m()[3:40, 7:9])


def test_item_equals_the_safe_product(product, items):
    from sr_core.io.safe import SafeSource

    with SafeSource(product.path) as a, StacItemSource(items["earth-search"]) as b:
        np.testing.assert_array_equal(a.read(a.bands, ALL), b.read(b.bands, ALL))
        assert (a.transform, a.crs, a.dn_scale, a.add_offset) == (b.transform, b.crs, b.dn_scale, b.add_offset)


def test_convention_from_the_baseline(items, tmp_path):
    def older(d):
        d["properties"]["s2:processing_baseline"] = "02.14"

    with StacItemSource(edited(items["planetary"], tmp_path / "a", older)) as src:
        assert (src.dn_scale, src.add_offset) == (10000.0, 0.0)

    def unknown(d):
        d["properties"]["s2:processing_baseline"] = "latest"

    with pytest.raises(ValueError, match="unknown processing baseline s2:processing_baseline = 'latest'"):
        StacItemSource(edited(items["planetary"], tmp_path / "b", unknown))

    def none(d):
        del d["properties"]["s2:processing_baseline"]

    no_convention = edited(items["planetary"], tmp_path / "c", none)
    with pytest.raises(ValueError, match="no raster:bands scale/offset on its band assets and no s2:processing"):
        StacItemSource(no_convention)
    with StacItemSource(no_convention, dn_scale=10000, add_offset=-1000) as src:
        assert (src.dn_scale, src.add_offset) == (10000.0, -1000.0)

    def mixed(d):
        del d["assets"]["rededge2"]["raster:bands"][0]["scale"]

    with pytest.raises(ValueError, match=re.escape("assets B06 ('rededge2') have no raster:bands scale")):
        StacItemSource(edited(items["earth-search"], tmp_path / "d", mixed))

    with pytest.raises(ValueError, match="contradicts add_offset=0"):
        StacItemSource(items["earth-search"], add_offset=0)


def test_item_without_the_needed_assets(product, tmp_path):
    item = write_item(product, tmp_path, style="earth-search", drop=("B8A",))
    message = "no asset for band(s) B8A (keys B8A, B8A_20m, nir08 or eo:bands name B8A)"
    with pytest.raises(ValueError, match=re.escape(message)):
        StacItemSource(item)
    with StacItemSource(item, bands=["B02", "B03", "B04", "B08"]) as src:  # a model of the 10 m bands only
        assert src.bands == ("B02", "B03", "B04", "B08")
    no_scl = write_item(product, tmp_path / "no_scl", style="planetary", drop=("SCL",))
    with StacItemSource(no_scl) as src:
        assert not src.has_scl
        with pytest.raises(ValueError, match="no scene classification asset"):
            src.read_scl(ALL)


def test_missing_or_corrupt_asset_file(items, tmp_path):
    item = edited(items["earth-search"], tmp_path / "corrupt", lambda d: None)
    (item.parent / "B05.tif").write_bytes(b"garbage" * 10)
    with StacItemSource(item) as src:
        with pytest.raises(ValueError, match=re.escape("cannot read asset(s) 'rededge1' (") + ".*B05.tif"):
            src.read(["B05"], ALL)
    (item.parent / "B02.tif").unlink()
    with StacItemSource(item) as src:  # the grid comes from the proj: fields; the file is read per window
        with pytest.raises(ValueError, match=re.escape("cannot read asset(s) 'blue' (") + ".*B02.tif"):
            src.read(["B02"], ALL)

    def no_proj(d):
        for k in ("proj:shape", "proj:transform", "proj:bbox"):
            d["assets"]["blue"].pop(k)

    with StacItemSource(edited(items["earth-search"], tmp_path / "header", no_proj)) as src:  # grid from the file
        blue = json.loads(items["earth-search"].read_text())["assets"]["blue"]
        assert src.transform == tuple(blue["proj:transform"])
    gone = _without(edited(items["earth-search"], tmp_path / "gone", no_proj), "B02.tif")
    with pytest.raises(ValueError, match=re.escape("cannot open asset 'blue'")):
        StacItemSource(gone)


def _without(item: Path, name: str) -> Path:
    (item.parent / name).unlink()
    return item


def test_feature_collections_and_non_items(items, tmp_path):
    d = json.loads(items["earth-search"].read_text())
    one = items["earth-search"].parent / "one.json"
    one.write_text(json.dumps({"type": "FeatureCollection", "features": [d]}))
    with StacItemSource(one) as src:
        assert src.tags["SCENE_ID"] == d["id"]
    two = items["earth-search"].parent / "two.json"
    two.write_text(json.dumps({"type": "FeatureCollection", "features": [d, copy.deepcopy(d)]}))
    with pytest.raises(ValueError, match="a FeatureCollection of 2 items; give one item"):
        load_item(two)
    bad = tmp_path / "bad.json"
    bad.write_text('{"type": "Collection", "id": "x"}')
    with pytest.raises(ValueError, match="not a STAC item"):
        load_item(bad)
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_item(bad)
    with pytest.raises(FileNotFoundError):
        load_item(tmp_path / "absent.json")


def test_whole_reader(product, items):
    da = read_stac_item(items["planetary"])
    np.testing.assert_allclose(da.values, (product.dn_10m() - 1000.0) / 10000.0, rtol=0, atol=1e-6)
    assert list(da["bands"].values) == list(MODEL_BANDS_10) and da.rio.crs.to_epsg() == 32701


def test_superres_of_an_item_equals_superres_of_the_product(product, items, pkg, tmp_path):
    (a,) = superresolve_file(items["earth-search"], tmp_path / "from_item.tif", model=pkg, threads=1, tile=32)
    (b,) = superresolve_file(product.path, tmp_path / "from_safe.tif", model=pkg, threads=1, tile=32)
    with rasterio.open(a) as sa, rasterio.open(b) as sb:
        va, vb = sa.read(), sb.read()
        assert (sa.bounds, sa.crs, sa.descriptions) == (sb.bounds, sb.crs, sb.descriptions)
    assert np.isnan(va).any()
    np.testing.assert_array_equal(va, vb)
    assert [type(s).__name__ for s in open_source(items["planetary"])] == ["StacItemSource"]


def test_cli_item_without_assets_exits_2(product, pkg, tmp_path, capsys):
    item = write_item(product, tmp_path, style="planetary", drop=("B11",))
    out = tmp_path / "out.tif"
    assert cli(["superres", str(item), str(out), "--model", str(pkg), "--threads", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no asset for band(s) B11" in err[0] and str(item) in err[0]
    assert not out.exists()


def test_item_by_url(product, items, pkg, tmp_path):
    """An item and its assets served over HTTP (a server on the loopback interface, for the test's duration)."""
    import functools
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    folder = str(items["earth-search"].parent)
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=folder))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/item.json"
    try:
        (src,) = open_source(url)
        with src:
            assert isinstance(src, StacItemSource) and src.name == url
            np.testing.assert_array_equal(src.read(MODEL_BANDS_10, ALL), product.dn_10m())
        with pytest.raises(ValueError, match=re.escape(f"{url[:-9]}absent.json: cannot read the STAC item")):
            load_item(url[:-9] + "absent.json")
        (a,) = superresolve_file(url, tmp_path / "from_url.tif", model=pkg, threads=1, tile=32)
        (b,) = superresolve_file(items["earth-search"], tmp_path / "from_file.tif", model=pkg, threads=1, tile=32)
        with rasterio.open(a) as sa, rasterio.open(b) as sb:
            np.testing.assert_array_equal(sa.read(), sb.read())
            assert sa.tags()["SOURCE"] == "item.json"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_assets_must_nest_in_the_10m_grid(items, tmp_path):
    def shifted(d):
        d["assets"]["rededge1"]["proj:transform"][2] += 10.0

    with pytest.raises(ValueError, match=re.escape("asset 'rededge1' (band B05): bounds")):
        StacItemSource(edited(items["earth-search"], tmp_path / "shifted", shifted))

    def other_crs(d):
        d["assets"]["swir16"]["proj:epsg"] = 32601

    with pytest.raises(ValueError, match=re.escape("asset 'swir16' (band B11): CRS EPSG:32601 differs")):
        StacItemSource(edited(items["earth-search"], tmp_path / "crs", other_crs))
