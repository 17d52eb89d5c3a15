"""The truth engine verifies instead of trusting agreement."""

import math

import mpmath
import pytest
import torch

import harness

from harness.inputs.domains import interval, positive, real
from harness.truth.mpmath_engine import ReferenceFailure
from harness.truth.point import solve_point


def truth(reference, x, domain=None):
    return solve_point(lambda v: [reference(v[0])], [x], [1.0], [domain or real()])


def test_log_cosh_derivative_at_1e_minus_22():
    # At 80 digits with a step |x| 2**-133 the quotient is an exact 0, and 0 again at 40 digits.
    t = truth(lambda x: mpmath.log(mpmath.cosh(x)), 1e-22)
    assert float(t.grad[0]) == pytest.approx(1e-22, rel=1e-15)
    assert float(t.value[0]) == pytest.approx(5e-45, rel=1e-15)


def test_softplus_derivative_at_zero():
    # A step of 2**-1200 gives an exact 0 below ~1200 bits.
    t = truth(lambda x: mpmath.log1p(mpmath.exp(x)), 0.0)
    assert float(t.grad[0]) == 0.5


def test_cancellation_in_the_reference_is_resolved():
    t = truth(lambda x: (1 + x) - 1, 1e-100)
    assert float(t.value[0]) == 1e-100 and float(t.grad[0]) == 1.0
    assert t.bits > 332


def test_derivative_far_below_the_smallest_double_is_kept():
    t = truth(lambda x: mpmath.log1p(mpmath.exp(x)), -1e308)
    assert t.grad[0] > 0 and mpmath.mag(t.grad[0]) < -1e300


def test_tiny_but_representable_derivative_is_not_a_false_zero():
    t = truth(mpmath.tanh, 300.0)
    assert float(t.grad[0]) == pytest.approx(4 * math.exp(-600), rel=1e-12)


def test_one_sided_near_the_domain_end():
    t = truth(mpmath.log, 5e-324, positive())
    assert float(t.grad[0]) == pytest.approx(1 / 5e-324, rel=1e-12)
    t = truth(mpmath.log, 1 - 2 ** -53, interval(0, 1))
    assert float(t.grad[0]) == pytest.approx(1 / (1 - 2 ** -53), rel=1e-15)


def test_kinks_are_detected_and_smooth_points_are_not():
    assert truth(lambda x: max(x, 0), 0.0).kink == [True]
    assert truth(abs, 0.0).kink == [True]
    assert truth(lambda x: max(x, 0), -3.0).kink == [False]
    assert truth(lambda x: x * x, 0.0).kink == [False]
    assert truth(lambda x: mpmath.log1p(mpmath.exp(x)), 5.7e-46).kink == [False]


def test_a_kink_whose_quotient_is_an_exact_zero_beside_another_output_is_a_kink():
    """The central quotient of |x| at 0 is exactly 0, its noise decided: the
    one-sided quotients' gap still makes it a kink, beside an output the
    cotangent ignores (as sigma_min = |t| of a rank-deficient matrix sits beside
    the other singular values)."""
    t = solve_point(lambda v: [mpmath.mpf(2) + 0 * v[0], abs(v[0])], [0.0], [0.0, 1.0], [real()])
    assert t.kink == [True]


def test_condition_numbers():
    t = truth(mpmath.log, 1 - 2 ** -53, interval(0, None))
    assert t.value_kappa[0] == pytest.approx(2 ** 53, rel=1e-3)   # log near 1
    t = truth(mpmath.tanh, 300.0)
    assert t.grad_kappa[0] == pytest.approx(600, rel=1e-3)        # x f''/f' of tanh


def test_vector_output_vjp():
    # f(a, b) = (a*b, a+b), cotangent (2, 3): d/da = 2b + 3, d/db = 2a + 3.
    t = solve_point(lambda v: [v[0] * v[1], v[0] + v[1]], [1.5, -4.0], [2.0, 3.0], [real(), real()])
    assert [float(g) for g in t.grad] == [-5.0, 6.0]


def test_a_reference_that_never_converges_fails_cleanly():
    with pytest.raises(ReferenceFailure, match="never converged"):
        truth(lambda x: x + mpmath.rand(), 1.0)


def _sigmoid(x):
    return 1 / (1 + mpmath.exp(-x))


def test_a_term_both_precisions_absorb_is_found_at_a_higher_one():
    # log(1 - sigmoid(x)) at x = 256.9: 1 + exp(-256.9) is 1 at 128 and at 160 bits alike.
    t = truth(lambda x: mpmath.log(1 - _sigmoid(x)), 256.9375)
    assert float(t.value[0]) == pytest.approx(-256.9375, rel=1e-15, abs=0)
    assert float(t.grad[0]) == pytest.approx(-1.0, rel=1e-15, abs=0)


def test_absorbed_term_in_a_two_input_gradient():
    def ll(v):
        logit, obs = v
        return [obs * mpmath.log(_sigmoid(logit)) + (1 - obs) * mpmath.log(_sigmoid(-logit))]
    t = solve_point(ll, [-256.9375, 5e-324], [1.0], [real(), interval(0, 1)])
    with mpmath.workprec(2000):
        expected = mpmath.mpf(5e-324) - _sigmoid(mpmath.mpf(-256.9375))
    assert float(t.grad[0]) == pytest.approx(float(expected), rel=1e-15, abs=0)   # about -2.6e-112, not 5e-324


def test_a_reference_infinite_at_the_start_precision_is_resolved():
    # -log(1 - sigmoid(x)) is inf at 128 bits for x = 100 and at 640 bits for x = 1000.
    for x in (100.0, 1000.0):
        t = truth(lambda v: -mpmath.log(1 - _sigmoid(v)), x)
        assert float(t.value[0]) == pytest.approx(x, rel=1e-15, abs=0)
        assert float(t.grad[0]) == pytest.approx(1.0, rel=1e-15, abs=0)


def test_rounding_at_the_stencil_counts_where_the_centre_is_exact():
    # h has an 8-bit significand, so 1 + h**2 is exact at the centre; at h +- step it is not.
    h = 4.5536491244391186e-17
    t = truth(lambda v: mpmath.log(1 + v**2), h)
    assert float(t.grad[0]) == pytest.approx(2 * h, rel=1e-15, abs=0)


def test_a_zero_quotient_of_a_moving_stencil_is_not_a_crash():
    # The label's derivative is the logit (1e-29) next to values of -0.69: a quotient of 0 at first.
    def ll(v):
        logit, obs = v
        return [obs * mpmath.log(_sigmoid(logit)) + (1 - obs) * mpmath.log(_sigmoid(-logit))]
    t = solve_point(ll, [-1.035379938102578e-29, 3.469446951953614e-18], [1.0], [real(), interval(0, 1)])
    assert float(t.grad[1]) == pytest.approx(-1.035379938102578e-29, rel=1e-15, abs=0)


def test_a_confirmed_zero_derivative_is_resolved_for_tiny_entries():
    # d/dx of x**2 + y**2 at (1e-300, 1e300) is 2e-300: a step changes the value by 2**-4000 of it.
    t = solve_point(lambda v: [v[0] ** 2 + v[1] ** 2], [1e-300, 1e300], [1.0], [real(), real()])
    assert float(t.grad[0]) == pytest.approx(2e-300, rel=1e-15, abs=0)


def test_a_central_zero_is_a_symmetry_only_if_a_high_precision_says_so():
    # d/dx of (3x**2 - 2xy + 3y**2)/8 at (0, y) is -y/4; steps of 2**-40 make the
    # quotient's numerator 2**-230 of the stencil values: 0 at 160 bits.
    def paraboloid(v):
        x, y = v
        return [((x + y) ** 2 / 4 + (y - x) ** 2 / 2) / 2]
    t = solve_point(paraboloid, [0.0, -1.31777e-82], [1.0], [real(), real()])
    assert float(t.grad[0]) == pytest.approx(1.31777e-82 / 4, rel=1e-15, abs=0)
    assert truth(lambda x: x**2, 0.0).grad[0] == 0 and truth(lambda x: x**2, 0.0).bits == 160


@pytest.mark.parametrize("reference, x", [
    (mpmath.ncdf, -1.7e38),
    (lambda x: mpmath.mpf(2) ** x, -math.inf),
    (lambda x: mpmath.mpf(2) ** x, -1.7e308),
    (lambda x: x * mpmath.ncdf(x), -1e30),
    (lambda x: x * mpmath.ncdf(x), -math.inf),
    (lambda x: x * mpmath.ncdf(x), -1.7e308),
])
def test_a_truth_below_every_format_only_needs_its_magnitude(reference, x):
    # Each never converged (32768 bits): e.g. 2**(x + h) at x = -1.7e308 resolves only past 1100 bits.
    t = truth(reference, x)
    assert abs(t.value[0]) < mpmath.ldexp(1, -1075) and abs(t.grad[0]) < mpmath.ldexp(1, -1075)
    assert t.value[0] != 0 or math.isinf(x)
    assert not t.kink[0]


def test_a_truth_above_every_format_only_needs_its_magnitude():
    t = truth(lambda x: mpmath.exp(x ** 2), 1e200)
    assert t.value[0] > mpmath.ldexp(1, 1024) and t.grad[0] > mpmath.ldexp(1, 1024)


def test_a_random_reference_still_never_converges():
    with pytest.raises(ReferenceFailure, match="never converged"):
        truth(lambda x: mpmath.rand(), 1.0)


def test_the_value_at_an_infinite_input_is_verified():
    # At 160 bits 1 + 8.6e-78 rounds to 1: the value read 0 where it is 8.6e-78.
    t = solve_point(lambda v: [mpmath.exp(v[0]) + mpmath.log(1 + v[1])], [-math.inf, 8.6e-78], [1.0], [real(), real()])
    assert float(t.value[0]) == pytest.approx(8.6e-78, rel=1e-15, abs=0)
    assert float(t.grad[0]) == 0.0 and float(t.grad[1]) == 1.0


def test_a_limit_that_keeps_growing_is_infinite_and_one_that_settles_is_not():
    # digamma(2**1200) is only 831.8: d/dx lgamma at +inf is +inf.
    assert truth(mpmath.loggamma, math.inf).grad[0] == mpmath.inf
    t = truth(mpmath.atan, math.inf)
    assert float(t.value[0]) == pytest.approx(math.pi / 2, rel=1e-15) and float(t.grad[0]) == 0.0
    t = truth(lambda x: mpmath.log1p(mpmath.exp(x)), -math.inf)
    assert t.value[0] == 0 and float(t.grad[0]) == 0.0


@pytest.mark.parametrize("x", [1e30, -1.7e38, -1.7e308])
def test_a_function_turning_far_below_the_step_is_not_a_kink(x):
    # The step |x| 2**-40 spans ~1e18 periods at 1e30: the one-sided quotients disagreed.
    t = truth(lambda v: mpmath.sin(v) / v, x)
    with mpmath.workprec(4000):
        v = mpmath.mpf(x)
        expected = mpmath.cos(v) / v - mpmath.sin(v) / v**2
        assert t.kink == [False]
        assert abs(t.grad[0] - expected) <= abs(expected) * mpmath.ldexp(1, -60)
    assert truth(lambda v: max(v, 0), 0.0).kink == [True]
    assert truth(lambda v: max(v - mpmath.mpf(x), 0), x).kink == [True]   # a kink at a huge point still is one


@pytest.mark.parametrize("x", [2.0 ** 60, 3 * 2.0 ** 60, 6.7e153, 2.0 ** 52 + 2, 1e15 + 1])
def test_sinc_far_out_is_differentiated_on_its_own_scale(x):
    # Steps of |x| * 2**-40 are integers (or integers plus a constant
    # fraction) there: they land on sinc's zeros, or move both ends of the
    # stencil alike. The derivative at an integer is cos(pi x) / x.
    t = solve_point(lambda v: [mpmath.sincpi(v[0])], [x], [1.0], [real()])
    with mpmath.workprec(200):
        want = mpmath.cospi(mpmath.mpf(x)) / mpmath.mpf(x)
        assert abs(t.grad[0] - want) <= abs(want) * mpmath.ldexp(1, -60)


@pytest.mark.parametrize("f", [lambda v: [v[0] ** 3], lambda v: [v[0] - mpmath.tanh(v[0])],
                               lambda v: [max(v[0], 0) ** 2 / 2], lambda v: [v[0] ** 3 + v[0] ** 5]],
                         ids=["x**3", "x - tanh(x)", "relu(x)**2 / 2", "x**3 + x**5"])
def test_a_zero_derivative_where_the_function_is_not_flat_is_zero_in_every_format(f):
    # Central quotients there are h**2 (odd zeros of order three) or h/4 (a
    # jump of f''), never resolved relative to themselves: they were
    # "never converged" at 32768 bits.
    t = solve_point(f, [0.0], [1.0], [real()])
    assert abs(t.grad[0]) < mpmath.ldexp(1, -1076)


def test_a_derivative_beyond_every_format_keeps_its_sign():
    # d/dx x**y = y x**(y - 1) at the smallest subnormal x and y = -2.9e17:
    # far past every format, and negative (-inf in all of them, as torch says).
    t = solve_point(lambda v: [mpmath.power(v[0], v[1])], [5e-324, -2.8823037615171174e+17], [1.0],
                    [positive(), real()])
    assert t.grad[0] < -mpmath.ldexp(1, 1100)


def test_a_stencil_beside_minus_max_stays_central_in_a_domain_of_finite_reals():
    # float(-max - h) is -inf, outside interval(-inf, inf): the stencil went
    # one-sided with a step of 1.6e296 and read 1 for logaddexp's gradient.
    big = 1.7976931348623157e308
    finite = interval(-math.inf, math.inf)
    t = solve_point(lambda v: [mpmath.log(mpmath.exp(v[0]) + mpmath.exp(v[1]))], [-big, -big], [1.0],
                    [finite, finite])
    assert [float(g) for g in t.grad] == [0.5, 0.5]


def _exp_plus_log1p(v):
    return [mpmath.exp(v[0]) + mpmath.log(1 + v[1])]


def test_an_entry_no_precision_resolves_is_found_without_climbing_to_max_bits():
    # d/dy (exp(x) + log1p(y)) = 1/(1 + y) beside exp(x) ~ 2**(2.6e308): flat at
    # every precision. Two probes over y's scale say so; the value is kept at
    # the precision that verified it, not re-read past MAX_BITS.
    from harness.truth.mpmath_engine import MAX_BITS
    t = solve_point(_exp_plus_log1p, [1.7976931348623157e308, 0.125], [1.0], [real(), interval(-1, math.inf)])
    assert t.unresolved == [False, True] and t.grad[1] is None
    assert t.bits < MAX_BITS // 8


@pytest.mark.parametrize("x", [20000.0, 22600.0])
def test_an_entry_resolvable_just_below_max_bits_is_not_given_up(x):
    # exp(22600) is 2**32605: 1/(1 + y) moves the stencil within MAX_BITS.
    t = solve_point(_exp_plus_log1p, [x, 0.5], [1.0], [real(), interval(-1, math.inf)])
    assert t.unresolved is None or not any(t.unresolved)
    assert float(t.grad[1]) == 2 / 3


@pytest.mark.parametrize("kind", ["differences", "forward mode"])
def test_an_entry_that_cancels_keeps_the_size_of_its_terms(kind):
    """d/dx of x*y - x*y' with the cotangent (1, 1) is y - y', a sum whose terms
    are far larger than it: the budget must see them (Higham's dot product bound)."""
    from harness.truth.flat_reference import _FlatReference
    y, y2 = 3.0, 3.0 + 2.0 ** -40
    if kind == "differences":
        ref = lambda v: [v[0] * y, -v[0] * y2]
    else:
        ref = _FlatReference(harness.exact(lambda x: torch.stack([x * y, -x * y2])), ((),), 2)
    t = solve_point(ref, [0.7], [1.0, 1.0], [real()])
    assert t.method == kind
    assert float(t.grad[0]) == y - y2
    assert t.grad_scale[0] >= 6.0 and t.grad_kappa[0] >= 6.0 / 2.0 ** -40
