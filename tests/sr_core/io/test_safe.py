"""sr_core.io.safe: Sentinel-2 SAFE products (Level-1C and Level-2A, folder and zip, before and from processing
baseline 04.00) read window by window, checked on real product metadata with small JPEG 2000 rasters written in the
real layout (tests/sr_core/io/s2_products.py), against the pixels written; ``s2sr superres`` on a product gives
what it gives on the same pixels as a 10-band GeoTIFF; bad products are refused naming the file."""

from __future__ import annotations

import re
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import rasterio

from s2sr_cli.main import main as cli
from sr_core.bands import BANDS, MODEL_BANDS_10
from sr_core.inference.scene import superresolve_file
from sr_core.io import open_source
from sr_core.io.safe import SafeSource, is_safe_product, parse_product_metadata, read_safe
from tests.sr_core.io.s2_products import (
    DATA,
    L1C_N0301,
    L1C_N0509,
    L2A_N0214,
    L2A_N0509,
    PRODUCTS,
    build_product,
    equivalent_geotiff,
    zip_product,
)
from udf.testing import make_package

ALL = (0, 64, 0, 64)


@pytest.fixture(scope="module")
def products(tmp_path_factory):
    root = tmp_path_factory.mktemp("safe")
    return {name: build_product(root, name, seed=i) for i, name in enumerate(PRODUCTS)}


@pytest.fixture(scope="module")
def pkg(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("safe_models") / "tiny-edsr-x2"
    make_package(folder, arch="edsr", seed=5)
    return folder


def copy_product(products, name, dest: Path) -> Path:
    return Path(shutil.copytree(products[name].path, dest / name))


# ------------------------------------------------------------------------------------------------ metadata


@pytest.mark.parametrize(
    "name, level, baseline, offset",
    [(L2A_N0509, "L2A", "05.09", -1000.0), (L2A_N0214, "L2A", "02.14", 0.0),
     (L1C_N0301, "L1C", "03.01", 0.0), (L1C_N0509, "L1C", "05.09", -1000.0)],
)
def test_real_product_metadata(name, level, baseline, offset):
    xml = (DATA / name / f"MTD_MSI{level}.xml").read_bytes()
    m = parse_product_metadata(xml, name, level=level)
    assert (m.level, m.baseline, m.quantification) == (level, baseline, 10000.0)
    assert (m.nodata, m.invalid) == (0.0, (0.0, 65535.0))
    assert m.product_id == name[: -len(".SAFE")]
    assert sorted(m.offsets) == sorted(BANDS)
    assert set(m.offsets.values()) == {offset}
    granule = "GRANULE/" + re.search(r"<IMAGE_FILE>GRANULE/([^/]+)/", xml.decode()).group(1) + "/IMG_DATA/"
    tile_time = re.search(r"/(T\d\d[A-Z]{3}_\d{8}T\d{6})_B02", xml.decode()).group(1)
    for b in MODEL_BANDS_10:
        res = 10 if b in ("B02", "B03", "B04", "B08") else 20
        want = f"R{res}m/{tile_time}_{b}_{res}m.jp2" if level == "L2A" else f"{tile_time}_{b}.jp2"
        assert m.files[b] == granule + want
    assert ("SCL" in m.files) == (level == "L2A")
    if level == "L2A":
        assert m.files["SCL"] == granule + f"R20m/{tile_time}_SCL_20m.jp2"


def _edit(xml: bytes, pattern: str, repl: str) -> bytes:
    out, n = re.subn(pattern, repl, xml.decode("utf-8"), flags=re.S)
    assert n, pattern
    return out.encode("utf-8")


@pytest.mark.parametrize(
    "name, level, pattern, repl, message",
    [
        (L2A_N0509, "L2A", r"<PROCESSING_BASELINE>05.09<", "<PROCESSING_BASELINE>N/A<",
         "unknown processing baseline 'N/A'"),
        (L1C_N0301, "L1C", r"<PROCESSING_BASELINE>03.01</PROCESSING_BASELINE>", "", "unknown processing baseline"),
        (L2A_N0509, "L2A", r"<BOA_ADD_OFFSET_VALUES_LIST>.*</BOA_ADD_OFFSET_VALUES_LIST>", "",
         "baseline 05.09 carries a radiometric offset, but the metadata has no BOA_ADD_OFFSET"),
        (L1C_N0509, "L1C", r"<Radiometric_Offset_List>.*</Radiometric_Offset_List>", "",
         "baseline 05.09 carries a radiometric offset, but the metadata has no RADIO_ADD_OFFSET"),
        (L1C_N0509, "L1C", r'<RADIO_ADD_OFFSET band_id="4">-1000<', '<RADIO_ADD_OFFSET band_id="4">x<',
         "RADIO_ADD_OFFSET of B05 = 'x' is not a number"),
        (L2A_N0214, "L2A", r"<BOA_QUANTIFICATION_VALUE[^>]*>10000</BOA_QUANTIFICATION_VALUE>", "",
         "no BOA_QUANTIFICATION_VALUE"),
        (L2A_N0214, "L2A", r"</Granule>", "</Granule><Granule imageFormat=\"JPEG2000\"></Granule>",
         "lists 2 granules"),
        (L2A_N0214, "L2A", r"<Product_Info>", "<Product_Info", "not valid XML"),
    ],
)
def test_metadata_refused(name, level, pattern, repl, message):
    xml = _edit((DATA / name / f"MTD_MSI{level}.xml").read_bytes(), pattern, repl)
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_product_metadata(xml, f"{name}/MTD", level=level)


# ------------------------------------------------------------------------------------------------ reading


@pytest.mark.parametrize("name", PRODUCTS)
def test_reads_the_pixels_written(products, name):
    p = products[name]
    with SafeSource(p.path) as src:
        assert (src.height, src.width, src.crs) == (64, 64, p.crs)
        assert src.transform == tuple(p.transform)[:6]
        assert src.bands == MODEL_BANDS_10
        assert (src.dn_scale, src.add_offset, src.dtype, src.nodata) == (10000.0, p.offset, "uint16", 0.0)
        major, minor = re.search(r"_N(\d\d)(\d\d)_", name).groups()
        baseline = f"{major}.{minor}"
        assert src.tags == {"PRODUCT_LEVEL": p.level, "SCENE_ID": name[:-5], "PROCESSING_BASELINE": baseline}
        x = src.read(MODEL_BANDS_10, ALL)
        want = p.dn_10m()
        np.testing.assert_array_equal(x, want)  # NaN where 0 (the edge) and 65535 (saturated)
        assert np.isnan(x).any() and (np.isnan(want) == np.isnan(x)).all()
        # odd windows: the 20 m bands cut through their pixels
        np.testing.assert_array_equal(src.read(["B11", "B02"], (3, 27, 5, 42)), want[[8, 0], 3:27, 5:42])
        assert src.has_scl == (p.level == "L2A")
        if src.has_scl:
            np.testing.assert_array_equal(src.read_scl((1, 30, 3, 33)), p.scl_10m()[1:30, 3:33])
            assert src.read_scl(ALL).dtype == np.uint8


@pytest.mark.parametrize("name", [L2A_N0509, L1C_N0301])
def test_zip_equals_folder(products, name, tmp_path):
    z = zip_product(products[name].path, tmp_path)
    assert is_safe_product(z) and is_safe_product(products[name].path)
    with SafeSource(z) as a, SafeSource(products[name].path) as b:
        assert (a.transform, a.crs, a.tags, a.add_offset) == (b.transform, b.crs, b.tags, b.add_offset)
        np.testing.assert_array_equal(a.read(a.bands, ALL), b.read(b.bands, ALL))
        if b.has_scl:
            np.testing.assert_array_equal(a.read_scl(ALL), b.read_scl(ALL))
    # the metadata file itself names the product too
    with SafeSource(products[name].path / f"MTD_MSI{products[name].level}.xml") as c:
        assert c.bands == MODEL_BANDS_10


def test_whole_reader_gives_reflectance(products):
    p = products[L2A_N0509]
    da = read_safe(p.path)
    assert da.dims == ("bands", "y", "x") and list(da["bands"].values) == list(MODEL_BANDS_10)
    np.testing.assert_allclose(da.values, (p.dn_10m() - 1000.0) / 10000.0, rtol=0, atol=1e-6)
    assert da.rio.crs.to_string() == p.crs and tuple(da.rio.transform())[:6] == tuple(p.transform)[:6]
    assert (da.attrs["product_level"], da.attrs["quantity"]) == ("L2A", "reflectance")


def test_60m_bands_only_when_asked(tmp_path):
    p = build_product(tmp_path, L2A_N0509, size=48, bands60=True)
    with SafeSource(p.path) as src:
        assert "B01" not in src.bands
    with SafeSource(p.path, bands=["B02", "B01", "B09"]) as src:
        x = src.read(["B01", "B09"], (0, 48, 0, 48))
        want = np.repeat(np.repeat((100 * (1 + np.arange(64))).reshape(8, 8), 6, 0), 6, 1).astype(np.float32)
        np.testing.assert_array_equal(x, np.stack([want, want]))
    (p.files["B09"]).unlink()
    with pytest.raises(ValueError, match=re.escape(f"the file of band B09, {p.files['B09'].relative_to(p.path)}")):
        SafeSource(p.path, bands=["B02", "B09"])


def test_per_band_offsets_are_kept_exactly(products, tmp_path):
    """A product whose bands have different offsets: each band's reflectance is (DN + its offset) / 10000."""
    path = copy_product(products, L2A_N0509, tmp_path)
    mtd = path / "MTD_MSIL2A.xml"
    b11 = '<BOA_ADD_OFFSET band_id="11">'
    mtd.write_bytes(_edit(mtd.read_bytes(), b11 + "-1000<", b11 + "-900<"))
    p = products[L2A_N0509]
    with SafeSource(path) as src:
        assert src.add_offset == -1000.0
        refl = (src.read(["B11", "B12"], ALL) + src.add_offset) / src.dn_scale
    want = p.dn_10m()[[8, 9]]
    np.testing.assert_allclose(refl[0], (want[0] - 900.0) / 10000.0, atol=1e-7)
    np.testing.assert_allclose(refl[1], (want[1] - 1000.0) / 10000.0, atol=1e-7)


def test_dn_arguments_must_agree(products):
    with SafeSource(products[L2A_N0509].path, dn_scale=10000, add_offset=-1000) as src:
        assert src.add_offset == -1000
    with pytest.raises(ValueError, match="contradicts add_offset=0"):
        SafeSource(products[L2A_N0509].path, add_offset=0)


# ------------------------------------------------------------------------------------------------ bad products


def test_missing_band_file(tmp_path):
    p = build_product(tmp_path, L2A_N0509, omit=("B11",))
    rel = p.files["B12"].relative_to(p.path).as_posix().replace("B12", "B11")
    with pytest.raises(ValueError, match=re.escape(f"{p.path}: the file of band B11, {rel}, is missing")):
        SafeSource(p.path)


@pytest.mark.parametrize("cut", ["header", "codestream"])
def test_corrupt_jp2(products, tmp_path, cut):
    path = copy_product(products, L1C_N0509, tmp_path)
    f = next(path.rglob("*_B05.jp2"))
    data = f.read_bytes()
    f.write_bytes(b"not a JPEG 2000 file" * 20 if cut == "header" else data[: len(data) * 2 // 3])
    rel = f.relative_to(path).as_posix()
    with pytest.raises(ValueError, match=re.escape(rel)):
        with SafeSource(path) as src:
            src.read(["B05"], ALL)


def test_zip_without_a_product(tmp_path):
    z = tmp_path / "S2B_MSIL2A_20230823.SAFE.zip"
    with zipfile.ZipFile(z, "w") as f:
        f.writestr("readme.txt", "no product here")
        f.writestr("other/deeper/MTD_MSIL2A.xml", "<x/>")
    with pytest.raises(ValueError, match=re.escape(f"{z}: no Sentinel-2 SAFE product inside")):
        SafeSource(z)
    bad = tmp_path / "broken.zip"
    bad.write_bytes(b"PK not really")
    with pytest.raises(ValueError, match=re.escape(f"{bad}: not a readable zip file")):
        SafeSource(bad)


def test_folder_without_metadata(tmp_path):
    folder = tmp_path / "S2A_MSIL2A_X.SAFE"
    folder.mkdir()
    assert is_safe_product(folder)
    with pytest.raises(ValueError, match="neither of MTD_MSIL1C.xml and MTD_MSIL2A.xml"):
        SafeSource(folder)


def test_level1c_has_no_scene_classification(products):
    with SafeSource(products[L1C_N0301].path) as src:
        assert not src.has_scl
        with pytest.raises(ValueError, match="Level-1C"):
            src.read_scl(ALL)


# ------------------------------------------------------------------------------------------------ superres


def _out(path: Path):
    with rasterio.open(path) as s:
        return s.read(), s.descriptions, s.bounds, s.crs, s.tags()


@pytest.mark.parametrize("name", PRODUCTS)
def test_superres_of_a_product_equals_superres_of_its_geotiff(products, pkg, name, tmp_path):
    p = products[name]
    tif = equivalent_geotiff(p, tmp_path / "same_pixels.tif")
    (a,) = superresolve_file(p.path, tmp_path / "from_safe.tif", model=pkg, threads=1, tile=32)
    (b,) = superresolve_file(tif, tmp_path / "from_tif.tif", model=pkg, threads=1, tile=32)
    va, da, ba, ca, ta = _out(a)
    vb, db, bb, cb, tb = _out(b)
    assert (da, ba, ca) == (db, bb, cb)
    assert np.isnan(va).any() and (np.isnan(va) == np.isnan(vb)).all()  # same nodata
    np.testing.assert_allclose(va / 10000.0, vb / 10000.0, rtol=0, atol=1e-4)  # reflectance within 1e-4
    assert (ta["DN_SCALE"], ta["ADD_OFFSET"], ta["PRODUCT_LEVEL"]) == ("10000", str(int(p.offset)), p.level)


def test_cli_reads_a_zipped_product(products, pkg, tmp_path, capsys):
    z = zip_product(products[L2A_N0509].path, tmp_path)
    out = tmp_path / "sr.tif"
    assert cli(["--quiet", "superres", str(z), str(out), "--model", str(pkg), "--threads", "1"]) == 0
    (ref,) = superresolve_file(products[L2A_N0509].path, tmp_path / "ref.tif", model=pkg, threads=1)
    np.testing.assert_array_equal(_out(out)[0], _out(ref)[0])
    assert [type(s).__name__ for s in open_source(z)] == ["SafeSource"]


@pytest.mark.parametrize("case", ["missing band", "unknown baseline", "corrupt jp2", "zip without product"])
def test_cli_bad_products_exit_2_and_leave_no_output(products, pkg, tmp_path, capsys, case):
    path = copy_product(products, L2A_N0509, tmp_path)
    mtd = path / "MTD_MSIL2A.xml"
    if case == "missing band":
        f = next(path.rglob("*_B8A_20m.jp2"))
        f.unlink()
    elif case == "unknown baseline":
        f = mtd
        mtd.write_bytes(_edit(mtd.read_bytes(), r"<PROCESSING_BASELINE>05.09<", "<PROCESSING_BASELINE>?<"))
    elif case == "corrupt jp2":
        f = next(path.rglob("*_B03_10m.jp2"))
        f.write_bytes(f.read_bytes()[:600])
    else:
        f = path = tmp_path / "empty.SAFE.zip"
        with zipfile.ZipFile(path, "w") as z:
            z.writestr("x.txt", "x")
    out = tmp_path / "out.tif"
    assert cli(["superres", str(path), str(out), "--model", str(pkg), "--threads", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("s2sr superres: error: ") and f.name in err[0], err
    assert not out.exists() and not list(tmp_path.glob(".out.tif*"))
