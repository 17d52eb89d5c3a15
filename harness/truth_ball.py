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

from .exact_ball import BallUnsupported, evaluate
from .floats import FORMATS, round_split
from .truth import sign_patterns
from .truth_table import decode, encode_columns

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
_FINITE = np.frompyfunc(lambda b: b.is_finite(), 1, 1)


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
    lo, hi, holds = _ENDS(balls)
    lo, hi, holds = lo.astype(np.float64), hi.astype(np.float64), holds.astype(bool)
    tie = np.zeros(len(lo), dtype=bool)
    up, down = np.ones(len(lo)), -np.ones(len(lo))
    for f in FORMATS.values():
        tie |= round_split(lo, up, f) != round_split(lo, down, f)
    return (lo == hi) & (~holds | ~tie)


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
    balls: both may lie past float64, and their ratio not)."""
    if v.is_zero() or not s.is_finite():
        return math.inf
    return _as_float(abs(s / v))


_KAPPA = np.frompyfunc(_kappa, 2, 1)


def solve_grid(formula, x: np.ndarray, cotangent: np.ndarray, active: list[bool],
               handover: Handover | None = None) -> tuple[dict[int, bytes], list[int]]:
    """Proven truths of ``formula`` (an elementwise ``exact`` formula) at the
    rows of ``x`` (points by inputs, float64), as ``truth_table`` records.

    Returns ``(records by row, rows left to the mpmath engine)``.

    Example:
        >>> import torch
        >>> records, left = solve_grid(lambda v: torch.log1p(torch.exp(v)), np.array([[0.0], [-1e30]]),
        ...                            np.ones(2), [True])
        >>> sorted(records), left
        ([0, 1], [])
    """
    handover = handover if handover is not None else Handover()
    rows = np.arange(len(x))
    finite = np.isfinite(x).all(axis=1)
    handover.add("±inf or NaN inputs (limits)", int((~finite).sum()))
    todo = rows[finite]
    records: dict[int, bytes] = {}
    try:
        for bits in SCHEDULE:
            if not todo.size:
                break
            found, switching, undecided = _pass(formula, x, cotangent, active, todo, bits)
            records.update(found)
            handover.add("a switching point met exactly", len(switching))
            todo = undecided
        handover.add(f"undecided at {SCHEDULE[-1]} bits", len(todo))
        if records and not _repeatable(formula, x, cotangent, active, records):
            handover.add("not a function of its inputs (two evaluations disagree)", len(records))
            records = {}
    except BallUnsupported as exc:
        handover.add(f"no ball rule: {exc}", len(todo))
    except Exception as exc:   # the mpmath engine reports the reference's own errors, with the point
        handover.add(f"raised {type(exc).__name__}", len(todo))
    handover.proven += len(records)
    return records, sorted(set(rows.tolist()) - set(records))


def _pass(formula, x, cotangent, active, todo: np.ndarray, bits: int) -> tuple[dict, np.ndarray, np.ndarray]:
    """One evaluation of the rows ``todo`` at ``bits``: the records of the rows it
    decides, the rows at a switching point, and the rows a higher precision may decide."""
    with _precision(bits):
        jet, marks = evaluate(formula, [x[todo, i] for i in range(x.shape[1])], active)
        c = np.empty(len(todo), dtype=object)
        c[:] = [arb(float(v)) for v in cotangent[todo]]
        grads = [None if t is None else c * t for t in jet.d]
        ok = ~marks.switching & ~marks.undecided & _decided(jet.v)
        for g in grads:
            if g is not None:
                ok &= _decided(g)
        for h in jet.h.values():
            ok &= _FINITE(h).astype(bool)
        done = np.flatnonzero(ok)
        found = {}
        if done.size:
            found = dict(zip(todo[done].tolist(), _records(x[todo[done]], jet, grads, c, active, done, bits)))
    return found, todo[marks.switching], todo[~ok & ~marks.switching]


#: Proven rows read again by ``_repeatable``.
RECHECK = 16


def _repeatable(formula, x, cotangent, active, records: dict) -> bool:
    """Whether a second evaluation at another precision rounds as the first did,
    at ``RECHECK`` rows spread over the proven ones. Balls of a function both
    hold its value; a formula that draws a random number (``torch.rand``)
    gives balls that cannot both hold it, which no enclosure can see alone."""
    rows = sorted(records)
    sample = np.array(rows[::max(1, len(rows) // RECHECK)][:RECHECK])
    again, _, _ = _pass(formula, x, cotangent, active, sample, SCHEDULE[1] + 32)
    return all(_same_rounding(records[r], again[r]) for r in again)


def _same_rounding(a: bytes, b: bytes) -> bool:
    ta, tb = decode(a), decode(b)
    return all(np.array_equal(ta.value_in(f), tb.value_in(f), equal_nan=True)
               and np.array_equal(ta.grad_in(f), tb.grad_in(f), equal_nan=True) for f in FORMATS.values())


def _records(x: np.ndarray, jet, grads: list, c: np.ndarray, active: list[bool], done: np.ndarray,
             bits: int) -> list[bytes]:
    """The records of the decided points ``done`` (positions in the jet's arrays)."""
    n_in = len(active)
    value, value_side = (np.asarray(a, dtype=t) for a, t in zip(_SPLIT(jet.v[done]), (np.float64, np.int8)))
    grad = np.full((len(done), n_in), np.nan)
    grad_side = np.zeros((len(done), n_in), np.int8)
    grad_kappa = np.full((len(done), n_in), np.nan)
    grad_scale = np.zeros((len(done), n_in))
    directions = [i for i in range(n_in) if active[i]]
    xs = [np.array([arb(float(v)) for v in x[:, i]], dtype=object) for i in directions]
    # sum_i |x_i df/dx_i|: the value's condition number times |f| (in balls: |f| may lie past float64).
    s = None
    for xi, di in zip(xs, jet.d):
        if di is not None:
            term = abs(xi * di[done])
            s = term if s is None else s + term
    v = jet.v[done]
    if s is None:
        value_scale = np.zeros(len(done))
        value_kappa = np.where(_FLOAT(v).astype(np.float64) == 0, np.inf, 0.0)
    else:
        value_scale = _FLOAT(s).astype(np.float64)
        value_kappa = _KAPPA(s, v).astype(np.float64)
    patterns = sign_patterns(n_in)
    for k, i in enumerate(directions):
        g = grads[k][done] if grads[k] is not None else None
        if g is None:
            grad[:, i], grad_side[:, i] = 0.0, 0
        else:
            hi, side = _SPLIT(g)
            grad[:, i], grad_side[:, i] = hi.astype(np.float64), side.astype(np.int8)
        # The change of entry i when every input moves by a relative delta, over delta.
        kappa, change = np.ones(len(done)), np.zeros(len(done))
        for signs in patterns:
            total = None
            for l, xl in enumerate(xs):
                h = jet.h.get((min(k, l), max(k, l)))
                if h is not None:
                    term = xl * h[done] * c[done] * signs[directions[l]]
                    total = term if total is None else total + term
            if total is not None:
                change = np.maximum(change, _FLOAT(abs(total)).astype(np.float64))
                ratio = np.inf if g is None else _KAPPA(total, g).astype(np.float64)
                kappa = np.maximum(kappa, ratio)
            elif g is None:
                kappa[:] = np.inf
        grad_kappa[:, i], grad_scale[:, i] = kappa, change
    return encode_columns(value[:, None], value_side[:, None], value_kappa[:, None], value_scale[:, None],
                          grad, grad_side, grad_kappa, grad_scale, bits)


#: What the interval engine proved and handed over in this process (the plugin's summary line).
HANDOVER = Handover()


def solve_tasks(tasks: list, keep) -> list[int]:
    """Prove what can be proven of ``tasks`` (``truth_pool.Task``), calling
    ``keep(index, record)`` for each; returns the indices left to the mpmath
    engine. A task takes part when its reference has an ``elementwise_formula``
    (``certify._FlatReference`` of an elementwise ``exact`` reference); tasks
    of one formula and one set of label inputs are one grid."""
    grids: dict = {}
    left = []
    for k, task in enumerate(tasks):
        formula = getattr(task.reference, "elementwise_formula", None)
        if formula is None:
            left.append(k)
            continue
        active = tuple(not d.discrete for d in task.domains)
        grids.setdefault((formula, active), []).append(k)
    for (formula, active), members in grids.items():
        x = np.array([tasks[k].x for k in members], dtype=np.float64)
        g = np.array([tasks[k].cotangent[0] for k in members], dtype=np.float64)
        records, rest = solve_grid(formula, x, g, list(active), HANDOVER)
        for row, record in records.items():
            keep(members[row], record)
        left.extend(members[row] for row in rest)
    return sorted(left)
