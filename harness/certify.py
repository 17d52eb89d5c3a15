"""certify(): grid -> claimed -> truth -> finite differences -> verdict -> report.

The orchestration only: ``prepare`` (the grid, ``inputs.samples``; the claims,
``claims.claimed``; the units and the truths they miss, ``truth.units`` and
``truth.solve``), the truths solved (``truth.solve``), and ``finish`` (the
verdicts, ``judging.judge``, with the finite differences of ``claims.estimates``).
"""

from __future__ import annotations

import functools
import time
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from .case import Case, check_modes, check_order
from .claims.batched_claims import claim_all, identity_of
from .claims.claimed import _call, _claimed, _claimed_further, _vmapped, one_thread
from .claims.estimates import _Estimates, _finite_differences, _gradient_differences
from .errors import CaseError
from .inputs import grids
from .inputs.edges import along_patterns, edges
from .inputs.floats import fmt
from .inputs.samples import _grid, _Sample
from .judging.expectations import expectation_for
from .judging.judge import _feature_name, _judge
from .judging.report import Report
from .judging.tolerance import indeterminate_policy, underflow_policy
from .judging.verdict import meets
from .truth.cache import TruthCache
from .truth.pool import PointFailure
from .truth.solve import _MEMORY_CACHE, _failure, _missing, _solve, _solve_batch, _table
from .truth.units import _Units


@dataclass(frozen=True)
class _Options:
    """How ``certify`` runs (not what it judges)."""

    grid_size: int | None = None
    cache: TruthCache | None = None
    workers: int | None = None
    executor: Executor | None = None
    progress: Callable[[str], None] | None = None
    exhaustive: bool = False
    underflow: str | None = None     # "fail" or "report" in every case and dtype of the run
    order: int | None = None         # over every case's own
    modes: tuple[str, ...] | None = None
    indeterminate: str | None = None   # "report" or "finite" in every case of the run
    dense: bool = False              # exhaustive 16-bit, whole-range binades, bisected edges (``samples``)

    def __post_init__(self):
        if self.order is not None:
            check_order(self.order, "certify")
        if self.modes is not None:
            check_modes(self.modes, "certify")
            object.__setattr__(self, "modes", tuple(self.modes))

    def order_of(self, case: Case) -> int:
        return self.order or case.order

    def forward_mode(self, case: Case) -> bool:
        return "forward" in (self.modes or case.modes)


def certify(case: Case, dtype: torch.dtype = torch.float32, device: str = "cpu",
            grid_size: int | None = None, cache: TruthCache | None = None,
            workers: int | None = None, *, exhaustive: bool = False, executor: Executor | None = None,
            progress: Callable[[str], None] | None = None, underflow: str | None = None,
            order: int | None = None, modes: tuple[str, ...] | None = None,
            indeterminate: str | None = None, dense: bool = False) -> Report:
    """Judge ``case`` in ``dtype`` on ``device`` over its extreme grid.

    Raises ``CaseError`` (naming the case, the point and the cause) when the
    case itself is broken; numerical defects are failures in the report.

    Args:
        grid_size: points per binade (default ``grids.DEFAULT_SIZE``).
        cache: where truths are kept between runs (default: this process's memory).
        workers: processes of the local truth pool (default: the usable cores).
        exhaustive: float16 and bfloat16, elementwise one-input cases: every
            value of the format instead of the grid.
        executor: a ``concurrent.futures.Executor`` (e.g. a Dask client's) that
            computes the truths instead of the local pool.
        progress: called with a line of text as truths arrive on long runs.
        underflow: ``"fail"`` or ``"report"``: whether a flush to zero fails,
            over the case's and the dtype's policy (``harness.judging.tolerance``).
        indeterminate: ``"report"`` or ``"finite"``: whether a NaN or inf fails
            where the limit at ±inf depends on the path, over the case's policy.
        order, modes: over the case's own (``Case.order``, ``Case.modes``).
        dense: a sweep that a denser one cannot break: every value of a 16-bit
            format for a one-input elementwise case (as ``exhaustive``), else
            ``grid_size`` (default 16) points in every binade of the whole range,
            and each edge where a claimed quantity changes class (finite and inf,
            zero and nonzero, NaN) bisected down to adjacent floats (one input).

    Example:
        >>> import mpmath
        >>> case = Case("softplus", torch.nn.functional.softplus,
        ...             lambda x: mpmath.log1p(mpmath.exp(x)))
        >>> certify(case, torch.float64, grid_size=1).ok
        True
    """
    with one_thread():
        return _certify(case, dtype, device, _Options(grid_size, cache, workers, executor, progress, exhaustive,
                                                          underflow, order, modes, indeterminate, dense))


def certify_many(jobs: list[tuple[Case, torch.dtype, str]], **options) -> list[Report | CaseError]:
    """``certify`` of many (case, dtype, device) at once: every missing truth of
    every job in one pool, so both cores stay busy and a point shared by
    several jobs is computed once. A broken job gives its ``CaseError`` in its
    place; the others are judged. ``options`` are ``certify``'s keywords."""
    opts = _Options(**options)
    with one_thread():
        prepared = prepare_all(jobs, opts)
        return [p if isinstance(p, CaseError) else _finish_or_error(p) for p in prepared]


def _finish_or_error(p: Prepared) -> Report | CaseError:
    try:
        return finish(p, {})
    except CaseError as err:
        return err


def prepare_all(jobs: list[tuple[Case, torch.dtype, str]], options: _Options) -> list[Prepared | CaseError]:
    """Each job prepared, and the truths all of them miss computed and cached."""
    prepared: list = []
    for case, dtype, device in jobs:
        try:
            prepared.append(prepare(case, dtype, device, options))
        except CaseError as err:
            prepared.append(err)
    ready = [p for p in prepared if isinstance(p, Prepared)]
    broken = solve_prepared(ready, options)
    position = {id(p): k for k, p in enumerate(ready)}
    return [broken.get(position[id(p)], p) if isinstance(p, Prepared) else p for p in prepared]


def _certify(case, dtype, device, options: _Options) -> Report:
    prepared = prepare(case, dtype, device, options)
    stats = _solve(case, list(prepared.todo.items()), options)
    return finish(prepared, stats)


@dataclass
class Prepared:
    """A certification up to its truths: the grid, the claimed results, the
    units and their cache keys, and the truths still missing (``todo``)."""

    case: Case
    dtype: torch.dtype
    device: str
    options: _Options
    samples: list
    domains: tuple
    names: tuple
    units: list
    keys: list[str] | None
    todo: dict
    keys2: list[str] | None          # the directional truths (JVP, Hessian-vector product), if judged
    started: float
    notes: list[str]
    claims: str = "one by one"       # how the forward and backward were called (``batched_claims``)
    batch_mode: str | None = None    # ... and as which batch, where one stood in for every point


def prepare(case: Case, dtype: torch.dtype, device: str, options: _Options) -> Prepared:
    """Everything before the truths. Raises ``CaseError`` for a broken case."""
    started = time.perf_counter()
    samples, domains, names, notes = _grid(case, dtype, options)
    order, forward = options.order_of(case), options.forward_mode(case)
    cache = options.cache or _MEMORY_CACHE
    one = lambda sample: _claimed(case, sample, dtype, device)   # noqa: E731
    claims, batch_mode = "one by one", None
    if case.elementwise or getattr(case.forward, "harness_compiled", False):
        for sample in samples:
            one(sample)
        if options.dense and case.elementwise and case.arity == 1 and not _exhaustive(notes):
            samples[0] = _with_edges(case, samples[0], options, dtype, device, notes)
    else:
        batches = {"broadcast": lambda arrays, rows: _call(case, arrays, dtype, device, rows),
                   "vmap": lambda arrays, rows: _call(_vmapped(case), arrays, dtype, device, rows)}
        claims, batch_mode = claim_all(samples, one, batches, identity_of(case, dtype, device), cache)
        if options.dense and case.grid is None:
            samples += _pattern_edges(case, samples, dtype, device, notes)
    if order == 2 or forward:
        for sample in samples:
            _claimed_further(case, sample, domains, dtype, device, order, forward)
    units = _Units(case, samples)
    keys, todo = _missing(case, units, domains, cache)
    keys2 = None
    if order == 2 or forward:
        keys2, more = _missing(case, units, domains, cache, keys)
        todo.update(more)
    return Prepared(case, dtype, device, options, samples, domains, names, units, keys, todo, keys2, started, notes,
                    claims, batch_mode)


def _exhaustive(notes: list[str]) -> bool:
    return any(n.startswith("exhaustive") and "not applicable" not in n for n in notes)


def _with_edges(case: Case, sample: _Sample, options: _Options, dtype, device, notes: list[str]) -> _Sample:
    """A dense one-input sample with each edge of its claims bisected to adjacent
    floats (``inputs.edges``), claimed again as one grid; ``notes`` says how many."""
    def value_and_gradient(xs):
        output, grads, _, _ = _call(case, (xs,), dtype, device)
        return output, grads[0]

    x = sample.arrays[0]
    order = np.argsort(x, kind="stable")
    found, bisected, left = edges(x[order], (sample.output[order], sample.grads[0][order]), value_and_gradient, fmt(dtype))
    new = found[~np.isin(found.view(np.int64), x.view(np.int64))]
    unbisected = f"; {left:,} more left unbisected" if left else ""
    notes.insert(0, f"dense: {x.size + new.size:,} inputs ({options.grid_size or grids.DENSE_SIZE} or more per "
                    f"binade over the whole range of {fmt(dtype).name}, and {found.size // 2:,} edges where a "
                    f"claim changes class bisected to adjacent floats{unbisected})")
    if not new.size:
        return sample
    extended = _Sample((np.sort(np.concatenate([x, new])),))
    _claimed(case, extended, dtype, device)
    return extended


def _pattern_edges(case: Case, samples: list[_Sample], dtype, device, notes: list[str]) -> list[_Sample]:
    """Structured points on both sides of each edge where a claim changes class
    between neighbouring values of a pattern's parameter, bisected to adjacent
    floats (``inputs.edges.along_patterns``), claimed; ``notes`` says how many."""
    def claims_at(arrays):
        output, grads, _, _ = _call(case, arrays, dtype, device)
        return (output, *grads)

    claimed = [(s.output, *s.grads) for s in samples]
    found, bisected, left = along_patterns([s.pattern for s in samples], claimed, claims_at, fmt(dtype))
    more = [_Sample(p.arrays, pattern=p) for p in found]
    for sample in more:
        _claimed(case, sample, dtype, device)
    unbisected = f"; {left:,} more left unbisected" if left else ""
    notes.insert(0, f"dense: {len(samples) + len(more):,} points (the patterns, and {bisected:,} edges where a claim "
                    f"changes class bisected along the pattern's parameter to adjacent floats{unbisected})")
    return more


def finish(p: Prepared, truth_stats: dict) -> Report:
    """Judge a prepared certification once its truths are in the cache."""
    case, f = p.case, fmt(p.dtype)
    report = Report(case.name, f.name, str(p.device), feature_name=_feature_name(case, p.names))
    # What an exhaustive sweep covers leads the summary: it makes the verdict a proof.
    report.coverage = next((n for n in p.notes if n.startswith("dense") or _exhaustive([n])), None)
    report.notes += [n for n in p.notes if n != report.coverage]
    cache = p.options.cache or _MEMORY_CACHE
    table = _table(p.keys, p.units, cache)
    further = p.options.order_of(case) == 2 or p.options.forward_mode(case)
    table2 = _table(p.keys2, p.units, cache) if further else None
    estimates = {}
    if not case.gradient_only:
        estimates["gradient"] = _Estimates(case, p.samples, p.dtype, p.device, f, p.domains,
                                           functools.partial(_finite_differences, batched=p.batch_mode))
    if p.options.order_of(case) == 2:
        estimates["hvp"] = _Estimates(case, p.samples, p.dtype, p.device, f, p.domains, _gradient_differences)
    policy = underflow_policy(p.dtype, case.underflow, p.options.underflow, case.budget)
    _judge(case, report, p.units, (table, table2), estimates, p.samples, p.dtype, f, p.names, policy,
           p.options.order_of(case), p.options.forward_mode(case),
           indeterminate_policy(case.indeterminate, p.options.indeterminate))
    report.notes += list(dict.fromkeys(f"{q}: {why}" for sample in p.samples
                                       for q, why in (sample.unsupported or {}).items()))
    report.stats.update(truth_stats)
    report.stats.update(points=len(p.units), claims=p.claims, fd_forward_calls=sum(e.calls for e in estimates.values()),
                        seconds=time.perf_counter() - p.started)
    return report


def check(case: Case, report: Report, dtype: torch.dtype, compiled: bool = False) -> str | None:
    """None when the report meets the case's expectation for ``dtype`` (compiled or
    not, ``expectations.expectation_for``), else why not."""
    expectation = expectation_for(case.expect, dtype, compiled)
    return meets(expectation, report.ok, report.kinds, [fl.feature for fl in report.failures],
                 dense=report.coverage is not None)


def solve_prepared(prepared: list[Prepared], options: _Options) -> dict[int, CaseError]:
    """The missing truths of many prepared certifications in one pool (both
    cores busy for the whole batch, each shared point computed once). A
    reference that fails breaks every certification holding that point
    (returned by position), and the others still get their truths."""
    owners: dict[str, list[int]] = {}
    entries: dict[str, tuple] = {}
    for k, p in enumerate(prepared):
        for key, entry in p.todo.items():
            owners.setdefault(key, []).append(k)
            entries.setdefault(key, entry)
    broken: dict[int, CaseError] = {}
    cost: dict[int, int] = {}
    for key, (_, task) in entries.items():
        cost[owners[key][0]] = cost.get(owners[key][0], 0) + len(task.x)
    costliest = prepared[max(cost, key=cost.get)].case if cost else None
    while entries:
        # The costliest points first (a structured point costs a stencil per
        # element), so that no worker is left with a slow one at the end.
        batch = sorted(entries.items(), key=lambda e: -len(e[1][1].x))
        try:
            _solve_batch(batch, options, f"{len(prepared)} certifications", costliest)
            break
        except PointFailure as exc:
            key, (u, _) = batch[exc.index]
            for k in owners[key]:
                broken.setdefault(k, _failure(prepared[k].case, u, exc))
            # What arrived before the failure is cached: the next pass computes only the rest.
            done = (options.cache or _MEMORY_CACHE).get_many(list(entries))
            entries = {key: e for key, e in entries.items()
                       if key not in done and any(k not in broken for k in owners[key])}
    return broken
