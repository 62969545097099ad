"""Small random model packages for tests and dry runs of the UDF path (never for real output).

``make_package(folder, arch="edsr", ...)`` writes a complete package (``model.pt``, ``model.onnx``, ``card.json``,
``card.md``) of a tiny randomly initialised network with the real band contract, so the whole chain (UDF,
emulator, process graph, archive) can run before trained weights exist. Multi-image archs (``highresnet``,
``rams``) get an ONNX file with the inputs ``lr`` ``(N, T, C, H, W)`` and ``mask`` ``(N, T)`` (float 0/1) for a
fixed ``T = frames``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

from sr_core.bands import MODEL_BANDS_10

__all__ = ["make_package", "random_s2_cube", "nearest_resample", "MISR_ARCHS"]

MISR_ARCHS = ("highresnet", "highresnet_anchor", "misr_sisr", "rams")


def make_package(
    folder: str | os.PathLike,
    *,
    arch: str = "edsr",
    arch_kwargs: dict[str, Any] | None = None,
    bands: Sequence[str] = MODEL_BANDS_10,
    out_bands: Sequence[str] | None = None,
    scale: int = 2,
    name: str | None = None,
    seed: int = 0,
    weight_std: float = 0.05,
    frames: int = 4,
    onnx: bool = True,
    postprocess: dict[str, Any] | None = None,
) -> Any:
    """Write a random package into ``folder`` and return its :class:`sr_core.models.card.ModelCard`.

    ``arch_kwargs`` default to a tiny network (8 features, 1 block). Every parameter is drawn from
    ``N(0, weight_std)`` with a ``torch.Generator`` seeded by ``seed`` (zero-initialised tails included, so
    the output is not just the bicubic base). Normalisation: mean 0.1, std 0.05 for every band. ``postprocess``:
    the card's post-processing (e.g. ``{"coarse_projection": {"bands": ["B05", ...], "factor": 2}}``).
    """
    import torch

    from sr_core.archs import get_arch
    from sr_core.models import ModelCard
    from sr_core.models.export import add_onnx_file, export_onnx, save_model_package
    from sr_core.models.network import SRModel

    bands = list(bands)
    out_bands = list(out_bands) if out_bands is not None else bands
    kw: dict[str, Any] = {"num_features": 8, "num_blocks": 1}
    if arch == "rams":
        kw.update(num_frames=frames, reduction=4)
    kw.update(arch_kwargs or {})
    kw.update(in_channels=len(bands), out_channels=len(out_bands), scale=scale)
    net = get_arch(arch, **kw)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * weight_std)
    mean, std = [0.1] * len(bands), [0.05] * len(bands)
    model = SRModel(net, mean, std, list(range(len(out_bands)))).eval()
    card = ModelCard(
        name=name or Path(folder).name,
        version="0.0-random",
        arch=arch,
        arch_kwargs=kw,
        bands=bands,
        out_bands=out_bands,
        scale=scale,
        input_resolution_m=10.0,
        receptive_field=int(net.receptive_field),
        mean=mean,
        std=std,
        description="Randomly initialised test package: not a trained model.",
        postprocess=dict(postprocess or {}),
    )
    misr = arch in MISR_ARCHS
    card = save_model_package(model, card, folder, export_onnx_file=onnx and not misr)
    if misr and onnx:
        out = Path(folder)

        class _MISR(torch.nn.Module):
            def __init__(self, m: SRModel) -> None:
                super().__init__()
                self.m = m

            def forward(self, lr: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
                x = (lr - self.m.mean) / self.m.std
                return self.m.net(x, mask) * self.m.out_std + self.m.out_mean

        example = (torch.zeros(1, frames, len(bands), 24, 24), torch.ones(1, frames))
        export_onnx(
            _MISR(model), out / "model.onnx", example, input_names=("lr", "mask"), output_names=("sr",),
            dynamic_dims={
                "lr": {0: "batch", 3: "lr_height", 4: "lr_width"},
                "mask": {0: "batch"},
                "sr": {0: "batch", 2: "sr_height", 3: "sr_width"},
            },
        )
        card = add_onnx_file(card, out)
    return card


def random_s2_cube(
    height: int,
    width: int,
    *,
    dates: int | None = None,
    bands: Sequence[str] = MODEL_BANDS_10,
    extra: Sequence[str] = ("SCL",),
    seed: int = 0,
    resolution: float = 10.0,
    x0: float = 500000.0,
    y0: float = 5600000.0,
    dtype: Any = "float32",
) -> Any:
    """A random Sentinel-2 DN cube on the ``resolution`` grid, as ``load_collection`` delivers it.

    Dims ``(t, bands, y, x)`` (``(bands, y, x)`` when ``dates`` is None). DN in [0, 6000) with the 20 m bands
    nearest-replicated in 2x2 blocks (phase 0) and ``SCL`` random classes 0..11 in 2x2 blocks. Coordinates are
    cell centres from the upper-left corner ``(x0, y0)``, ``y`` decreasing.
    """
    import numpy as np
    import xarray as xr

    from sr_core.bands import BANDS

    rng = np.random.default_rng(seed)
    t = 1 if dates is None else int(dates)
    labels = list(bands) + list(extra)
    data = np.empty((t, len(labels), height, width), dtype=np.float64)
    for k, lab in enumerate(labels):
        band = BANDS.get(lab)
        f = 2 if (band is not None and band.resolution == 20) or lab.upper() == "SCL" else 1
        hh, ww = -(-height // f), -(-width // f)
        if lab.upper() == "SCL":
            v = rng.integers(0, 12, size=(t, hh, ww)).astype(np.float64)
        else:
            v = np.round(rng.uniform(0, 6000, size=(t, hh, ww)))
        data[:, k] = np.repeat(np.repeat(v, f, axis=1), f, axis=2)[:, :height, :width]
    coords = {
        "bands": labels,
        "y": y0 - resolution * (np.arange(height) + 0.5),
        "x": x0 + resolution * (np.arange(width) + 0.5),
    }
    if dates is None:
        return xr.DataArray(data[0].astype(dtype), dims=("bands", "y", "x"), coords=coords)
    coords["t"] = np.array([np.datetime64("2024-06-01") + np.timedelta64(5 * i, "D") for i in range(t)])
    return xr.DataArray(data.astype(dtype), dims=("t", "bands", "y", "x"), coords=coords)


def nearest_resample(da: Any, factor: int) -> Any:
    """``resample_spatial(method="near")`` by an integer ``factor``: every pixel becomes a factor x factor block,
    cell-centre coordinates of the finer grid (same outer bounds)."""
    import numpy as np

    from sr_core.tiling import hr_coords

    values = np.repeat(np.repeat(np.asarray(da.transpose(..., "y", "x").values), factor, axis=-2), factor, axis=-1)
    import xarray as xr

    coords = {k: v for k, v in da.coords.items() if k not in ("x", "y")}
    coords["y"] = hr_coords(np.asarray(da.y.values, dtype=np.float64), factor)
    coords["x"] = hr_coords(np.asarray(da.x.values, dtype=np.float64), factor)
    dims = tuple(d for d in da.transpose(..., "y", "x").dims)
    return xr.DataArray(values, dims=dims, coords=coords, attrs=dict(da.attrs)).transpose(*da.dims)
