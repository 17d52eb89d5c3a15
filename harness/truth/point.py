"""A point's truth, whatever its inputs: the entry of the mpmath engine.

``solve_point`` takes a point of floats. Finite inputs go to forward mode
where the reference gives derivatives and the point is smooth for its rules
(``derivative_truth``), else to the difference engine (``mpmath_engine``).
Entries that are NaN are held while the outputs they do not reach are solved
(``_around_nan``), and inputs at ±inf are read as limits (``_at_infinity``).
Both engines build on ``mpmath_engine``; this module is the one that chooses
between them, so neither imports the other back.
"""

from __future__ import annotations

import math

import mpmath

from ..inputs.domains import Domain
from .derivative_truth import solve_by_rules
from .mpmath_engine import (START_BITS, VERIFIED_BITS, PointSolver, PointTruth, ReferenceFailure, _decided,
                            _Evaluator, _mag)

INFINITY_STANDIN = mpmath.ldexp(1, 1200)  # ±inf inputs: the limit, read far past every format
LIMIT_READINGS = 3        # ... at INFINITY_STANDIN**1, **2, **4


def solve(solver: PointSolver) -> PointTruth:
    """By forward mode where the reference gives derivatives and the point
    is smooth for its rules (``derivative_truth``), else by differences."""
    if solver.f.differentiable:
        truth = solve_by_rules(solver)
        if truth is not None:
            return truth
    return solver.solve_by_differences()


def solve_point(flat_reference, x: list[float], g: list[float], domains: list[Domain]) -> PointTruth:
    """Verified truth at one point of a flat reference ``list[mpf] -> list[mpf]``.

    ``x``: the inputs (floats; ±inf stand for the limit, see ``_at_infinity``),
    ``g``: the cotangent, ``domains``: one per input element.

    Example:
        >>> t = solve_point(lambda v: [mpmath.log(mpmath.cosh(v[0]))], [1e-22], [1.0], [Domain()])
        >>> float(t.grad[0])
        1e-22
    """
    if any(math.isnan(v) for v in x):
        return _around_nan(flat_reference, x, g, domains)
    gs = [mpmath.mpf(v) for v in g]
    evaluate = _Evaluator(flat_reference)
    if all(math.isfinite(v) for v in x):
        return solve(PointSolver(evaluate, [mpmath.mpf(v) for v in x], gs, domains))
    return _at_infinity(evaluate, x, gs, domains)


#: What stands in for the NaN entries in the two probes that confirm an output
#: does not depend on them.
NAN_PROBES = (mpmath.mpf(0.5), mpmath.mpf(0.75))


def _around_nan(flat_reference, x: list[float], g: list[float], domains: list[Domain]) -> PointTruth:
    """Truth at a point with NaN entries (a structured point's): an output the
    NaN entries reach is NaN; one they do not reach (another channel of a batch
    norm, the logits a class-index loss does not pick) is a function of the
    other entries alone, solved as any truth. An output is unreached when NaN
    does not propagate to it in mpmath and two numbers in the NaN entries' place
    give it the same value (the second guards against an operation that drops a
    NaN operand). Derivatives at such a point are not judged: none is given."""
    nan_at = {i for i, v in enumerate(x) if math.isnan(v)}

    def with_entries(values: list, fill) -> list:
        it = iter(values)
        return [fill if i in nan_at else next(it) for i in range(len(x))]

    rest = [mpmath.mpf(v) for i, v in enumerate(x) if i not in nan_at]
    with mpmath.workprec(START_BITS):
        try:
            probes = [flat_reference(with_entries(rest, fill)) for fill in (mpmath.nan,) + NAN_PROBES]
        except Exception:   # the reference cannot say which outputs NaN reaches: all of them
            probes = None
        live = [] if probes is None else [
            j for j, (at_nan, a, b) in enumerate(zip(*probes))
            if not mpmath.isnan(at_nan) and a == b]
    outputs = len(g)
    grads = len(x)
    truth = PointTruth([mpmath.nan] * outputs, [math.nan] * outputs, [None] * grads, [math.nan] * grads,
                       [False] * grads, START_BITS, [math.inf] * outputs, [math.inf] * grads, [False] * grads)
    if not live:
        return truth
    solved = solve_point(_Restricted(flat_reference, x, nan_at, live), [v for i, v in enumerate(x) if i not in nan_at],
                         [g[j] for j in live], [d for i, d in enumerate(domains) if i not in nan_at])
    for k, j in enumerate(live):
        truth.value[j] = solved.value[k]
        truth.value_kappa[j] = solved.value_kappa[k]
        truth.value_scale[j] = solved.value_scale[k] if solved.value_scale else math.inf
    truth.bits, truth.method = solved.bits, solved.method
    return truth


class _Restricted:
    """A flat reference with its NaN entries held, as a function of the other
    entries and of the outputs they alone reach (``_around_nan``)."""

    def __init__(self, flat_reference, x: list[float], nan_at: set[int], live: list[int]):
        self.ref, self.n, self.nan_at, self.live = flat_reference, len(x), nan_at, live
        self.kept = [i for i in range(len(x)) if i not in nan_at]   # restricted index -> full index

    def _full(self, values: list) -> list:
        full, it = [], iter(values)
        for i in range(self.n):
            full.append(mpmath.nan if i in self.nan_at else next(it))
        return full

    def __call__(self, values: list) -> list:
        out = self.ref(self._full(values))
        return [out[j] for j in self.live]

    @property
    def differentiable(self) -> bool:
        return getattr(self.ref, "differentiable", False)

    def derivatives(self, values: list, active) -> tuple[list, list, str | None]:
        full_active = None if active is None else frozenset(self.kept[k] for k in active)
        out, tangents, marked = self.ref.derivatives(self._full(values), full_active)
        back = {i: k for k, i in enumerate(self.kept)}
        return ([out[j] for j in self.live],
                [{back[i]: d for i, d in tangents[j].items() if i in back} for j in self.live], marked)


def _at_infinity(evaluate: _Evaluator, x: list[float], g: list, domains: list[Domain]) -> PointTruth:
    """Truth where an input is ±inf: the limit, read at ±2**1200, ±2**2400 and,
    unless those two agree, ±2**4800 (``_limit``); the value is the
    reference's own at ±inf where mpmath has one (``log1p(inf) = inf``),
    verified like any other (``exp(-inf) + log(1 + 8.6e-78)`` needs 330 bits)."""
    readings = []
    for k in range(LIMIT_READINGS):
        far = INFINITY_STANDIN ** (1 << k)
        xs = [mpmath.mpf(v) if math.isfinite(v) else mpmath.sign(v) * far for v in x]
        readings.append(solve(PointSolver(evaluate, xs, g, domains)))
        if k > 0 and _settled(readings[-1].value, readings[-2].value) and _settled(readings[-1].grad, readings[-2].grad):
            break
    truth = readings[-1]
    truth.value = [_limit([r.value[j] for r in readings]) for j in range(len(truth.value))]
    truth.grad = [None if v is None else _limit([r.grad[i] for r in readings]) for i, v in enumerate(truth.grad)]
    truth.bits = max(r.bits for r in readings)
    try:
        at_inf, bits = PointSolver(evaluate, [mpmath.mpf(v) for v in x], g, domains).solve_value()
    except ReferenceFailure:
        return truth   # no value at ±inf itself (a NaN, or an error): the limit stands
    if not any(mpmath.isnan(v) for v in at_inf):
        truth.value, truth.bits = at_inf, max(truth.bits, bits)
    return truth


def _agree(a, b) -> bool:
    """Two readings of a limit that round alike in every format."""
    if a == b:
        return True
    if not (mpmath.isfinite(a) and mpmath.isfinite(b)):
        return False
    with mpmath.workprec(VERIFIED_BITS + 64):
        if _decided(a, 0) and _decided(b, 0):
            return (abs(a) < 1) == (abs(b) < 1) and (abs(a) < 1 or (a > 0) == (b > 0))
        return _mag(a - b) <= _mag(b) - VERIFIED_BITS


def _settled(a: list, b: list) -> bool:
    return all(u is None or _agree(u, v) for u, v in zip(a, b))


def _limit(readings: list):
    """The limit from readings ever further out: the last when the last two
    agree; ±inf when each step out grows the magnitude by at least as much as
    the step before (digamma: 832, 1664, 3327 at 2**1200, 2**2400, 2**4800,
    d/dx lgamma at +inf is +inf) or when both lie past every format; else the
    farthest reading."""
    *_, a, b = readings
    if _agree(a, b):
        if mpmath.isfinite(b) and _decided(b, 0) and abs(b) > 1:
            return mpmath.sign(b) * mpmath.inf
        return b
    if len(readings) >= 3 and all(mpmath.isfinite(v) and v != 0 for v in readings):
        r0, r1, r2 = readings[-3:]
        with mpmath.workprec(VERIFIED_BITS + 64):
            same_sign = (r0 > 0) == (r1 > 0) == (r2 > 0)
            if same_sign and abs(r2) - abs(r1) >= abs(r1) - abs(r0) > 0:
                return mpmath.sign(r2) * mpmath.inf
    return b
