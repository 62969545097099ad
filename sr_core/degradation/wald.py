"""The Wald protocol: degraded inputs and original targets from a real scene, the 10-band model input."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

import torch

from sr_core.bands import BANDS_10M, BANDS_20M, normalize_band_names
from sr_core.degradation.psf import _check_image, _check_ratio, degrade

__all__ = ["WaldPair", "wald_crop_size", "wald_pairs", "model_input_10band"]

# --------------------------------------------------------------------------- Wald protocol


@dataclass(frozen=True)
class WaldPair:
    """A Wald-protocol training pair; iterating yields ``(lr10, lr20, hr10, hr20)`` (4-way unpacking works).

    ``hr10`` ``(N, 4, H, W)`` and ``hr20`` ``(N, 6, H/2, W/2)`` are the (cropped) originals; ``lr10``
    ``(N, 4, H/f, W/f)`` and ``lr20`` ``(N, 6, H/(2f), W/(2f))`` their degradations by ``factor`` f.
    ``crop`` = ``(H, W)``: the kept top-left window of the input 10 m grid (rows/cols ``0:H``, ``0:W``;
    20 m grid ``0:H/2``, ``0:W/2``), so the geo-referencing origin is unchanged.
    """

    lr10: torch.Tensor
    lr20: torch.Tensor
    hr10: torch.Tensor
    hr20: torch.Tensor
    crop: tuple[int, int]
    factor: int = 2

    def __iter__(self) -> Iterator[torch.Tensor]:
        return iter((self.lr10, self.lr20, self.hr10, self.hr20))

    @property
    def model_input(self) -> torch.Tensor:
        """:func:`model_input_10band` of the degraded bands: ``(N, 10, H/f, W/f)`` (degraded 10 m grid)."""
        return model_input_10band(self.lr10, self.lr20)


def wald_crop_size(height: int, width: int, factor: int = 2) -> tuple[int, int]:
    """Largest ``(H, W)`` <= ``(height, width)`` that are multiples of ``2 * factor`` (10 m grid)."""
    factor = _check_ratio(factor)
    q = 2 * factor
    h, w = height - height % q, width - width % q
    if h == 0 or w == 0:
        raise ValueError(
            f"10 m grid {height}x{width} is smaller than 2*factor = {q} pixels: nothing left after cropping"
        )
    return h, w


def wald_pairs(
    bands10: torch.Tensor,
    bands20: torch.Tensor,
    factor: int = 2,
    *,
    bands10_names: Sequence[str] = BANDS_10M,
    bands20_names: Sequence[str] = BANDS_20M,
    degrade_fn: Callable[..., torch.Tensor] | None = None,
) -> WaldPair:
    """Wald-protocol pair from a real scene: degrade every band by ``factor``, keep the originals as targets.

    ``bands10`` ``(N, C10, H, W)`` (10 m bands, ``bands10_names`` order) and ``bands20``
    ``(N, C20, H/2, W/2)`` on nested grids (``bands20`` exactly half the size). Both are first cropped
    to the top-left window whose 10 m size is the largest multiple of ``2 * factor``
    (:func:`wald_crop_size`; ``WaldPair.crop``), so the 20 m grid divides by ``factor`` too and the
    geo-referencing origin is unchanged. Then ``hr10``/``hr20`` are the crops,
    ``lr10 = degrade_fn(hr10, factor, bands=bands10_names)`` (20 m for factor 2) and
    ``lr20 = degrade_fn(hr20, factor, bands=bands20_names)`` (40 m). ``degrade_fn`` defaults to
    :func:`degrade`: each band's own MTF at the new Nyquist frequency (the usual Wald assumption of
    scale invariance). Inputs/targets of the 10-band model: :func:`model_input_10band`.
    """
    _check_image(bands10, "bands10")
    _check_image(bands20, "bands20")
    factor = _check_ratio(factor)
    n10, n20 = normalize_band_names(bands10_names), normalize_band_names(bands20_names)
    if bands10.shape[1] != len(n10):
        raise ValueError(
            f"bands10 has {bands10.shape[1]} bands but bands10_names has {len(n10)}: {', '.join(n10)}"
        )
    if bands20.shape[1] != len(n20):
        raise ValueError(
            f"bands20 has {bands20.shape[1]} bands but bands20_names has {len(n20)}: {', '.join(n20)}"
        )
    if bands10.shape[0] != bands20.shape[0]:
        raise ValueError(
            f"batch sizes differ: bands10 has N={bands10.shape[0]}, bands20 has N={bands20.shape[0]}"
        )
    h, w = bands10.shape[-2:]
    if tuple(bands20.shape[-2:]) != (h // 2, w // 2) or h % 2 or w % 2:
        raise ValueError(
            f"the 20 m grid {tuple(bands20.shape[-2:])} does not nest in the 10 m grid {(h, w)}: "
            "expected exactly half the 10 m size"
        )
    hc, wc = wald_crop_size(h, w, factor)
    hr10 = bands10[:, :, :hc, :wc]
    hr20 = bands20[:, :, : hc // 2, : wc // 2]
    fn = degrade if degrade_fn is None else degrade_fn
    lr10 = fn(hr10, factor, bands=n10)
    lr20 = fn(hr20, factor, bands=n20)
    return WaldPair(lr10=lr10, lr20=lr20, hr10=hr10, hr20=hr20, crop=(hc, wc), factor=factor)


def _check_nested(b10: torch.Tensor, b20: torch.Tensor) -> None:
    _check_image(b10, "b10")
    _check_image(b20, "b20")
    if b10.shape[0] != b20.shape[0]:
        raise ValueError(f"batch sizes differ: b10 has N={b10.shape[0]}, b20 has N={b20.shape[0]}")
    h, w = b10.shape[-2:]
    if (2 * b20.shape[-2], 2 * b20.shape[-1]) != (h, w):
        raise ValueError(f"b20 grid {tuple(b20.shape[-2:])} must be exactly half of the b10 grid {(h, w)}")


def model_input_10band(b10: torch.Tensor, b20: torch.Tensor) -> torch.Tensor:
    """Input of the 10-band x2 model: ``cat(b10, nearest_x2(b20))``, ``(N, C10 + C20, H, W)`` on the b10 grid.

    ``b10`` ``(N, 4, H, W)`` in ``BANDS_10M`` order and ``b20`` ``(N, 6, H/2, W/2)`` in ``BANDS_20M``
    order give ``MODEL_BANDS_10`` order. The 20 m bands are replicated into 2 x 2 blocks, exactly what an
    openEO back-end (``load_collection`` / ``resample_spatial(method="near")``) and
    :meth:`sr_core.io.Scene.to_dataarray` deliver: the project's model input contract
    (docs/decisions/2026-11-22-model-input-contract.md). The outer bounds of the two grids are identical.

    Wald pair for this model (factor 2): input ``model_input_10band(lr10, lr20)`` on the degraded 10 m-band
    grid (20 m spacing; 10 m bands at 20 m resolution, 20 m bands at 40 m resolution); the model outputs on
    the 10 m grid. Targets per band group:

    * 10 m bands: ``hr10`` on the output grid, exact.
    * 20 m bands: their x2 target (40 m -> 20 m resolution) is ``hr20`` itself, on the model's *input* grid.
      The output's 20 m bands are mapped back onto that grid with :func:`degrade` by 2 (the sensor's own
      operator) and compared with ``hr20`` (used by the training losses and the Wald evaluation).
    """
    _check_nested(b10, b20)
    return torch.cat([b10, b20.repeat_interleave(2, dim=-2).repeat_interleave(2, dim=-1)], dim=1)
