import math

import pytest

from sr_core import bands as B


def test_table_values_from_the_spec():
    want_mtf = {"B01": .32, "B02": .26, "B03": .28, "B04": .24, "B05": .38, "B06": .34, "B07": .34,
                "B08": .26, "B8A": .33, "B09": .26, "B11": .22, "B12": .23}
    for name, m in want_mtf.items():
        assert B.mtf(name) == m
    assert {n for n, b in B.BANDS.items() if b.resolution == 10} == set(B.BANDS_10M)
    assert {n for n, b in B.BANDS.items() if b.resolution == 20} == set(B.BANDS_20M)
    assert {n for n, b in B.BANDS.items() if b.resolution == 60} == set(B.BANDS_60M)
    assert B.MODEL_BANDS_10 == ("B02", "B03", "B04", "B08", "B05", "B06", "B07", "B8A", "B11", "B12")
    waves = [b.wavelength for b in B.BANDS.values()]
    assert waves == sorted(waves), "table is in spectral order"
    assert all(0 < b.mtf < 1 for b in B.BANDS.values())


@pytest.mark.parametrize("alias,canon", [("B2", "B02"), ("b02", "B02"), ("B02", "B02"), (" B8 ", "B08"),
                                         ("B8A", "B8A"), ("b8a", "B8A"), ("B12", "B12"), ("B1", "B01")])
def test_normalize(alias, canon):
    assert B.normalize_band_name(alias) == canon


@pytest.mark.parametrize("bad", ["B13", "B0", "B8B", "SCL", "", "B9A", "red"])
def test_unknown_names_are_errors(bad):
    with pytest.raises(ValueError, match="unknown Sentinel-2 band"):
        B.normalize_band_name(bad)


def test_duplicates_after_normalisation():
    with pytest.raises(ValueError, match="B02"):
        B.normalize_band_names(["B2", "B02"])


def test_bands_at_resolution():
    assert B.bands_at_resolution(20) == B.BANDS_20M
    with pytest.raises(ValueError, match="30 m"):
        B.bands_at_resolution(30)


def test_records():
    b = B.band("b8a")
    assert (b.name, b.resolution) == ("B8A", 20) and math.isclose(b.wavelength, 864.7)
    with pytest.raises(TypeError):
        B.normalize_band_name(2)  # type: ignore[arg-type]
