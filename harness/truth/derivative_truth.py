"""Truths of ``exact`` references by their derivatives, not by differences.

An ``exact`` reference is a torch formula evaluated in mpmath, so every
operation's derivative is known (``harness.truth.dual``): one forward-mode
evaluation gives the value and the whole Jacobian at the point. Nothing is
differenced, so no step is chosen and no term has to be resolved beside a
larger one: ``d/dy (exp(32768) + log1p(y))`` is ``1/(1 + y)`` at any
precision, where a difference quotient needs 47,000 bits to see ``y`` move.

Verification raises the precision until two readings agree: the value and
every VJP entry at ``b`` bits are accepted when a reading at
``VERIFY_FACTOR * b`` (and at ``ZERO_CHECK_BITS`` at least for a computed zero
or an infinity) agrees with them to ``VERIFIED_BITS``, or both round alike in
every format; else the higher reading is checked the same way. Two readings
suffice where differences need a rough one beside each: ``+ - *`` are exact,
so no term is lost alike at both precisions. A VJP entry that no input
reaches is an exact 0 and needs no check. An entry still unresolved at
``MAX_BITS`` is reported as unresolved, never guessed.

The evaluation hands the point back (``None``) to the difference engine where
a rule cannot decide: at a switching point of a non-smooth operation, where a
partial derivative is infinite times 0, or where an operation has no rule.
"""

from __future__ import annotations

import math

import mpmath

from .dual import ARITHMETIC
from ..inputs.floats import FORMATS, round_to
from .mpmath_engine import (EXP_SQUARING_BITS, KAPPA_STEP, MAX_BITS, START_BITS, VERIFIED_BITS,
                    VERIFY_FACTOR, ZERO_CHECK_BITS, PointTruth, ReferenceFailure, _decided, _mag,
                    kappa_reading, sign_patterns, value_condition, with_sum_condition)


class _Reading:
    """One forward-mode evaluation: values, the VJP, which VJP entries any
    input reaches, and the Jacobian (dicts by input index, one per output)."""

    __slots__ = ("values", "vjp", "reached", "jacobian")

    def __init__(self, values, tangents, g, n, bits):
        self.values, self.jacobian = values, tangents
        self.vjp, self.reached = [mpmath.mpf(0)] * n, [False] * n
        # Exact while it fits (the tangents' own arithmetic), as the tangents are.
        mul, add = ARITHMETIC["mul"], ARITHMETIC["add"]
        with mpmath.workprec(bits + 64):
            for gj, t in zip(g, tangents):
                if gj == 0:
                    continue
                for i, v in t.items():
                    self.vjp[i] = add(self.vjp[i], mul(gj, v))
                    self.reached[i] = True


def _read(solver, x, bits) -> _Reading | None:
    r = solver.f.derive(x, bits, solver.active)
    if r is None or r[2] is not None:
        return None
    return _Reading(r[0], r[1], solver.g, solver.n, bits)


def _holds(lo, hi, target: int) -> bool:
    """Whether ``lo`` holds ``target`` bits against the higher precision's ``hi``."""
    if lo == hi or (mpmath.isnan(lo) and mpmath.isnan(hi)):
        return True
    if not (mpmath.isfinite(lo) and mpmath.isfinite(hi)):
        return False
    with mpmath.workprec(max(mpmath.mp.prec, 64) + 64):
        err = abs(lo - hi)
    return _mag(err) <= _mag(hi) - target or _decided(hi, err)


def _rounding_decided(v, bits: int) -> bool:
    """Whether every number within ``2**-(bits - 16)`` of ``v`` rounds alike in
    every format (the value verified, its rounding decided). Two readings can agree on a value sitting on a format's
    midpoint while a term below both precisions decides the side:
    d/dlogit of the Bernoulli log-likelihood at (420, 0.0359) in float16 is
    the midpoint -0.964111328125 plus exp(-420) (2**-606, below 600 bits),
    and rounds up, not to even."""
    if v == 0 or not mpmath.isfinite(v):
        return True
    with mpmath.workprec(bits + 16):
        err = mpmath.ldexp(abs(v), 16 - bits)
        lo, hi = v - err, v + err
    return all(round_to(lo, f) == round_to(hi, f) for f in FORMATS.values())


def _higher(bits: int, r: _Reading) -> int:
    """The precision that checks a reading at ``bits``: ``VERIFY_FACTOR`` times
    it (600 bits from the start: mpmath takes exp of a huge integer by
    squaring above that), and ``ZERO_CHECK_BITS`` at least for a computed 0
    or an infinity."""
    high = VERIFY_FACTOR * bits
    if bits == START_BITS:
        high = min(high, EXP_SQUARING_BITS)
    entries = list(r.values) + [v for v, reached in zip(r.vjp, r.reached) if reached]
    if any(v == 0 or not mpmath.isfinite(v) for v in entries):
        high = max(high, ZERO_CHECK_BITS)
    return min(high, MAX_BITS)


def solve_by_rules(solver) -> PointTruth | None:
    """The verified truth of ``solver``'s point by forward mode, or None where
    the rules cannot decide (the difference engine takes the point).

    Ziv's way with two readings: the one at ``b`` bits is accepted when a
    reading at ``VERIFY_FACTOR * b`` agrees with it to ``VERIFIED_BITS`` (or
    both round alike past every format); otherwise the higher one is checked
    the same way, up to ``MAX_BITS``, where a VJP entry that never held is
    unresolved (and a value that never held an error)."""
    # No start at the point's dynamic range, as differences need: + - * are
    # exact here, so nothing is swallowed alike at two precisions, and what a
    # rounding division or function loses differs between them.
    target, bits = VERIFIED_BITS, START_BITS
    low = _read(solver, solver.x, bits)
    if low is None:
        return None
    while True:
        high = _higher(bits, low)
        top = _read(solver, solver.x, high)
        if top is None:
            return None   # marked only at the higher precision: a switching point the low one rounded past
        with mpmath.workprec(high):
            value_bad = not all(_holds(a, b, target) for a, b in zip(low.values, top.values))
            grad_bad = [r and not _holds(a, b, target) for a, b, r in zip(low.vjp, top.vjp, low.reached)]
        if not value_bad and not any(grad_bad):
            entries = list(top.values) + [v for v, r in zip(top.vjp, low.reached) if r]
            # As an exact zero, a boundary is read up to ZERO_CHECK_BITS: past it,
            # it is taken as exact (x/2 of an odd float64 is a midpoint at every
            # precision) and rounds to even.
            if high >= ZERO_CHECK_BITS or all(_rounding_decided(v, high) for v in entries):
                # The higher reading: the lower one may sit on the boundary the higher one left.
                return _finish(solver, top, bits, [False] * solver.n)
            # Agreed, but on a rounding boundary of some format: read further.
        if high >= MAX_BITS:
            if value_bad:
                raise ReferenceFailure(f"never converged (unresolved at {MAX_BITS} bits)")
            return _finish(solver, top, high, grad_bad)
        bits, low = high, top


def _finish(solver, r: _Reading, bits: int, unresolved: list[bool]) -> PointTruth:
    x, n = solver.x, solver.n
    value_kappa, value_scale = [], []
    for j, v in enumerate(r.values):
        with mpmath.workprec(64):
            s = mpmath.fsum(abs(x[i] * t) for i, t in r.jacobian[j].items())
        k, scale = value_condition(v, s)
        value_kappa.append(k)
        value_scale.append(scale)
    grads = [None if i not in solver.active or unresolved[i] else r.vjp[i] for i in range(n)]
    grad_kappa, grad_scale = _grad_kappa(solver, r, grads, bits)
    terms: dict = {}
    with mpmath.workprec(64):
        for gj, row in zip(solver.g, r.jacobian):
            for i, t in row.items():
                if mpmath.isfinite(t):
                    terms[i] = terms.get(i, 0) + abs(gj * t)
    with_sum_condition(grads, grad_kappa, grad_scale, terms)
    _zeros_scaled_by_their_paths(solver, grads, grad_scale, bits)
    truth = PointTruth(r.values, value_kappa, grads, grad_kappa, [False] * n, bits, value_scale, grad_scale)
    truth.unresolved = [bool(u) and i in solver.active for i, u in enumerate(unresolved)]
    truth.method = "forward mode"
    return truth


def _zeros_scaled_by_their_paths(solver, grads: list, scale: list, bits: int) -> None:
    """A VJP entry that is exactly 0 although inputs reach it is judged
    against the size of the terms it is formed from, path by path
    (``dual.absolute_paths``), not only the terms of the final sum over
    outputs: kornia's Hausdorff loss normalises by ``(e - min) / (max - min)``,
    identically 1 at the maximum, and autograd's quotient rule there leaves
    2e-18 of terms of 0.01. One more evaluation, only at points with such a
    zero; a magnitude, so one precision."""
    zeros = [i for i, g in enumerate(grads) if g is not None and g == 0]
    if not zeros:
        return
    m = solver.f.derive(solver.x, bits, solver.active, absolute=True)
    if m is None:
        return
    paths = _Reading(m[0], m[1], [abs(gj) for gj in solver.g], solver.n, bits).vjp
    for i in zeros:
        if mpmath.isfinite(paths[i]):
            scale[i] = max(scale[i], float(paths[i]))


def _grad_kappa(solver, r: _Reading, grads: list, bits: int):
    """How much each VJP entry moves when every input moves by a relative
    ``2**-KAPPA_STEP`` (signs from ``sign_patterns``), read by forward mode at
    each moved point: the componentwise condition number the difference
    engine estimates with stencils."""
    n = solver.n
    kappa = [1.0 if g is not None else math.nan for g in grads]
    scale = [0.0] * n
    live = [i for i in range(n) if grads[i] is not None]
    if not live:
        return kappa, scale
    delta = mpmath.ldexp(1, -KAPPA_STEP)
    for signs in sign_patterns(n):
        try:
            m = solver.f.derive(solver.moved(solver.active, signs, delta), bits, solver.active)
        except ReferenceFailure:   # moved off the function's domain (log1p past -1): no reading there
            continue
        if m is None:
            continue
        moved_vjp = _Reading(m[0], m[1], solver.g, n, bits).vjp
        for i in live:
            k, change = kappa_reading(grads[i], moved_vjp[i], delta, bits)
            kappa[i], scale[i] = max(kappa[i], k), max(scale[i], change)
    return kappa, scale
