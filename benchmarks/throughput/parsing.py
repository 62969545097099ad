"""Parsers of the command-line lists: integers, thread counts (``1..all``), engine names."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from benchmarks.throughput.runners import ENGINES
from sr_core.runtime import usable_cpus

__all__ = ["parse_engines", "parse_int_list", "parse_threads"]


def parse_int_list(text: str | Sequence[int], name: str, *, minimum: int = 1) -> list[int]:
    """``"128,256,512"`` (or a sequence) -> ``[128, 256, 512]`` (order kept, duplicates dropped)."""
    items: Iterable[Any] = text.split(",") if isinstance(text, str) else text
    out: list[int] = []
    for item in items:
        s = str(item).strip()
        try:
            v = int(s)
        except ValueError:
            raise ValueError(f"{name}: {s!r} is not an integer (expected a comma-separated list)") from None
        if v < minimum:
            raise ValueError(f"{name}: values must be >= {minimum}, got {v}")
        if v not in out:
            out.append(v)
    if not out:
        raise ValueError(f"{name}: empty list")
    return out


def parse_threads(text: str | Sequence[int], *, all_cpus: int | None = None) -> list[int]:
    """Thread counts: ``"1..all"`` (1, 2, 4, ... and all), ``"all"``, ``"1-4"``, ``"1,2,all"`` or ints.

    ``all`` = :func:`usable_cpus` (or ``all_cpus``). Counts above ``all`` are refused."""
    n_all = all_cpus or usable_cpus()
    if not isinstance(text, str):
        return [v for v in parse_int_list(list(text), "threads") if _le(v, n_all)]
    s = text.strip().lower()
    out: list[int] = []
    for part in s.split(","):
        part = part.strip()
        if part in ("1..all", "all..1"):
            k = 1
            while k < n_all:
                out.append(k)
                k *= 2
            out.append(n_all)
        elif part == "all":
            out.append(n_all)
        elif re.fullmatch(r"\d+-\d+", part):
            a, b = (int(v) for v in part.split("-"))
            if a < 1 or b < a:
                raise ValueError(f"threads: bad range {part!r}")
            out.extend(range(a, b + 1))
        else:
            out.extend(parse_int_list(part, "threads"))
    res: list[int] = []
    for v in out:
        _le(v, n_all)
        if v not in res:
            res.append(v)
    return res


def _le(v: int, n_all: int) -> bool:
    if v > n_all:
        raise ValueError(f"threads: {v} is more than the {n_all} CPUs this process may use")
    return True


def parse_engines(text: str) -> list[str]:
    """``"torch,onnx"`` -> ``["torch", "onnx"]``; unknown names are a ``ValueError``."""
    out = [e.strip() for e in text.split(",") if e.strip()]
    bad = [e for e in out if e not in ENGINES]
    if bad or not out:
        raise ValueError(f"engines: unknown {bad or text!r}; choose from {', '.join(ENGINES)}")
    return list(dict.fromkeys(out))
