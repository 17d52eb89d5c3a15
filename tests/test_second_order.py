"""Second order and forward mode: planted double-backward and JVP defects are
convicted with their kind, correct ones certified, and the truths of
``J(x) v`` (``harness.truth.directional``) are the mathematical derivatives."""

import textwrap

import mpmath
import numpy as np
import pytest
import torch

import harness
from cases import second_order
from harness.truth.directional import Directional
from harness.inputs.domains import Domain
from harness.truth.point import solve_point

pytest_plugins = ["pytester"]

BOTH = ("reverse", "forward")


def softplus_ref(x):
    return mpmath.log1p(mpmath.exp(x))


# The correct softplus Function and the planted ones are the case file's
# (cases/second_order.py), certified there in every dtype at the default grid.
Softplus, NoGrad, Detached = second_order.Softplus, second_order.SoftplusNoGrad, second_order.SoftplusDetached
JvpSign, NoJvp, _softplus, _sigmoid = (second_order.SoftplusJvpSign, second_order.SoftplusNoJvp,
                                       second_order.max_log1p, second_order._sigmoid)


class WrongCurvature(torch.autograd.Function):
    """sigmoid whose own backward is 10% off: the gradient of softplus built
    on it is right, its Hessian-vector product is not."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return _sigmoid(x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return 1.1 * g * _sigmoid(x) * _sigmoid(-x)


def case(name, forward, reference=softplus_ref, **kw):
    return harness.Case(name, forward, reference, order=2, modes=BOTH, **kw)


def quantities(report, kind) -> set[str]:
    return {f.quantity for f in report.failures if kind in f.kinds}


def certify(c, dtype=torch.float32):
    return harness.certify(c, dtype, grid_size=1)


# -- verdicts ------------------------------------------------------------------------------
def test_a_differentiable_backward_with_its_jvp_is_certified_in_every_quantity():
    # float16: every binade of its range in 300 points (cases/second_order.py certifies all four dtypes).
    report = certify(case("softplus", Softplus.apply), torch.float16)
    assert report.ok, str(report)
    assert set(report.worst_bits) == {"value", "gradient", "jvp", "hvp"}


@pytest.mark.parametrize("function", [NoGrad, Detached], ids=["no_grad", "detach"])
def test_a_backward_cut_from_the_graph_gives_a_silent_zero_hessian(function):
    report = certify(case("cut", function.apply))
    assert report.kinds == {"silent-zero"}, str(report)
    assert quantities(report, "silent-zero") == {"hvp"}


def test_a_jvp_with_the_wrong_sign_is_convicted_in_forward_mode_only():
    report = certify(case("sign", JvpSign.apply))
    assert report.kinds == {"wrong-sign"}
    assert quantities(report, "wrong-sign") == {"jvp"}


def test_a_function_without_jvp_is_reported_unsupported_not_crashed_on():
    report = certify(case("nojvp", NoJvp.apply))
    assert report.kinds == {"unsupported"}
    assert quantities(report, "unsupported") == {"jvp"}
    assert any("forward mode raised NotImplementedError" in n for n in report.notes), report.notes
    assert "hvp" in report.worst_bits   # the other quantities are still judged


def test_a_double_backward_that_raises_is_reported_unsupported_and_the_rest_still_judged():
    # torch has no derivative of zeta in its first argument: differentiating
    # this (correct) gradient again raises NotImplementedError.
    backward = lambda x, g: g * torch.exp(x) + 0 * torch.special.zeta(x, torch.ones_like(x))
    report = certify(harness.Case("zeta", torch.exp, mpmath.exp, backward=backward, order=2,
                                  domain=harness.domains.interval(1.5, 60)))
    assert report.kinds == {"unsupported"}, str(report)
    assert quantities(report, "unsupported") == {"hvp"}
    assert any("double backward raised NotImplementedError: the derivative for 'zeta'" in n for n in report.notes)


def test_a_wrong_second_derivative_is_inconsistent_with_the_claimed_gradient_without_a_reference():
    forward = lambda x: _softplus(x)
    backward = lambda x, g: g * WrongCurvature.apply(x)
    report = harness.certify(harness.Case("curvature", forward, None, backward=backward, order=2,
                                          domain=harness.domains.interval(-20, 20)), torch.float64, grid_size=1)
    assert "inconsistent" in report.kinds, str(report)
    assert quantities(report, "inconsistent") == {"hvp"}


def test_torch_logsigmoid_double_backward_loses_its_digits_where_sigmoid_rounds_to_one():
    # derivatives.yaml: log_sigmoid_backward's derivative is built from
    # sigmoid(x) - 1 (or 1 - sigmoid), which cancels for x > 0.
    report = certify(case("logsigmoid", torch.nn.functional.logsigmoid,
                          lambda x: -mpmath.log1p(mpmath.exp(-x)), domain=harness.domains.interval(0.5, 100)))
    assert quantities(report, "silent-zero") == {"hvp"}
    assert min(f.point[0] for f in report.failures if f.kind == "silent-zero") > 16


def test_order_and_modes_given_to_certify_override_the_case():
    plain = harness.Case("plain", NoGrad.apply, softplus_ref)
    assert certify(plain).ok
    report = harness.certify(plain, torch.float32, grid_size=1, order=2, modes=BOTH)
    assert report.kinds == {"silent-zero"}


def test_bad_order_or_modes_are_refused_with_the_case_name():
    with pytest.raises(TypeError, match="case 'x'.*order=3"):
        harness.Case("x", torch.exp, mpmath.exp, order=3)
    with pytest.raises(TypeError, match="case 'x'.*modes"):
        harness.Case("x", torch.exp, mpmath.exp, modes=("forward",))


def test_structured_hessian_vector_products_are_judged_against_mixed_second_derivatives():
    # f(a) = sum(a**3) / 3 + a0 * a1: H = diag(2 a) + [[0, 1], [1, 0]]
    grid = lambda dtype: [(np.array([1.5, -2.0]),), (np.array([0.25, 3.0]),)]
    reference = lambda a: sum(v ** 3 for v in a) / 3 + a[0] * a[1]
    good = harness.Case("cubic", lambda a: (a ** 3).sum() / 3 + a[0] * a[1], reference, grid=grid, order=2,
                        modes=BOTH)
    assert certify(good, torch.float64).ok
    bad = harness.Case("cubic-nomix", lambda a: (a ** 3).sum() / 3 + a[0].detach() * a[1], reference, grid=grid,
                       order=2)
    report = certify(bad, torch.float64)
    assert not report.ok and {f.quantity for f in report.failures} >= {"gradient[0]", "hvp[1]"}, str(report)


# -- truths of J(x) v ------------------------------------------------------------------------
@pytest.mark.parametrize("x", [1.0, -1.3363823550460978e-51, 1e-300, 700.0, -700.0, 1e300])
def test_the_directional_truth_of_exp_is_exp_itself(x):
    # exp at 1e-50 is 1 beside 1e-50: the stencil cancels 250 bits that two
    # working precisions lose alike; at 1e300 the step must follow exp's scale.
    t = solve_point(Directional(lambda v: [mpmath.exp(v[0])], (1.0,), (Domain(),)), [x], [1.0], [Domain()])
    with mpmath.workprec(200):
        want = mpmath.exp(mpmath.mpf(x))
        for got in (t.value[0], t.grad[0]):
            assert abs(got - want) <= abs(want) * mpmath.ldexp(1, -60) or (want > 2 ** 1100 and got > 2 ** 1100)


def test_the_directional_truth_mixes_inputs_along_the_tangent():
    # f = x y**2, v = (1, 2): J v = y**2 + 4 x y, H v = (4 y, 2 y + 4 x)
    flat = lambda v: [v[0] * v[1] ** 2]
    t = solve_point(Directional(flat, (1.0, 2.0), (Domain(), Domain())), [3.0, -5.0], [1.0], [Domain(), Domain()])
    assert float(t.value[0]) == 25.0 - 60.0
    assert [float(g) for g in t.grad] == [-20.0, -10.0 + 12.0]


def test_the_directional_truth_stays_inside_the_domain():
    # log at the smallest subnormal: a step below 0 would leave the domain.
    x = 5e-324
    t = solve_point(Directional(lambda v: [mpmath.log(v[0])], (1.0,), (Domain(lo=0.0),)), [x], [1.0],
                    [Domain(lo=0.0)])
    assert float(t.value[0]) == 1 / x if np.isfinite(1 / x) else mpmath.isinf(t.value[0]) or t.value[0] > 2 ** 1070


# -- plugin ---------------------------------------------------------------------------------
CASES = """
    import mpmath, torch, harness
    CASES = [harness.Case("exp", torch.exp, mpmath.exp),
             harness.Case("exp2", torch.exp, mpmath.exp, order=2, modes=("reverse", "forward"))]
"""


def test_item_ids_show_the_quantities_and_the_options_override_them(pytester):
    pytester.makeini("[pytest]\naddopts = -p no:hypothesispytest\n")
    (pytester.mkdir("cases") / "fam.py").write_text(textwrap.dedent(CASES))

    def ids(*args):
        reprec = pytester.inline_run("--collect-only", "--dtypes", "float32", "--devices", "cpu", *args)
        (call,) = reprec.getcalls("pytest_collection_finish")
        return {item.nodeid.split("::")[1] for item in call.session.items}

    assert ids() == {"exp[float32-cpu]", "exp2[float32-cpu-hvp-jvp]"}
    assert ids("--order", "2") == {"exp[float32-cpu-hvp]", "exp2[float32-cpu-hvp-jvp]"}
    assert ids("--order", "1", "--modes", "reverse") == {"exp[float32-cpu]", "exp2[float32-cpu]"}
    result = pytester.runpytest_inprocess("--modes", "forward", "--collect-only")
    assert result.ret == pytest.ExitCode.USAGE_ERROR


def test_the_certification_report_has_columns_and_maps_for_the_new_quantities(pytester):
    pytester.makeini("[pytest]\naddopts = -p no:hypothesispytest\n")
    narrow = 'harness.Case("exp2", torch.exp, mpmath.exp, order=2, modes=("reverse", "forward"), ' \
             'domain=harness.domains.interval(1, 4))'
    (pytester.mkdir("cases") / "fam.py").write_text(f"import mpmath, torch, harness\nCASES = [{narrow}]\n")
    out = pytester.path / "report"
    result = pytester.runpytest("cases", "--dtypes", "bfloat16", "--devices", "cpu", "--grid-size", "1",
                                "--truth-cache", "none", "-p", "no:cacheprovider", "--certify-report", str(out))
    result.assert_outcomes(passed=1)
    index = (out / "index.md").read_text()
    assert "hvp bits, worst / mean" in index and "jvp bits, worst / mean" in index
    assert list((out / "maps").glob("*.png"))


def test_a_kink_of_the_gradient_is_reported_for_the_hessian_not_failed():
    # relu(x)**2 / 2 has gradient relu(x), continuous with a kink at 0: its
    # second derivative jumps there, and autograd's 0 (or 1) is no error.
    case = harness.Case("half relu squared", lambda x: torch.relu(x) ** 2 / 2,
                        lambda x: max(x, 0) ** 2 / 2, order=2, domain=harness.domains.interval(-4, 4))
    report = certify(case, torch.float64)
    assert report.ok, str(report)
    assert {(point[0], quantity) for point, quantity in report.kinks} >= {(0.0, "hvp")}
