"""``s2sr superres``: a whole scene super-resolved tile by tile into a GeoTIFF/COG (:mod:`sr_core.inference.scene`)."""

from __future__ import annotations

import argparse
import os
import sys
import time

from s2sr_cli.arguments import RESOLUTIONS, Handler, add_model_args, add_quiet, nonneg_int, positive_int

NAME = "superres"

DEFAULT_TILE = 512  # == sr_core.inference.scene.DEFAULT_TILE (not imported: numpy/scipy would slow down --help)

_SUPERRES_EPILOG = """\
INPUT is one of
  * a scene folder of the shared layout (bands_10m.tif, bands_20m.tif, scene.json with dn_scale/add_offset);
  * a multi-band GeoTIFF on the model's input grid (10 m) with band descriptions (B02, B03, ...) and the tags
    DN_SCALE/ADD_OFFSET (or --dn-scale/--add-offset); bands the model does not use are ignored;
  * an openEO NetCDF cube (t, bands, y, x) with dn_scale/add_offset_dn attributes (or the options): one output
    per date, OUTPUT_<date>.tif, when it holds several dates;
  * a Sentinel-2 Level-1C or Level-2A product in the SAFE format: the .SAFE folder, the .zip holding it (as the
    Copernicus Data Space delivers it) or its MTD_MSIL1C.xml / MTD_MSIL2A.xml; every processing baseline (the
    offset of baseline 04.00 and later read from the metadata); bands at their native 10 and 20 m grids;
  * a STAC item of a Sentinel-2 product (item.json, or its http(s) URL), in the conventions of Earth Search,
    the Planetary Computer (sign the item first) or the Copernicus Data Space, read with odc-stac.
--bbox processes only the part of INPUT inside a box (in INPUT's CRS, or lon/lat with --bbox-crs EPSG:4326),
reading nothing else. --mask-scl (Level-2A) writes nodata where the scene classification says cloud (8, 9),
thin cirrus (10), cloud shadow (3), defective (1) or no data (0); --scl writes the classification beside OUTPUT
as OUTPUT_SCL.tif on the same grid (nearest, uint8, nodata 0).
--resolution picks the product: 5 (default) super-resolves all bands x2 to 5 m (model s2sr-x2-10band, or
s2sr-x2-rgbn for B02, B03, B04, B08 alone); 10 sharpens the six 20 m bands onto the input's 10 m grid and keeps
the four 10 m bands unchanged (model s2sr-10m-10band, the 10 bands needed). With --model, --resolution must be
the model's output resolution (else exit status 2).
OUTPUT is a tiled ZSTD-compressed GeoTIFF at the target resolution (a COG with overviews when larger than 2048 px):
bounds identical to the input's, band descriptions = band names, the input's DN convention (tags DN_SCALE,
ADD_OFFSET), nodata preserved (NaN; with --dtype input the input's nodata value, 0 when it has none), tags
S2SR_MODEL, S2SR_MODEL_VERSION, S2SR_MODEL_SHA256. Tiles are streamed: memory stays flat with scene size.
OUTPUT is written under a unique temporary name (.OUTPUT.<random>.part) in its folder and renamed over an
existing OUTPUT only when complete: a failed or interrupted run (SIGTERM, Ctrl-C) leaves the old file as it was
and no temporary file. Refused before any work (exit status 2): a name not ending in .tif/.tiff, an existing
symbolic link (give the file it points to), directory, device or FIFO, a folder that does not exist or is not
writable, the input file itself or any path inside the input folder.
Several INPUTs (or a quoted glob pattern, expanded in sorted order) run in parallel on a dask cluster: a local one
of --product-workers processes by default, the cluster of --scheduler ADDRESS otherwise (e.g. started by
dask-jobqueue on an HPC system; the inputs and OUTPUT must then be paths the workers see). OUTPUT is then an
existing folder, each product written there as NAME_sr.tif, or a template holding {name} ('out/{name}_5m.tif'),
NAME being the input's name without .SAFE.zip/.SAFE/.zip/.tif/.tiff/.nc/.json. Every output is checked before any
work (two inputs with the same output, an output inside any input folder: refused). A product that fails is
reported on one line (s2sr superres: error: INPUT: ...) while the others go on; a summary of the failed products
ends the run, with exit status 2 (1 if an error was unexpected); 0 when all succeeded.

examples:
  s2sr superres sr_core/data/sample/S2A_MSIL1C_20170527_T33UUB_crop256 sample_5m.tif
  s2sr superres scene.tif scene_5m.tif --model s2sr-x2-10band --threads 4 --tile 512
  s2sr superres SCENE out_10m.tif --resolution 10
  s2sr superres cube.nc cube_5m.tif --dn-scale 10000 --add-offset 0
  s2sr superres S2B_MSIL2A_20230823T095559_N0509_R122_T34UCF_20230823T124759.SAFE.zip t34ucf_5m.tif
  s2sr superres item.json item_5m.tif --bbox 17.90 54.30 17.95 54.33 --bbox-crs EPSG:4326 --mask-scl --scl
  s2sr superres products/*.SAFE.zip out/ --product-workers 2
  s2sr superres 'products/S2*_T34UCF_*.SAFE.zip' 'out/{name}_5m.tif' --scheduler tcp://login01:8786
"""


def run(args: argparse.Namespace) -> int:
    """Super-resolve ``args.input`` into ``args.output``; progress and the written paths on stderr. Several
    inputs (or an OUTPUT template holding ``{name}``): :func:`run_many`."""
    # GDAL's block cache defaults to 5 % of the RAM; filled by the window writes, it makes the peak RSS grow
    # with the scene (1.6 GB at 2560 px, measured); 128 MB keeps it flat (0.56 GB at 2560 px). It must be set
    # before GDAL's first I/O in the process, hence here; a user's own GDAL_CACHEMAX wins.
    os.environ.setdefault("GDAL_CACHEMAX", "128")
    if _many(args.input, args.output):
        return run_many(args)
    if args.product_workers is not None or args.scheduler is not None:
        raise ValueError("--product-workers and --scheduler run several products: give several INPUTs")
    from sr_core.inference.scene import superresolve_file
    from sr_core.io.safe_output import cleanup_on_signals
    from sr_core.runtime import limit_heap_growth

    limit_heap_growth()  # tiles freed on worker threads go back to the OS (see its docstring)

    quiet = bool(getattr(args, "quiet", False))
    t0 = time.perf_counter()
    with cleanup_on_signals():  # SIGTERM / SIGINT: the temporary files are removed, the old OUTPUT stays
        paths = superresolve_file(
            args.input[0], args.output, threads=args.threads, progress=not quiet,
            log=None if quiet else (lambda m: print(f"s2sr {NAME}: {m}", file=sys.stderr)), **_product_options(args)
        )
    if not quiet:
        for p in paths:
            print(f"wrote {p}", file=sys.stderr)
        print(f"done in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return 0


def _many(inputs: list[str], output: str) -> bool:
    """Several products: more than one INPUT, a glob pattern, or an OUTPUT template holding {name}."""
    if len(inputs) > 1 or "{name}" in output:
        return True
    only = inputs[0]
    return "://" not in only and not os.path.lexists(only) and any(c in only for c in "*?[")


def _product_options(args: argparse.Namespace) -> dict:
    """The arguments of :func:`sr_core.inference.scene.superresolve_file` every product shares."""
    return dict(
        model=args.model,
        resolution=args.resolution,
        engine=args.engine,
        device=args.device,
        workers=args.workers,
        tile=args.tile,
        overlap=args.overlap,
        dtype=args.dtype,
        cog={"auto": "auto", "yes": True, "no": False}[args.cog],
        dn_scale=args.dn_scale,
        add_offset=args.add_offset,
        variable=args.variable,
        compress=args.compress,
        tiff_predictor=args.predictor,
        write_threads=args.write_threads,
        allow_any_crs=args.allow_any_crs,
        bbox=args.bbox,
        bbox_crs=args.bbox_crs,
        mask_scl=args.mask_scl,
        scl=args.scl,
    )


def run_many(args: argparse.Namespace) -> int:
    """Several products in parallel (:mod:`sr_core.inference.batch`): every output checked first, a progress bar
    over products, one error line per failed product; exit status 0 when all succeeded, else 2 when every
    failure was the input's (a ``ValueError``), 1 otherwise."""
    from sr_core.inference.batch import batch_outputs, expand_inputs, superresolve_many

    quiet = bool(getattr(args, "quiet", False))
    t0 = time.perf_counter()
    inputs = expand_inputs(args.input)
    outputs = batch_outputs(inputs, args.output)

    def report(res) -> None:
        if res.ok:
            if not quiet:
                for p in res.paths:
                    print(f"wrote {p}", file=sys.stderr)
        else:
            print(f"s2sr {NAME}: error: {res.input}: {res.error}", file=sys.stderr)

    results = superresolve_many(
        inputs,
        outputs,
        product_workers=args.product_workers,
        scheduler=args.scheduler,
        threads=args.threads,
        progress=not quiet,
        on_result=report,
        **_product_options(args),
    )
    failed = [r for r in results if not r.ok]
    if failed:
        print(f"s2sr {NAME}: {len(failed)} of {len(results)} products failed:", file=sys.stderr)
        for r in failed:
            print(f"  {r.input}: {r.error}", file=sys.stderr)
        return 2 if all(r.bad_input for r in failed) else 1
    if not quiet:
        print(f"done: {len(results)} products in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return 0


def register(subparsers: argparse._SubParsersAction) -> Handler:
    """Add ``s2sr superres INPUT OUTPUT [...]``; returns its handler."""
    p = subparsers.add_parser(
        NAME,
        help="super-resolve a scene folder, GeoTIFF or NetCDF cube into a GeoTIFF/COG (streamed, all cores)",
        description="Super-resolve a whole scene tile by tile (seamless: the same tiling as the openEO UDF) into "
        "a GeoTIFF at the model's output resolution.",
        epilog=_SUPERRES_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "input",
        metavar="INPUT",
        nargs="+",
        help="scene folder, .tif/.tiff, .nc, Sentinel-2 .SAFE folder or .zip, STAC item; several, or a quoted glob "
        "pattern: several products in parallel",
    )
    p.add_argument(
        "output",
        metavar="OUTPUT",
        help="output GeoTIFF (.tif or .tiff; replaced only when complete); with several INPUTs an existing folder "
        "(NAME_sr.tif each) or a template holding {name}, e.g. 'out/{name}_5m.tif'",
    )
    add_model_args(p, auto_model=True)
    p.add_argument(
        "--resolution",
        type=int,
        choices=RESOLUTIONS,
        default=None,
        help="output pixel size in metres: 5 = x2 super-resolution of all bands, 10 = the 20 m bands sharpened onto "
        "the 10 m grid, the 10 m bands unchanged (default: the --model's own; 5 without --model)",
    )
    p.add_argument(
        "--workers",
        type=positive_int,
        default=None,
        help="tiles computed at the same time, --threads engine threads each (default 1: one tile with all "
        "cores). --workers <cores> --threads 1 is 10-20 %% faster on CPUs but needs more memory (2 workers: "
        "+70 MB peak, more with more workers)",
    )
    p.add_argument(
        "--tile",
        type=positive_int,
        default=DEFAULT_TILE,
        help=f"tile size in input pixels (default {DEFAULT_TILE}; rounded up to align with the 256 px output blocks)",
    )
    p.add_argument(
        "--overlap",
        type=nonneg_int,
        default=None,
        help="tiling margin in input pixels (default: the model's, its receptive field // 2 plus the reach of its "
        "post-processing; less gives seams)",
    )
    p.add_argument(
        "--dtype",
        choices=("float32", "input"),
        default="float32",
        help="output data type: float32 DN with NaN nodata (default: the model's output as it is) or the input's "
        "type (rounded, clipped to its range: about half the size and faster to write; values the model puts "
        "outside the range are lost)",
    )
    p.add_argument(
        "--cog",
        choices=("auto", "yes", "no"),
        default="auto",
        help="Cloud-Optimized GeoTIFF with overviews (auto: when the output exceeds 2048 px)",
    )
    p.add_argument(
        "--compress",
        choices=("zstd", "deflate", "lzw", "none"),
        default="zstd",
        help="GeoTIFF compression (default zstd level 1: fast, GDAL >= 2.3; deflate for older readers)",
    )
    p.add_argument(
        "--predictor",
        choices=("auto", "yes", "no"),
        default="auto",
        help="GeoTIFF predictor (auto: horizontal for integer output, none for float32 output; yes: also the "
        "floating-point predictor for float32, about 16 %% smaller files written and read more slowly)",
    )
    p.add_argument(
        "--write-threads",
        type=positive_int,
        default=None,
        help="threads compressing the output blocks (default: 1 on CPU, where the engine has the cores; every core "
        "with --device cuda, where writing is the bottleneck: a full tile 87 s instead of 124 s on an H100)",
    )
    p.add_argument(
        "--dn-scale",
        type=float,
        default=None,
        help="reflectance = (DN + add_offset) / dn_scale, when the input does not say (GeoTIFF/NetCDF)",
    )
    p.add_argument("--add-offset", type=float, default=None, help="see --dn-scale")
    p.add_argument(
        "--variable", default=None, help="NetCDF data variable (when several have a bands dimension)"
    )
    p.add_argument(
        "--allow-any-crs",
        action="store_true",
        help="process an input without a CRS or in a geographic / non-metre CRS (refused by default). RISK: the "
        "model then takes its pixels for 10 m ones whatever they are, and the output keeps the input's CRS with "
        "pixels scale times smaller: a wrong result if the input is not on a 10 m grid",
    )
    p.add_argument(
        "--bbox",
        type=float,
        nargs=4,
        metavar=("LEFT", "BOTTOM", "RIGHT", "TOP"),
        default=None,
        help="process only this box of INPUT (snapped outward to whole 20 m pixels), in INPUT's CRS unless "
        "--bbox-crs; only that part is read",
    )
    p.add_argument(
        "--bbox-crs",
        default=None,
        metavar="CRS",
        help="CRS of --bbox, e.g. EPSG:4326 for lon/lat (default: INPUT's CRS)",
    )
    p.add_argument(
        "--mask-scl",
        action="store_true",
        help="Level-2A: write nodata where the scene classification (SCL) is no data (0), defective (1), cloud "
        "shadow (3), cloud (8, 9) or thin cirrus (10); those pixels are never filled",
    )
    p.add_argument(
        "--scl",
        action="store_true",
        help="Level-2A: also write the scene classification on OUTPUT's grid to OUTPUT_SCL.tif (nearest, uint8)",
    )
    p.add_argument(
        "--product-workers",
        type=positive_int,
        default=None,
        metavar="N",
        help="several INPUTs: worker processes of the local dask cluster, one product at a time each (default: "
        "the number of products, at most the cores); each product gets --threads engine threads (default: the "
        "cores divided by N)",
    )
    p.add_argument(
        "--scheduler",
        default=None,
        metavar="ADDRESS",
        help="several INPUTs: run the products on the dask cluster of this scheduler (e.g. tcp://host:8786, one "
        "started by dask-jobqueue) instead of a local one; --threads defaults to a worker machine's cores divided "
        "by the worker's threads",
    )
    add_quiet(p, help="no progress bar, print only errors")
    return run
