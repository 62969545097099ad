"""Whole-path overhead over several invocations of the throughput benchmark: one Markdown table, every invocation's
overhead and their median.

    python -m benchmarks.throughput.summarize OUT.md RESULT_DIR [RESULT_DIR ...]

Each RESULT_DIR holds the JSON of one ``python -m benchmarks.throughput`` invocation. On a machine whose speed
drifts between invocations by a few percent of the bare time (the 2-core VM of benchmarks/results/throughput/: about
+-5 %), one invocation's medians cannot decide a 15 % target: the table lists every invocation.
"""

from __future__ import annotations

import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path


def load(dirs: list[str]) -> list[dict]:
    """The whole-path rows of every results JSON in ``dirs``, each with its folder as ``source``."""
    rows = []
    for d in dirs:
        for f in sorted(Path(d).glob("*.json")):
            res = json.loads(f.read_text())
            for r in res.get("overhead", []):
                if "overhead" in r:
                    rows.append(dict(r, source=str(Path(d))))
    return rows


def table(rows: list[dict]) -> list[str]:
    """Markdown lines: one row per path x model x engine x workers x threads x scene, over the invocations."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in rows:
        key = ("UDF + emulator" if r["path"] == "udf-emulator" else "s2sr superres", r["model"], r["engine"],
               int(r.get("workers", 1) or 1), int(r["threads"]), int(r["scene_px"]))
        groups[key].append(r)
    out = [("| path | model | engine | workers x threads | scene (10 m px) | overhead per invocation | median | "
            "whole (median s) | bare (median s) | <= 15 % |"),
           "|---|---|---|---|---|---|---|---|---|---|"]
    for key in sorted(groups, key=lambda k: (k[0], k[5], k[3] > 1, k[4])):
        rs = groups[key]
        ov = [100 * r["overhead"] for r in rs]
        med = statistics.median(ov)
        whole = statistics.median(r["whole_s"]["median"] for r in rs)
        bare = statistics.median(r["bare_s"]["median"] for r in rs)
        out.append(f"| {key[0]} | {key[1]} | {key[2]} | {key[3]} x {key[4]} | {key[5]} | "
                   + ", ".join(f"{v:.1f} %" for v in ov) + f" | **{med:.1f} %** | {whole:.2f} | {bare:.2f} | "
                   + ("yes" if med <= 15 else "no") + " |")
    return out


def main(argv: list[str]) -> None:
    """Write the table of the folders ``argv[1:]`` to ``argv[0]`` and print it."""
    if len(argv) < 2:
        raise SystemExit(__doc__)
    rows = load(argv[1:])
    if not rows:
        raise SystemExit(f"no whole-path results in {argv[1:]}")
    lines = ["# Whole-path overhead over several invocations", "",
             "Sources: " + ", ".join(f"`{d}`" for d in argv[1:]) + ".", "",
             ("Overhead = whole / bare - 1, each invocation a median of 5 runs after a warm-up; `W x 1` rows "
              "against the faster bare pass on the same cores (see benchmarks/README.md)."), ""] + table(rows)
    Path(argv[0]).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main(sys.argv[1:])
