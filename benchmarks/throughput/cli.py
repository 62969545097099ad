"""The command line of the throughput benchmark: ``python -m benchmarks.throughput [options]`` (see
benchmarks/README.md). Progress goes to stderr, the Markdown report to stdout, JSON + Markdown to ``--out``."""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from benchmarks.throughput.parsing import parse_engines, parse_int_list, parse_threads
from benchmarks.throughput.report import markdown_report
from benchmarks.throughput.runners import PRECISIONS
from benchmarks.throughput.suite import BenchSettings, run_benchmark, write_results
from sr_core.checks import check_int
from sr_core.models import list_models
from sr_core.runtime import usable_cpus
from udf.testing import make_package

__all__ = ["add_bench_arguments", "main", "run_from_args", "settings_from_args"]

DESCRIPTION = (
    "Throughput benchmark: bare forward pass per model x engine x threads x tile (x CUDA precision x batch), "
    "whole path (UDF + emulator + GeoTIFF) vs bare forward, peak RSS at two scene sizes; JSON + Markdown "
    "in --out. See benchmarks/README.md."
)


def add_bench_arguments(p: argparse.ArgumentParser) -> None:
    """The benchmark's command-line options, added to ``p``."""
    p.add_argument("--model", action="append", default=None,
                   help="shipped model name or package folder (repeatable; default: every shipped model)")
    p.add_argument("--random-model", action="store_true",
                   help="benchmark a tiny RANDOM package (udf.testing.make_package): a dry run of the benchmark itself")
    p.add_argument("--engines", default=None, help="comma list of torch, onnx, compile (default: all three; --quick: torch,onnx)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                   help="auto = CPU, plus CUDA when torch sees a GPU (default)")
    p.add_argument("--threads", default=None, help="CPU thread counts: '1..all' (1, 2, 4, ..., all; default), 'all', '1-4', '1,2,all'")
    p.add_argument("--tiles", default=None, help="tile sizes in input (10 m) px, margin included (default 128,256,512)")
    p.add_argument("--batch", default=None, help="CPU batch sizes (default 1)")
    p.add_argument("--cuda-batches", default="1,8,32", help="CUDA batch sizes (tiles per call; default 1,8,32)")
    p.add_argument("--cuda-precisions", default="fp32,fp16,bf16", help="CUDA precisions (autocast; default fp32,fp16,bf16)")
    p.add_argument("--repeats", type=int, default=None, help="timed runs per configuration (default 5; >= 5 to report)")
    p.add_argument("--warmup", type=int, default=None, help="warm-up runs per configuration (default 2)")
    p.add_argument("--scene", type=int, default=None, help="whole-path scene size, 10 m px per side (default 512)")
    p.add_argument("--chunk", type=int, default=None, help="apply_neighborhood size for the whole path (default: recommended)")
    p.add_argument("--mode", choices=("resampled", "upscale"), default="resampled", help="UDF mode of the whole path")
    p.add_argument("--emulator-input", choices=("lazy", "path"), default="lazy",
                   help="whole path input: NetCDF opened lazily without dask (default) or the path (dask-backed open_cube)")
    p.add_argument("--superres-tile", type=int, default=None, help="tile of the `s2sr superres` whole path (default: its default)")
    p.add_argument("--overhead-engines", default="onnx", help="engines of the whole-path measurement (default onnx)")
    p.add_argument("--overhead-threads", default=None, help="thread counts of the whole-path measurement (default '1,all')")
    p.add_argument("--overhead-workers", default=None,
                   help="chunk workers of the whole-path (UDF + emulator) measurement, each with 1 engine thread when "
                        "more than 1 (default '1,all': one chunk at a time, and one chunk per core as a back-end's "
                        "executors run them)")
    p.add_argument("--rss-sizes", default=None,
                   help="two or more scene sizes (10 m px) for peak RSS (default 1280,2560: both outputs above "
                        "2048 px, so `s2sr superres` writes a COG at both)")
    p.add_argument("--rss-engine", choices=("onnx", "torch"), default="onnx")
    p.add_argument("--rss-threads", type=int, default=None, help="threads of the RSS runs (default all)")
    p.add_argument("--rss-emulator", action="store_true", help="measure RSS on the emulator path even when `s2sr superres` exists")
    p.add_argument("--skip", action="append", default=[], choices=("forward", "overhead", "rss"),
                   help="skip a part (repeatable)")
    p.add_argument("--compile-mode", default=None, help="torch.compile mode (default: torch's default)")
    p.add_argument("--ghz", type=float, default=None, help="CPU clock for the peak GFLOP/s (default: from the system)")
    p.add_argument("--quick", action="store_true",
                   help="dry run: 1 warm-up + 1 run, threads 1, one 64 px tile, 128 px scene, RSS at 64,128 px")
    p.add_argument("--out", default="benchmarks/results/throughput",
                   help="output folder (default benchmarks/results/throughput)")
    p.add_argument("--tag", default=None, help="JSON file name part: throughput_<tag>.json (default <host>_<date>)")
    p.add_argument("--workdir", default=None, help="folder for temporary inputs/outputs (default: system temp)")
    p.add_argument("--quiet", action="store_true", help="print only errors and the output paths")


def settings_from_args(args: argparse.Namespace, *, tmp_models: str | None = None) -> BenchSettings:
    """:class:`BenchSettings` from parsed arguments (``--quick`` fills what was not given explicitly)."""
    q = bool(args.quick)
    models = list(args.model or [])
    if args.random_model:
        if tmp_models is None:
            raise ValueError("--random-model needs a folder for the package")
        make_package(Path(tmp_models) / "random-s2fast", arch="s2fast", arch_kwargs={"num_features": 8, "num_blocks": 1})
        models.append(str(Path(tmp_models) / "random-s2fast"))
    if not models:
        models = list_models()
    if not models:
        raise ValueError("no model packages shipped in this installation: pass --model PATH (or --random-model for a dry run)")
    engines = parse_engines(args.engines or ("torch,onnx" if q else "torch,onnx,compile"))
    devices = ["cpu"]
    if args.device in ("auto", "cuda"):
        import torch

        if torch.cuda.is_available():
            devices.append("cuda")
        elif args.device == "cuda":
            raise ValueError("--device cuda: torch sees no CUDA device")
        if args.device == "cuda":
            devices = ["cuda"]
    precisions = [p.strip() for p in args.cuda_precisions.split(",") if p.strip()]
    bad = [p for p in precisions if p not in PRECISIONS]
    if bad:
        raise ValueError(f"--cuda-precisions: unknown {bad}; choose from {', '.join(PRECISIONS)}")
    all_t = usable_cpus()
    threads = parse_threads(args.threads or ("1" if q else "1..all"))
    ov_threads = parse_threads(args.overhead_threads or ("1" if q else "1,all"))
    ov_workers = parse_threads(args.overhead_workers or ("1" if q else "1,all"))
    repeats = args.repeats if args.repeats is not None else (1 if q else 5)
    warmup = args.warmup if args.warmup is not None else (1 if q else 2)
    check_int("--repeats", repeats, 1)
    check_int("--warmup", warmup, 0)
    if "compile" in engines and warmup < 1:
        raise ValueError("--warmup must be >= 1 with the compile engine (the first call compiles)")
    rss_sizes = parse_int_list(args.rss_sizes or ("64,128" if q else "1280,2560"), "--rss-sizes", minimum=2)
    if len(rss_sizes) < 2 and "rss" not in args.skip:
        raise ValueError(f"--rss-sizes needs two sizes or more to show whether RSS grows, got {rss_sizes}")
    return BenchSettings(
        models=models, engines=engines, devices=devices, cuda_precisions=precisions,
        cuda_batches=parse_int_list(args.cuda_batches, "--cuda-batches"),
        threads=threads, tiles=parse_int_list(args.tiles or ("64" if q else "128,256,512"), "--tiles"),
        batches=parse_int_list(args.batch or "1", "--batch"), repeats=repeats, warmup=warmup,
        scene=check_int("--scene", args.scene if args.scene is not None else (128 if q else 512), 2),
        chunk=args.chunk, mode=args.mode, emulator_input=args.emulator_input, superres_tile=args.superres_tile,
        overhead_engines=[e for e in parse_engines(args.overhead_engines) if e != "compile"],
        overhead_threads=ov_threads, overhead_workers=ov_workers, rss_sizes=rss_sizes, rss_engine=args.rss_engine,
        rss_threads=args.rss_threads or all_t, skip=list(args.skip), compile_mode=args.compile_mode, ghz=args.ghz,
        workdir=args.workdir, quick=q, force_emulator_rss=args.rss_emulator,
    )


def run_from_args(args: argparse.Namespace) -> int:
    """Run the benchmark from parsed arguments; write JSON + Markdown; print the Markdown unless quiet."""
    quiet = bool(args.quiet)

    def log(msg: str) -> None:
        if not quiet:
            print(msg, file=sys.stderr, flush=True)

    if args.workdir:
        Path(args.workdir).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="s2sr-bench-models-") as tmp_models:
        settings = settings_from_args(args, tmp_models=tmp_models)
        log(f"throughput: models {', '.join(Path(m).name for m in settings.models)}; engines {settings.engines}; "
            f"devices {settings.devices}; threads {settings.threads}; tiles {settings.tiles}; "
            f"{settings.repeats} runs after {settings.warmup} warm-up")
        results = run_benchmark(settings, log=log)
    jpath, mpath = write_results(results, args.out, tag=args.tag)
    if not quiet:
        print(markdown_report(results))
    print(f"wrote {jpath} and {mpath}", file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None, *, prog: str = "python -m benchmarks.throughput") -> int:
    """``python -m benchmarks.throughput``: parse ``argv``, run, write; 2 on a usage error."""
    p = argparse.ArgumentParser(prog=prog, description=DESCRIPTION)
    add_bench_arguments(p)
    args = p.parse_args(argv)
    try:
        return run_from_args(args)
    except (ValueError, FileNotFoundError) as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2
