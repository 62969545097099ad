"""Seamless tiled inference and HR grid coordinates.

Conventions
-----------
* A *model* is any callable ``fn(lr) -> sr`` with ``lr`` of shape ``(N, C, h, w)`` and ``sr`` of shape
  ``(N, C_out, scale*h, scale*w)``; it may take and return numpy arrays or torch tensors.  Its
  ``receptive_field`` is the full width, in LR pixels, of the input window that can influence one output
  pixel (odd); the margin a tile needs on each side is ``receptive_field // 2`` (:func:`required_margin`).
* Networks zero-pad inside, so the canonical border treatment of the project is: pad the *scene* by edge
  replication with the margin, run, crop (:func:`whole_apply`).  :func:`tiled_apply` reproduces it tile by
  tile: each tile is read with the margin (clipped to the scene), edge-padded where the read window leaves
  the scene, run, and its margin (``margin * scale`` HR pixels) is cropped.  With ``margin >= rf // 2`` the
  two are equal up to floating-point summation order.
* Windows are in array (row, column) pixel indices, half-open, ``[row0, row1)``.  HR index = LR index *
  ``scale``; LR pixel ``(i, j)`` maps to the HR block ``[s*i, s*i + s) x [s*j, s*j + s)``.
* Coordinates (:func:`hr_coords`, :func:`hr_transform`) are cell centres; the LR and HR grids share their
  outer bounds.

numpy first: torch is never imported here; torch tensors are recognised when torch is already loaded.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from sr_core.checks import check_int

__all__ = [
    "in_order",
    "required_margin",
    "TileWindow",
    "plan_tiles",
    "edge_pad",
    "extract_tile",
    "iter_tiles",
    "tiled_apply",
    "whole_apply",
    "hr_coords",
    "hr_transform",
]

Array = Any  # np.ndarray | torch.Tensor


# ---------------------------------------------------------------------------------------------- checks




def _is_torch(x: Any) -> bool:
    tensor = getattr(sys.modules.get("torch"), "Tensor", None)  # None while another thread imports torch
    return tensor is not None and isinstance(x, tensor)


def _to_numpy(x: Any) -> np.ndarray:
    if _is_torch(x):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def required_margin(receptive_field: int) -> int:
    """Margin (LR pixels per side) a tile needs for a model of full receptive-field width ``receptive_field``.

    ``receptive_field`` must be an odd integer >= 1; the margin is ``receptive_field // 2``.
    """
    rf = check_int("receptive_field", receptive_field, 1)
    if rf % 2 != 1:
        raise ValueError(f"receptive_field must be odd (full window width in LR pixels), got {rf}")
    return rf // 2


# -------------------------------------------------------------------------------------------- planning


@dataclass(frozen=True)
class TileWindow:
    """One tile of a scene of LR size ``(height, width)``.

    * core ``[row0, row1) x [col0, col1)``: the LR pixels this tile produces; the cores of a plan partition
      the scene.
    * read ``[read_row0, read_row1) x [read_col0, read_col1)``: the core grown by ``margin`` on every side,
      clipped to the scene: what to read from the source.
    * ``pad_top, pad_bottom, pad_left, pad_right``: edge-replication padding of the read window (non-zero
      only where the grown window leaves the scene) so that the model input is always
      ``(core_h + 2*margin, core_w + 2*margin)``.
    * HR slices: :attr:`out` (where the tile goes in the HR scene) and :attr:`crop` (what to keep of the
      model output), both in HR pixels with the plan's ``scale``.
    """

    row0: int
    row1: int
    col0: int
    col1: int
    read_row0: int
    read_row1: int
    read_col0: int
    read_col1: int
    pad_top: int
    pad_bottom: int
    pad_left: int
    pad_right: int
    margin: int
    scale: int = 1

    @property
    def core(self) -> tuple[slice, slice]:
        """LR (rows, cols) slices of the core in the scene."""
        return slice(self.row0, self.row1), slice(self.col0, self.col1)

    @property
    def read(self) -> tuple[slice, slice]:
        """LR (rows, cols) slices of the read window in the scene."""
        return slice(self.read_row0, self.read_row1), slice(self.read_col0, self.read_col1)

    @property
    def pad(self) -> tuple[tuple[int, int], tuple[int, int]]:
        """``((top, bottom), (left, right))`` edge padding of the read window (np.pad layout)."""
        return (self.pad_top, self.pad_bottom), (self.pad_left, self.pad_right)

    @property
    def core_shape(self) -> tuple[int, int]:
        return self.row1 - self.row0, self.col1 - self.col0

    @property
    def input_shape(self) -> tuple[int, int]:
        """LR (h, w) of the model input: core + 2*margin."""
        h, w = self.core_shape
        return h + 2 * self.margin, w + 2 * self.margin

    @property
    def out(self) -> tuple[slice, slice]:
        """HR (rows, cols) slices of the core in the HR scene."""
        s = self.scale
        return slice(s * self.row0, s * self.row1), slice(s * self.col0, s * self.col1)

    @property
    def crop(self) -> tuple[slice, slice]:
        """HR (rows, cols) slices of the core inside the model output of this tile."""
        s, m = self.scale, self.margin
        h, w = self.core_shape
        return slice(s * m, s * (m + h)), slice(s * m, s * (m + w))


def _pair(name: str, value: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{name} must be an int or a (rows, cols) pair, got {value!r}")
        return check_int(name, value[0], 1), check_int(name, value[1], 1)
    v = check_int(name, value, 1)
    return v, v


def plan_tiles(
    height: int, width: int, *, tile: int | Sequence[int], margin: int, scale: int = 1
) -> list[TileWindow]:
    """Row-major tiles whose cores cover every pixel of a ``height x width`` LR scene exactly once.

    ``tile`` is the core size (int or ``(rows, cols)``, >= 1); the last row/column of tiles holds the
    remainder and may be smaller (down to 1 px).  ``margin`` (>= 0) is the LR context per side; ``scale``
    (>= 1) only sets the HR slices of the windows.
    """
    height = check_int("height", height, 1)
    width = check_int("width", width, 1)
    th, tw = _pair("tile", tile)
    margin = check_int("margin", margin, 0)
    scale = check_int("scale", scale, 1)
    tiles = []
    for r0 in range(0, height, th):
        r1 = min(r0 + th, height)
        rr0, rr1 = max(0, r0 - margin), min(height, r1 + margin)
        for c0 in range(0, width, tw):
            c1 = min(c0 + tw, width)
            rc0, rc1 = max(0, c0 - margin), min(width, c1 + margin)
            tiles.append(
                TileWindow(
                    row0=r0, row1=r1, col0=c0, col1=c1,
                    read_row0=rr0, read_row1=rr1, read_col0=rc0, read_col1=rc1,
                    pad_top=margin - (r0 - rr0), pad_bottom=margin - (rr1 - r1),
                    pad_left=margin - (c0 - rc0), pad_right=margin - (rc1 - c1),
                    margin=margin, scale=scale,
                )
            )
    return tiles


# --------------------------------------------------------------------------------------------- padding


def edge_pad(x: Array, pad: tuple[tuple[int, int], tuple[int, int]]) -> Array:
    """Edge-replicate the last two axes of ``x`` by ``((top, bottom), (left, right))`` (np.pad "edge").

    numpy arrays use ``np.pad``; torch tensors are padded by index gathering (any dtype, device kept).
    Padding a size-0 axis is an error.
    """
    (t, b), (l, r) = pad
    if min(t, b, l, r) < 0:
        raise ValueError(f"pad amounts must be >= 0, got {pad!r}")
    if t == b == l == r == 0:
        return x
    h, w = x.shape[-2:]
    if h == 0 or w == 0:
        raise ValueError(f"cannot edge-pad an empty array of shape {tuple(x.shape)}")
    if _is_torch(x):
        import torch

        rows = torch.arange(-t, h + b, device=x.device).clamp_(0, h - 1)
        cols = torch.arange(-l, w + r, device=x.device).clamp_(0, w - 1)
        return x.index_select(-2, rows).index_select(-1, cols)
    widths = [(0, 0)] * (x.ndim - 2) + [(t, b), (l, r)]
    return np.pad(x, widths, mode="edge")


def extract_tile(lr: Array, window: TileWindow) -> Array:
    """The model input of ``window``: the read window of ``lr`` ``(..., H, W)``, edge-padded.

    To read from disk instead, read ``window.read`` from the source and call ``edge_pad(data, window.pad)``.
    """
    rows, cols = window.read
    return edge_pad(lr[..., rows, cols], window.pad)


# --------------------------------------------------------------------------------------------- running


def _as_batch(lr: Array) -> tuple[Array, bool]:
    if lr.ndim == 3:
        return lr[None], True
    if lr.ndim == 4:
        return lr, False
    raise ValueError(f"lr must be (C, H, W) or (N, C, H, W), got shape {tuple(lr.shape)}")


def _call(fn: Callable[[Array], Array], x: Array) -> Array:
    if _is_torch(x):
        import torch

        with torch.no_grad():
            y = fn(x)
    else:
        y = fn(x)
    if _is_torch(y):
        y = y.detach()
    elif not isinstance(y, np.ndarray):
        raise ValueError(f"fn must return a numpy array or a torch tensor, got {type(y).__name__}")
    return y


def _check_output(y: Array, n: int, shape: tuple[int, int], scale: int) -> None:
    want = (n, scale * shape[0], scale * shape[1])
    if y.ndim != 4 or (y.shape[0], y.shape[2], y.shape[3]) != want:
        raise ValueError(
            f"fn returned shape {tuple(y.shape)} for an input of {n} x (C, {shape[0]}, {shape[1]}) "
            f"with scale={scale}; expected ({n}, C_out, {want[1]}, {want[2]})"
        )


def _concat(parts: list[Array]) -> Array:
    if len(parts) == 1:
        return parts[0]
    if _is_torch(parts[0]):
        import torch

        return torch.cat(parts, 0)
    return np.concatenate(parts, 0)


def iter_tiles(
    fn: Callable[[Array], Array],
    lr: Array,
    *,
    scale: int,
    tile: int | Sequence[int],
    margin: int,
    batch_size: int = 1,
    progress: Callable[[int, int], None] | None = None,
) -> Iterator[tuple[TileWindow, Array]]:
    """Run ``fn`` tile by tile over ``lr``; yield ``(window, sr_tile)`` with flat memory.

    ``lr`` is ``(C, H, W)`` or ``(N, C, H, W)`` (numpy or torch; tiles are passed to ``fn`` as the same type,
    always 4-D). ``sr_tile`` is the cropped core output, ``(C_out, s*h, s*w)`` or ``(N, C_out, s*h, s*w)``
    like ``lr``, of the type ``fn`` returns (torch outputs detached; ``fn`` runs under ``torch.no_grad``
    for torch input); it belongs in the HR scene at ``window.out``.  With ``batch_size > 1`` up to that many
    tiles of equal input size go to ``fn`` in one call (concatenated along dim 0, tile-major); tiles are then
    not necessarily yielded in plan order.  ``progress(done, total)`` is called after each yielded tile.
    """
    scale = check_int("scale", scale, 1)
    batch_size = check_int("batch_size", batch_size, 1)
    x, squeeze = _as_batch(lr)
    n = x.shape[0]
    plan = plan_tiles(x.shape[-2], x.shape[-1], tile=tile, margin=margin, scale=scale)
    total, done = len(plan), 0
    pending: dict[tuple[int, int], list[TileWindow]] = {}

    def flush(group: list[TileWindow]) -> Iterator[tuple[TileWindow, Array]]:
        inp = _concat([extract_tile(x, w) for w in group])
        y = _call(fn, inp)
        _check_output(y, n * len(group), group[0].input_shape, scale)
        for k, w in enumerate(group):
            rows, cols = w.crop
            part = y[k * n : (k + 1) * n, :, rows, cols]
            yield w, (part[0] if squeeze else part)

    for w in plan:
        group = pending.setdefault(w.input_shape, [])
        group.append(w)
        if len(group) == batch_size:
            del pending[w.input_shape]
            for item in flush(group):
                done += 1
                yield item
                if progress is not None:
                    progress(done, total)
    for group in pending.values():
        for item in flush(group):
            done += 1
            yield item
            if progress is not None:
                progress(done, total)


def _write(out: Any, key: tuple[slice, ...], value: Array) -> None:
    if _is_torch(out):
        if not _is_torch(value):
            import torch

            value = torch.from_numpy(np.ascontiguousarray(value))
        out[key] = value.to(device=out.device, dtype=out.dtype)
    else:
        out[key] = _to_numpy(value)


def tiled_apply(
    fn: Callable[[Array], Array],
    lr: Array,
    *,
    scale: int,
    tile: int | Sequence[int],
    margin: int,
    batch_size: int = 1,
    out: Any = None,
    progress: Callable[[int, int], None] | None = None,
) -> Any:
    """Seamless tiled ``fn(lr)``: equal to :func:`whole_apply` when ``margin >= receptive_field // 2``.

    ``lr``: ``(C, H, W)`` or ``(N, C, H, W)``, numpy or torch.  See :func:`iter_tiles` for ``tile``,
    ``batch_size`` and ``progress``.

    ``out``: where to write the HR result, ``(C_out, s*H, s*W)`` or ``(N, C_out, s*H, s*W)`` like ``lr``.
    ``None`` allocates it from the first tile (numpy array, or torch tensor on the output's device, with
    ``fn``'s output dtype).  Otherwise any object with ``__setitem__`` taking a tuple of slices
    ``(slice(None), [slice(None),] rows, cols)`` (rows/cols in HR pixels): a numpy array, a
    ``np.memmap``, a torch tensor (values converted to its device/dtype), or a writer adapter, e.g. for
    rasterio (bands-first, N absent)::

        class WindowWriter:
            def __init__(self, dst): self.dst = dst
            def __setitem__(self, key, value):
                _, rows, cols = key
                win = rasterio.windows.Window(cols.start, rows.start, cols.stop - cols.start,
                                              rows.stop - rows.start)
                self.dst.write(value, window=win)

    Values given to non-torch ``out`` are numpy arrays. If ``out`` has a ``shape`` it is checked. Returns
    ``out``.
    """
    x, squeeze = _as_batch(lr)
    lead = () if squeeze else (slice(None),)
    for w, sr_tile in iter_tiles(
        fn, lr, scale=scale, tile=tile, margin=margin, batch_size=batch_size, progress=progress
    ):
        c_out = sr_tile.shape[-3]
        want = (*((x.shape[0],) if not squeeze else ()), c_out, scale * x.shape[-2], scale * x.shape[-1])
        if out is None:
            if _is_torch(sr_tile):
                import torch

                out = torch.empty(want, dtype=sr_tile.dtype, device=sr_tile.device)
            else:
                out = np.empty(want, dtype=sr_tile.dtype)
        elif hasattr(out, "shape") and tuple(out.shape) != want:
            raise ValueError(f"out has shape {tuple(out.shape)}, expected {want}")
        rows, cols = w.out
        _write(out, (*lead, slice(None), rows, cols), sr_tile)
    return out


def whole_apply(fn: Callable[[Array], Array], lr: Array, *, scale: int, margin: int) -> Array:
    """The reference: edge-pad the whole scene by ``margin``, run ``fn`` once, crop ``margin * scale``.

    ``lr`` is ``(C, H, W)`` or ``(N, C, H, W)`` (numpy or torch); the result has the same layout and the
    type ``fn`` returns.
    """
    scale = check_int("scale", scale, 1)
    margin = check_int("margin", margin, 0)
    x, squeeze = _as_batch(lr)
    h, w = x.shape[-2:]
    if h < 1 or w < 1:
        raise ValueError(f"lr must have a non-empty spatial size, got shape {tuple(lr.shape)}")
    y = _call(fn, edge_pad(x, ((margin, margin), (margin, margin))))
    _check_output(y, x.shape[0], (h + 2 * margin, w + 2 * margin), scale)
    m = margin * scale
    y = y[:, :, m : m + scale * h, m : m + scale * w]
    return y[0] if squeeze else y


# ----------------------------------------------------------------------------------------- coordinates


def hr_coords(x_lr: np.ndarray, scale: int, *, dx: float | None = None) -> np.ndarray:
    """Cell-centre coordinates of the HR grid from the LR cell centres ``x_lr`` (1-D, regular).

    ``x_hr[k] = x_lr[0] - dx/2 + dx/(2*scale) + k*dx/scale`` for ``k = 0 .. scale*n - 1`` with
    ``dx = x_lr[1] - x_lr[0]`` (negative for a north-up y axis). The outer bounds of both grids are
    identical and the HR spacing is ``dx / scale``. A single LR coordinate needs an explicit ``dx``; with
    more, ``dx`` (if given) must match the spacing. Computed in float64.
    """
    scale = check_int("scale", scale, 1)
    x = np.asarray(x_lr, dtype=np.float64)
    if x.ndim != 1 or x.size == 0:
        raise ValueError(f"x_lr must be a non-empty 1-D array, got shape {x.shape}")
    n = x.size
    if n == 1:
        if dx is None:
            raise ValueError("x_lr has a single coordinate: pass the pixel spacing dx explicitly")
        step = float(dx)
    else:
        step = float(x[1] - x[0])
        diffs = np.diff(x)
        tol = 1e-9 * max(abs(step), np.abs(x).max())
        if step == 0 or np.abs(diffs - step).max() > tol:
            raise ValueError("x_lr must be regularly spaced with a non-zero step")
        if dx is not None and abs(float(dx) - step) > tol:
            raise ValueError(f"dx={dx!r} disagrees with the spacing of x_lr ({step!r})")
    if not np.isfinite(step) or step == 0:
        raise ValueError(f"dx must be finite and non-zero, got {step!r}")
    k = np.arange(scale * n, dtype=np.float64)
    return x[0] - step / 2 + (k + 0.5) * (step / scale)


def hr_transform(transform: Any, scale: int) -> Any:
    """Affine geotransform of the HR grid: same origin (outer corner), pixel size divided by ``scale``.

    ``transform`` is in rasterio/affine order ``(a, b, c, d, e, f)`` with ``x = a*col + b*row + c`` and
    ``y = d*col + e*row + f`` (a 6-tuple, a 9-tuple ending ``0, 0, 1``, or an ``affine.Affine``; GDAL's
    ``(c, a, b, f, d, e)`` order is NOT accepted).  Returns the same kind (``Affine`` in, ``Affine`` out;
    otherwise a 6-tuple of floats).  HR bounds over ``scale*W x scale*H`` pixels equal the LR bounds.
    """
    scale = check_int("scale", scale, 1)
    vals = tuple(float(v) for v in tuple(transform))
    if len(vals) == 9:
        if vals[6:] != (0.0, 0.0, 1.0):
            raise ValueError(f"transform's last row must be (0, 0, 1), got {vals[6:]}")
        vals = vals[:6]
    if len(vals) != 6:
        raise ValueError(f"transform must have 6 (or 9) elements (a, b, c, d, e, f), got {len(vals)}")
    a, b, c, d, e, f = vals
    new = (a / scale, b / scale, c, d / scale, e / scale, f)
    affine = getattr(sys.modules.get("affine"), "Affine", None)  # None while another thread imports affine
    if affine is not None and isinstance(transform, affine):
        return affine(*new)
    return new


def in_order(submit: Callable[[int], Any], n: int, window: int,
             wait: Callable[[Any], Any] = lambda fut: fut.result()) -> Iterator[Any]:
    """The results of the futures ``submit(0)`` .. ``submit(n - 1)`` in that order, with at most ``window`` of
    them submitted and not yet taken: the next one is submitted as soon as one is taken (before it is yielded, so
    it runs while the caller works on this one). ``wait(future)`` takes a result (a hook for timing). When the
    caller stops early (an error, ``close()``), the futures not started yet are cancelled."""
    import collections

    pending: collections.deque = collections.deque()
    nxt = 0
    try:
        while nxt < n and len(pending) < window:
            pending.append(submit(nxt))
            nxt += 1
        while pending:
            res = wait(pending.popleft())
            if nxt < n:
                pending.append(submit(nxt))
                nxt += 1
            yield res
            del res
    finally:
        for fut in pending:
            fut.cancel()
