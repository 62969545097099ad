"""sr_core.io.dispatch: read_cube and open_source pick the reader of a path."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

rasterio = pytest.importorskip("rasterio")
xr = pytest.importorskip("xarray")
pytest.importorskip("rioxarray")

from sr_core.bands import BANDS_20M  # noqa: E402
from sr_core.io import GeoTiffSource, SceneFolderSource, list_scenes, open_source, read_cube, read_scene  # noqa: E402
from tests.sr_core.io.raster_utils import make_scene_folder  # noqa: E402


def test_list_scenes_and_read_cube_dispatch(tmp_path):
    root = tmp_path / "s2"
    make_scene_folder(root / "A")
    make_scene_folder(root / "series" / "2020-01-01")
    make_scene_folder(root / "series" / "2020-02-01", seed=1)
    (root / "series" / "scene.json").write_text("{}")
    only10 = root / "only10"
    only10.mkdir()
    shutil.copy(root / "A" / "bands_10m.tif", only10)
    shutil.copy(root / "A" / "scene.json", only10)
    ids = [p.relative_to(root).as_posix() for p in list_scenes(root)]
    assert ids == ["A", "series/2020-01-01", "series/2020-02-01"]
    assert "only10" in [p.name for p in list_scenes(root, require_20m=False)]
    cube = read_cube(root / "A")
    assert cube.dims == ("bands", "y", "x") and cube.attrs["quantity"] == "reflectance"
    np.testing.assert_array_equal(cube.values, read_scene(root / "A").to_dataarray(reflectance=True).values)
    tif = read_cube(root / "A" / "bands_20m.tif")
    np.testing.assert_array_equal(tif.values, read_scene(root / "A").bands20)
    with pytest.raises(ValueError, match="unsupported"):
        (root / "x.png").write_bytes(b"")
        read_cube(root / "x.png")
    with pytest.raises(FileNotFoundError):
        list_scenes(tmp_path / "missing")


def test_open_source_dispatch_and_refusals(tmp_path):
    folder, _, _ = make_scene_folder(tmp_path / "A")
    tif = shutil.copy(folder / "bands_20m.tif", tmp_path / "b20.tif")
    (scene,) = open_source(folder)
    (geotiff,) = open_source(tif)
    with scene, geotiff:
        assert isinstance(scene, SceneFolderSource) and isinstance(geotiff, GeoTiffSource)
        assert geotiff.bands == tuple(BANDS_20M) and (geotiff.dn_scale, geotiff.add_offset) == (10000.0, 0.0)
    with pytest.raises(ValueError, match="scene.json"):
        open_source(folder, dn_scale=10000)
    with pytest.raises(ValueError, match="not a scene folder"):
        open_source(tmp_path)
    with pytest.raises(ValueError, match="variable is only for NetCDF"):
        open_source(tif, variable="x")
    with pytest.raises(FileNotFoundError):
        open_source(tmp_path / "missing.tif")
    (tmp_path / "x.png").write_bytes(b"")
    with pytest.raises(ValueError, match="unsupported input"):
        open_source(tmp_path / "x.png")
