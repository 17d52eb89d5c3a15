"""Truths at ±inf inputs: limits, and only where they exist.

A point with infinite entries has a truth only where the function has a limit
there, and a limit is a claim about every way of going out. It is read along
*paths* (``paths``): on each, the infinite entries go out together as a
parameter ``s`` grows, and the point is read at ``s = 2**1200``, ``2**2400``
and, unless those two agree, ``2**4800``, then once off the powers of two
(``s = 2**1200 + 0.3``, held exactly, on the diagonal path below), where a function that only looks
settled on a lattice of huge integers (``frac``, ``sin(pi x)``) shows that it
is not (``along``).

On one path, an entry's limit is its readings' common value, or ±inf where
each step out grows the magnitude at least as much as the step before
(``path_limit``). An entry whose readings do not settle (``cos`` at +inf, an
approach too slow to agree in 2**1200) has no truth: **unsettled**.

With two or more infinite entries the paths differ in how fast each entry
goes: all at ``s`` (the diagonal); one at ``2 s`` while the others are at
``s`` (with three or more: the first or the last infinite entry at ``2 s`` or
``s / 2``); and, for two, one at ``s`` while the other grows as ``ln(s) / 2`` or
``2 ln(s)``, where ``exp(b)`` and ``a`` compete. Where paths settle on
different limits (``logaddexp``'s gradient at (-inf, -inf): 1/2 on the
diagonal, 0 and 1 off it), the entry is **indeterminate**: it has no truth,
and the range of its path limits is kept for the report. A finite set of paths
cannot prove that a limit exists; it can show that one does not, and a limit
is accepted only where every path read settles on it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import mpmath

from ..inputs.domains import Domain
from .mpmath_engine import VERIFIED_BITS, PointSolver, PointTruth, ReferenceFailure, _decided, _Evaluator, _mag

#: Per entry (output or VJP entry) of a truth at ±inf inputs.
LIMIT, UNSETTLED, INDETERMINATE = 0, 1, 2

FAR = mpmath.ldexp(1, 1200)    # the first reading: past every format's range
READINGS = 3                   # at FAR, FAR**2 and, unless those agree, FAR**4
OFF_LATTICE = mpmath.mpf(0.3)  # added (exactly) to FAR for the reading off the lattice
LOG_RATES = (mpmath.mpf(0.5), mpmath.mpf(2))   # the other entry at c ln(s), for two infinite entries


def at_infinity(solve, evaluate: _Evaluator, x: list[float], g: list, domains: list[Domain]) -> PointTruth:
    """The truth where some of ``x`` is ±inf: each entry's limit along every
    path (``paths``) where they all settle on one, else NaN with the entry
    marked unsettled or indeterminate (``PointTruth.value_limit``/``grad_limit``).
    ``solve`` solves a finite point (``point.solve``).

    Example:
        >>> from .point import solve
        >>> t = at_infinity(solve, _Evaluator(lambda v: [mpmath.cos(v[0])]), [math.inf], [mpmath.mpf(1)], [Domain()])
        >>> t.value, t.value_limit
        ([mpf('nan')], [1])
    """
    infinite = [i for i, v in enumerate(x) if math.isinf(v)]
    read = []
    for k, path in enumerate(paths(x, infinite)):
        read.append(along(solve, evaluate, path, g, domains, off_lattice=k == 0))
        # An entry unsettled on one path is unsettled: once every entry is, no path can change that.
        if all(any(p.value[j] is None for p in read) for j in range(len(read[0].value))) and \
                all(d.discrete or any(p.grad[i] is None for p in read) for i, d in enumerate(domains)):
            break
        # With three or more infinite entries (a masked row), once every output is
        # known to have no limit, so is every VJP entry (below): the range of the
        # limits stays that of the paths read so far.
        if len(infinite) > 2 and all(_no_limit([p.value[j] for p in read]) for j in range(len(read[0].value))):
            break
    truth = read[0].farthest
    truth.bits = max(p.bits for p in read)
    truth.value, truth.value_limit, truth.value_range = _combine([p.value for p in read])
    truth.grad, truth.grad_limit, truth.grad_range = _combine([p.grad for p in read])
    for i, d in enumerate(domains):
        if d.discrete:   # a label input's entry: no derivative, no limit to read
            truth.grad[i], truth.grad_limit[i] = None, LIMIT
    # What no precision resolves far out is counted as unresolved, as at a finite point.
    truth.unresolved = [any(p.unresolved[i] for p in read) for i in range(len(truth.grad))]
    _own_value(truth, evaluate, x, g, domains, len(infinite))
    if any(code != LIMIT for code in truth.value_limit):
        # A VJP weighs every output: where one has no limit, neither has the
        # gradient of the whole (at (0, 0, inf), d/droll of cos(r/2) cos(p/2)
        # cos(y/2) + ... is 0 times a cos(y/2) that has no value there).
        for i, code in enumerate(truth.grad_limit):
            if code == LIMIT and not domains[i].discrete:
                truth.grad[i], truth.grad_limit[i] = mpmath.nan, UNSETTLED
    return truth


def paths(x: list[float], infinite: list[int]) -> list:
    """The paths out to the point (functions of ``s`` giving the inputs),
    the diagonal first (see the module docstring)."""
    negative = {i: x[i] < 0 for i in infinite}

    def path(speed: dict):
        def at(s):
            # Exactly: the reading off the lattice has more digits than any working precision.
            return [(mpmath.fneg(m, exact=True) if negative[i] else m) if i in negative else mpmath.mpf(v)
                    for i, v in enumerate(x) for m in [speed.get(i, _same)(s) if i in negative else None]]
        return at

    out = [path({})]
    if len(infinite) == 2:   # with two, one slower is the other faster
        out += [path({i: _twice}) for i in infinite]
    if len(infinite) > 2:    # the first and the last entry out of step, each way: a cost fixed in k
        out += [path({i: speed}) for speed in (_twice, _half) for i in (infinite[0], infinite[-1])]
    if len(infinite) == 2:
        out += [path({j: _log_rate(c)}) for j in infinite for c in LOG_RATES]
    return out


def _same(s):
    return s


def _twice(s):
    return mpmath.ldexp(s, 1)


def _half(s):
    return mpmath.ldexp(s, -1)


def _log_rate(c):
    def rate(s):
        with mpmath.workprec(VERIFIED_BITS + 64):
            return c * mpmath.log(s)
    return rate


@dataclass
class _Path:
    """One path's limits per entry (None: unsettled), its farthest reading and the bits used."""

    value: list
    grad: list
    farthest: PointTruth
    bits: int
    unresolved: list[bool]   # per VJP entry: no precision resolved it at some reading


def along(solve, evaluate: _Evaluator, path, g: list, domains: list[Domain], off_lattice: bool = True) -> _Path:
    """The readings along ``path`` and each entry's limit there (``path_limit``),
    with the reading off the lattice where ``off_lattice`` (the diagonal's: the
    other paths ask how fast, not whether the readings settle)."""
    readings = []
    for k in range(READINGS):
        readings.append(solve(PointSolver(evaluate, path(FAR ** (1 << k)), g, domains)))
        if k > 0 and _settled(readings[-1].value, readings[-2].value) and \
                _settled(readings[-1].grad, readings[-2].grad):
            break
    checks = [solve(PointSolver(evaluate, path(mpmath.fadd(FAR, OFF_LATTICE, exact=True)), g, domains))] \
        if off_lattice else []
    last = readings[-1]
    value = [path_limit([r.value[j] for r in readings], *(c.value[j] for c in checks)) for j in range(len(last.value))]
    # An entry no precision resolves at some reading has no limit read on this path.
    unresolved = [any(r.unresolved and r.unresolved[i] for r in readings + checks) for i in range(len(last.grad))]
    grad = [None if unresolved[i] else path_limit([r.grad[i] for r in readings], *(c.grad[i] for c in checks))
            for i in range(len(last.grad))]
    bits = max(r.bits for r in readings + checks)
    return _Path(value, grad, last, bits, unresolved)


def path_limit(readings: list, *between):
    """The limit from readings ever further out along one path, or None where
    they do not settle: the last when the last two agree (±inf when that lies
    past every format); ±inf when each step out grows the magnitude by at
    least as much as the step before, from more than 1 (digamma: 832, 1664,
    3327 at 2**1200, 2**2400, 2**4800: d/dx lgamma at +inf is +inf). A
    reading ``between`` (off the lattice, beside the first), where given, must
    agree with the first.

    Example:
        >>> path_limit([mpmath.mpf(2), mpmath.mpf(2)], mpmath.mpf(2)), path_limit([0.5, -0.25, 0.75], 0.1)
        (mpf('2.0'), None)
    """
    if any(r is None for r in readings + list(between)) or not all(_agree(b, readings[0]) for b in between):
        return None
    *_, a, b = readings
    if _agree(a, b):
        if mpmath.isfinite(b) and _decided(b, 0) and abs(b) > 1:
            return mpmath.sign(b) * mpmath.inf
        return b
    if len(readings) >= 3 and all(mpmath.isfinite(v) for v in readings):
        r0, r1, r2 = readings[-3:]
        with mpmath.workprec(VERIFIED_BITS + 64):
            same_sign = (r0 > 0) == (r1 > 0) == (r2 > 0)
            if same_sign and abs(r2) - abs(r1) >= abs(r1) - abs(r0) > 0 and abs(r0) > 1:
                return mpmath.sign(r2) * mpmath.inf
    return None


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
    return all(u is None or v is None or _agree(u, v) for u, v in zip(a, b))


def _no_limit(limits: list) -> bool:
    return any(v is None for v in limits) or not all(_agree(v, limits[0]) for v in limits)


def _combine(per_path: list[list]) -> tuple[list, list[int], list[tuple[float, float]]]:
    """Per entry: the limit where every path settles on one, else NaN, with
    its code and (where indeterminate) the range of the path limits."""
    values, codes, ranges = [], [], []
    for limits in zip(*per_path):
        if any(v is None for v in limits):
            values.append(mpmath.nan)
            codes.append(UNSETTLED)
            ranges.append((math.nan, math.nan))
        elif all(_agree(v, limits[0]) for v in limits):
            values.append(limits[0])
            codes.append(LIMIT)
            ranges.append((math.nan, math.nan))
        else:
            values.append(mpmath.nan)
            codes.append(INDETERMINATE)
            ranges.append((float(min(limits)), float(max(limits))))
    return values, codes, ranges


def _own_value(truth: PointTruth, evaluate: _Evaluator, x: list[float], g: list, domains: list[Domain],
               infinite: int) -> None:
    """The reference's own value at ±inf, where mpmath has one (``log1p(inf)
    = inf``, ``1 / log(inf) = 0``), verified like any other (``exp(-inf) +
    log(1 + 8.6e-78)`` needs 330 bits): it stands where the paths settle, and,
    with one infinite entry (no path to choose), where they do not settle.
    Never where the limit depends on the path."""
    try:
        at_inf, bits = PointSolver(evaluate, [mpmath.mpf(v) for v in x], g, domains).solve_value()
    except ReferenceFailure:
        return   # no value at ±inf itself (a NaN, or an error): the limits stand
    for j, v in enumerate(at_inf):
        code = truth.value_limit[j]
        if mpmath.isnan(v) or code == INDETERMINATE or (code == UNSETTLED and infinite > 1):
            continue
        truth.value[j], truth.value_limit[j] = v, LIMIT
        truth.bits = max(truth.bits, bits)
