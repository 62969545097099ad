"""``s2sr demo``: the bundled real Sentinel-2 sample super-resolved through the openEO UDF, end to end.

What it does (nothing but the repository is needed: the sample ships in ``sr_core/data/sample``):

1. reads the bundled sample (:func:`sr_core.io.sample_scene_path`, 256 x 256 px at 10 m, L1C DN) as the cube
   an openEO back-end's ``load_collection`` delivers: the model's bands on the 10 m grid, 20 m bands
   nearest-replicated (:meth:`sr_core.io.Scene.to_dataarray`);
2. runs ``udf/sr_udf.py`` over it with the local back-end emulator
   (:func:`udf.local.apply_neighborhood_local`, geopyspark semantics, runtime ``Python-Jep``) in mode
   ``"upscale"`` with the ``size``/``overlap`` of :func:`udf.process_graph.neighborhood_for` (those of
   ``s2sr graph``, which the UDF's own check accepts): the chunks come back ``scale`` times larger. This path
   gives the same result as ``s2sr superres`` on the same scene (same seamless tiling: edge replication at the
   scene border, margin = the model's) within 1e-4 reflectance (tested);
3. writes ``<out>/sr_<res>m.tif`` (DN, float32, the sample's DN convention, bounds identical to the input's,
   tags naming the model, like ``s2sr superres``), ``<out>/comparison.png`` (RGB B04/B03/B02 with one 2-98 %
   stretch from the input: input 10 m nearest / bicubic / super-resolved, and zoomed crops) and
   ``<out>/metrics.json`` (also printed as text).

Metrics (reflectance, float64, a border of :data:`BORDER` 10 m pixels left out):

* ``consistency_l1``: per band, mean ``|degrade(x, r) - native|`` (:func:`sr_core.metrics.reflectance_consistency`,
  the band's MTF Gaussian) of the SR output and of bicubic, with ``r = scale * band_resolution / 10`` against
  the band on its native grid (10 m bands: 10 m; 20 m bands: the native 20 m data);
* ``spectral_consistency_deg``: per native-resolution group, mean spectral angle between ``degrade(x)`` and
  the native bands (:func:`sr_core.metrics.spectral_consistency`);
* ``sharpness_gain``: per band, the power (:func:`sr_core.metrics.radial_power_spectrum`, mean removed) of SR
  over bicubic summed above the Nyquist frequency of the input (``0.5 / scale`` cycles per output pixel):
  1 = no detail added beyond bicubic.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from udf.process_graph import neighborhood_for

__all__ = ["BORDER", "DEFAULT_OUT", "UDF_MODE", "plot_comparison", "render_text", "run_demo", "udf_file"]

DEFAULT_OUT = "s2sr-demo"
#: Border (10 m pixels) left out of every metric.
BORDER = 8
#: The apply_neighborhood mode the demo runs (the chunk on the 10 m grid comes back ``scale`` x larger).
UDF_MODE = "upscale"
_RGB = ("B04", "B03", "B02")


def udf_file() -> Path:
    """Path of ``udf/sr_udf.py`` (shipped in the ``udf`` package)."""
    import udf

    p = Path(udf.__file__).resolve().parent / "sr_udf.py"
    if not p.is_file():
        raise FileNotFoundError(f"the UDF file is missing: {p}")
    return p


def _resolve(model: Any) -> Path:
    from sr_core.models import DEFAULT_MODEL, WEIGHTS_DIR, resolve_model

    try:
        return resolve_model(model)
    except ValueError:
        if model is None:
            raise ValueError(
                f"the default model {DEFAULT_MODEL!r} is not installed ({WEIGHTS_DIR / DEFAULT_MODEL} has no "
                "card.json); pass --model NAME|PATH (see `s2sr models`)"
            ) from None
        raise


# ------------------------------------------------------------------------------------------------ figure


def plot_comparison(lr_rgb: np.ndarray, bicubic_rgb: np.ndarray, sr_rgb: np.ndarray, path: str | os.PathLike,
                    **kw: Any) -> Path:
    """The demo's side-by-side PNG: :func:`sr_core.evaluation.figures.plot_rgb_comparison`."""
    from sr_core.evaluation.figures import plot_rgb_comparison

    return plot_rgb_comparison(lr_rgb, bicubic_rgb, sr_rgb, path, **kw)


# ------------------------------------------------------------------------------------------------ metrics


def _metrics(
    scene: Any, x: np.ndarray, sr: np.ndarray, bands: list[str], out_bands: list[str], s: int
) -> tuple[dict, np.ndarray]:
    """``(metrics, bicubic)``, see the module docstring. ``x`` (C, h, w) model input reflectance, ``sr``
    (C_out, s h, s w); ``bicubic`` (C_out, s h, s w) of the input's output bands."""
    import torch

    from sr_core.archs._common import bicubic_upsample
    from sr_core.bands import BANDS, BANDS_10M, BANDS_20M
    from sr_core.degradation import degrade
    from sr_core.metrics import radial_power_spectrum, reflectance_consistency, spectral_consistency

    xin = torch.from_numpy(np.ascontiguousarray(x[[bands.index(b) for b in out_bands]], dtype=np.float64))[
        None
    ]
    bic = bicubic_upsample(xin, s)
    srt = torch.from_numpy(np.ascontiguousarray(sr, dtype=np.float64))[None]
    native = {b: scene.bands10[BANDS_10M.index(b)] for b in BANDS_10M}
    native.update({b: scene.bands20[BANDS_20M.index(b)] for b in BANDS_20M})
    groups: dict[int, list[int]] = {}
    for k, b in enumerate(out_bands):
        groups.setdefault(int(BANDS[b].resolution), []).append(k)
    cons: dict[str, dict[str, float]] = {}
    spec: dict[str, dict[str, float]] = {}
    for res, ks in sorted(groups.items()):
        names = [out_bands[k] for k in ks]
        if any(n not in native for n in names):
            continue
        f = res // 10
        r = s * f
        nat = torch.from_numpy(np.stack([native[n] for n in names]).astype(np.float64))[None]
        b = max(1, round(BORDER / f))
        mask = torch.zeros(nat.shape[-2:], dtype=torch.bool)
        mask[b:-b, b:-b] = True
        mask &= torch.isfinite(nat[0]).all(0)
        # degrade once per image; both consistency metrics reuse it (degrade_fn)
        d_sr, d_bic = degrade(srt[:, ks], r, bands=names), degrade(bic[:, ks], r, bands=names)
        kw_sr = {"ratio": r, "mask": mask, "degrade_fn": lambda _, d=d_sr: d}
        kw_bic = {"ratio": r, "mask": mask, "degrade_fn": lambda _, d=d_bic: d}
        c_sr = reflectance_consistency(srt[:, ks], nat, **kw_sr)[0]
        c_bic = reflectance_consistency(bic[:, ks], nat, **kw_bic)[0]
        for j, n in enumerate(names):
            cons[n] = {"sr": float(c_sr[j]), "bicubic": float(c_bic[j])}
        spec[f"{res}m"] = {
            "sr": float(spectral_consistency(srt[:, ks], nat, **kw_sr)[0]),
            "bicubic": float(spectral_consistency(bic[:, ks], nat, **kw_bic)[0]),
        }
    bb = BORDER * s
    crop_sr = torch.nan_to_num(srt[..., bb:-bb, bb:-bb])
    crop_bic = torch.nan_to_num(bic[..., bb:-bb, bb:-bb])
    freqs, p_sr = radial_power_spectrum(crop_sr, subtract_mean=True)
    _, p_bic = radial_power_spectrum(crop_bic, subtract_mean=True)
    cutoff = 0.5 / s
    hf = freqs > cutoff
    ratio = p_sr[0][:, hf].sum(-1) / p_bic[0][:, hf].sum(-1)
    gain = {b: float(ratio[k]) for k, b in enumerate(out_bands)}
    mean = lambda vals: float(np.mean(vals)) if len(vals) else float("nan")
    return {
        "units": "reflectance (consistency: mean absolute error; spectral: degrees; sharpness: power ratio)",
        "border_px_10m": BORDER,
        "consistency_l1": cons,
        "consistency_l1_mean": {
            "sr": mean([v["sr"] for v in cons.values()]),
            "bicubic": mean([v["bicubic"] for v in cons.values()]),
        },
        "spectral_consistency_deg": spec,
        "sharpness_gain": {
            "hf_cutoff_cycles_per_px": cutoff,
            "per_band": gain,
            "mean": mean(list(gain.values())),
        },
    }, bic[0].numpy()


# ------------------------------------------------------------------------------------------------ demo


def run_demo(
    out_dir: str | os.PathLike = DEFAULT_OUT,
    *,
    model: Any = None,
    engine: str = "onnx",
    threads: int | None = None,
) -> dict:
    """Run the demo (see the module docstring); returns the report written to ``<out_dir>/metrics.json``.

    ``model``: shipped model name or package folder (default :data:`sr_core.models.DEFAULT_MODEL`; a clear
    ``ValueError`` when it is not installed). ``threads``: cores in total (default all); the emulator runs
    several chunks at once and gives each ``threads // workers`` engine threads.
    """
    from sr_core import __version__
    from sr_core.bands import normalize_band_name
    from sr_core.io import SAMPLE_ID, GeoTiffWriter, load_sample, model_tags, sample_scene_path
    from sr_core.models import check_predictor, load_card, load_predictor
    from sr_core.tiling import hr_transform

    t_start = time.perf_counter()
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise ValueError(f"threads must be an integer >= 1, got {threads!r}")
    if engine not in ("onnx", "torch"):
        raise ValueError(f"engine must be 'onnx' or 'torch', got {engine!r}")
    folder = _resolve(model)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    scene = load_sample()
    cube = scene.to_dataarray()  # DN, MODEL_BANDS_10 on the 10 m grid (20 m bands nearest-replicated)
    card = load_card(folder, verify=False)
    size, overlap = neighborhood_for(card, UDF_MODE)  # the overlap the UDF's own check asks for
    h, w = cube.sizes["y"], cube.sizes["x"]
    chunks = -(-h // size) * -(-w // size)
    cores = threads or os.cpu_count() or 1
    workers = max(1, min(cores, chunks))
    per_chunk = max(1, cores // workers)
    # the same cached predictor the UDF loads (sr_core.models.load_predictor caches per folder/engine/threads)
    probe = load_predictor(folder, engine=engine, threads=per_chunk)
    check_predictor(probe)
    bands = [normalize_band_name(b) for b in probe.bands]
    out_bands = [normalize_band_name(b) for b in probe.out_bands]
    s = int(probe.scale)
    missing = [b for b in bands if b not in list(cube.bands.values)]
    if missing:
        raise ValueError(f"model {card.name!r} needs bands {missing} that the bundled sample lacks")
    if not set(_RGB) <= set(out_bands):
        raise ValueError(
            f"the demo figure needs B02, B03, B04 among the model's output bands, got {out_bands}"
        )
    cube = cube.sel(bands=bands)
    context = {
        "mode": UDF_MODE,
        "model": str(folder),
        "engine": engine,
        "dn_scale": float(scene.dn_scale),
        "add_offset": float(scene.add_offset),
        "threads": per_chunk,
        "overlap": overlap,
        "size": size,
    }
    from udf.local import apply_neighborhood_local

    t0 = time.perf_counter()
    res = apply_neighborhood_local(
        cube,
        udf_file(),
        size=size,
        overlap=overlap,
        context=context,
        runtime="Python-Jep",
        scheduler="threads",
        num_workers=workers,
    )
    t_udf = time.perf_counter() - t0
    res = res.transpose("bands", "y", "x")
    labels = [normalize_band_name(str(b)) for b in res.bands.values]
    sr_dn = np.asarray(res.values, dtype=np.float32)[[labels.index(b) for b in out_bands]]
    if sr_dn.shape[1:] != (s * h, s * w):
        raise ValueError(f"the UDF returned {sr_dn.shape[1:]}, expected {(s * h, s * w)}")
    transform = hr_transform(tuple(scene.transform), s)
    # the emulator's coordinates must be the centres of that grid (same outer bounds as the input)
    xs = np.asarray(res.x.values, dtype=np.float64)
    if abs(xs[0] - (transform[2] + transform[0] / 2)) > 1e-6 * abs(transform[0]):
        raise ValueError("the UDF output grid does not match the input bounds")  # pragma: no cover - a bug
    res_m = float(probe.card.input_resolution_m) / s
    tif = out / f"sr_{res_m:g}m.tif"
    tags = {
        "DN_SCALE": f"{scene.dn_scale:g}",
        "ADD_OFFSET": f"{scene.add_offset:g}",
        "PRODUCT_LEVEL": scene.product_level,
        "SCENE_ID": scene.id,
        "SOURCE": SAMPLE_ID,
        **model_tags(probe),
        "S2SR_PATH": f"udf/sr_udf.py via udf.local.apply_neighborhood_local (mode {UDF_MODE}, size {size}, "
        f"overlap {overlap}, runtime Python-Jep)",
    }
    with GeoTiffWriter(
        tif,
        height=s * h,
        width=s * w,
        transform=transform,
        crs=scene.crs,
        dtype=np.float32,
        nodata=float("nan"),
        band_names=out_bands,
        tags=tags,
    ) as wr:
        wr.write(sr_dn, (0, s * h, 0, s * w))

    x = np.asarray(cube.values, dtype=np.float64)
    x = (x + scene.add_offset) / scene.dn_scale  # model input reflectance (C, h, w)
    sr = (sr_dn.astype(np.float64) + scene.add_offset) / scene.dn_scale
    t0 = time.perf_counter()
    metrics, bic = _metrics(scene, x, sr, bands, out_bands, s)
    rgb_in = [bands.index(b) for b in _RGB]
    rgb_out = [out_bands.index(b) for b in _RGB]
    card = probe.card
    png = plot_comparison(
        x[rgb_in],
        bic[rgb_out],
        sr[rgb_out],
        out / "comparison.png",
        title=f"{card.name} v{card.version} x{s} on {scene.id} (RGB B04/B03/B02, 2-98 % stretch of the input)",
        labels=(f"input {card.input_resolution_m:g} m (nearest)", f"bicubic x{s}", f"super-resolved x{s}"),
    )
    t_metrics = time.perf_counter() - t0
    report = {
        "s2sr_version": str(__version__),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "model": {
            "name": card.name,
            "version": card.version,
            "arch": card.arch,
            "scale": s,
            "engine": engine,
            "file": model_tags(probe)["S2SR_MODEL_FILE"],
            "sha256": dict(card.sha256),
            "folder": str(folder),
        },
        "input": {
            "scene": scene.id,
            "path": str(sample_scene_path()),
            "shape": [h, w],
            "resolution_m": float(card.input_resolution_m),
            "product_level": scene.product_level,
            "attribution": scene.meta.get("attribution", ""),
            "license": scene.meta.get("license", ""),
        },
        "udf": {
            "file": "udf/sr_udf.py",
            "emulator": "udf.local.apply_neighborhood_local",
            "mode": UDF_MODE,
            "runtime": "Python-Jep",
            "size": size,
            "overlap": overlap,
            "workers": workers,
            "context": context,
        },
        "outputs": {
            "geotiff": tif.name,
            "png": png.name,
            "report": "metrics.json",
            "shape": [s * h, s * w],
            "resolution_m": res_m,
        },
        "metrics": metrics,
        "runtime_s": {
            "udf": round(t_udf, 3),
            "metrics_and_figure": round(t_metrics, 3),
            "total": round(time.perf_counter() - t_start, 3),
        },
    }
    (out / "metrics.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def render_text(report: dict) -> str:
    """The short text summary printed by ``s2sr demo``."""
    m, md, met = report["model"], report["udf"], report["metrics"]
    inp, outs = report["input"], report["outputs"]
    lines = [
        (
            f"s2sr demo: {inp['scene']} ({inp['shape'][0]} x {inp['shape'][1]} px at {inp['resolution_m']:g} m) "
            f"-> {outs['resolution_m']:g} m"
        ),
        (
            f"model {m['name']} v{m['version']} ({m['arch']}, x{m['scale']}, {m['engine']}), "
            f"{m['file']} sha256 {m['sha256'].get(m['file'], '?')[:16]}..."
        ),
        (
            f"path: {md['file']} through {md['emulator']} (mode {md['mode']}, size {md['size']}, overlap "
            f"{md['overlap']}) in {report['runtime_s']['udf']:.1f} s"
        ),
        "reflectance consistency L1 (SR / bicubic), per band:",
    ]
    for b, v in met["consistency_l1"].items():
        lines.append(f"  {b:4s} {v['sr']:.5f} / {v['bicubic']:.5f}")
    cm = met["consistency_l1_mean"]
    lines.append(f"  mean {cm['sr']:.5f} / {cm['bicubic']:.5f}")
    spec = ", ".join(
        f"{g}: {v['sr']:.3f} / {v['bicubic']:.3f}" for g, v in met["spectral_consistency_deg"].items()
    )
    lines.append(f"spectral consistency (SAM degrees, SR / bicubic): {spec}")
    sg = met["sharpness_gain"]
    lines.append(
        f"sharpness gain (HF power SR / bicubic above {sg['hf_cutoff_cycles_per_px']:g} cycles/px): mean "
        f"{sg['mean']:.2f} (" + ", ".join(f"{b} {v:.2f}" for b, v in sg["per_band"].items()) + ")"
    )
    o = report["outputs"]
    lines.append(
        f"wrote {o['geotiff']}, {o['png']}, {o['report']} (total {report['runtime_s']['total']:.1f} s)"
    )
    return "\n".join(lines)
