"""The model card (sr_core.models.card): its schema, and its contract carried in the checksummed ONNX file, so that a
package cannot lie about what its network computes. Every lie below is refused with an error naming the card file
and the field, on tampered copies of a tiny random package (udf.testing.make_package) and of the shipped default
package."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from sr_core.models import (
    CONTRACT_KEY,
    DEFAULT_MODEL,
    WEIGHTS_DIR,
    ModelCard,
    ModelFileError,
    card_contract,
    list_models,
    load_card,
    load_predictor,
    stamp_onnx_contract,
)
from sr_core.models.onnx_metadata import metadata_bytes, onnx_info
from udf.testing import make_package

B20 = ["B05", "B06", "B07", "B8A", "B11", "B12"]


@pytest.fixture(scope="module")
def pkg(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("card") / "tiny"
    make_package(folder, arch="edsr", seed=5,
                 postprocess={"coarse_projection": {"bands": B20, "factor": 2, "lam": 0.02, "taps": 3}})
    return folder


def tampered(src: Path, dst: Path, edit: Callable[[dict], None]) -> Path:
    """A copy of the package ``src`` in ``dst`` whose card.json went through ``edit``."""
    shutil.copytree(src, dst)
    card = json.loads((dst / "card.json").read_text())
    edit(card)
    (dst / "card.json").write_text(json.dumps(card, indent=2))
    return dst


def swap(key: str, i: int = 0, j: int = 1) -> Callable[[dict], None]:
    def edit(c: dict) -> None:
        c[key][i], c[key][j] = c[key][j], c[key][i]

    return edit


def setter(**changes) -> Callable[[dict], None]:
    return lambda c: c.update(changes)


def in_postprocess(**changes) -> Callable[[dict], None]:
    return lambda c: c["postprocess"]["coarse_projection"].update(changes)


def _raises(folder: Path, field: str, words: str = "", **kw) -> str:
    with pytest.raises(ModelFileError) as err:
        load_card(folder, **kw)
    msg = str(err.value)
    assert msg.startswith(f"model card {folder / 'card.json'}: field {field!r}: "), msg
    assert re.search(words, msg), msg
    assert "\n" not in msg
    return msg


# the lies of issue 19 item 6 and their kin: (edit, the field named, words of the message)
LIES = {
    "bands swapped": (swap("bands"), "bands", r'\["B03", "B02", .*but the network in .*model\.onnx has \["B02", '
                                              r'"B03", .*checksummed.*card\.json was edited'),
    "out_bands swapped": (swap("out_bands", 0, 1), "out_bands", r'\["B03", "B02"'),
    "20 m bands swapped": (swap("bands", 4, 9), "bands", "but the network in"),
    "mean changed": (lambda c: c["mean"].__setitem__(0, 0.2), "mean", "but the network in"),
    "receptive_field 1": (setter(receptive_field=1), "receptive_field", r"^.*: 1, but the network in .* has \d+"),
    "receptive_field 10001": (setter(receptive_field=10001), "receptive_field",
                              r"must be an odd integer in 1\.\.1023 \(input px\), got 10001"),
    "receptive_field even": (setter(receptive_field=12), "receptive_field", "must be an odd integer"),
    "receptive_field text": (setter(receptive_field="53"), "receptive_field", "got '53'"),
    "scale 3": (setter(scale=3), "scale", r"scale 3, but the network in .*model\.onnx works at x2"),
    "scale 5": (setter(scale=5), "scale", "must be one of 1, 2, 3, 4, got 5"),
    "scale true": (setter(scale=True), "scale", "got True"),
    "bands a string": (setter(bands="B02"), "bands", "must be a non-empty list of Sentinel-2 band names, got 'B02'"),
    "unknown band": (lambda c: c["bands"].__setitem__(0, "B99"), "bands", "unknown Sentinel-2 band 'B99'"),
    "band twice": (lambda c: c["bands"].__setitem__(1, "b2"), "bands", "names B02 twice"),
    "out_bands not input": (setter(out_bands=["B01"]), "out_bands", r"\['B01'\] are not input bands"),
    "out_bands fewer than the network computes": (lambda c: c.update(out_bands=c["out_bands"][:4], postprocess={}),
                                                  "out_bands", r"4 out_bands \[.*\], but the network in "
                                                               r".*model\.onnx computes 10 bands"),
    "bands fewer than the network takes": (lambda c: c.update(bands=c["bands"][:9], out_bands=c["out_bands"][:9],
                                                              mean=c["mean"][:9], std=c["std"][:9], postprocess={}),
                                           "bands", r"9 bands .* takes 10 bands"),
    "std zero": (lambda c: c["std"].__setitem__(2, 0.0), "std", "positive finite numbers"),
    "mean short": (lambda c: c.update(mean=c["mean"][:3]), "mean", "a list of 10 finite numbers"),
    "input resolution": (setter(input_resolution_m=20.0, postprocess={}), "input_resolution_m",
                         r"20\.0, but the network in .* has 10\.0 .*; 'postprocess' differ too"),
    "projection factor": (setter(input_resolution_m=20.0), "postprocess.coarse_projection.factor",
                          r"2 is not the ratio of the native resolution of \['B05', .*\] to the input resolution "
                          r"20 m"),
    "unknown postprocess entry": (lambda c: c["postprocess"].update(sharpen={"amount": 2}), "postprocess",
                                  r"unknown entries \['sharpen'\]; known: \['coarse_projection', 'copy_bands', 'nonnegative'\]"),
    "copy_bands at x2": (lambda c: c["postprocess"].update(copy_bands={"bands": ["B02"]}), "postprocess.copy_bands",
                         r"needs a scale-1 model .*scale is 2"),
    "nonnegative radius": (lambda c: c["postprocess"].update(nonnegative={"radius": -1}), "postprocess.nonnegative.radius",
                           r"must be an integer in 0..8, got -1"),
    "unknown coarse_projection key": (in_postprocess(lamda=0.1), "postprocess.coarse_projection",
                                      r"unknown keys \['lamda'\]"),
    "postprocess garbage": (setter(postprocess="yes please"), "postprocess", "must be an object, got 'yes please'"),
    "projection bands a string": (in_postprocess(bands="B05"), "postprocess.coarse_projection.bands",
                                  "must be a non-empty list"),
    "projection of a 10 m band": (in_postprocess(bands=["B02"]), "postprocess.coarse_projection.factor",
                                  r"2 is not the ratio of the native resolution of \['B02'\]"),
    "projection lam negative": (in_postprocess(lam=-1), "postprocess.coarse_projection.lam", "got -1"),
    "projection taps text": (in_postprocess(taps="4"), "postprocess.coarse_projection.taps", "got '4'"),
    "projection lam changed": (in_postprocess(lam=0.05), "postprocess", "but the network in"),
    "postprocess dropped": (setter(postprocess={}), "postprocess", r"\{\}, but the network in"),
    "nonnegative radius changed": (lambda c: c["postprocess"].setdefault("nonnegative", {"radius": 1}).update(radius=2), "postprocess",
                                   "but the network in"),
    "unknown nonnegative key": (lambda c: c["postprocess"].setdefault("nonnegative", {}).update(radiu=1), "postprocess.nonnegative",
                                r"unknown keys \['radiu'\]"),
    "arch_kwargs": (lambda c: c["arch_kwargs"].update(num_blocks=3), "arch_kwargs", "but the network in"),
    "card_version": (setter(card_version=2), "card_version", "must be 1"),
    "file outside the package": (lambda c: c["files"].update(weights="../model.pt"), "files", "file names in the "
                                                                                             "package folder"),
    "sha256 not hex": (lambda c: c["sha256"].update({"model.pt": "abc"}), "sha256", "lowercase hex"),
    "name empty": (setter(name=""), "name", "non-empty string"),
}


@pytest.mark.parametrize("lie", list(LIES))
def test_a_lying_card_is_refused_naming_the_file_and_the_field(pkg, tmp_path, lie):
    edit, field, words = LIES[lie]
    bad = tampered(pkg, tmp_path / "bad", edit)
    _raises(bad, field, words)
    with pytest.raises(ModelFileError, match=f"field {re.escape(repr(field))}"):
        load_predictor(bad)  # nothing runs with it


@pytest.mark.parametrize("lie", ["bands swapped", "out_bands swapped", "receptive_field 1", "scale 3",
                                 "unknown postprocess entry", "postprocess dropped"])
def test_the_contract_is_checked_for_every_engine_and_without_checksums(pkg, tmp_path, lie):
    edit, field, words = LIES[lie]
    bad = tampered(pkg, tmp_path / "bad", edit)
    _raises(bad, field, words, verify=False)
    _raises(bad, field, words, role="weights")
    with pytest.raises(ModelFileError, match=f"field {re.escape(repr(field))}"):
        load_predictor(bad, engine="torch")


def test_unknown_and_missing_fields(pkg, tmp_path):
    bad = tampered(pkg, tmp_path / "extra", setter(postprocessing={"coarse_projection": {}}))
    with pytest.raises(ModelFileError, match=r"card\.json: unknown fields 'postprocessing'; known: name, "):
        load_card(bad)
    bad = tampered(pkg, tmp_path / "missing", lambda c: c.pop("receptive_field"))
    with pytest.raises(ModelFileError, match=r"card\.json: missing fields receptive_field$"):
        load_card(bad)
    (tmp_path / "missing" / "card.json").write_text("[1, 2]")
    with pytest.raises(ModelFileError, match=r"card\.json: must be a JSON object, got list"):
        load_card(tmp_path / "missing")


def test_a_card_built_in_code_is_checked_and_named(pkg):
    data = {k: v for k, v in json.loads((pkg / "card.json").read_text()).items()}
    data["bands"] = "B02"
    with pytest.raises(ModelFileError, match=r"^model card 'tiny': field 'bands': must be a non-empty list"):
        ModelCard(**data)


def test_the_package_as_written_loads_and_its_onnx_file_carries_the_contract(pkg):
    card = load_card(pkg)
    info = onnx_info((pkg / "model.onnx").read_bytes())
    assert json.loads(info.metadata[CONTRACT_KEY]) == card_contract(card)
    assert set(card_contract(card)) == {"arch", "arch_kwargs", "bands", "out_bands", "scale", "input_resolution_m",
                                        "receptive_field", "mean", "std", "postprocess"}
    assert load_card(pkg, verify=False) == card == load_card(pkg, role="weights")


def test_an_onnx_file_without_the_contract_is_refused_until_stamped(pkg, tmp_path):
    old = tmp_path / "old"
    shutil.copytree(pkg, old)
    onnx = old / "model.onnx"
    data = onnx.read_bytes()
    tail = metadata_bytes({CONTRACT_KEY: onnx_info(data).metadata[CONTRACT_KEY]})
    bare = data[: -len(tail)]  # the file as exported, before its contract was appended
    assert CONTRACT_KEY not in onnx_info(bare).metadata
    onnx.write_bytes(bare)
    card = json.loads((old / "card.json").read_text())
    card["sha256"]["model.onnx"] = hashlib.sha256(bare).hexdigest()
    (old / "card.json").write_text(json.dumps(card))
    with pytest.raises(ModelFileError, match=r"model card .*card\.json: .*model\.onnx carries no contract"):
        load_card(old)
    # a card you trust writes it (the network's bytes unchanged: the file only gains a tail); the same card again:
    # nothing changes; another card: refused
    trusted = ModelCard.from_json(old / "card.json")
    sha = stamp_onnx_contract(trusted, onnx)
    assert onnx.read_bytes()[: len(bare)] == bare and sha == hashlib.sha256(onnx.read_bytes()).hexdigest()
    assert stamp_onnx_contract(trusted, onnx) == sha
    liar = ModelCard.from_json(old / "card.json")
    liar.bands[0], liar.bands[1] = liar.bands[1], liar.bands[0]
    with pytest.raises(ModelFileError, match="field 'bands'"):
        stamp_onnx_contract(liar, onnx)
    card["sha256"]["model.onnx"] = sha
    (old / "card.json").write_text(json.dumps(card))
    assert load_card(old).bands == trusted.bands


def test_a_consistent_lie_in_the_onnx_metadata_breaks_its_checksum(pkg, tmp_path):
    bad = tampered(pkg, tmp_path / "both", swap("bands"))
    onnx = bad / "model.onnx"
    data = onnx.read_bytes()
    recorded = onnx_info(data).metadata[CONTRACT_KEY]
    lie = recorded.replace('"B02","B03"', '"B03","B02"', 1)
    assert lie != recorded and len(lie) == len(recorded)
    onnx.write_bytes(data.replace(recorded.encode(), lie.encode()))
    with pytest.raises(ModelFileError, match=r"checksum mismatch for .*model\.onnx"):
        load_card(bad)


def test_save_model_package_refuses_a_card_that_does_not_fit_the_network(tmp_path):
    pytest.importorskip("torch")
    from sr_core.archs import get_arch
    from sr_core.models.export import save_model_package
    from sr_core.models.network import SRModel

    net = get_arch("edsr", in_channels=4, out_channels=4, scale=2, num_features=8, num_blocks=1)
    model = SRModel(net, [0.1] * 4, [0.05] * 4, range(4))
    kw = dict(name="t", version="0", arch="edsr", arch_kwargs={"in_channels": 4, "out_channels": 4, "scale": 2,
                                                                "num_features": 8, "num_blocks": 1},
              bands=["B02", "B03", "B04", "B08"], out_bands=["B02", "B03", "B04", "B08"], scale=2,
              input_resolution_m=10.0, mean=[0.1] * 4, std=[0.05] * 4)
    with pytest.raises(ModelFileError, match=rf"field 'receptive_field': 1, but the network has {net.receptive_field}"):
        save_model_package(model, ModelCard(**kw, receptive_field=1), tmp_path / "a")
    card = save_model_package(model, ModelCard(**kw, receptive_field=net.receptive_field), tmp_path / "b")
    assert load_card(tmp_path / "b") == card


# ------------------------------------------------------------------------------------------------ shipped packages

#: sha256 of each shipped model.onnx as exported, before its contract was appended
EXPORTED_SHA256 = {
    "s2sr-x2-10band": "3990ac04fe62b0960bf8423e79b7e2a0f2e781521fe35d66023b89f8d70e2e04",
    "s2sr-10m-10band": "a8c78b73fb274a6f9a1db768085e993c7422a20201cc66324bad5208f9158b46",
    "s2sr-misr-x2": "e53b336256beb1d6b0f658817e32f9c9c30decfda68bb3175dac92294d6acd8a",
    "s2sr-x4-rgbn": "4a9afe2895cb5aab75f60be543da1d7d0b05f55aacb78b097bf32c3e0484c311",
    "s2sr-x2-rgbn": "8456177d6b4a79eb37f2c6d98d364c1f35da6c103bd258ddd8fe3f828ae92b63",
}


@pytest.mark.parametrize("name", sorted(EXPORTED_SHA256))
def test_shipped_packages_carry_their_contract_after_the_exported_network(name):
    assert name in list_models()
    card = load_card(name)
    data = (WEIGHTS_DIR / name / card.files["onnx"]).read_bytes()
    recorded = onnx_info(data).metadata[CONTRACT_KEY]
    assert json.loads(recorded) == card_contract(card)
    tail = metadata_bytes({CONTRACT_KEY: recorded})
    assert data.endswith(tail) and CONTRACT_KEY not in onnx_info(data[: -len(tail)]).metadata
    assert hashlib.sha256(data[: -len(tail)]).hexdigest() == EXPORTED_SHA256[name]  # the exported bytes


@pytest.mark.parametrize("lie", ["bands swapped", "out_bands swapped", "receptive_field 1", "receptive_field 10001",
                                 "unknown nonnegative key", "postprocess garbage", "bands a string",
                                 "nonnegative radius changed", "input resolution"])
def test_a_tampered_copy_of_the_default_package_is_refused(tmp_path, lie):
    edit, field, words = LIES[lie]
    bad = tampered(WEIGHTS_DIR / DEFAULT_MODEL, tmp_path / DEFAULT_MODEL, edit)
    _raises(bad, field, words)


def test_the_default_package_swapped_bands_would_change_the_output(tmp_path):
    """What the contract prevents: the network fed with two bands exchanged (what a swapped card did silently)
    computes something else."""
    pred = load_predictor(DEFAULT_MODEL, threads=1)
    x = np.random.default_rng(0).uniform(0.02, 0.4, (1, 10, 24, 24)).astype(np.float32)
    y = pred(x)
    swapped = x[:, [1, 0, *range(2, 10)]]
    assert np.abs(pred(swapped)[:, [1, 0, *range(2, 10)]] - y).max() > 0.01
