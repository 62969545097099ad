"""Report figures (matplotlib, Agg canvas, no pyplot state): RGB triptych, power spectra, band histograms."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sr_core.bands import MODEL_BANDS_10

__all__ = ["plot_histograms", "plot_power_spectra", "plot_rgb_comparison", "plot_triptych"]


def _new_figure(w: float, h: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(w, h), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _stretch(rgb: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    return np.clip((rgb - lo[:, None, None]) / np.maximum(hi - lo, 1e-12)[:, None, None], 0, 1).transpose(
        1, 2, 0
    )


def _zoom_window(img: np.ndarray, size: int) -> tuple[int, int]:
    """Top-left of the most structured of 3 x 3 candidate windows (mean absolute gradient of the band mean)."""
    g = np.nan_to_num(img.mean(0))
    h, w = g.shape
    best, pos = -1.0, (0, 0)
    for fy in (0.25, 0.5, 0.75):
        for fx in (0.25, 0.5, 0.75):
            y = int(min(max(fy * h - size / 2, 0), h - size))
            x = int(min(max(fx * w - size / 2, 0), w - size))
            c = g[y : y + size, x : x + size]
            s = float(np.abs(np.diff(c, axis=0)).mean() + np.abs(np.diff(c, axis=1)).mean())
            if s > best:
                best, pos = s, (y, x)
    return pos


def plot_rgb_comparison(
    lr_rgb: np.ndarray,
    bicubic_rgb: np.ndarray,
    sr_rgb: np.ndarray,
    path: str | Path,
    *,
    title: str = "",
    zoom: int | None = None,
    labels: tuple[str, str, str] = ("input 10 m (nearest)", "bicubic", "super-resolved"),
) -> Path:
    """Side-by-side PNG: ``lr_rgb`` ``(3, h, w)`` nearest-upsampled, ``bicubic_rgb`` and ``sr_rgb``
    ``(3, s h, s w)`` (reflectance, R G B), one 2-98 % per-channel stretch from the input for all panels, a
    second row of zoomed crops (``zoom`` output pixels, default a quarter of the smaller side, at least 16)."""
    lr, bic, sr = (np.asarray(a, dtype=np.float64) for a in (lr_rgb, bicubic_rgb, sr_rgb))
    if lr.ndim != 3 or lr.shape[0] != 3 or bic.shape != sr.shape or sr.shape[0] != 3:
        raise ValueError(
            f"expected lr (3, h, w) and bicubic/sr (3, H, W), got {lr.shape}, {bic.shape}, {sr.shape}"
        )
    s = sr.shape[1] // lr.shape[1]
    if s < 1 or sr.shape[1:] != (s * lr.shape[1], s * lr.shape[2]):
        raise ValueError(f"sr {sr.shape} is not an integer multiple of lr {lr.shape}")
    near = lr.repeat(s, axis=1).repeat(s, axis=2)
    flat = lr.reshape(3, -1)
    flat = flat[:, np.isfinite(flat).all(0)]
    if flat.shape[1] == 0:
        lo, hi = np.zeros(3), np.ones(3)
    else:
        lo, hi = np.percentile(flat, 2, axis=1), np.percentile(flat, 98, axis=1)
    H, W = sr.shape[1:]
    z = min(zoom if zoom is not None else max(16, min(H, W) // 4), H, W)
    y, x = _zoom_window(sr, z)
    fig = _new_figure(12, 8.4)
    for j, (img, name) in enumerate(zip((near, bic, sr), labels)):
        ax = fig.add_subplot(2, 3, j + 1)
        ax.imshow(_stretch(img, lo, hi), interpolation="nearest")
        ax.add_patch(_rect(x, y, z))
        ax.set_title(name, fontsize=10)
        ax.set_axis_off()
        ax2 = fig.add_subplot(2, 3, j + 4)
        ax2.imshow(_stretch(img[:, y : y + z, x : x + z], lo, hi), interpolation="nearest")
        ax2.set_title(f"{name}, zoom", fontsize=9)
        ax2.set_axis_off()
    if title:
        fig.suptitle(title, fontsize=11)
    fig.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=0.92, wspace=0.04, hspace=0.1)
    return _save(fig, path)


def plot_triptych(
    lr: np.ndarray,
    bicubic: np.ndarray,
    sr: np.ndarray,
    path: str | Path,
    *,
    title: str = "",
    zoom: int | None = None,
) -> Path:
    """RGB (B04, B03, B02) triptych: input upsampled nearest / bicubic / SR, and a zoomed row.

    ``lr`` (10, h, w) is the model input (MODEL_BANDS_10 order), ``bicubic`` and ``sr`` (10, 2h, 2w). One 2-98 %
    per-channel stretch computed from the input is applied to all panels. ``zoom``: side of the zoomed window
    in output pixels (default a quarter of the smaller side, at least 16); written as PNG at ``path``.
    """
    lr, bicubic, sr = (np.asarray(a, dtype=np.float64) for a in (lr, bicubic, sr))
    if (
        lr.ndim != 3
        or lr.shape[0] != 10
        or sr.shape != bicubic.shape
        or sr.shape != (10, 2 * lr.shape[1], 2 * lr.shape[2])
    ):
        raise ValueError(
            f"expected lr (10, h, w) and bicubic/sr (10, 2h, 2w), got {lr.shape}, {bicubic.shape}, {sr.shape}"
        )
    rgb_idx = [MODEL_BANDS_10.index(b) for b in ("B04", "B03", "B02")]
    return plot_rgb_comparison(
        lr[rgb_idx], bicubic[rgb_idx], sr[rgb_idx], path, title=title, zoom=zoom,
        labels=("input 10 m (nearest)", "bicubic x2", "super-resolved x2"),
    )


def _save(fig: Any, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path


def _grid_axes(fig: Any, c: int, title: str, xlabel: str) -> Any:
    """Axes ``c`` of a 2 x 5 band grid, with light ticks (few labels: drawing ticks dominates the cost)."""
    from matplotlib.ticker import MaxNLocator

    ax = fig.add_subplot(2, 5, c + 1)
    ax.set_title(title, fontsize=9)
    ax.tick_params(labelsize=7)
    ax.xaxis.set_major_locator(MaxNLocator(4))
    if c >= 5:
        ax.set_xlabel(xlabel, fontsize=8)
    return ax


def _rect(x: int, y: int, z: int):
    from matplotlib.patches import Rectangle

    return Rectangle((x - 0.5, y - 0.5), z, z, fill=False, edgecolor="yellow", linewidth=1.0)


def plot_power_spectra(
    freqs: np.ndarray,
    p_sr: np.ndarray,
    p_bicubic: np.ndarray,
    path: str | Path,
    *,
    p_input: Sequence[np.ndarray] | None = None,
    f_input: Sequence[np.ndarray] | None = None,
    hf_cutoff: float = 0.25,
    title: str = "",
) -> Path:
    """Radially averaged power spectra per band (log scale), SR vs bicubic (and the input on its own grid,
    frequencies in cycles per output pixel), with the ``hf_cutoff`` line. ``p_sr``/``p_bicubic`` (10, K)."""
    from matplotlib.ticker import LogLocator, NullLocator

    fig = _new_figure(15, 6)
    for c, band in enumerate(MODEL_BANDS_10):
        ax = _grid_axes(fig, c, band, "cycles / 5 m pixel")
        curves = [(freqs, p_sr[c], "SR", "-"), (freqs, p_bicubic[c], "bicubic", "--")]
        if p_input is not None and f_input is not None:
            curves.append((f_input[c], p_input[c], "input (native grid)", ":"))
        top = 0.0
        for f, p, label, ls in curves:
            f, p = np.asarray(f)[1:], np.asarray(p)[1:]  # no DC bin
            ax.plot(f, np.maximum(p, 1e-30), ls, label=label, linewidth=1.0)
            top = max(top, float(np.nanmax(p)) if p.size else 0.0)
        ax.set_yscale("log")
        if top > 0:
            ax.set_ylim(top * 1e-7, top * 2)
        ax.yaxis.set_major_locator(LogLocator(numticks=4))
        ax.yaxis.set_minor_locator(NullLocator())
        ax.axvline(hf_cutoff, color="k", linewidth=0.6, linestyle=":")
        if c == 0:
            ax.legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.subplots_adjust(left=0.05, right=0.99, bottom=0.09, top=0.9, wspace=0.3, hspace=0.3)
    return _save(fig, path)


def plot_histograms(
    sr: np.ndarray, inputs: Sequence[np.ndarray], path: str | Path, *, title: str = "", bins: int = 64
) -> Path:
    """Per-band reflectance histograms (densities), SR vs the input band on its native grid.

    ``sr`` (10, H, W); ``inputs``: 10 arrays (native grids, MODEL_BANDS_10 order). Bins span the 0.5-99.5 %
    range of the input band; non-finite values are ignored."""
    fig = _new_figure(15, 6)
    for c, band in enumerate(MODEL_BANDS_10):
        a = np.asarray(inputs[c], dtype=np.float64).ravel()
        s = np.asarray(sr[c], dtype=np.float64).ravel()
        a, s = a[np.isfinite(a)], s[np.isfinite(s)]
        ax = _grid_axes(fig, c, band, "reflectance")
        ax.set_yticks([])
        if a.size and s.size:
            lo, hi = np.percentile(a, [0.5, 99.5])
            if hi <= lo:
                hi = lo + 1e-3
            edges = np.linspace(lo, hi, bins + 1)
            centres = 0.5 * (edges[1:] + edges[:-1])
            for v, label in ((a, "input"), (s, "SR")):
                dens, _ = np.histogram(v, bins=edges, density=True)
                ax.step(centres, dens, where="mid", label=label, linewidth=1.0)
        if c == 0:
            ax.legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.subplots_adjust(left=0.02, right=0.99, bottom=0.09, top=0.9, wspace=0.15, hspace=0.3)
    return _save(fig, path)
