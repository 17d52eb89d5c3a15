"""The truths a certification misses, computed and cached: proven by enclosure
where the interval engine can (``ball``), verified by the mpmath engine in a
pool of processes or on an executor (``pool``) elsewhere."""

from __future__ import annotations

import time
from typing import Callable

import numpy as np

from ..case import Case
from ..errors import _RELATION_HINT, CaseError, warn_user
from ..inputs.samples import _tangents
from .ball import solve_tasks
from .cache import TruthCache, fingerprint
from .directional import Directional
from .flat_reference import _flat_reference
from .pool import PointFailure, Task, default_workers, solve_all, unwind_on_sigterm
from .table import TruthTable, encode
from .units import _Unit

_MEMORY_CACHE = TruthCache(None)


#: Appended to a point's key for the truth of ``J(x) v`` there (``v`` is a
#: function of the point's shapes, which the key holds): no second hash of
#: every point (a third of a warm order-2 certification).
DIRECTIONAL = ":Jv"


def _missing(case: Case, units: list[_Unit], domains, cache: TruthCache, keys: list[str] | None = None):
    """The units' cache keys (None without a reference) and a ``Task`` per truth
    the cache lacks (an elementwise point with a NaN input has none). Given the units'
    ``keys``: the truths of ``J(x) v`` (``harness.truth.directional``) instead of ``f``."""
    if case.reference is None:
        return None, {}
    directional = keys is not None
    keys = [k + DIRECTIONAL for k in keys] if directional else units.keys(fingerprint(case.reference))
    known = cache.get_many(keys)
    todo: dict[str, tuple[_Unit, Task]] = {}
    nan = units.nan()
    # A structured point's outputs that its NaN entries do not reach have a truth
    # (``truth._around_nan``); an elementwise point's one output is NaN.
    nan = nan & (case.elementwise or directional)
    for j in [j for j, key in enumerate(keys) if key not in known and not nan[j]]:
        key, u = keys[j], units[j]
        if key in todo:
            continue
        shapes = tuple(np.shape(a) for a in u.point)
        out_size = int(np.prod(u.out_shape)) if u.out_shape else 1
        flat_domains = [d for a, d in zip(u.point, domains) for _ in range(np.size(a))]
        reference = _flat_reference(case, shapes, out_size)
        if directional:
            tangent = tuple(float(v) for t in _tangents(case, shapes, domains) for v in np.ravel(t))
            reference = Directional(reference, tangent, tuple(flat_domains))
        todo[key] = (u, Task(reference, [float(v) for a in u.point for v in np.ravel(a)],
                             [float(v) for v in np.ravel(u.cotangent)], flat_domains))
    return keys, todo


def _solve(case: Case, entries: list, options) -> dict:
    """Compute and cache the truths of ``entries`` (key, (unit, task)); a
    failing reference is a ``CaseError`` naming its point."""
    started = time.perf_counter()
    if entries:
        try:
            _solve_batch(entries, options, f"case {case.name!r}", case)
        except PointFailure as exc:
            raise _failure(case, entries[exc.index][1][0], exc) from exc
    return {"truth_computed": len(entries), "truth_seconds": time.perf_counter() - started}


def _failure(case: Case, u: _Unit, exc: PointFailure) -> CaseError:
    cause = str(exc)
    if "complex value" in cause and case.arity > 1 and case.relation is None:
        # log(exp(x) - exp(y)) at x <= y: no one input's domain excludes it.
        cause += f" (outside its domain: narrow it{_RELATION_HINT})"
    elif "complex value" in cause and case.relation is not None:
        cause += (" (a stencil of the difference engine crossed the relation between the inputs, which it does "
                  "not see: write the reference with harness.exact, whose forward mode takes no stencils)")
    return CaseError(case.name, cause, u.point if not case.elementwise else tuple(float(a) for a in u.point))


def _solve_batch(batch: list, options, what: str, case: Case | None = None) -> None:
    """Truths of ``batch`` (key, (unit, task)) into the cache; raises ``PointFailure``.
    ``case``: the one whose definition a warning from the plugin points at."""
    tasks = [task for _, (_, task) in batch]
    # Cached as they arrive: an interrupted run keeps what it computed, also
    # when stopped by SIGTERM (the writer's last batch is written on the way out).
    with unwind_on_sigterm(), (options.cache or _MEMORY_CACHE).writer() as put:
        # Proven by enclosure where it can (elementwise exact formulas, a grid per
        # pass); the rest by the mpmath engine, point by point.
        left = solve_tasks(tasks, keep=lambda k, record: put(batch[k][0], record))
        rest = [tasks[k] for k in left]
        _warn_if_long(what, rest, options, case)
        try:
            solve_all(rest, options.workers, _reporter(options.progress), options.executor, encode,
                      keep=lambda j, record: put(batch[left[j]][0], record))
        except PointFailure as exc:
            raise PointFailure(left[exc.index], str(exc)) from exc


def _table(keys: list[str] | None, units: list, cache: TruthCache) -> TruthTable:
    records = cache.get_many(keys) if keys is not None else {}
    return TruthTable.of([records.get(k) for k in keys] if keys is not None else [None] * len(units),
                         units.sizes())


def _truths(case: Case, units: list, domains, options) -> tuple[TruthTable, dict]:
    """The truths of ``units``, computed where the cache lacks them."""
    cache = options.cache or _MEMORY_CACHE
    keys, todo = _missing(case, units, domains, cache)
    stats = _solve(case, list(todo.items()), options)
    return _table(keys, units, cache), stats


#: Seconds of one core per input element of a cold truth (measured: the torch
#: ops sweep's 538,246 elements took 658 s on 2 cores, 2.4 ms each; the
#: shipped cases' mix is alike; most points take a millisecond, a few escalate).
TRUTH_SECONDS = 0.0025


#: A truth of J(x) v against a first-order one (docs/second_order.md: 4.7x to 5.9x measured).
DIRECTIONAL_COST = 6


#: Above this many expected seconds a certification warns before it starts.
LONG_SECONDS = 60.0


class LongCertification(UserWarning):
    """A certification that will take minutes: its size and expected cost."""


def _warn_if_long(what: str, tasks: list, options, case: Case | None = None) -> None:
    elements = sum(len(t.x) for t in tasks)
    cores = options.workers or default_workers()
    weight = sum(len(t.x) * (DIRECTIONAL_COST if isinstance(t.reference, Directional) else 1) for t in tasks)
    expected = weight * TRUTH_SECONDS / cores
    if expected > LONG_SECONDS and options.executor is None:
        # At the user's certify line (or, from the plugin, at the costliest case's definition).
        warn_user(LongCertification(
            f"{what}: {len(tasks)} points ({elements} input elements) need truths; expect about "
            f"{expected / 60:.0f} min on {cores} core(s) (cached afterwards: --truth-cache)"), case)


def _reporter(progress: Callable[[str], None] | None, every: float = 5.0):
    """``(done, total) -> None`` that hands ``progress`` a line every ``every`` seconds."""
    if progress is None:
        return None
    started = last = time.perf_counter()

    def report(done: int, total: int) -> None:
        nonlocal last
        now = time.perf_counter()
        if now - last >= every or (done == total and now - started >= every):
            last = now
            progress(f"truths {done}/{total} ({done / (now - started):.0f} points/s)")
    return report
