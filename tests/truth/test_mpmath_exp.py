"""``harness.truth.mpmath_exp``: mpmath's ``exp`` of huge integers by argument reduction."""

from __future__ import annotations

import mpmath
import pytest

import harness.truth  # noqa: F401  (installs the routing)
from harness.truth import mpmath_exp

ARGUMENTS = [mpmath.ldexp(1, 1200), -mpmath.ldexp(1, 2400), mpmath.ldexp(3, 4800), mpmath.mpf(3) ** 700,
             -mpmath.mpf(7) ** 500, mpmath.mpf(1000), mpmath.mpf(-745)]


def test_mpmath_exp_is_routed_after_the_truth_engine_is_imported():
    assert mpmath_exp.install()
    assert mpmath.libmp.libelefun.mpf_exp is mpmath_exp.mpf_exp
    probe = mpmath.ldexp(1, 1200)
    with mpmath.workprec(2000):
        assert mpmath.exp(probe)._mpf_ == mpmath_exp.mpf_exp(probe._mpf_, 2000, "n")


@pytest.mark.parametrize("prec", [601, 1024, 2400, 4096])
@pytest.mark.parametrize("x", ARGUMENTS, ids=lambda v: mpmath.nstr(v, 3))
def test_integers_reduced_agree_with_repeated_squaring(x, prec):
    # Within an ulp of mpmath's own e**n: both are accurate to prec bits (neither is correctly rounded).
    ours = mpmath.mpf(mpmath_exp.mpf_exp(x._mpf_, prec, "n"))
    squared = mpmath.mpf(mpmath_exp._ORIGINAL(x._mpf_, prec, "n"))
    with mpmath.workprec(prec + 32):
        assert abs(ours - squared) <= abs(squared) * mpmath.ldexp(1, 1 - prec)


@pytest.mark.parametrize("x", [mpmath.mpf(0.3), mpmath.mpf(-2.5), mpmath.ldexp(1, 1200) + mpmath.mpf(0.3)])
def test_other_numbers_and_low_precisions_are_mpmaths_own(x):
    for prec in (53, 600, 2000):
        assert mpmath_exp.mpf_exp(x._mpf_, prec, "n") == mpmath_exp._ORIGINAL(x._mpf_, prec, "n")
    n = mpmath.ldexp(1, 1200)._mpf_   # an integer at mpmath's own cut and below: untouched
    assert mpmath_exp.mpf_exp(n, mpmath_exp.SQUARING_ABOVE_BITS, "n") == \
        mpmath_exp._ORIGINAL(n, mpmath_exp.SQUARING_ABOVE_BITS, "n")


def test_a_limit_reading_at_minus_infinity_takes_the_reduction(benchmark):
    # The IW-ELBO's weight of -inf read at -2**2400 (limits.FAR squared), at 4096 bits.
    x = (-mpmath.ldexp(1, 2400))._mpf_
    value = benchmark(mpmath_exp.mpf_exp, x, 4096, "n")
    assert value[0] == 0 and value[2] < -(1 << 2400)
    benchmark.group = "truth engines: exp at a limit's reading"
