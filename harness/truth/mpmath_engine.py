"""The truth: a reference's value and derivative at the exact float inputs,
in mpmath, at a working precision raised until the result is verified.

Derivatives come from the reference alone, by central differences with
Richardson extrapolation at a step ``|x| * 2**-q`` (``2**-q`` at 0). A
difference quotient is accepted only when it is *resolved*: the error of
every value in the stencil (estimated against 32 more bits, and never taken
below one unit of the working precision) divided by the step is below
``2**-VERIFIED_BITS`` of the quotient, and so is the Richardson truncation
estimate. Two precisions that agree do not verify anything by themselves:
``d/dx log(cosh x)`` at ``1e-22`` gives an exact 0 at 40 and 80 digits, and
``log1p(exp x)`` at 0 stepped by ``2**-1200`` gives 0 below 1200 bits. An
exact zero (a value, or a quotient whose stencil values are all equal) is
confirmed at ``ZERO_CHECK_BITS`` with a much larger step before it counts.

The error is measured at the centre and at one stencil point: grid points
have short significands, so rounding that happens beside them may not happen
at them. A value accepted at ``b`` bits is checked once more at
``VERIFY_FACTOR * b``: two nearby precisions agree on a term that both absorb.

The precision is raised by the bits missing (not doubled blindly); a point
that is still unresolved at ``MAX_BITS`` is a reference that never converges.
A truth certainly beyond every format's range (below ``2**-1075`` or above
``2**1025``) needs only its magnitude: it rounds to ±0 or ±inf everywhere.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass

import mpmath

from .dual import absolute_paths
from ..inputs.domains import Domain

VERIFIED_BITS = 66        # float64 needs 53; the rest is margin for rounding
START_BITS = 160
START_STEP = 40           # step = scale * 2**-START_STEP
ESTIMATE_BITS = 32        # extra bits of the evaluation that estimates the error
VERIFY_FACTOR = 4         # an accepted value is checked again at this multiple of the bits
#: mpmath takes ``exp`` of an integer argument by repeated squaring above 600
#: bits (``mpf_exp``), at a cost that grows with log2|x|, and every float64
#: beyond 2**53 is an integer: the recheck of the starting precision stays at
#: 600 bits (3.75x), which costs a tenth of 640 at x = 1e308.
EXP_SQUARING_BITS = 600
ZERO_CHECK_BITS = 2400    # resolves x**2 for every float64 x (2**-2148)
MAX_BITS = 1 << 15
KAPPA_STEP = 24           # relative perturbation for the gradient's condition number
#: A truth that is certainly below half the smallest subnormal of every format
#: rounds to ±0 in all of them, and one certainly above 2**1024 (past float64's
#: max) to ±inf: its magnitude is all a verdict needs.
UNDER_EVERY_FORMAT = mpmath.ldexp(1, -1076)
OVER_EVERY_FORMAT = mpmath.ldexp(1, 1025)


class ReferenceFailure(Exception):
    """The reference raised, returned a non-real value, or never converged."""


@dataclass
class PointTruth:
    """Truth at one point: outputs (flat), the VJP per input element (flat,
    ``None`` for label inputs), condition numbers, kinks, the bits used.

    ``*_scale`` is the absolute size of the first-order change under a unit
    relative change of the inputs (``sum_i |x_i df/dx_i|``): the condition
    number's numerator, which still bounds a stable implementation's error
    where the truth is exactly 0 and the relative condition number is
    infinite."""

    value: list
    value_kappa: list[float]
    grad: list
    grad_kappa: list[float]
    kink: list[bool]
    bits: int
    value_scale: list[float] | None = None
    grad_scale: list[float] | None = None
    #: VJP entries no precision up to ``MAX_BITS`` resolved (their ``grad`` is
    #: None): not judged, and counted as such, never guessed.
    unresolved: list[bool] | None = None
    #: How the derivatives were found: "forward mode" (an exact reference's
    #: rules, ``harness.truth.derivative_truth``) or "differences".
    method: str = "differences"
    #: At ±inf inputs, per output and per VJP entry: ``limits.LIMIT``,
    #: ``UNSETTLED`` or ``INDETERMINATE`` (None: no infinite input). The
    #: entries that are not a limit are NaN (values) or None (VJP entries).
    value_limit: list[int] | None = None
    grad_limit: list[int] | None = None
    #: Where indeterminate: the range (lowest, highest) of the path limits.
    value_range: list[tuple[float, float]] | None = None
    grad_range: list[tuple[float, float]] | None = None


@dataclass
class _Quotient:
    estimate: object
    rounding: object
    truncation: object
    exact_zero: bool
    one_sided: tuple | None
    half_gap: object         # the one-sided quotients' gap at h/2 (None if one-sided)
    growth: object
    column: list   # the Jacobian column (all outputs), for condition numbers


class _Evaluator:
    """Calls the flat reference at a precision and checks what it returns.

    A point's solver asks for some (input, precision) pairs more than once
    (the centre at the starting precision, a stencil point the recheck meets
    again): one in twelve calls on the shipped grids. A reference is a
    function of its input and the precision, so each is computed once."""

    def __init__(self, flat_reference):
        self.ref = flat_reference
        self.calls = 0
        self.known: dict = {}

    def __call__(self, x: list, bits: int) -> list:
        key = (tuple(x), bits)
        if key not in self.known:
            self.known[key] = self._evaluate(x, bits)
        return self.known[key]

    @property
    def differentiable(self) -> bool:
        """Whether the reference gives its derivatives (an ``exact`` one)."""
        return getattr(self.ref, "differentiable", False)

    def derive(self, x: list, bits: int, active, absolute: bool = False) -> tuple | None:
        """``(values, tangents, marked)`` by forward mode at ``bits``
        (``harness.truth.dual``), or None where an operation has no rule;
        ``absolute``: each tangent the sum of its terms' absolute values
        (``dual.absolute_paths``)."""
        key = ("derive", tuple(x), bits, absolute)
        if key not in self.known:
            self.calls += 1
            with mpmath.workprec(bits), (absolute_paths() if absolute else contextlib.nullcontext()):
                try:
                    values, tangents, marked = self.ref.derivatives(x, active)
                except ReferenceFailure:
                    raise
                except Exception:   # no rule for an operation: the plain evaluation reports real errors
                    self.known[key] = None
                else:
                    self.known[key] = ([_real(v) for v in values], tangents, marked)
        return self.known[key]

    def _evaluate(self, x: list, bits: int) -> list:
        self.calls += 1
        with mpmath.workprec(bits):
            try:
                out = self.ref(x)
            except ReferenceFailure:
                raise
            except Exception as exc:  # the reference is user code: any failure is reported with the point
                raise ReferenceFailure(f"reference raised {type(exc).__name__}: {exc}") from exc
            # Converted inside the context: mpf() rounds to the working precision.
            return [_real(v) for v in out]


def _real(v):
    # A float computed in floats (``float(mpmath.log1p(...))``, ``math.exp``)
    # does not follow the working precision: every precision agrees on it, so
    # agreement verifies nothing. An integer-valued float is a constant
    # (``max(x, 0)**2 / 2`` is 0.0 for x < 0), exact at every precision.
    if isinstance(v, float) and not (math.isfinite(v) and v == int(v)):   # numpy's float64 too
        raise ReferenceFailure(
            f"reference returned a Python float ({v!r}), not an mpmath number: its result does not follow the "
            "working precision, so nothing can verify it (write it with mpmath functions throughout, without "
            "float(...) or math.*, or with harness.exact)")
    if isinstance(v, (mpmath.mpc, complex)):
        if v.imag == 0:
            return mpmath.mpf(v.real)
        raise ReferenceFailure(f"reference returned a complex value {mpmath.nstr(v, 8)}")
    try:
        return mpmath.mpf(v)
    except (TypeError, ValueError) as exc:
        raise ReferenceFailure(f"reference returned {type(v).__name__}, not a real number") from exc


def _mag(v):
    """About log2 |v|: an exact int (floats would lose the last bits of an
    exponent like -1.4e308), -inf at 0, inf for non-finite values."""
    if v == 0:
        return -math.inf
    if not mpmath.isfinite(v):
        return math.inf
    return int(mpmath.mag(v))


def _decided(v, err) -> bool:
    """True when every number within ``err`` of ``v`` rounds alike in every
    format: below half the smallest subnormal (to 0; the sign of a zero is not
    judged) or above the largest float (to an infinity of ``v``'s sign), so no
    more precision is needed. ``ncdf(-1.7e38)`` is about e**-1.4e76."""
    if not (mpmath.isfinite(v) and mpmath.isfinite(err)):
        return False
    with mpmath.workprec(64):
        a = abs(v)
        return a + err < UNDER_EVERY_FORMAT or a - err > OVER_EVERY_FORMAT


def _more(missing, bits: int) -> int:
    """Bits to add for ``missing`` bits. A miss past ``MAX_BITS`` means the
    lower precision got the exponent itself wrong (``2**(x + h)`` at x =
    1.7e308 below 1100 bits is off by a factor 2**(2**850)), not that so many
    bits are needed: the precision doubles instead."""
    return math.ceil(missing) + 16 if bits + missing + 16 <= MAX_BITS else bits


def _zero_need(rounding) -> int:
    """Bits that put a flat stencil's noise bound below every format."""
    return max(_mag(rounding) - _mag(UNDER_EVERY_FORMAT), 0) + 16


def _flat_need(rounding, bits: int) -> int:
    """Bits to add after a flat stencil whose noise bound is ``rounding``: at
    once the bits that put the bound below every format, where ``MAX_BITS``
    allows; else four times the precision (the noise may be the evaluation's
    own, as for exp(x**2) at 1e200, whose stencil moves at 1600 bits), up to
    ``MAX_BITS``; past it, anything (the entry is unresolved)."""
    bound = _zero_need(rounding)
    if bits + bound <= MAX_BITS:
        return bound
    return min(3 * bits, MAX_BITS - bits) if bits < MAX_BITS else 1


def _weighted(values: list, g: list, bits: int):
    with mpmath.workprec(bits):
        return mpmath.fsum(gj * fj for gj, fj in zip(g, values))


def _weighted_abs(values: list, g: list):
    with mpmath.workprec(64):
        return mpmath.fsum(abs(gj * fj) for gj, fj in zip(g, values))


class PointSolver:
    """Verified value and VJP of one point (see the module docstring)."""

    def __init__(self, evaluate: _Evaluator, x: list, g: list, domains: list[Domain]):
        self.f, self.x, self.g, self.domains = evaluate, x, g, domains
        self.n = len(x)
        self.active = frozenset(i for i in range(self.n) if not domains[i].discrete)

    # -- stencil ---------------------------------------------------------------
    def _scale(self, i: int):
        """The power of two at or above ``|x_i|`` (1 at 0): steps are powers
        of two, so ``x + h`` lands on the same lattice as ``x``. A step of
        ``|x| * 2**-40`` at x = 2**52 + 2 is 4096 + 2**-39, and sinc, 0 at
        every integer, moved by 2**-39 at both ends of the stencil alike:
        a consistent, wrong quotient; on the lattice it reads an exact 0,
        which ``_moves_finer`` then looks past."""
        return mpmath.ldexp(1, _mag(self.x[i])) if self.x[i] != 0 else mpmath.mpf(1)

    def _shift(self, i: int, step):
        y = list(self.x)
        y[i] = mpmath.fadd(self.x[i], step, exact=True)
        return y

    def _inside(self, i: int, y) -> bool:
        """Exact: ``float(y)`` would round a stencil point past ``-max`` to
        -inf, outside ``interval(-inf, inf)``, and turn the stencil one-sided
        with a step of 1.6e296 (logaddexp's d/dy at (-max, -max) read 1, not
        1/2), or round a point beside an open endpoint onto it."""
        d = self.domains[i]
        if not mpmath.isfinite(y):
            return False
        if d.discrete:
            return d.contains(float(y))
        return (d.lo is None or y > d.lo) and (d.hi is None or y < d.hi)

    def _sides(self, i: int, h) -> tuple[bool, bool]:
        """Which sides of x_i the stencil may use (one-sided near an endpoint)."""
        xi = self.x[i]
        up = self._inside(i, mpmath.fadd(xi, h, exact=True)) or self.domains[i].hi is None
        down = self._inside(i, mpmath.fsub(xi, h, exact=True)) or self.domains[i].lo is None
        return up, down

    # -- one attempt at a given precision ------------------------------------------
    def _quotient(self, i: int, q: int, bits: int, base: list, base_err) -> "_Quotient":
        """Richardson-extrapolated difference quotient along input ``i`` with its
        rounding and truncation error estimates. The rounding error of every
        stencil value is taken as that measured at the centre (the same
        cancellations happen a relative 2**-q away), plus one unit of the
        working precision."""
        h = mpmath.ldexp(self._scale(i), -q)
        up, down = self._sides(i, h)
        kind = "central" if up and down else ("up" if up else "down")
        offsets = {"central": (h, -h, h / 2, -h / 2), "up": (h, h / 2), "down": (-h, -h / 2)}[kind]
        F = {0: base}
        for off in offsets:
            F[off] = self.f(self._shift(i, off), bits)
        L = {off: _weighted(v, self.g, bits + 64) for off, v in F.items()}
        # The centre alone can hide the stencil's rounding: grid points have
        # short significands, so 1 + x**2 is exact there and not at x + h.
        rough = _weighted(self.f(self._shift(i, offsets[0]), bits - ESTIMATE_BITS), self.g, bits + 64)
        with mpmath.workprec(bits + 64):
            shifted_err = abs(rough - L[offsets[0]]) if mpmath.isfinite(rough) else mpmath.inf
            err = max(base_err, shifted_err, *(mpmath.ldexp(abs(v), -bits) for v in L.values()))
            if kind == "central":
                d1 = (L[h] - L[-h]) / (2 * h)
                d2 = (L[h / 2] - L[-h / 2]) / h
                r = (4 * d2 - d1) / 3
                rounding = (4 * 2 * err / h + 2 * err / (2 * h)) / 3
                one_sided = ((L[h] - L[0]) / h, (L[0] - L[-h]) / h)
                half_gap = (L[h / 2] - L[0]) / (h / 2) - (L[0] - L[-h / 2]) / (h / 2)
                column = [(a - b) / (2 * h) for a, b in zip(F[h], F[-h])]
            else:
                s = 1 if kind == "up" else -1
                d1 = s * (L[s * h] - L[0]) / h
                d2 = s * (L[s * h / 2] - L[0]) / (h / 2)
                r = 2 * d2 - d1
                rounding = 2 * 2 * err / (h / 2) + 2 * err / h
                one_sided = None
                half_gap = None
                column = [s * (a - b) / h for a, b in zip(F[s * h], F[0])]
            exact_zero = all(v == L[0] for v in L.values())
            # How many step sizes the function needs to change by a factor e:
            # where that is far below the step (exp at x = -1e308 varies on a
            # scale of 1, not of |x|), the step is cut to it in one move.
            growth = None
            if kind == "central" and L[h] != 0 and L[-h] != 0 and (L[h] > 0) == (L[-h] > 0):
                growth = abs(mpmath.log(L[h] / L[-h])) / 2
            return _Quotient(r, rounding, abs(r - d2), exact_zero, one_sided, half_gap, growth, column)

    def _moves_finer(self, i: int, q: int, bits: int) -> int | None:
        """A step below the function's own scale (as ``_is_kink`` takes it)
        where the stencil moved not at all, if the function moves there: steps
        of ``|x| * 2**-q`` can land on a periodic function's zeros (``sinc(x)``
        at x = 2**60 steps by integers, and is 0 at every one), which no
        precision reveals. None where the fine step sees no change either."""
        fine = max(q + 20, _mag(self._scale(i)) + 60)
        h = mpmath.ldexp(self._scale(i), -fine)
        b = bits + 2 * (fine - q) + 64   # the change is first order in the step
        centre = _weighted(self.f(self.x, b), self.g, b + 64)
        up, down = self._sides(i, h)
        for ok, off in ((up, h), (down, -h)):
            if ok and _weighted(self.f(self._shift(i, off), b), self.g, b + 64) != centre:
                return fine
        return None

    def _moves_by(self, i: int, q: int, bits: int, base: list) -> int | None:
        """The precision at which a flat stencil of step ``scale * 2**-q`` along
        input ``i`` first moves, read from the change over the input's own
        scale; None when that is past ``MAX_BITS``: no precision resolves the
        entry (Rival's movability). d/dy of exp(x) + log1p(y) at x = 1.8e308
        is 1, beside a value of 2**(2.6e308): flat at every precision, and
        found so here in two evaluations instead of a climb to ``MAX_BITS``.

        The probes step by the scale itself and by half of it the other way
        (or the two of ``±H``, ``±H/2`` inside the domain) and are read against
        each other: a function that is smooth over that span changes over a
        step ``h`` by about ``h / span`` of its change over the span. One that
        takes the same value at both probes (symmetric about a point between
        them) is reported unresolved, never guessed."""
        scale = self._scale(i)
        ends = [s for s in (scale, -scale / 2, -scale, scale / 2) if self._inside(i, self._shift(i, s)[i])][:2]
        if len(ends) < 2:
            return bits
        span = abs(ends[0] - ends[1])

        def values(at: int) -> list:
            return [_weighted(self.f(self._shift(i, s), at), self.g, at + 64) for s in ends]

        size = max(abs(v) for v in values(bits) + [_weighted(base, self.g, bits + 64)])
        if not mpmath.isfinite(size) or size == 0:
            return bits

        def slope(at: int):
            a, b = values(at)
            with mpmath.workprec(at + 64):
                return abs(a - b) / span

        # Flat at p bits over the span means a change below 2**(1 - p) of the
        # size there, and at most 2**(1 - q) of that over the stencil's step:
        # resolved to VERIFIED_BITS only past p + q - 2 + VERIFIED_BITS bits,
        # so flat at ``last`` is flat at MAX_BITS.
        s = slope(bits)
        if s == 0:
            last = MAX_BITS - q - VERIFIED_BITS + 8
            if last <= bits:
                return None
            s = slope(last)
            if s == 0:
                return None
        h = mpmath.ldexp(scale, -q)
        need = _mag(size) - _mag(s * h) + VERIFIED_BITS + 16
        return None if need > MAX_BITS else need

    def _zero_bits(self, step) -> int:
        """Bits at which a zero is confirmed: up to a cubic's change over
        ``step`` must show next to the value's own size (1e-300**2 beside
        1e300**2 is 2**-4000 of it), and never fewer than ZERO_CHECK_BITS."""
        size = _weighted(self.f(self.x, START_BITS), self.g, START_BITS)
        span = max(_mag(size), 0) + 3 * abs(_mag(step)) + 256 if mpmath.isfinite(size) else 0
        return min(max(ZERO_CHECK_BITS, 2 * START_BITS, span), MAX_BITS)

    def _symmetric(self, i: int, q: int) -> int:
        """0 when a central quotient of exactly 0 is a true symmetry (x**2 at
        0), else the bits at which it is not: ``(3x - y)/4`` at x = 0 is
        -y/4 = 1e-83 under steps whose squares are 1e-25."""
        h = mpmath.ldexp(self._scale(i), -q)
        bits = self._zero_bits(h)
        up = _weighted(self.f(self._shift(i, h), bits), self.g, bits + 64)
        down = _weighted(self.f(self._shift(i, -h), bits), self.g, bits + 64)
        return 0 if up == down else bits

    def _is_kink(self, i: int, q: int, bits: int, d: "_Quotient") -> tuple[bool, int | None]:
        """Whether the point is a kink along input ``i``, and a finer step
        (``q``) where the gap came from a step far above the function's own
        scale, else None."""
        if d.one_sided is None:
            return False, None
        dp, dm = d.one_sided
        with mpmath.workprec(bits + 64):
            gap = abs(dp - dm)
            # A smooth function's one-sided gap is h * f'': it halves with the
            # step. A kink's is the jump, whatever its size next to the slope
            # (2 * relu(-y) beside (y - t)**2 at t = 1e12), so no relative
            # threshold; only gaps the rounding cannot explain count.
            if gap <= 8 * d.rounding or abs(d.half_gap) < gap * 3 / 4:
                return False, None
        # A smooth function's gap shrinks with the step; a kink's does not. The
        # steps must be below the function's own scale: sin(x)/x at x = 1e30
        # turns within 2*pi while |x| * 2**-40 is 2**60, and there quotients
        # of any step above 1 disagree. Steps below 2**-60 are below the scale
        # of every reference that is not pathological.
        fine = max(q + 20, _mag(self._scale(i)) + 60)
        if fine == q + 20:
            return self._gap(i, fine, bits + 40) > gap / 2, None
        b = bits + 2 * (fine + 20 - q) + 64   # the gap is second order in the step
        if self._gap(i, fine + 20, b) > self._gap(i, fine, b) / 2:
            return True, None
        return False, fine

    def _gap(self, i: int, q: int, bits: int):
        """|difference of the one-sided quotients| at the step ``scale * 2**-q``."""
        h = mpmath.ldexp(self._scale(i), -q)
        centre = _weighted(self.f(self.x, bits), self.g, bits + 64)
        lp = _weighted(self.f(self._shift(i, h), bits), self.g, bits + 64)
        lm = _weighted(self.f(self._shift(i, -h), bits), self.g, bits + 64)
        with mpmath.workprec(bits + 64):
            return abs((lp - centre) / h - (centre - lm) / h)

    def _value_need(self, bits: int, target: int) -> tuple[list, list, int]:
        """The values at ``bits`` and ``bits - ESTIMATE_BITS``, and the bits
        they still miss (0 when resolved)."""
        rough, base = self.f(self.x, bits - ESTIMATE_BITS), self.f(self.x, bits)
        need = 0
        for lo, hi in zip(rough, base):
            if not mpmath.isfinite(hi):
                continue
            if not mpmath.isfinite(lo):
                need = max(need, bits)  # finite only at the higher precision: far from resolved
                continue
            if hi == 0 and lo == 0:
                if any(v != 0 for v in self.f(self.x, max(ZERO_CHECK_BITS, bits))):
                    need = max(need, ZERO_CHECK_BITS - bits)
                continue
            with mpmath.workprec(bits + 64):
                err = abs(lo - hi) + mpmath.ldexp(abs(hi), -bits)
            missing = _mag(err) - (_mag(hi) - target)
            if missing > 0 and not _decided(hi, err):
                need = max(need, _more(missing, bits))
        return rough, base, need

    def solve_value(self) -> tuple[list, int]:
        """The verified value alone (at an input of ±inf itself, where
        differences cannot be taken), with the bits used."""
        bits = START_BITS
        while bits <= MAX_BITS:
            _, base, need = self._value_need(bits, VERIFIED_BITS)
            if need == 0:
                need = self._recheck(base, bits, VERIFIED_BITS) or 0
                if need == 0:
                    return base, bits
            bits += need
        raise ReferenceFailure(f"never converged (unresolved at {MAX_BITS} bits)")

    # -- the loop --------------------------------------------------------------------
    def _start_bits(self) -> int:
        """``START_BITS`` plus the point's dynamic range: an input smaller than
        1, or than another input, by ``2**k`` is swallowed below ``k`` bits
        (``1 + y`` at y = -6.1e-297), and two precisions that both swallow it
        agree on a wrong value."""
        mags = [_mag(v) for v in self.x if v != 0 and mpmath.isfinite(v)]
        if not mags:
            return START_BITS
        return min(START_BITS + max(0, max(max(mags), 0) - min(mags)), MAX_BITS)

    def solve_by_differences(self) -> PointTruth:
        bits = self._start_bits()
        target = VERIFIED_BITS
        continuous = [i for i in range(self.n) if not self.domains[i].discrete]
        steps = [START_STEP] * self.n
        fine_checked: set[int] = set()
        hopeless: set[int] = set()   # entries no precision up to MAX_BITS resolves (``_moves_by``)
        while True:
            rough, base, value_need = self._value_need(bits, target)
            with mpmath.workprec(bits + 64):
                base_err = abs(_weighted(rough, self.g, bits + 64) - _weighted(base, self.g, bits + 64))
            grads, kinks, columns = [None] * self.n, [False] * self.n, {}
            grad_need = [0] * self.n   # bits each entry still misses (a finer step counts as 40)
            for i in continuous:
                if i in hopeless:
                    continue
                q = steps[i]
                d = self._quotient(i, q, bits, base, base_err)
                grads[i], columns[i] = d.estimate, d.column
                if not (mpmath.isfinite(d.estimate) and mpmath.isfinite(d.rounding)):
                    continue
                # A quotient whose noise bound alone is below every format's
                # half subnormal (or a change past every range) rounds alike
                # however many bits follow: 2**x at x = -1.7e308 is resolved only
                # past 1100 bits. A large truncation is no such bound (sin(x)/x
                # stepped far past its period), so only noise-limited ones count.
                with mpmath.workprec(64):
                    noise_decided = d.truncation <= d.rounding and _decided(d.estimate, d.rounding + d.truncation)
                if d.exact_zero:
                    finer = None if i in fine_checked else self._moves_finer(i, q, bits)
                    fine_checked.add(i)
                    if finer is not None:
                        steps[i], grad_need[i] = finer, 40
                        continue
                    # A flat stencil says only that the change stayed below the
                    # rounding of the values (``d.rounding``, relative to their
                    # size): 0 once that bound is below every format, never
                    # before (d/dy of exp(32768) + log1p(y) is 1, flat at every
                    # precision up to MAX_BITS).
                    if d.rounding == 0 or noise_decided:
                        grads[i] = mpmath.mpf(0)
                    elif bits + _zero_need(d.rounding) <= MAX_BITS:
                        grad_need[i] = _flat_need(d.rounding, bits)
                    else:
                        # No precision confirms a 0: either the stencil moves
                        # at some precision, or the entry is unresolved.
                        moves = self._moves_by(i, q, bits, base)
                        if moves is None:
                            hopeless.add(i)
                        else:
                            grad_need[i] = moves - bits if moves > bits + 16 else _flat_need(d.rounding, bits)
                    continue
                # A central quotient that is exactly 0 by symmetry (x**2 or |x| at 0)
                # is judged against the one-sided quotients' size.
                size = d.estimate if d.estimate != 0 or d.one_sided is None else max(map(abs, d.one_sided))
                if size == 0 and not noise_decided:
                    grad_need[i] = bits   # the stencil moved but the quotient reads 0: unresolved
                    continue
                # A derivative that is 0 where the function is not flat (x**3 at 0,
                # relu(x)**2 at 0) is approached by quotients of h**2 or h, never
                # resolved relative to themselves; refined steps shrink them, and
                # once steps are fine (2**-60 of the scale, and of 1) and the
                # quotient with its error is below every format, it is 0 in all
                # of them. Only below: a huge quotient's sign is still to be read
                # (x**y at a subnormal x and y = -1e305 is -inf, not +inf).
                fine_step = q >= max(_mag(self._scale(i)), 0) + 60
                with mpmath.workprec(64):
                    vanishing = abs(d.estimate) + d.rounding + d.truncation < UNDER_EVERY_FORMAT
                if noise_decided or (fine_step and vanishing):
                    # Decided rounding is no smoothness: at sigma_min = |t| of a
                    # rank-deficient matrix the central quotient is exactly 0
                    # and its noise tiny, and the one-sided ones keep their gap.
                    kinks[i] = self._is_kink(i, q, bits, d)[0]
                    continue
                limit = _mag(size) - target
                if _mag(d.rounding) > limit:
                    # Nothing else can be read from an unresolved quotient.
                    grad_need[i] = _more(_mag(d.rounding) - limit, bits)
                    continue
                kink, finer = self._is_kink(i, q, bits, d)
                if kink:
                    kinks[i] = True
                    continue
                if finer is not None:
                    steps[i], grad_need[i] = finer, 40
                    continue
                if d.estimate == 0 and d.one_sided is not None:
                    asymmetric = self._symmetric(i, q)
                    if asymmetric > bits:
                        grad_need[i] = asymmetric - bits
                        continue
                if _mag(d.truncation) > limit:
                    grad_need[i] = 40
                    if d.growth is not None and _mag(d.growth) > -20:
                        steps[i] = q + int(_mag(d.growth)) + START_STEP
                    else:
                        steps[i] = q + max(20, q // 2)
            need = max([value_need] + grad_need)
            beyond = bits + need > MAX_BITS   # some entry needs more than MAX_BITS
            if value_need == 0 and (need == 0 or beyond):
                check = self._recheck(base, bits, target)
                if check is None:
                    if need == 0 and not hopeless:
                        return self._finish(base, grads, kinks, columns, steps, bits)
                    # The value holds; what no precision resolves is reported as such.
                    unresolved = [g > 0 or i in hopeless for i, g in enumerate(grad_need)]
                    truth = self._finish(base, [None if u else v for u, v in zip(unresolved, grads)], kinks,
                                         {i: c for i, c in columns.items() if not unresolved[i]}, steps, bits)
                    truth.unresolved = unresolved
                    return truth
                value_need = check
                need = max(need, check)
            if bits + need > MAX_BITS:
                if value_need == 0 or bits + value_need > MAX_BITS:
                    raise ReferenceFailure(f"never converged (unresolved at {MAX_BITS} bits)")
                need = value_need   # the derivatives are out of reach: the value alone still has to hold
            bits += need

    def _recheck(self, base: list, bits: int, target: int) -> int | None:
        """None when the value holds at ``VERIFY_FACTOR`` times the bits, else
        the bits to add. Two nearby precisions agree on a term that both
        absorb (``log(1 - sigmoid(x))`` rounds ``1 + exp(-257)`` to 1 at 160
        and at 128 bits); a much higher one sees it. An infinite value is
        checked at ``ZERO_CHECK_BITS`` at least."""
        high = VERIFY_FACTOR * bits
        if bits == START_BITS:
            high = min(high, EXP_SQUARING_BITS)
        if any(not mpmath.isfinite(v) for v in base):
            high = max(high, ZERO_CHECK_BITS)
        for lo, hi in zip(base, self.f(self.x, high)):
            if mpmath.isnan(hi) and mpmath.isnan(lo):
                continue
            if lo == hi:
                continue
            if not (mpmath.isfinite(lo) and mpmath.isfinite(hi)):
                return high - bits
            with mpmath.workprec(high + 64):
                err = abs(lo - hi)
                if _mag(err) > _mag(hi) - target and not _decided(hi, err):
                    return high - bits
        return None

    # -- condition numbers -------------------------------------------------------------
    def _finish(self, value, grads, kinks, jac_cols, steps, bits) -> PointTruth:
        value_kappa, value_scale = [], []
        for j, v in enumerate(value):
            with mpmath.workprec(64):
                s = mpmath.fsum(abs(self.x[i] * col[j]) for i, col in jac_cols.items() if mpmath.isfinite(col[j]))
            k, scale = value_condition(v, s)
            value_kappa.append(k)
            value_scale.append(scale)
        grad_kappa, grad_scale = self._grad_kappa(grads, kinks, steps, bits)
        terms = {}
        for i, col in jac_cols.items():
            with mpmath.workprec(64):
                terms[i] = mpmath.fsum(abs(gj * c) for gj, c in zip(self.g, col) if mpmath.isfinite(c))
        with_sum_condition(grads, grad_kappa, grad_scale, terms)
        return PointTruth(value, value_kappa, grads, grad_kappa, kinks, bits, value_scale, grad_scale)

    def _grad_kappa(self, grads, kinks, steps, bits) -> list[float]:
        """How much each VJP entry moves when every input moves by a relative
        2**-KAPPA_STEP (signs from ``sign_patterns``): a componentwise condition number,
        within a small factor, at O(n log n) extra evaluations."""
        kappa = [1.0 if grads[i] is not None else math.nan for i in range(self.n)]
        scale = [0.0] * self.n
        continuous = [i for i in range(self.n) if grads[i] is not None and not kinks[i]]
        if not continuous:
            return kappa, scale
        delta = mpmath.ldexp(1, -KAPPA_STEP)
        for signs in sign_patterns(self.n):
            solver = PointSolver(self.f, self.moved(continuous, signs, delta), self.g, self.domains)
            for i in continuous:
                h = mpmath.ldexp(solver._scale(i), -steps[i])
                up, down = solver._sides(i, h)
                if not (up and down):
                    continue
                lp = _weighted(self.f(solver._shift(i, h), bits), self.g, bits + 64)
                lm = _weighted(self.f(solver._shift(i, -h), bits), self.g, bits + 64)
                with mpmath.workprec(bits + 64):
                    moved_grad = (lp - lm) / (2 * h)
                k, change = kappa_reading(grads[i], moved_grad, delta, bits)
                kappa[i], scale[i] = max(kappa[i], k), max(scale[i], change)
        return kappa, scale

    def moved(self, inputs, signs: list[int], delta) -> list:
        """The point with ``inputs`` moved by a relative ``delta`` (signs
        ``signs``), the other way where that leaves the domain."""
        moved = list(self.x)
        for i in inputs:
            y = mpmath.fadd(self.x[i], signs[i] * delta * self.x[i], exact=True)
            if not self._inside(i, y) and self.domains[i].contains(float(self.x[i])):
                y = mpmath.fsub(self.x[i], signs[i] * delta * self.x[i], exact=True)
            moved[i] = y
        return moved


def with_sum_condition(grads: list, kappa: list, scale: list, terms: dict) -> None:
    """Widen each VJP entry's condition by the sum that forms it.

    A VJP entry is ``sum_j g_j df_j/dx_i``. The best a backward-stable
    implementation can do is round each term, and so be off by a few units of
    ``sum_j |g_j df_j/dx_i|`` (Higham, "Accuracy and Stability of Numerical
    Algorithms", the error bound of a dot product). Where the terms cancel,
    that is far more than a unit of the sum. Take normalising a constant
    vector: the true gradient is 0, and autograd returns 8.7e-19 from terms of
    size 1.

    So ``kappa`` becomes at least ``terms / |entry|``. ``scale`` (what a zero
    entry is judged against) becomes at least ``terms``.

    ``terms``: by input index, ``sum_j |g_j df_j/dx_i|`` (mpmath numbers, or
    floats)."""
    for i, t in terms.items():
        if grads[i] is None or t is None or not mpmath.isfinite(t) or t == 0:
            continue
        scale[i] = max(scale[i], float(t))
        if grads[i] != 0 and mpmath.isfinite(grads[i]):
            with mpmath.workprec(64):
                kappa[i] = max(kappa[i], float(t / abs(grads[i])))


def value_condition(v, s) -> tuple[float, float]:
    """``(kappa, scale)`` of a value ``v`` from ``s = sum_i |x_i df/dx_i|``:
    the relative condition number (inf at a zero value, 1 at an infinite
    one) and ``s`` itself, which bounds the error where ``v`` is 0."""
    scale = float(s) if mpmath.isfinite(s) else math.inf
    if v == 0 or not mpmath.isfinite(v):
        return (math.inf if v == 0 else 1.0), scale
    with mpmath.workprec(64):
        return (float(s / abs(v)) if mpmath.isfinite(s) else math.inf), scale


def kappa_reading(g0, g1, delta, bits: int) -> tuple[float, float]:
    """``(relative, absolute)`` change of a VJP entry from ``g0`` to ``g1``
    under a relative move ``delta`` of the inputs: the condition number (inf
    where ``g0`` is 0) and the scale that bounds the error where it is."""
    with mpmath.workprec(bits + 64):
        change = abs(g1 - g0) / delta if mpmath.isfinite(g1) else mpmath.inf
        if g0 == 0 or not mpmath.isfinite(g0) or not mpmath.isfinite(g1):
            k = math.inf if g0 == 0 else 1.0
        else:
            k = float(change / abs(g0))
    return k, (float(change) if mpmath.isfinite(g0) else math.inf)


def sign_patterns(n: int) -> list[list[int]]:
    """Signs of the relative perturbations that read a gradient's condition
    number: all +1, and one pattern per bit of the input's index, so every
    pair of inputs moves together in one pattern and apart in another. Random
    signs let two dominant terms cancel by luck (``logsumexp`` of two equal
    entries of 3.5e13: moved together, the weights do not change at all).

    Example:
        >>> sign_patterns(3)
        [[1, 1, 1], [-1, 1, -1], [-1, -1, 1]]
    """
    patterns = [[1] * n]
    for bit in range((n - 1).bit_length()):
        patterns.append([1 if (i >> bit) & 1 else -1 for i in range(n)])
    return patterns
