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

__all__ = ["make_package", "MISR_ARCHS"]

MISR_ARCHS = ("highresnet", "rams")


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
) -> Any:
    """Write a random package into ``folder`` and return its :class:`sr_core.models.ModelCard`.

    ``arch_kwargs`` default to a tiny network (8 features, 1 block). Every parameter is drawn from
    ``N(0, weight_std)`` with a ``torch.Generator`` seeded by ``seed`` (zero-initialised tails included, so
    the output is not just the bicubic base). Normalisation: mean 0.1, std 0.05 for every band.
    """
    import torch

    from sr_core.archs import get_arch
    from sr_core.export import export_onnx
    from sr_core.models import ModelCard, SRModel, save_model_package, sha256_file

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
        card.files["onnx"] = "model.onnx"
        card.sha256 = {f: sha256_file(out / f) for f in card.files.values()}
        card.write_json(out / "card.json")
    return card
