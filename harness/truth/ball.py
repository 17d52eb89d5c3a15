"""Truths proven by enclosure: an ``exact`` formula over a whole grid in ball arithmetic.

A truth is accepted when its ball rounds to one number in every format
(float64, float32, float16, bfloat16): both ends round to the same float64
``d`` and the ball does not hold ``d`` itself (every narrower format's rounding
boundary is a float64, and ``d`` is the only float64 such a ball can reach),
or the ball is exact, or it lies within half the smallest subnormal of 0 (±0
in every format; the sign of a zero is not judged). Nothing is accepted
because two readings agree: the enclosure is the proof (Ziv's strategy, as in
Rival and CORE-MATH).

Points whose balls do not decide are read again at the next precision of
``SCHEDULE``; a point still undecided at its end, one at a switching point met
exactly (no precision separates two equal exact numbers), one with ±inf or
NaN inputs, and every point of a formula that leaves the ball stand-in's table
go to the mpmath engine (``harness.truth``), which has the one-sided analysis,
the limits at ±inf and the rest of torch. ``Handover`` counts them by cause.

The condition numbers come from the same pass: the jets carry the second
partials, so the change of a VJP entry when the inputs move by a relative
``delta`` is ``delta * |sum_k s_k x_k H_ik|`` (the sign patterns of
``truth.sign_patterns``), read without a moved evaluation.
"""

from __future__ import annotations

import contextlib
import math
from collections import Counter
from dataclasses import dataclass, field

import flint
import numpy as np

from . import exact_ball_rules  # noqa: F401  (registers the ball stand-in's rules)
from .ball_jet import absolute_paths
from .exact_ball import BallUnsupported, evaluate
from .exact_numbers import UNDERFLOW_BITS
from ..inputs.floats import FORMATS, round_split
from .mpmath_engine import KAPPA_STEP, sign_patterns
from .table import decode, encode_columns

arb = flint.arb

#: Working precisions in bits, each read only for the points the one before left undecided.
SCHEDULE = (128, 320, 1024, 4096)


@dataclass
class Handover:
    """Points the interval engine left to the mpmath engine, by cause."""

    causes: Counter = field(default_factory=Counter)
    proven: int = 0

    def add(self, cause: str, points: int) -> None:
        if points:
            self.causes[cause] += points

    @property
    def handed(self) -> int:
        return sum(self.causes.values())


@contextlib.contextmanager
def _precision(bits: int):
    saved = flint.ctx.prec
    flint.ctx.prec = bits
    try:
        yield
    finally:
        flint.ctx.prec = saved


def _ends(b) -> tuple[float, float, bool]:
    """Both ends of ball ``b`` rounded to float64, and whether the ball holds
    the float64 its lower end rounds to (NaN ends for a ball that is not finite)."""
    if not b.is_finite():
        return math.nan, math.nan, True
    if b.is_exact():
        d = float(b)
        return d, d, False
    lo, hi = float(b.lower()), float(b.upper())
    return lo, hi, math.isfinite(lo) and b.contains(arb(lo))


_ENDS = np.frompyfunc(_ends, 1, 3)


def _decided(balls: np.ndarray) -> np.ndarray:
    """Whether every number in each ball rounds to the same float in every format.

    Both ends must round to the same float64 ``d``; then no float64 but ``d``
    lies in the ball, and every narrower format's rounding boundary is a
    float64. So the ball decides unless it holds ``d`` and ``d`` is itself a
    boundary of a narrower format, where the side of ``d`` decides (a ball
    around 1 from ``sigmoid(6720)`` decides: 1 is a number of every format;
    one around ``1 + 2**-24``, float32's midpoint, does not). Within half the
    smallest subnormal of 0 both ends round to ±0: the sign of a zero is not
    judged."""
    shape = np.shape(balls)
    lo, hi, holds = _ENDS(np.asarray(balls).reshape(-1))
    lo, hi, holds = lo.astype(np.float64), hi.astype(np.float64), holds.astype(bool)
    tie = np.zeros(len(lo), dtype=bool)
    up, down = np.ones(len(lo)), -np.ones(len(lo))
    for f in FORMATS.values():
        tie |= round_split(lo, up, f) != round_split(lo, down, f)
    return ((lo == hi) & (~holds | ~tie)).reshape(shape)


def _split(b) -> tuple[float, int]:
    """The float64 nearest the ball's midpoint and the side the midpoint lies on:
    for a ball that rounds once (``_decided``), a split that rounds in every
    format as every number in the ball does."""
    m = b.mid()
    d = float(m)
    if not math.isfinite(d):
        return d, 0
    return d, int(m > d) - int(m < d)


_SPLIT = np.frompyfunc(_split, 1, 2)


def _as_float(b) -> float:
    return float(b.mid()) if b.is_finite() else math.inf


_FLOAT = np.frompyfunc(_as_float, 1, 1)


def _kappa(s, v) -> float:
    """``|s / v|``: inf at a zero value, as ``truth.value_condition`` has it (in
    balls: both may lie past float64, and their ratio not). A value below
    ``2**-UNDERFLOW_BITS`` is 0 there, as ``harness.exact`` flushes its results."""
    if v.is_zero() or not s.is_finite() or v.abs_upper() < _FLUSHED:
        return math.inf
    return _as_float(abs(s / v))


_KAPPA = np.frompyfunc(_kappa, 2, 1)
_FLUSHED = arb(2) ** -UNDERFLOW_BITS


class _Grid:
    """A formula's points: flat input elements by row, the inputs' shapes, the
    cotangents (rows by output elements), which elements are differentiated,
    and the elements' domains (where a moved reading must stay)."""

    def __init__(self, formula, x, shapes, cotangent, active, domains=None):
        self.formula, self.x, self.shapes = formula, x, shapes
        self.cotangent = cotangent.reshape(len(x), -1)
        self.active = np.asarray(active, dtype=bool)
        self.domains = domains
        sizes = [int(np.prod(s)) if s else 1 for s in shapes]
        self.starts = np.concatenate([[0], np.cumsum(sizes)]).astype(int)

    def inputs(self, rows: np.ndarray) -> list[np.ndarray]:
        return self._by_input(self.x[rows])

    def _by_input(self, flat: np.ndarray) -> list[np.ndarray]:
        return [flat[:, a:b].reshape((len(flat),) + tuple(s))
                for a, b, s in zip(self.starts[:-1], self.starts[1:], self.shapes)]

    def active_by_input(self) -> list[np.ndarray]:
        return [self.active[a:b].reshape(s) for a, b, s in zip(self.starts[:-1], self.starts[1:], self.shapes)]

    def moved(self, rows: np.ndarray, signs: list[int]) -> list[np.ndarray]:
        """The points ``rows`` with every differentiated element moved by a
        relative ``2**-KAPPA_STEP`` (sign ``signs[i]``), the other way where that
        leaves its domain, exactly (balls of no radius): as ``truth.PointSolver.moved``."""
        delta = arb(2) ** -KAPPA_STEP
        out = np.empty(self.x[rows].shape, dtype=object)
        for i in range(self.x.shape[1]):
            column = [arb(v) for v in self.x[rows, i].tolist()]
            if self.active[i]:
                step = signs[i] * delta
                domain = self.domains[i] if self.domains is not None else None
                column = [self._inside(v + step * v, domain, v - step * v) for v in column]
            out[:, i] = column
        return self._by_input(out)

    @staticmethod
    def _inside(y, domain, other):
        if domain is None:
            return y
        lo, hi = (domain.lo, domain.hi) if not domain.simplex else (None, None)
        inside = (lo is None or y > lo) and (hi is None or y < hi) and (not domain.simplex or 0 <= y <= 1)
        return y if inside else other


def solve_grid(formula, x: np.ndarray, cotangent: np.ndarray, active, handover: Handover | None = None,
               shapes: tuple | None = None, domains: list | None = None) -> tuple[dict[int, bytes], list[int]]:
    """Proven truths of the ``exact`` formula ``formula`` at the rows of ``x``
    (points by flat input elements, float64), as ``truth_table`` records.

    ``shapes``: the inputs' shapes (default: one number per column, an
    elementwise formula); ``cotangent``: per row, one weight per output
    element; ``active``: per input element, whether it is differentiated;
    ``domains``: per input element, its ``Domain`` (default: unbounded).

    Returns ``(records by row, rows left to the mpmath engine)``.

    Example:
        >>> import torch
        >>> records, left = solve_grid(lambda v: torch.log1p(torch.exp(v)), np.array([[0.0], [-1e30]]),
        ...                            np.ones(2), [True])
        >>> sorted(records), left
        ([0, 1], [])
    """
    handover = handover if handover is not None else Handover()
    grid = _Grid(formula, x, shapes if shapes is not None else ((),) * x.shape[1], cotangent, active, domains)
    rows = np.arange(len(x))
    finite = np.isfinite(x).all(axis=1)
    handover.add("±inf or NaN inputs (limits)", int((~finite).sum()))
    todo = rows[finite]
    records: dict[int, bytes] = {}
    try:
        for bits in SCHEDULE:
            if not todo.size:
                break
            found, switching, undecided = _pass(grid, todo, bits)
            records.update(found)
            handover.add("a switching point met exactly", len(switching))
            todo = undecided
        handover.add(f"undecided at {SCHEDULE[-1]} bits", len(todo))
        if records and not _repeatable(grid, records):
            handover.add("not a function of its inputs (two evaluations disagree)", len(records))
            records = {}
    except BallUnsupported as exc:
        handover.add(f"no ball rule: {exc}", len(todo))
        records = {}
    except Exception as exc:   # the mpmath engine reports the reference's own errors, with the point
        handover.add(f"raised {type(exc).__name__}", len(todo))
        records = {}
    handover.proven += len(records)
    return records, sorted(set(rows.tolist()) - set(records))


def _pass(grid: _Grid, todo: np.ndarray, bits: int) -> tuple[dict, np.ndarray, np.ndarray]:
    """One evaluation of the rows ``todo`` at ``bits``: the records of the rows it
    decides, the rows at a switching point, and the rows a higher precision may decide.

    The points are read also moved by a relative ``2**-KAPPA_STEP`` (one copy of
    each per sign pattern, in the same batch): the gradient's condition number
    is its change there, as the mpmath engine reads it. The first-order limit
    (from second partials) misleads on both sides of that scale: it is 1 for
    layer_norm at a constant row of 1.8e19, whose variance a move by float32's
    rounding takes past eps, changing the gradient completely (the reading is
    2**24); and 8.9e15 for erfinv at 1 - 2**-53 in float64, where the reading
    saturates at 2**24 and keeps the budget that convicts compiled erfinv."""
    patterns = sign_patterns(len(grid.active))
    with _precision(bits):
        # Moved exactly: x (1 ± 2**-24) needs 78 bits, and a moved point rounded
        # at Arb's default precision turns exp(2e30 (1 + 2**-24)) into [± 1e8e29].
        inputs = [np.concatenate([_balls(a)] + list(m)) for a, *m in
                  zip(grid.inputs(todo), *[grid.moved(todo, signs) for signs in patterns])]
        jet, marks = evaluate(grid.formula, inputs, grid.active_by_input())
        cot = np.tile(grid.cotangent[todo], (len(patterns) + 1, 1))
        c = np.empty(cot.shape, dtype=object)
        c.reshape(-1)[:] = [arb(float(v)) for v in cot.reshape(-1)]
        # The VJP along each direction: sum over the outputs of cotangent times partial.
        grads = [None if t is None else (c * t).sum(axis=1) for t in jet.d]
        b = len(todo)
        ok = ~marks.switching[:b] & ~marks.undecided[:b] & _decided(jet.v[:b]).all(axis=1)
        for g in grads:
            if g is not None:
                ok &= _decided(g[:b])
                # A moved reading must be a reading: its ball narrow beside its size
                # (exp(a - b) at a gap of 3.4e38 needs 160 bits to be one); at the
                # last precision a reading that is not finite is none (a move off the domain).
                last = bits == SCHEDULE[-1]
                for p in range(1, len(patterns) + 1):
                    ok &= _READABLE(g[b * p:b * (p + 1)], last).astype(bool)
        done = np.flatnonzero(ok)
        found = {}
        if done.size:
            moved = [([None if g is None else g[b * p:b * (p + 1)][done] for g in grads],
                      ~(marks.switching | marks.undecided)[b * p:b * (p + 1)][done])
                     for p in range(1, len(patterns) + 1)]
            paths = _paths_at_zeros(grid, todo[done], [None if g is None else g[:b][done] for g in grads],
                                    c[:b][done])
            found = dict(zip(todo[done].tolist(),
                             _records(grid, todo[done], jet, grads, c, done, bits, moved, paths)))
    switching = marks.switching[:b]
    return found, todo[switching], todo[~ok & ~switching]


_IS_ZERO = np.frompyfunc(lambda g: g.is_zero(), 1, 1)


def _paths_at_zeros(grid: _Grid, rows: np.ndarray, grads: list, c: np.ndarray) -> list:
    """Per direction, over ``rows``, the size of the paths a VJP entry that is
    exactly 0 is formed from (``sum_j |g_j| * paths_j``: the jets evaluated
    with absolute partials, ``ball_jet.absolute_paths``), 0 elsewhere; one
    more evaluation, of the rows with such a zero only (the mpmath engine's
    ``derivative_truth._zeros_scaled_by_their_paths``)."""
    zero = np.zeros(len(rows), dtype=bool)
    for g in grads:
        if g is not None:
            zero |= _IS_ZERO(g).astype(bool)
    out = [np.zeros(len(rows)) for _ in grads]
    if not zero.any():
        return out
    with absolute_paths():
        jet, _ = evaluate(grid.formula, [_balls(a) for a in grid.inputs(rows[zero])], grid.active_by_input())
    weights = abs(c[zero])
    for k, t in enumerate(jet.d):
        if t is not None and grads[k] is not None:
            size = _FLOAT((weights * t).sum(axis=1)).astype(np.float64)
            out[k][zero] = np.where(np.isfinite(size), size, 0.0)
    return out


def _balls(a: np.ndarray) -> np.ndarray:
    out = np.empty(a.shape, dtype=object)
    out.reshape(-1)[:] = [arb(v) for v in a.reshape(-1).tolist()]
    return out


def _reading(g0, g1) -> tuple[float, float]:
    """``(relative, absolute)`` change of a VJP entry from ``g0`` to ``g1`` under a
    relative move ``2**-KAPPA_STEP`` of the inputs (``truth.kappa_reading``);
    NaN where the moved ball is not finite (no reading there)."""
    if not g1.is_finite():
        return math.nan, math.nan
    change = abs(g1 - g0) * 2 ** KAPPA_STEP
    return (math.inf if g0.is_zero() else _as_float(change / abs(g0))), _as_float(change)


_READING = np.frompyfunc(_reading, 2, 2)
#: A moved VJP entry counts where it is known to 16 bits or lies within half the
#: smallest subnormal of 0 (a change of 0 in every format); one that is not
#: finite only at the last precision (no reading there).
_READABLE = np.frompyfunc(lambda g, last: (last if not g.is_finite() else g.rel_accuracy_bits() >= 16
                                           or g.abs_upper() < _HALF_SUBNORMAL), 2, 1)
_HALF_SUBNORMAL = arb(2) ** -1075


#: Proven rows read again by ``_repeatable``.
RECHECK = 16


def _repeatable(grid: _Grid, records: dict) -> bool:
    """Whether a second evaluation at another precision rounds as the first did,
    at ``RECHECK`` rows spread over the proven ones. Balls of a function both
    hold its value; a formula that draws a random number (``torch.rand``)
    gives balls that cannot both hold it, which no enclosure can see alone."""
    rows = sorted(records)
    sample = np.array(rows[::max(1, len(rows) // RECHECK)][:RECHECK])
    again, _, _ = _pass(grid, sample, SCHEDULE[1] + 32)
    return all(_same_rounding(records[r], again[r]) for r in again)


def _same_rounding(a: bytes, b: bytes) -> bool:
    ta, tb = decode(a), decode(b)
    return all(np.array_equal(ta.value_in(f), tb.value_in(f), equal_nan=True)
               and np.array_equal(ta.grad_in(f), tb.grad_in(f), equal_nan=True) for f in FORMATS.values())


def _records(grid: _Grid, rows: np.ndarray, jet, grads: list, c: np.ndarray, done: np.ndarray,
             bits: int, moved: list, paths: list) -> list[bytes]:
    """The records of the decided points ``done`` (positions in the jet's
    arrays; ``rows`` of the grid). ``moved``: per sign pattern, the VJP entries
    at the moved points and whether each was read; ``paths``: per direction,
    what a zero VJP entry is formed from (``_paths_at_zeros``)."""
    m = len(done)
    n_in = len(grid.active)
    directions = np.flatnonzero(grid.active)
    v = jet.v[done]                                    # points by outputs
    value, value_side = (np.asarray(a).astype(t) for a, t in zip(_SPLIT(v), (np.float64, np.int8)))
    xs = [np.array([arb(float(e)) for e in grid.x[rows, i]], dtype=object)[:, None] for i in directions]
    # sum_i |x_i df/dx_i|: the value's condition number times |f| (in balls: |f| may lie past float64).
    s = None
    for xk, dk in zip(xs, jet.d):
        if dk is not None:
            term = abs(xk * dk[done])
            s = term if s is None else s + term
    if s is None:
        value_scale = np.zeros(v.shape)
        value_kappa = np.where(_FLOAT(v).astype(np.float64) == 0, np.inf, 0.0)
    else:
        value_scale = _FLOAT(s).astype(np.float64)
        value_kappa = _KAPPA(s, v).astype(np.float64)
    grad = np.full((m, n_in), np.nan)
    grad_side = np.zeros((m, n_in), np.int8)
    grad_kappa = np.full((m, n_in), np.nan)
    grad_scale = np.zeros((m, n_in))
    for k, i in enumerate(directions):
        g = grads[k][done] if grads[k] is not None else None
        if g is None:
            grad[:, i], grad_side[:, i] = 0.0, 0
        else:
            hi, side = _SPLIT(g)
            grad[:, i], grad_side[:, i] = hi.astype(np.float64), side.astype(np.int8)
        kappa, change = np.ones(m), np.zeros(m)
        for moved_grads, read in moved:
            if g is None or moved_grads[k] is None:
                continue
            k_p, change_p = (a.astype(np.float64) for a in _READING(g, moved_grads[k]))
            use = read & ~np.isnan(k_p)
            kappa = np.where(use, np.maximum(kappa, k_p), kappa)
            change = np.where(use, np.maximum(change, change_p), change)
        if g is None:
            kappa[:] = np.inf
        else:
            # The sum that forms the entry, sum_j |g_j df_j/dx_i|: what a backward-stable
            # implementation may be off by a few units of (mpmath_engine.with_sum_condition).
            terms = abs(c[done] * jet.d[k][done]).sum(axis=1)
            widened = _KAPPA(terms, g).astype(np.float64)
            size = _FLOAT(terms).astype(np.float64)
            kappa = np.where(np.isfinite(widened), np.maximum(kappa, widened), kappa)
            change = np.where(np.isfinite(size), np.maximum(change, size), change)
            change = np.maximum(change, paths[k])
        grad_kappa[:, i], grad_scale[:, i] = kappa, change
    return encode_columns(value, value_side, value_kappa, value_scale, grad, grad_side, grad_kappa, grad_scale, bits)


#: What the interval engine proved and handed over in this process (the plugin's summary line).
HANDOVER = Handover()


def solve_tasks(tasks: list, keep) -> list[int]:
    """Prove what can be proven of ``tasks`` (``truth_pool.Task``), calling
    ``keep(index, record)`` for each; returns the indices left to the mpmath
    engine. A task takes part when its reference has a ``ball_formula``
    (``certify._FlatReference`` of an ``exact`` reference: the torch formula
    and its inputs' shapes); tasks of one formula, one set of shapes and one
    set of label elements are one grid."""
    grids: dict = {}
    left = []
    for k, task in enumerate(tasks):
        formula = getattr(task.reference, "ball_formula", None)
        if formula is None:
            left.append(k)
            continue
        grids.setdefault((formula, task.reference.shapes, tuple(task.domains)), []).append(k)
    for (formula, shapes, domains), members in grids.items():
        x = np.array([tasks[k].x for k in members], dtype=np.float64)
        g = np.array([tasks[k].cotangent for k in members], dtype=np.float64)
        active = [not d.discrete for d in domains]
        records, rest = solve_grid(formula, x, g, active, HANDOVER, shapes=shapes, domains=list(domains))
        for row, record in records.items():
            keep(members[row], record)
        left.extend(members[row] for row in rest)
    return sorted(left)
