"""Many products at once: :func:`sr_core.inference.scene.superresolve_file` on each, in parallel with dask.distributed.

* Inputs: paths or STAC item URLs; a path with glob characters (``*``, ``?``, ``[``) that names no file is a
  pattern, expanded in sorted order (:func:`expand_inputs`).
* Outputs (:func:`batch_outputs`): OUTPUT is an existing folder, each product written there as
  ``<name>_sr.tif``, or a template holding ``{name}`` (``out/{name}_5m.tif``), where ``name`` is the input's
  name without its product endings (:func:`product_name`: ``.SAFE.zip``, ``.SAFE``, ``.zip``, ``.tif``,
  ``.tiff``, ``.nc``, ``.json``; the product folder for a ``MTD_MSI*.xml``). Every output is checked before any
  work (:func:`sr_core.io.safe_output.check_output_file`, against every input): two inputs with the same output,
  an output inside any input folder, a bad name or folder are refused with a ``ValueError``.
* Execution (:func:`superresolve_many`): one task per product on a ``LocalCluster`` of worker processes
  (default ``min(products, cores)`` workers of one thread each, the engine threads of a product
  ``cores // workers``), or on the cluster of an existing scheduler (``scheduler``: its address, e.g. one
  started by dask-jobqueue; a product's engine threads default to the worker machine's cores divided by the
  worker's threads). Each product is streamed tile by tile as a single run is.
* Failures: an error in one product is recorded (a ``ValueError``: its message; another error: its type and
  message) and the others go on; the results list every product with its output paths or its error.

dask.distributed is imported only when products are run (an optional dependency, in the ``udf`` extra).
docs/decisions/2026-12-06-many-products.md gives the reasons.
"""

from __future__ import annotations

import glob
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sr_core.checks import check_int
from sr_core.io.safe_output import check_output_file

__all__ = [
    "DEFAULT_SUFFIX",
    "ProductResult",
    "batch_outputs",
    "expand_inputs",
    "product_name",
    "superresolve_many",
]

#: What a product's output name adds to its input's name when OUTPUT is a folder.
DEFAULT_SUFFIX = "_sr.tif"
#: Input name endings dropped from a product's name (compared in lower case, longest first).
_PRODUCT_ENDINGS = (".safe.zip", ".safe", ".zip", ".tiff", ".tif", ".nc", ".json")
_GLOB_CHARS = "*?["


def _is_url(text: str) -> bool:
    return "://" in text


def expand_inputs(inputs: Sequence[str | os.PathLike]) -> list[str]:
    """The inputs in order, each glob pattern (a path with ``*``, ``?`` or ``[`` that names nothing) replaced
    by its matches in sorted order. A pattern matching nothing, a path that does not exist (URLs are not
    checked) and no input at all are refused (``ValueError`` naming it)."""
    out: list[str] = []
    for item in inputs:
        text = os.fspath(item)
        if _is_url(text) or os.path.lexists(text):
            out.append(text)
        elif any(c in text for c in _GLOB_CHARS):
            matches = sorted(glob.glob(text))
            if not matches:
                raise ValueError(f"INPUT pattern {text!r} matches no file")
            out.extend(matches)
        else:
            raise ValueError(f"INPUT {text} does not exist")
    if not out:
        raise ValueError("no INPUT given")
    return out


def product_name(input: str | os.PathLike) -> str:
    """The name of a product's output: its file or folder name (the last part of a URL) without the endings
    of :data:`_PRODUCT_ENDINGS`; for a ``MTD_MSI*.xml`` metadata file, the name of its product folder."""
    text = os.fspath(input).rstrip("/\\")
    name = text.rsplit("/", 1)[-1] if _is_url(text) else Path(text).name
    if name.upper().startswith("MTD_MSI") and name.lower().endswith(".xml") and not _is_url(text):
        name = Path(text).resolve().parent.name
    lower = name.lower()
    for ending in _PRODUCT_ENDINGS:
        if lower.endswith(ending) and len(name) > len(ending):
            name = name[: -len(ending)]
            break
    if not name or name in {".", ".."}:
        raise ValueError(f"INPUT {text} has no name to name its output after")
    return name


def batch_outputs(inputs: Sequence[str], output: str | os.PathLike) -> list[Path]:
    """The output of each input (see the module docstring), checked before any work: ``output`` is a template
    holding ``{name}`` or an existing folder; each output passes
    :func:`sr_core.io.safe_output.check_output_file` against every input; two inputs mapping to the same output
    are refused."""
    text = os.fspath(output)
    if "{name}" in text:
        names = [product_name(i) for i in inputs]
        try:
            outs = [Path(text.format(name=n)) for n in names]
        except (KeyError, IndexError, ValueError) as e:
            raise ValueError(f"OUTPUT template {text!r} may hold only {{name}} between braces ({e})") from None
    elif os.path.isdir(text):
        outs = [Path(text) / f"{product_name(i)}{DEFAULT_SUFFIX}" for i in inputs]
    else:
        raise ValueError(
            f"OUTPUT {text} must be an existing folder (each product written there as NAME{DEFAULT_SUFFIX}) or a "
            "template holding {name}, e.g. out/{name}_5m.tif, when there are several inputs"
        )
    seen: dict[str, str] = {}
    for inp, out in zip(inputs, outs):
        key = os.path.normcase(os.path.realpath(out))
        if key in seen:
            raise ValueError(f"INPUTs {seen[key]} and {inp} would both be written to {out}: rename one")
        seen[key] = inp
    local = [i for i in inputs if not _is_url(i)]
    for out in outs:
        check_output_file(out, reads=local)
    return outs


@dataclass(frozen=True)
class ProductResult:
    """One product of :func:`superresolve_many`: its input and output, the written paths (empty when it
    failed), its error (one line, ``None`` when it succeeded) and whether that error is the input's or the
    user's (a ``ValueError``) rather than an unexpected one."""

    input: str
    output: str
    paths: tuple[str, ...] = ()
    error: str | None = None
    bad_input: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None


def _error_line(exc: BaseException) -> str:
    message = " ".join(str(exc).split())
    if isinstance(exc, ValueError):
        return message or type(exc).__name__
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def _run_product(input: str, output: str, threads: int | None, options: dict[str, Any]) -> ProductResult:
    """One product, in a worker process: every exception becomes the result's error."""
    os.environ.setdefault("GDAL_CACHEMAX", "128")  # flat memory with scene size, as s2sr superres sets it
    try:
        if threads is None:
            threads = max(1, (os.cpu_count() or 1) // _worker_threads())
        from sr_core.inference.scene import superresolve_file

        paths = superresolve_file(input, output, threads=threads, progress=False, **options)
        return ProductResult(input, output, tuple(os.fspath(p) for p in paths))
    except Exception as e:  # noqa: BLE001 - reported per product, the others go on
        return ProductResult(input, output, error=_error_line(e), bad_input=isinstance(e, ValueError))


def _worker_threads() -> int:
    """Products the current dask worker runs at once (its threads), 1 outside a worker."""
    try:
        from distributed import get_worker

        return max(1, int(get_worker().state.nthreads))
    except (ImportError, ValueError, AttributeError):
        return 1


def superresolve_many(
    inputs: Sequence[str | os.PathLike],
    outputs: Sequence[str | os.PathLike],
    *,
    product_workers: int | None = None,
    scheduler: str | None = None,
    threads: int | None = None,
    progress: bool = False,
    on_result: Callable[[ProductResult], None] | None = None,
    **options: Any,
) -> list[ProductResult]:
    """Super-resolve ``inputs[i]`` into ``outputs[i]`` (checked first: :func:`batch_outputs` gives them) in
    parallel, one dask task per product; returns a :class:`ProductResult` per product, in the order of
    ``inputs``, failed ones included.

    ``product_workers``: worker processes of the ``LocalCluster`` (default ``min(len(inputs), cores)``), one
    product at a time each; ``scheduler``: the address of an existing dask scheduler to run on instead
    (``product_workers`` must then be ``None``). ``threads``: engine threads of each product (default: the
    cores divided by the products running at once on a machine). ``progress``: a tqdm bar over products on stderr. ``on_result``: called on
    the client with each result as it completes. ``options``: the other arguments of
    :func:`sr_core.inference.scene.superresolve_file` (``model`` a name or folder: each worker loads it)."""
    inputs = [os.fspath(i) for i in inputs]
    outputs = [os.fspath(o) for o in outputs]
    if len(inputs) != len(outputs):
        raise ValueError(f"{len(inputs)} inputs but {len(outputs)} outputs")
    if not inputs:
        raise ValueError("no INPUT given")
    if threads is not None:
        threads = check_int("threads", threads, 1)
    if scheduler is not None and product_workers is not None:
        raise ValueError("product_workers sets the size of a local cluster: not with scheduler (the cluster's own)")
    for key in ("progress", "output", "input"):
        if key in options:
            raise ValueError(f"{key} is not an option of a product")
    try:
        from distributed import Client, LocalCluster, as_completed
    except ImportError as e:  # pragma: no cover - distributed is in the udf extra
        raise ImportError(f"several products need dask.distributed: pip install distributed ({e})") from e

    cluster = None
    if scheduler is None:
        cores = os.cpu_count() or 1
        n = min(len(inputs), cores) if product_workers is None else check_int("product_workers", product_workers, 1)
        if threads is None:
            threads = max(1, cores // n)
        cluster = LocalCluster(
            n_workers=n,
            threads_per_worker=1,
            processes=True,
            memory_limit=0,  # products hold no dask data: a limit would only kill a worker mid-product
            dashboard_address=":0",  # a free port: several runs on one machine never collide
            silence_logs=40,  # logging.ERROR: warnings of the cluster would interleave with the progress bar
        )
    results: dict[int, ProductResult] = {}
    bar = _product_bar(len(inputs), progress)
    try:
        client = Client(cluster if cluster is not None else scheduler)
        try:
            futures = {
                client.submit(_run_product, i, o, threads, dict(options), pure=False): k
                for k, (i, o) in enumerate(zip(inputs, outputs))
            }
            for fut in as_completed(futures):
                k = futures[fut]
                try:
                    res = fut.result()
                except Exception as e:  # noqa: BLE001 - a worker lost (killed, out of memory): this product failed
                    res = ProductResult(inputs[k], outputs[k], error=_error_line(e))
                results[k] = res
                if on_result is not None:
                    if bar is not None:  # lines printed above the bar, not through it
                        with bar.external_write_mode(file=sys.stderr):
                            on_result(res)
                    else:
                        on_result(res)
                if bar is not None:
                    bar.update(1)
        finally:
            client.close()
    finally:
        if bar is not None:
            bar.close()
        if cluster is not None:
            cluster.close()
    return [results[k] for k in range(len(inputs))]


def _product_bar(total: int, enabled: bool) -> Any:
    if not enabled:
        return None
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover - tqdm is in the train/test extras
        return None
    return tqdm(total=total, desc="products", unit="product", file=sys.stderr, dynamic_ncols=True)
