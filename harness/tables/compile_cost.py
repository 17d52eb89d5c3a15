"""What compiling costs, per op: ``torch.compile``'s time for a case's forward and
backward (``harness.claims.execution.compiled``, the warm-up call), and the
certification's time, eager and compiled, with the truths already cached.

    python -m harness.tables.compile_cost --module cases.torch_ops --dtype float32

prints a markdown table. Run it twice with the same ``TORCHINDUCTOR_CACHE_DIR``,
empty the first time: the first run's compile column is cold (Dynamo, AOTAutograd,
Inductor's code generation and the C++ compiler), the second's warm (the compiled
graphs loaded from Inductor's cache in a new process). docs/performance.md holds
both.
"""

from __future__ import annotations

import argparse
import importlib
import os
import statistics
import sys
import time
from pathlib import Path

import torch


def measure(cases, dtype: torch.dtype, cache) -> list[tuple[str, float, float, float]]:
    """(case name, compile seconds, eager certification seconds, compiled certification
    seconds) per case that runs in ``dtype``; the eager run fills the truths first."""
    from ..certify import certify
    from ..claims.execution import compiled

    rows = []
    for case in cases:
        if dtype not in case.dtypes:
            continue
        started = time.perf_counter()
        certify(case, dtype, cache=cache)
        eager = time.perf_counter() - started
        twin, compile_seconds = compiled(case, dtype)
        started = time.perf_counter()
        certify(twin, dtype, cache=cache)
        rows.append((case.name, compile_seconds, eager, time.perf_counter() - started))
    return rows


def _first_compile() -> float:
    """The process's first compilation (importing Inductor, starting its workers), apart."""
    started = time.perf_counter()
    x = torch.ones(8, requires_grad=True)
    torch.compile(lambda v: v * 2, dynamic=True)(x).sum().backward()
    return time.perf_counter() - started


def render(rows, first: float, dtype: str) -> str:
    cache_dir = os.environ.get("TORCHINDUCTOR_CACHE_DIR", "(Inductor's default)")
    compile_times = [r[1] for r in rows]
    lines = [f"{len(rows)} cases in {dtype}; Inductor cache {cache_dir}; the process's first compilation "
             f"{first:.1f} s (not in the column). Compile: median {statistics.median(compile_times):.2f} s, "
             f"total {sum(compile_times):.0f} s; certification eager {sum(r[2] for r in rows):.0f} s, compiled "
             f"{sum(r[3] for r in rows):.0f} s.", "",
             "| case | compile (s) | certify eager (s) | certify compiled (s) |", "|---|---|---|---|"]
    lines += [f"| `{name}` | {c:.2f} | {e:.2f} | {k:.2f} |" for name, c, e, k in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.tables.compile_cost", description=__doc__.split("\n\n")[0])
    parser.add_argument("--module", default="cases.torch_ops", help="the case file's module (CASES)")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--ops", default=None, help="comma-separated case names (default: all)")
    parser.add_argument("--truth-cache", default=".pytest_cache/harness-truth.sqlite")
    parser.add_argument("--out", default=None, help="write the table here (default: print it)")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(Path.cwd()))
    from ..truth.cache import TruthCache

    cases = importlib.import_module(args.module).CASES
    if args.ops:
        cases = [c for c in cases if c.name in args.ops.split(",")]
    first = _first_compile()
    rows = measure(cases, getattr(torch, args.dtype), TruthCache(Path(args.truth_cache)))
    text = render(rows, first, args.dtype)
    if args.out:
        Path(args.out).write_text(text + "\n")
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
