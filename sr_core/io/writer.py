"""Writing GeoTIFFs window by window (:class:`GeoTiffWriter`) and the output format of the super-resolved files.

* Output: tiled (:data:`BLOCKSIZE` px blocks), compressed GeoTIFF (:data:`COMPRESSIONS`; default ZSTD level 1:
  about as small as DEFLATE and several times faster to write; GDAL >= 2.3 reads it; ``compress="deflate"`` for
  older readers; :data:`PREDICTORS`: by default the horizontal predictor for integer output and none for float32
  output, whose low mantissa bytes the floating-point predictor hardly compresses: 19 % larger files, written in
  half the CPU time and read 30 % faster, docs/decisions/2026-11-22-float-output-predictor.md); optionally a
  Cloud-Optimized GeoTIFF with overviews (:mod:`sr_core.io.cog`). The file is written under a unique temporary
  name in its folder, checked complete and renamed over an existing file in one step
  (:mod:`sr_core.io.safe_output`).
* Values (:func:`output_format`, :func:`cast_output`): DN as float32 with NaN nodata, or the input's dtype with
  its nodata value (integer input without one: 0); integers are rounded and clipped, and a valid value never
  equals the nodata value.
* Tags: ``DN_SCALE``/``ADD_OFFSET`` (:func:`dn_convention_tags`), band descriptions and ``BANDNAME`` tags, and
  the model that made the file (:func:`model_tags`).

rasterio is imported when a writer is made: importing this module needs only numpy.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sr_core import __version__
from sr_core.checks import check_int
from sr_core.io.cog import HalvingWriter, IncompleteTiffError, check_tiles_complete, make_cog, overview_shapes
from sr_core.io.conventions import require_rasterio
from sr_core.io.safe_output import (
    check_output_target,
    remove_quietly,
    replace_output,
    temporary_path,
    write_error,
)
from sr_core.io.source import Window

__all__ = [
    "BLOCKSIZE",
    "COMPRESSIONS",
    "DEFAULT_COMPRESS",
    "DEFAULT_PREDICTOR",
    "OUTPUT_DTYPES",
    "PREDICTORS",
    "GeoTiffWriter",
    "cast_output",
    "dn_convention_tags",
    "model_tags",
    "output_format",
    "output_paths",
    "predictor_code",
]

#: GeoTIFF block size of the output, in output pixels.
BLOCKSIZE = 256
#: Output compressions: name -> (GDAL COMPRESS, creation options of the level).
COMPRESSIONS = {
    "zstd": ("ZSTD", {"zstd_level": 1}),
    "deflate": ("DEFLATE", {"zlevel": 6}),
    "lzw": ("LZW", {}),
    "none": (None, {}),
}
DEFAULT_COMPRESS = "zstd"
#: Output predictors: ``"auto"`` (horizontal differencing for integer output, none for float output), ``"yes"``
#: (horizontal for integers, floating-point for floats: the smallest files), ``"no"``.
PREDICTORS = ("auto", "yes", "no")
DEFAULT_PREDICTOR = "auto"
#: ``dtype`` choices: ``"float32"`` (DN as float32, NaN nodata) or ``"input"`` (the input's dtype).
OUTPUT_DTYPES = ("float32", "input")


def output_paths(output: str | os.PathLike, dates: Sequence[str]) -> list[Path]:
    """Output file per date: ``output`` itself for one date, ``<stem>_<date><suffix>`` for several."""
    out = Path(output)
    if len(dates) <= 1:
        return [out]
    return [out.with_name(f"{out.stem}_{d}{out.suffix}") for d in dates]


def _fmt_number(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else repr(float(v))


def dn_convention_tags(dn_scale: float, add_offset: float) -> dict[str, str]:
    """The ``DN_SCALE``/``ADD_OFFSET`` tags of a file of DN (integers written without a decimal point)."""
    return {"DN_SCALE": _fmt_number(dn_scale), "ADD_OFFSET": _fmt_number(add_offset)}


def output_format(
    dtype: str, *, input_dtype: Any, input_nodata: float | None, where: str
) -> tuple[np.dtype, float]:
    """``(dtype, nodata)`` of the output for :data:`OUTPUT_DTYPES` ``dtype`` and an input stored as ``input_dtype``
    with nodata value ``input_nodata`` (None: none); ``where`` names the input in errors."""
    if dtype not in OUTPUT_DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(OUTPUT_DTYPES)}, got {dtype!r}")
    if dtype == "float32":
        return np.dtype(np.float32), float("nan")
    dt = np.dtype(input_dtype)
    if dt.kind == "f":
        return dt, (input_nodata if input_nodata is not None else float("nan"))
    if dt.kind not in "iu":
        raise ValueError(f"{where}: cannot write output in the input dtype {dt}")
    nodata = input_nodata if input_nodata is not None else 0.0
    info = np.iinfo(dt)
    if not (info.min <= nodata <= info.max and float(nodata).is_integer()):
        raise ValueError(f"{where}: nodata {nodata!r} does not fit the dtype {dt}")
    return dt, float(nodata)


def cast_output(dn: np.ndarray, dtype: np.dtype, nodata: float, *, inplace: bool = False) -> np.ndarray:
    """DN float32 (NaN or +-inf = nodata) -> ``dtype``. Integers: rounded half to even, clipped to the dtype's
    range; a valid value never equals ``nodata`` (moved by one DN). ``inplace``: ``dn`` may be overwritten (the
    caller's scratch array), which saves a copy."""
    if dtype.kind == "f":
        out = dn.astype(dtype, copy=not inplace)
        if not math.isnan(nodata):
            bad = ~np.isfinite(out)
            if bad.any():
                out[bad] = nodata
        return out
    info = np.iinfo(dtype)
    lo, hi = float(info.min), float(info.max)
    if nodata == lo:
        lo += 1
    elif nodata == hi:
        hi -= 1
    v = dn if inplace and dn.flags.writeable and dn.dtype == np.float32 else np.array(dn, dtype=np.float32)
    bad = ~np.isfinite(v)
    has_bad = bool(bad.any())
    np.rint(v, out=v)
    np.clip(v, lo, hi, out=v)  # NaN stays NaN (overwritten below)
    if lo < nodata < hi:
        v[v == nodata] = nodata + 1
    with np.errstate(invalid="ignore"):
        out = v.astype(dtype)
    if has_bad:
        out[bad] = nodata
    return out


def predictor_code(tiff_predictor: str, dtype: Any) -> int:
    """The TIFF ``Predictor`` tag value (1 none, 2 horizontal, 3 floating point) of :data:`PREDICTORS`
    ``tiff_predictor`` for output of ``dtype``."""
    if tiff_predictor not in PREDICTORS:
        raise ValueError(f"tiff_predictor must be one of {', '.join(PREDICTORS)}, got {tiff_predictor!r}")
    floating = np.dtype(dtype).kind == "f"
    if tiff_predictor == "no" or (tiff_predictor == "auto" and floating):
        return 1
    return 3 if floating else 2


class GeoTiffWriter:
    """A tiled compressed GeoTIFF written window by window, optionally a COG: its overview levels are made from
    the windows as they are written (:class:`sr_core.io.cog.HalvingWriter`, while the sides stay even; the rest on
    :meth:`close`), and on :meth:`close` the COG is assembled by copying the compressed tiles
    (:func:`sr_core.io.cog.make_cog`), in bounded memory whatever the raster size.

    ``write(values (C, h, w), (row0, row1, col0, col1))``. The file is written under a unique temporary name
    ``.NAME.<random>.part`` in ``path``'s folder (overview levels ``.NAME.<random>.ovr<k>.part``) and appears at
    ``path`` only after a successful :meth:`close`, which checks it complete
    (:func:`sr_core.io.cog.check_tiles_complete`) and renames it over an existing file in one step (``os.replace``:
    the old file stays until then; concurrent writers of one ``path`` never share a file). :meth:`abort` (or an
    exception inside ``with``) removes the temporary files. ``path`` must end in ``.tif``/``.tiff`` and must not
    be a symbolic link or an existing non-regular file (:func:`sr_core.io.safe_output.check_output_target`);
    a missing folder is created. An ``OSError`` while writing (a full disk, a read-only folder) is raised as
    :class:`sr_core.io.safe_output.OutputWriteError` naming ``path``. ``compress``: :data:`COMPRESSIONS`;
    ``tiff_predictor``: :data:`PREDICTORS` (:func:`predictor_code`). ``compress_threads``: GDAL's ``NUM_THREADS``
    for the blocks of the raster and of its overview levels (1: compressed on the writing thread); the values and
    the compressed tiles do not depend on it.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        height: int,
        width: int,
        transform: Any,
        crs: Any,
        dtype: Any,
        nodata: float | None,
        band_names: Sequence[str],
        tags: dict[str, str] | None = None,
        cog: bool = False,
        blocksize: int = BLOCKSIZE,
        compress: str = DEFAULT_COMPRESS,
        tiff_predictor: str = DEFAULT_PREDICTOR,
        compress_threads: int = 1,
    ) -> None:
        rasterio = require_rasterio("writing GeoTIFFs")
        compress_threads = check_int("compress_threads", compress_threads, 1)
        if compress not in COMPRESSIONS:
            raise ValueError(f"compress must be one of {', '.join(COMPRESSIONS)}, got {compress!r}")
        codec, level = COMPRESSIONS[compress]
        code = predictor_code(tiff_predictor, dtype)
        from affine import Affine

        bs = check_int("blocksize", blocksize, 16)
        if bs % 16:
            raise ValueError(f"blocksize must be a multiple of 16, got {blocksize}")
        self.path = check_output_target(path)
        self.cog = bool(cog)
        self.blocksize = bs
        self.dtype = np.dtype(dtype)
        self._tmp: Path | None = None
        self._dst: Any = None
        self._halving: list[HalvingWriter] = []
        self._closed = False
        profile = dict(
            driver="GTiff",
            width=int(width),
            height=int(height),
            count=len(band_names),
            dtype=self.dtype.name,
            crs=crs,
            transform=Affine(*tuple(transform)[:6]),
            nodata=nodata,
            tiled=True,
            blockxsize=bs,
            blockysize=bs,
            bigtiff="IF_SAFER",
            interleave="pixel",
        )
        comp: dict[str, Any] = {}
        if codec is not None:
            comp = dict(compress=codec.lower(), predictor=code, **level)
            if compress_threads > 1:  # GDAL compresses the blocks on that many worker threads
                comp["num_threads"] = str(compress_threads)
        profile.update(comp)
        self._scratch = comp  # the overview levels: encoded as the raster, so the COG copies their tiles as they are
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._tmp = temporary_path(self.path)
            self._dst = rasterio.open(self._tmp, "w", **profile)
            self._dst.descriptions = tuple(band_names)
            if tags:
                self._dst.update_tags(**{k: str(v) for k, v in tags.items()})
            for i, b in enumerate(band_names):
                self._dst.update_tags(i + 1, BANDNAME=str(b))
            # COG overview levels made from the windows as they are written (sr_core.io.cog.HalvingWriter), one
            # writer per level while the sides stay even (where the 2 x 2 halving is local); the rest on close
            shapes = overview_shapes(height, width, bs) if self.cog else []
            h, w = int(height), int(width)
            level_transform = profile["transform"]
            for k in range(len(shapes)):
                if h % 2 or w % 2:
                    break
                level_path = temporary_path(self.path, suffix=f".ovr{k + 1}.part")
                try:
                    level = HalvingWriter(
                        level_path, height=h, width=w, count=len(band_names), dtype=self.dtype.name, nodata=nodata,
                        blocksize=bs, creation_options=comp, transform=level_transform, crs=crs,
                    )
                except BaseException:
                    remove_quietly(level_path)
                    raise
                self._halving.append(level)
                h, w, level_transform = h // 2, w // 2, level.transform
        except BaseException as e:
            self.abort()
            if isinstance(e, OSError):
                raise write_error(self.path, e) from e
            raise

    def write(self, values: np.ndarray, window: Window) -> None:
        from rasterio.windows import Window as RWindow

        r0, r1, c0, c1 = window
        values = np.asarray(values, dtype=self.dtype)
        try:
            self._dst.write(values, window=RWindow(c0, r0, c1 - c0, r1 - r0))
            for k, level in enumerate(self._halving):
                if not HalvingWriter.fits(window):  # an odd window edge: this level and the next ones made on close
                    for later in self._halving[k:]:
                        later.abort()
                    del self._halving[k:]
                    break
                values, window = level.write(values, window)
        except OSError as e:
            raise write_error(self.path, e) from e

    def close(self) -> Path:
        """Finish the file and move it to ``path`` (see the class); returns ``path``. On error the temporary
        files are removed and ``path`` is left as it was."""
        if self._closed:
            return self.path
        self._closed = True
        try:
            self._dst.close()
            check_tiles_complete(self._tmp)  # GDAL closes a file whose last writes failed without an error
            if self.cog:
                streamed = [level.close() for level in self._halving]
                # assembled under a temporary name of its own and renamed to path (sr_core.io.cog.assemble_cog)
                make_cog(self._tmp, self.path, blocksize=self.blocksize, scratch_options=self._scratch,
                         first_levels=streamed)
                remove_quietly(self._tmp)
            else:
                replace_output(self._tmp, self.path)
            self._tmp = None
        except BaseException as e:
            self.abort()
            if isinstance(e, (OSError, IncompleteTiffError)):
                raise write_error(self.path, e) from e
            raise
        return self.path

    def abort(self) -> None:
        """Close and remove the temporary files (idempotent); ``path`` is left as it was."""
        self._closed = True
        if self._dst is not None:
            try:
                self._dst.close()
            except Exception:  # noqa: BLE001 - the file is being thrown away: an error closing it does not matter
                pass
        for level in self._halving:
            level.abort()
        self._halving = []
        remove_quietly(self._tmp)
        self._tmp = None

    def __enter__(self) -> GeoTiffWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def model_tags(predictor: Any) -> dict[str, str]:
    """GeoTIFF tags naming the model that produced a file, from the ``predictor``'s attributes (``card``,
    ``engine``, ``scale``; a :class:`sr_core.models.Predictor` has them): ``S2SR_MODEL``, ``S2SR_MODEL_VERSION``,
    ``S2SR_MODEL_FILE`` + ``S2SR_MODEL_SHA256`` (the file the engine ran: ``model.onnx`` for ONNX Runtime,
    ``model.pt`` for torch), ``S2SR_MODEL_FILES_SHA256`` (JSON of every package file), ``S2SR_ENGINE``,
    ``S2SR_SCALE``, ``S2SR_VERSION`` (the s2sr package)."""
    card = getattr(predictor, "card", None)
    engine = str(getattr(predictor, "engine", "") or "")
    files = dict(getattr(card, "files", {}) or {})
    sha = dict(getattr(card, "sha256", {}) or {})
    fname = files.get("onnx" if engine == "onnx" else "weights", "")
    return {
        "S2SR_MODEL": str(getattr(card, "name", "") or "model"),
        "S2SR_MODEL_VERSION": str(getattr(card, "version", "") or ""),
        "S2SR_MODEL_FILE": fname,
        "S2SR_MODEL_SHA256": sha.get(fname, ""),
        "S2SR_MODEL_FILES_SHA256": json.dumps(sha, sort_keys=True),
        "S2SR_ENGINE": engine,
        "S2SR_SCALE": str(int(predictor.scale)),
        "S2SR_VERSION": str(__version__),
    }
