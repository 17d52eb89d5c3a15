"""harness.truth.ball_jet: the ball rules of the special functions, against the
textbook formulas in plain mpmath at a precision that absorbs every cancellation.

Each rule's value and derivative must enclose the textbook number, and at
128 bits hold 100 of them: a rule that cancels (``2 x erfcx(x) - 2/sqrt(pi)``
at 1e10, ``i1e - i0e`` at 1e300, ``(cos(pi x) - sinc(x)) / x`` at 1e-8) passes
the first check and fails the second, since its ball would send every such
point up the precision schedule."""

from __future__ import annotations

import math

import flint
import mpmath
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from harness.truth import ball_jet as bj
from harness.truth.ball import Handover, solve_grid
from harness.truth.exact_ball import SELU_ALPHA, SELU_SCALE
from harness.truth.table import decode

arb = flint.arb

PREC = 128


def _textbook(f, df):
    """``(f, f')`` of an mpf at ``x``'s own scale of precision: 4 bits per bit of
    ``|log2 |x||`` covers ``x**2`` and every cancellation of these forms."""
    def at(x):
        x = mpmath.mpf(x)
        extra = 4 * abs(int(mpmath.mag(x))) if x else 0
        with mpmath.workprec(PREC + 96 + extra):
            return +f(x), +df(x)
    return at


def _erfcx(x):
    return mpmath.exp(x * x) * mpmath.erfc(x)


def _ndtr(x):
    return mpmath.erfc(-x / mpmath.sqrt(2)) / 2


def _phi(x):
    return mpmath.exp(-x * x / 2) / mpmath.sqrt(2 * mpmath.pi)


def _ndtri(p):
    # 2p - 1 keeps a subnormal p only with 1075 bits more.
    with mpmath.workprec(mpmath.mp.prec + 1100):
        return mpmath.sqrt(2) * mpmath.erfinv(2 * p - 1)


def _scaled(n, x):
    return mpmath.exp(-abs(x)) * mpmath.besseli(n, x)


TEXTBOOK = {
    "erfcx": _textbook(_erfcx, lambda x: 2 * x * _erfcx(x) - 2 / mpmath.sqrt(mpmath.pi)),
    "ndtr": _textbook(_ndtr, _phi),
    # log(1 - Phi(-x)) above 0: log Phi(30) is -4.9e-198, which log(Phi(30)) would need 650 bits to see.
    "log_ndtr": _textbook(lambda x: mpmath.log1p(-_ndtr(-x)) if x > 0 else mpmath.log(_ndtr(x)),
                          lambda x: _phi(x) / _ndtr(x)),
    "ndtri": _textbook(_ndtri, lambda p: 1 / _phi(_ndtri(p))),
    "i0": _textbook(lambda x: mpmath.besseli(0, x), lambda x: mpmath.besseli(1, x)),
    "i1": _textbook(lambda x: mpmath.besseli(1, x),
                    lambda x: mpmath.besseli(0, x) - mpmath.besseli(1, x) / x if x else mpmath.mpf(0.5)),
    "i0e": _textbook(lambda x: _scaled(0, x), lambda x: _scaled(1, x) - mpmath.sign(x) * _scaled(0, x)),
    "i1e": _textbook(lambda x: _scaled(1, x),
                     lambda x: (_scaled(0, x) - _scaled(1, x) / x - mpmath.sign(x) * _scaled(1, x)) if x
                     else mpmath.mpf(0.5)),
    "sinc": _textbook(lambda x: mpmath.sinpi(x) / (mpmath.pi * x) if x else mpmath.mpf(1),
                      lambda x: (mpmath.cospi(x) - mpmath.sinpi(x) / (mpmath.pi * x)) / x if x else mpmath.mpf(0)),
    "trigamma": _textbook(lambda x: mpmath.psi(1, x), lambda x: mpmath.psi(2, x)),
    "tetragamma": _textbook(lambda x: mpmath.psi(2, x), lambda x: mpmath.psi(3, x)),
}

RULES = {"erfcx": bj._erfcx, "ndtr": bj._ndtr, "log_ndtr": bj._log_ndtr, "ndtri": bj._ndtri, "i0": bj._i0,
         "i1": bj._i1, "i0e": bj._i0e, "i1e": bj._i1e, "sinc": bj._sinc, "trigamma": bj._polygamma_rule(1),
         "tetragamma": bj._polygamma_rule(2)}

TINY, HUGE = 5e-324, 1e300
LINE = [-HUGE, -1e10, -700.0, -30.0, -3.0, -0.5, -TINY, 0.0, TINY, 1e-8, 0.5, 1.0, 3.0, 30.0, 700.0, 1e10, HUGE]
POINTS = {
    "erfcx": LINE, "ndtr": LINE, "log_ndtr": LINE, "i0": LINE, "i1": LINE, "i1e": LINE,
    "ndtri": [TINY, 1e-300, 1e-30, 0.025, 0.5, 0.75, 1 - 2 ** -53],
    "i0e": [x for x in LINE if x != 0],                                    # its kink: test_i0e_has_a_kink_at_0
    "sinc": LINE + [1.5, 2 ** 51 + 0.5, -2 ** 40 - 0.25],
    "trigamma": [TINY, 1e-8, 0.5, 3.0, 30.0, 1e10, HUGE], "tetragamma": [TINY, 0.5, 3.0, 1e10, HUGE],
}
CASES = [(name, x) for name, xs in POINTS.items() for x in xs]


def _exact_ball(v) -> arb:
    """An mpf as a ball with its own rounding error (``PREC + 90`` bits)."""
    sign, man, exp, _ = v._mpf_
    mid = arb(flint.fmpz(-int(man) if sign else int(man))) * arb(2) ** int(exp)
    return arb(mid, abs(mid) * arb(2) ** -(PREC + 90))


def _agrees(ball: arb, v) -> bool:
    """``ball`` holds ``v`` (an mpf) and decides it: 100 of its 128 bits, or, for
    ``v`` past every format (beyond 2**1100 or below 2**-1100 in magnitude, 0
    included), a ball just as far."""
    if not ball.overlaps(_exact_ball(v)):
        return False
    if v == 0 or mpmath.mag(v) < -1100:
        return abs(ball).upper() < arb(2) ** -1100
    if mpmath.mag(v) > 1100:
        return abs(ball).lower() > arb(2) ** 1100
    return ball.rel_accuracy_bits() >= 100


@pytest.mark.parametrize("name, x", CASES, ids=[f"{n}({x:g})" for n, x in CASES])
def test_a_rule_encloses_the_textbook_value_and_derivative_with_100_bits_to_spare(name, x):
    value, slope = TEXTBOOK[name](x)
    with flint.ctx.workprec(PREC):
        v, d, _ = RULES[name](arb(x), None)
    assert _agrees(v, value), (v, mpmath.nstr(value, 20))
    assert _agrees(d, slope), (d, mpmath.nstr(slope, 20))


def test_sinc_is_exactly_1_with_slope_exactly_0_at_0():
    with flint.ctx.workprec(PREC):
        v, d, _ = bj._sinc(arb(0), None)
    assert v.is_exact() and v == 1 and d.is_exact() and d == 0


def test_ndtr_carries_its_distance_from_1():
    # Phi(40) - 1 = -Phi(-40), about -3.7e-350: a ball around 1 alone could not say it.
    with flint.ctx.workprec(PREC):
        _, _, m1 = bj._ndtr(arb(40.0), None)
    with mpmath.workprec(PREC + 96):
        assert _agrees(m1, -_ndtr(mpmath.mpf(-40)))


def solved(formula, xs):
    x = np.array(xs, dtype=np.float64).reshape(len(xs), -1)
    handover = Handover()
    records, left = solve_grid(formula, x, np.ones(len(x)), [True], handover)
    return {k: decode(r) for k, r in records.items()}, left, dict(handover.causes)


def test_i0e_has_a_kink_at_0_a_switching_point_for_the_mpmath_engine():
    tables, left, causes = solved(torch.special.i0e, [[-1.0], [0.0], [1.0]])
    assert left == [1] and causes == {"a switching point met exactly": 1}
    assert tables[0].grad[0] == -tables[2].grad[0] > 0


def test_polygamma_of_any_order_and_as_a_tensor_method():
    tables, left, _ = solved(lambda x: torch.polygamma(3, x) + x.polygamma(1), [[0.5]])
    with mpmath.workprec(200):
        want = mpmath.psi(3, 0.5) + mpmath.psi(1, 0.5), mpmath.psi(4, 0.5) + mpmath.psi(2, 0.5)
    assert left == [] and (tables[0].value[0], tables[0].grad[0]) == tuple(float(w) for w in want)


# -- the activations written from balls' operations: their float64 truths, point by point --------------------

ALPHA = 0.5


def _celu(x):
    return (x, 1) if x > 0 else (ALPHA * mpmath.expm1(x / ALPHA), mpmath.exp(x / ALPHA))


def _selu(x):
    scale, alpha = mpmath.mpf(SELU_SCALE), mpmath.mpf(SELU_ALPHA)
    return (scale * x, scale) if x > 0 else (scale * alpha * mpmath.expm1(x), scale * alpha * mpmath.exp(x))


def _hardsigmoid(x):
    return (min(max(x + 3, 0), 6) / 6, mpmath.mpf(1) / 6 if -3 < x < 3 else 0)


def _hardswish(x):
    return (x * min(max(x + 3, 0), 6) / 6, (2 * x + 3) / 6 if -3 < x < 3 else int(x > 3))


def _mvlgamma2(x):
    half = mpmath.mpf(0.5)
    return (mpmath.log(mpmath.pi) / 2 + mpmath.loggamma(x) + mpmath.loggamma(x - half),
            mpmath.digamma(x) + mpmath.digamma(x - half))


ACTIVATIONS = [
    ("celu", lambda x: F.celu(x, alpha=ALPHA), _celu, [-1e300, -30.0, -1e-300, 2.0]),
    ("selu", F.selu, _selu, [-1e300, -30.0, -1e-300, 2.0, 1e300]),
    ("hardsigmoid", F.hardsigmoid, _hardsigmoid, [-3.5, -1e-300, 1.0, 2.9999999999999996, 1e300]),
    ("hardswish", F.hardswish, _hardswish, [-3.5, -1e-300, 1.0, 2.9999999999999996, 1e300]),
    ("mvlgamma", lambda x: torch.mvlgamma(x, p=2), _mvlgamma2, [0.5 + 2 ** -52, 1.0, 30.0, 1e300]),
]


@pytest.mark.parametrize("name, formula, textbook, xs", ACTIVATIONS, ids=[a[0] for a in ACTIVATIONS])
def test_activations_and_mvlgamma_round_as_the_textbook_formula(name, formula, textbook, xs):
    tables, left, causes = solved(formula, [[x] for x in xs])
    assert left == [], causes
    for k, x in enumerate(xs):
        with mpmath.workprec(300):
            value, slope = textbook(mpmath.mpf(x))
        assert (tables[k].value[0], tables[k].grad[0]) == (float(value), float(slope)), x


def test_selu_has_torchs_constants():
    x = torch.tensor([1.0, -math.inf], dtype=torch.float64)
    assert F.selu(x).tolist() == [SELU_SCALE, -SELU_SCALE * SELU_ALPHA]
