"""Truths at ±inf inputs: a limit where every path read settles on one; none
where the readings do not settle (cos) or where paths disagree (indeterminate)."""

import math

import mpmath
import pytest
import torch

import harness
from harness import exact
from harness.inputs.domains import Domain
from harness.judging.judge import INDETERMINATE_WORDS, UNSETTLED_WORDS
from harness.truth.flat_reference import _FlatReference
from harness.truth.limits import INDETERMINATE, LIMIT, UNSETTLED, path_limit
from harness.truth.point import solve_point

INF = math.inf


def truth_of(fn, *x):
    flat = _FlatReference(exact(fn), tuple(() for _ in x), 1)
    return solve_point(flat, list(x), [1.0], [Domain()] * len(x))


def plain(reference, *x):
    return solve_point(lambda v: [reference(*v)], list(x), [1.0], [Domain()] * len(x))


def test_a_limit_that_exists_is_the_truth():
    t = truth_of(torch.sigmoid, INF)
    assert t.value == [1] and t.value_limit == [LIMIT] and t.grad_limit == [LIMIT]
    assert abs(t.grad[0]) < mpmath.ldexp(1, -1100)      # 0 in every format
    t = truth_of(torch.sqrt, INF)                          # d/dx sqrt -> 0 as 1 / (2 sqrt x)
    assert t.value == [mpmath.inf] and abs(t.grad[0]) < mpmath.ldexp(1, -1100)
    t = truth_of(torch.hypot, -INF, 1.0)                   # one infinite input: no path to choose
    assert t.value == [mpmath.inf] and t.grad[0] == -1 and abs(t.grad[1]) < mpmath.ldexp(1, -1100)
    assert t.grad_limit == [LIMIT, LIMIT]
    t = truth_of(torch.lgamma, INF)                        # d/dx = digamma: 832, 1664, 3327: +inf
    assert t.grad == [mpmath.inf]


@pytest.mark.parametrize("fn", [torch.cos, torch.sin, torch.tan])
def test_periodic_functions_have_no_truth_at_infinity(fn):
    for x in (INF, -INF):
        t = truth_of(fn, x)
        assert mpmath.isnan(t.value[0]) and t.value_limit == [UNSETTLED]
        assert t.grad_limit == [UNSETTLED]


def test_a_function_settled_only_on_a_lattice_of_huge_integers_is_unsettled():
    # x - floor(x) is 0 at every power of two: the reading off the lattice (2**1200 + 0.3) says otherwise.
    t = plain(lambda x: x - mpmath.floor(x), INF)
    assert t.value_limit == [UNSETTLED] and mpmath.isnan(t.value[0])
    # The derivative is 1 on every path, but of a function with no value there: not judged.
    assert t.grad_limit == [UNSETTLED]


def test_an_approach_too_slow_to_read_takes_the_reference_own_value_with_one_infinite_input():
    t = plain(lambda x: 1 / mpmath.log(x), INF)          # 1/832, 1/1664, ...: mpmath's 1/log(inf) is 0
    assert t.value == [0] and t.value_limit == [LIMIT]


@pytest.mark.parametrize("fn, x, entry, lo, hi", [
    (torch.logaddexp, (-INF, -INF), "grad", 0.0, 1.0),           # 1/2 on the diagonal, 0 or 1 off it
    (torch.sub, (INF, INF), "value", -INF, INF),                 # inf - inf
    (torch.atan2, (INF, INF), "value", 0.0, math.pi / 2),
    (lambda a, b: a + torch.exp(b), (-INF, INF), "value", -INF, INF),   # exp(b) against a: the log paths
])
def test_a_limit_that_depends_on_the_path_is_indeterminate_with_its_range(fn, x, entry, lo, hi):
    t = truth_of(fn, *x)
    codes, ranges = getattr(t, f"{entry}_limit"), getattr(t, f"{entry}_range")
    assert INDETERMINATE in codes
    k = codes.index(INDETERMINATE)
    assert ranges[k] == pytest.approx((lo, hi))
    if entry == "value":
        assert mpmath.isnan(t.value[k])
    else:
        assert mpmath.isnan(t.grad[k])


def test_path_limit_reads_divergence_only_from_growth_past_one():
    mp = mpmath.mpf
    assert path_limit([mp(832), mp(1664), mp(3327)], mp(832)) == mpmath.inf
    # |cos| can grow three times running; it never passes 1.
    assert path_limit([mp("0.2"), mp("0.4"), mp("0.8")], mp("0.2")) is None
    assert path_limit([mp(2), mp(2)], mp(3)) is None     # the reading off the lattice disagrees


def certify_at(fn, points, reference=None, **kw):
    case = harness.Case(fn.__name__, fn, reference or exact(fn), grid=lambda dtype: points, **kw)
    return harness.certify(case, torch.float64)


def quaternion_w(roll, pitch, yaw):
    """The first component of a quaternion from Euler angles, as a geometry library writes it."""
    cr, sr = torch.cos(roll / 2), torch.sin(roll / 2)
    cp, sp = torch.cos(pitch / 2), torch.sin(pitch / 2)
    cy, sy = torch.cos(yaw / 2), torch.sin(yaw / 2)
    return cr * cp * cy + sr * sp * sy


def test_periodic_components_at_infinity_raise_no_alarm_in_gradcheck_extremes():
    # Before limits had to exist, a reading at 2**1200 stood for cos(inf/2), and
    # thousands of entries at ±inf inputs failed against it.
    x = tuple(torch.tensor([0.3, -1.2], dtype=torch.float64, requires_grad=True) for _ in range(3))
    assert harness.gradcheck(quaternion_w, x, extremes="elementwise", grid_size=1)


def logaddexp_masked(a, b):
    """logaddexp with a gradient of 0 where both inputs are -inf (a masked row)."""
    both = torch.isneginf(a) & torch.isneginf(b)
    safe_a, safe_b = torch.where(both, 0.0, a), torch.where(both, 0.0, b)
    return torch.where(both, -math.inf, torch.logaddexp(safe_a, safe_b))


def test_cos_at_infinity_is_no_false_alarm_and_is_counted():
    report = certify_at(torch.cos, [INF, -INF, 1.0])
    assert report.ok, str(report)
    assert report.counts[UNSETTLED_WORDS] == 4       # value and gradient at +inf and -inf
    assert report.counts["judged"] == 2


def test_indeterminate_entries_are_listed_and_fail_only_under_the_finite_policy():
    points = [(-INF, -INF), (-INF, 1.0), (1.0, 2.0)]
    report = certify_at(torch.logaddexp, points)
    assert report.ok, str(report)      # torch's NaN at (-inf, -inf) is no defect against no truth
    assert report.counts[INDETERMINATE_WORDS] == 2
    assert [(e.point, e.lo, e.hi) for e in report.indeterminate] == [((-INF, -INF), 0.0, 1.0)] * 2
    assert "path limits in [0, 1]" in str(report)
    strict = certify_at(torch.logaddexp, points, indeterminate="finite")
    assert not strict.ok and strict.kinds == {"indeterminate"}
    assert {tuple(map(float, f.point)) for f in strict.failures} == {(-INF, -INF)}
    # A finite claim there meets the policy.
    finite = certify_at(logaddexp_masked, points, exact(torch.logaddexp), indeterminate="finite")
    assert finite.ok, str(finite)


def test_the_run_policy_overrides_the_case_and_a_bad_policy_is_named():
    with pytest.raises(TypeError, match="indeterminate='never'"):
        harness.Case("bad", torch.exp, exact(torch.exp), indeterminate="never")
    case = harness.Case("logaddexp", torch.logaddexp, exact(torch.logaddexp),
                        grid=lambda dtype: [(-INF, -INF)], indeterminate="finite")
    assert harness.certify(case, torch.float64, indeterminate="report").ok
