"""Truths of many points at once, spread over processes.

The truth is pure Python (mpmath) and holds the GIL, so threads do not help;
processes do. Workers are forked, so a reference defined anywhere (a lambda
in a case file) needs no pickling: each worker reads the task list it
inherited and sends back only the index and the truth (or its encoded record).

Given a ``concurrent.futures.Executor`` instead (a Dask client's
``get_executor()``), the tasks travel to it in chunks, so the executor must
be able to ship the reference: Dask pickles with cloudpickle, which sends a
lambda by value; a ``ProcessPoolExecutor`` pickles plainly and takes only
references defined at module level (docs/cluster.md).

Workers end with their parent, whatever ends it (docs/interruption.md): each
asks the kernel for SIGKILL when its parent dies (``prctl(PR_SET_PDEATHSIG)``
on Linux; elsewhere a thread watches the parent's pid), and a SIGTERM to the
parent during a batch first unwinds it (``unwind_on_sigterm``).
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import signal
import sys
import threading
import time
import uuid
from concurrent.futures import Executor, as_completed
from dataclasses import dataclass
from typing import Callable

from .mpmath_engine import ReferenceFailure
from .point import solve_point

#: Below this many points a pool costs more than it saves.
MIN_PARALLEL = 48
#: Input elements per future on an executor: 30-100 ms of work (a truth
#: costs 0.5-1.5 ms of one core per input element), so that a Dask task's
#: few ms of scheduling and pickling stay small, and a 2,000-point grid
#: still makes ~35 futures to spread.
CHUNK_ELEMENTS = 64
#: Points per future at most, however small each point.
CHUNK_POINTS = 64

# mpmath's working precision is one global per process (``workprec`` sets
# and restores it), so two threads solving at once corrupt each other's
# precision and points "never converge". Under the GIL threads gain nothing
# here anyway: a threaded executor (ThreadPoolExecutor, a Dask worker with
# several threads) solves one chunk at a time per process.
_MPMATH = threading.Lock()


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


_THEN: list = [None]   # what the workers apply to each truth before sending it back


def _solve(k: int):
    t = _TASKS[k]
    try:
        truth = solve_point(t.reference, t.x, t.cotangent, t.domains)
        return k, truth if _THEN[0] is None else _THEN[0](truth), None
    except ReferenceFailure as exc:
        return k, None, str(exc)


#: ``prctl`` option: the signal this process gets when its parent dies (linux/prctl.h).
_PR_SET_PDEATHSIG = 1


def _end_with_parent(parent: int) -> None:
    """Pool initializer: this worker dies with ``parent``, by SIGKILL, SIGTERM
    or an exception alike (a worker left running holds a core for minutes)."""
    # Forked with the parent's handlers: Pool.terminate's SIGTERM must end a
    # worker, not run the parent's ``unwind_on_sigterm`` handler in it.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if not _parent_death_signal(signal.SIGKILL):
        threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    if os.getppid() != parent:   # it died before the kernel was asked
        os._exit(1)


def _parent_death_signal(signum: int) -> bool:
    """Ask the kernel for ``signum`` when the parent dies; False where it cannot."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        return ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signum, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _watch_parent(parent: int, every: float = 1.0) -> None:
    # An orphan is adopted by init (or a subreaper): its parent pid changes.
    while os.getppid() == parent:
        time.sleep(every)
    os._exit(1)


class _Terminated(BaseException):
    """SIGTERM arrived during ``unwind_on_sigterm``."""


@contextlib.contextmanager
def unwind_on_sigterm():
    """A SIGTERM while the block runs unwinds it (the pool terminated, the
    truths computed so far written by the cache's writer), then ends the
    process as SIGTERM would have (same exit status). Off the main thread, or
    where SIGTERM already has a handler or is ignored, nothing changes."""
    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        yield
        return

    def handler(signum, frame):
        signal.signal(signal.SIGTERM, signal.SIG_DFL)   # a second one ends the process at once
        raise _Terminated

    signal.signal(signal.SIGTERM, handler)
    try:
        yield
    except _Terminated:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.raise_signal(signal.SIGTERM)
        raise   # not reached: the default action ends the process
    finally:
        if signal.getsignal(signal.SIGTERM) is handler:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)


class PointFailure(ReferenceFailure):
    """The reference failed at task ``index``."""

    def __init__(self, index: int, message: str):
        super().__init__(message)
        self.index = index


def solve_all(tasks: list[Task], workers: int | None = None,
              progress: Callable[[int, int], None] | None = None,
              executor: Executor | None = None, then: Callable | None = None,
              keep: Callable[[int, object], None] | None = None) -> list:
    """The truth of every task, in order. Raises ``PointFailure`` at the first
    point whose reference fails, without waiting for the others (a reference
    that never converges is slow at every point). ``progress(done, total)``
    is called as truths arrive. ``then`` (a module-level function) is applied
    to each truth where it was computed: ``truth_table.encode`` sends back a
    few dozen bytes instead of mpmath numbers for this process to unpickle.
    ``keep(index, result)`` is called as each arrives (to cache it at once: an
    interrupted run keeps what it computed).

    With ``executor``, chunks of tasks are submitted to it (``workers`` is
    then unused); otherwise a forked local pool of ``workers`` processes
    (default: the usable cores) or, for few points, this process.

    Example:
        >>> import mpmath
        >>> from concurrent.futures import ThreadPoolExecutor
        >>> from harness.inputs.domains import real
        >>> task = Task(lambda v: [mpmath.exp(v[0])], [0.0], [1.0], [real()])
        >>> with ThreadPoolExecutor(2) as pool:
        ...     [float(t.grad[0]) for t in solve_all([task, task], executor=pool)]
        [1.0, 1.0]
    """
    global _TASKS
    out: list = [None] * len(tasks)
    if executor is not None:
        _on_executor(executor, tasks, out, progress, then, keep)
        return out
    workers = default_workers() if workers is None else max(1, workers)
    parallel = (workers > 1 and len(tasks) >= MIN_PARALLEL
                and "fork" in multiprocessing.get_all_start_methods())
    _TASKS, _THEN[0] = tasks, then
    try:
        if parallel:
            # Leaving the block terminates the workers, also on a failure; the
            # initializer ends them when this process ends without leaving it.
            with multiprocessing.get_context("fork").Pool(workers, _end_with_parent, (os.getpid(),)) as pool:
                # Small chunks: a point's cost varies by orders of magnitude.
                chunk = max(4, min(32, len(tasks) // (64 * workers)))
                _collect(pool.imap_unordered(_solve, range(len(tasks)), chunksize=chunk), out, progress, keep)
        else:
            _collect(map(_solve, range(len(tasks))), out, progress, keep)
    finally:
        _TASKS, _THEN[0] = [], None
    return out


def _chunks(tasks: list[Task]) -> list[tuple[int, int]]:
    """``(start, stop)`` spans of about ``CHUNK_ELEMENTS`` input elements."""
    spans, start, elements = [], 0, 0
    for k, task in enumerate(tasks):
        elements += len(task.x)
        if elements >= CHUNK_ELEMENTS or k + 1 - start >= CHUNK_POINTS:
            spans.append((start, k + 1))
            start, elements = k + 1, 0
    if start < len(tasks):
        spans.append((start, len(tasks)))
    return spans


@dataclass
class _Chunk:
    """Tasks ``start``, ``start + 1``, ... as one future's argument."""

    start: int
    tasks: list[Task]
    then: Callable | None = None

    def __dask_tokenize__(self) -> str:
        # Dask names a task by hashing its arguments, to share equal ones:
        # ~5 ms a chunk of hashing here, for nothing (no chunk is submitted
        # twice). A fresh name instead.
        return uuid.uuid4().hex


def _solve_chunk(chunk: _Chunk) -> list:
    """``(index, truth, error)`` of each task, up to the first that fails."""
    results = []
    with _MPMATH:
        for k, t in enumerate(chunk.tasks, chunk.start):
            try:
                truth = solve_point(t.reference, t.x, t.cotangent, t.domains)
                results.append((k, truth if chunk.then is None else chunk.then(truth), None))
            except ReferenceFailure as exc:
                results.append((k, None, str(exc)))
                break
    return results


def _on_executor(executor: Executor, tasks: list[Task], out: list, progress, then=None, keep=None) -> None:
    futures = {executor.submit(_solve_chunk, _Chunk(start, tasks[start:stop], then))
               for start, stop in _chunks(tasks)}
    try:
        _collect((result for future in as_completed(futures) for result in future.result()), out, progress, keep)
    finally:
        # After a failure (or an interrupt) the rest is not wanted: a Dask
        # future cancelled here is cancelled on the cluster too.
        for future in futures:
            future.cancel()


def _collect(results, out: list, progress, keep=None) -> None:
    for done, (k, truth, error) in enumerate(results, 1):
        if error is not None:
            raise PointFailure(k, error)
        out[k] = truth
        if keep is not None:
            keep(k, truth)
        if progress is not None:
            progress(done, len(out))
