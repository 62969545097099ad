"""``s2sr udp``: the user-defined process on stdout or in a file, the benchmark scenario, options checked first."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("openeo")

from s2sr_cli.main import main as s2sr  # noqa: E402
from udf import udp  # noqa: E402


def test_udp_prints_the_process(capsys):
    assert s2sr(["udp"]) == 0
    out = capsys.readouterr().out
    assert json.loads(out) == udp.build_udp()


def test_udp_writes_the_process_and_the_scenario(tmp_path, capsys):
    out, sc = tmp_path / "udp.json", tmp_path / "scenario.json"
    url = "https://example.org/s2sr/s2sr_superresolution.json"
    assert s2sr(["udp", "-o", str(out), "--scenario", str(sc), "--namespace", url, "--archive",
                 "https://h/c.zip#s2sr_code"]) == 0
    assert capsys.readouterr().out == ""
    d = json.loads(out.read_text())
    assert d["default_job_options"]["udf-dependency-archives"] == ["https://h/c.zip#s2sr_code"]
    (scenario,) = json.loads(sc.read_text())
    (call,) = [n for n in scenario["process_graph"].values() if n["process_id"] == udp.UDP_ID]
    assert call["namespace"] == url
    assert scenario["job_options"]["udf-dependency-archives"] == ["https://h/c.zip#s2sr_code"]


@pytest.mark.parametrize("argv, words", [
    (["udp", "--scenario", "x.json"], "--namespace"),
    (["udp", "--scenario", "x.json", "--namespace", "not-a-url"], "namespace"),
    (["udp", "--overlap", "8"], "overlap"),
    (["udp", "--mode", "sideways"], "mode"),
    (["udp", "--archive", "no-folder"], "URL#folder"),
    (["udp", "--extra-band", "B99"], "extra band 'B99' is not a band"),
    (["udp", "--extra-band", "SCL", "--no-extra-bands"], "exclude each other"),
    (["udp", "--start", "2020-01-01"], "--start: options of the benchmark scenario"),
    (["udp", "--west", "5", "--east", "6"], "--west, --east: options of the benchmark scenario"),
    (["udp", "--scenario", "x.json", "--namespace", "https://h/u.json", "--start", "2014-01-01", "--end",
      "2014-02-01"], "start 2014-01-01 is before 2017-03-28: SENTINEL2_L2A has no data"),
])
def test_bad_options_fail_before_anything_is_written(argv, words, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    try:
        status = s2sr(argv)
    except SystemExit as e:  # argparse's own usage errors
        status = e.code
    assert status == 2
    cap = capsys.readouterr()
    assert cap.out == "" and words in cap.err and len(cap.err.strip().splitlines()) == 1
    assert not (tmp_path / "x.json").exists()
