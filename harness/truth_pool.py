"""Truths of many points at once, spread over processes.

The truth is pure Python (mpmath) and holds the GIL, so threads do not help;
processes do. Workers are forked, so a reference defined anywhere (a lambda
in a case file) needs no pickling: each worker reads the task list it
inherited and sends back only the index and the ``PointTruth``.
"""

from __future__ import annotations

import multiprocessing
import os
from dataclasses import dataclass
from typing import Callable

from .truth import PointTruth, ReferenceFailure, solve_point

#: Below this many points a pool costs more than it saves.
MIN_PARALLEL = 48


@dataclass
class Task:
    """One point: the flat reference and the arguments of ``solve_point``."""

    reference: Callable
    x: list[float]
    cotangent: list[float]
    domains: list


_TASKS: list[Task] = []


def default_workers() -> int:
    """The usable cores; 1 inside a pytest-xdist worker, which is one of many
    processes already."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        return 1
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


def _solve(k: int):
    t = _TASKS[k]
    try:
        return k, solve_point(t.reference, t.x, t.cotangent, t.domains), None
    except ReferenceFailure as exc:
        return k, None, str(exc)


class PointFailure(ReferenceFailure):
    """The reference failed at task ``index``."""

    def __init__(self, index: int, message: str):
        super().__init__(message)
        self.index = index


def solve_all(tasks: list[Task], workers: int | None = None,
              progress: Callable[[int, int], None] | None = None, executor=None) -> list[PointTruth]:
    """The truth of every task, in order. Raises ``PointFailure`` at the first
    point whose reference fails, without waiting for the others (a reference
    that never converges is slow at every point). ``progress(done, total)``
    is called as truths arrive."""
    global _TASKS
    workers = default_workers() if workers is None else max(1, workers)
    parallel = (workers > 1 and len(tasks) >= MIN_PARALLEL
                and "fork" in multiprocessing.get_all_start_methods())
    out: list = [None] * len(tasks)
    _TASKS = tasks
    try:
        if parallel:
            # Leaving the block terminates the workers, also on a failure.
            with multiprocessing.get_context("fork").Pool(workers) as pool:
                # Small chunks: a point's cost varies by orders of magnitude.
                _collect(pool.imap_unordered(_solve, range(len(tasks)), chunksize=4), out, progress)
        else:
            _collect(map(_solve, range(len(tasks))), out, progress)
    finally:
        _TASKS = []
    return out


def _collect(results, out: list, progress) -> None:
    for done, (k, truth, error) in enumerate(results, 1):
        if error is not None:
            raise PointFailure(k, error)
        out[k] = truth
        if progress is not None:
            progress(done, len(out))
