"""harness.gradcheck and gradgradcheck: torch's call and contract, judged
against the truth, in the inputs' own dtype, and at the extremes on request.

Each planted defect is convicted by the check that names it and passed by
the ones that cannot see it (torch's gradcheck at its one point, in float64).
"""

import dataclasses
import math
import re
import warnings
from pathlib import Path

import mpmath
import pytest
import torch
from torch.autograd.gradcheck import GradcheckError as TorchGradcheckError

import harness
from harness.gradcheck.gradcheck import GradcheckWarning

GradcheckError = harness.gradcheck.GradcheckError
README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def f64(*values):
    return torch.tensor(values, dtype=torch.float64, requires_grad=True)


def f32(*values):
    return torch.tensor(values, dtype=torch.float32, requires_grad=True)


POINT = (0.37, -1.21, 2.5, -0.06, 4.0)


class Softplus(torch.autograd.Function):
    """log(1 + e^x) with a correct backward built of differentiable ops (so its
    double backward is right too)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.clamp(min=0) + torch.log1p(torch.exp(-x.abs()))

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * torch.sigmoid(x)


class SoftplusWrongBackward(Softplus):
    """Planted: the backward is exp(x), the derivative of the wrong function."""

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * torch.exp(x)


class SigmoidOverflow(torch.autograd.Function):
    """Planted: sigmoid' as exp(x) / (1 + exp(x))**2, right at ordinary x and
    inf / inf = NaN once exp overflows (x > 88.7 in float32)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.sigmoid(x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * torch.exp(x) / (1 + torch.exp(x)) ** 2


class CurvedSigmoid(torch.autograd.Function):
    """Planted second-order bug: sigmoid whose own backward is s (1 + s), not
    s (1 - s). A softplus built on it has the right gradient and the wrong
    Hessian."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.sigmoid(x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        s = torch.sigmoid(x)
        return g * s * (1 + s)


class SoftplusWrongCurvature(Softplus):
    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * CurvedSigmoid.apply(x)


def naive_softplus(x):
    return torch.log(1 + torch.exp(x))


# -- agreement with torch ------------------------------------------------------------------------------------
AGREE = [
    ("elementwise", torch.tanh, lambda: (f64(*POINT),)),
    ("reduction", lambda x: torch.logsumexp(x, 0), lambda: (f64(*POINT),)),
    ("custom Function", Softplus.apply, lambda: (f64(*POINT),)),
    ("one input held", lambda x, w, k: (x * w).sum() ** k, lambda: (f64(*POINT), torch.arange(5.0).double(), 2)),
    ("matrix, two inputs", lambda a, b: torch.softmax(a @ b, -1), lambda: (
        torch.linspace(-1, 1, 6, dtype=torch.float64).reshape(2, 3).requires_grad_(),
        torch.linspace(0.5, 2, 6, dtype=torch.float64).reshape(3, 2).requires_grad_())),
    ("several outputs", lambda x: (x.exp(), torch.sin(x).sum(), x.argmax()), lambda: (f64(*POINT),)),
]


@pytest.mark.parametrize("fn,inputs", [a[1:] for a in AGREE], ids=[a[0] for a in AGREE])
def test_agrees_with_torch_on_correct_functions(fn, inputs):
    assert torch.autograd.gradcheck(fn, inputs())
    assert harness.gradcheck(fn, inputs()) is True


def test_a_wrong_backward_is_convicted_by_both_raising_or_returning_false():
    x = f64(*POINT)
    with pytest.raises(TorchGradcheckError):
        torch.autograd.gradcheck(SoftplusWrongBackward.apply, (x,))
    assert torch.autograd.gradcheck(SoftplusWrongBackward.apply, (x,), raise_exception=False) is False
    with pytest.raises(RuntimeError) as raised:   # torch's GradcheckError is a RuntimeError: old tests keep working
        harness.gradcheck(SoftplusWrongBackward.apply, (x,))
    assert isinstance(raised.value, TorchGradcheckError) and isinstance(raised.value, GradcheckError)
    text = str(raised.value)
    assert "gradcheck(SoftplusWrongBackward.apply) › float64 › cpu: FAILED (5 failing quantities)" in text
    assert "gradient" in text and "lost-digits" in text and "worst points:" in text
    assert harness.gradcheck(SoftplusWrongBackward.apply, (x,), raise_exception=False) is False


# -- what torch cannot see -----------------------------------------------------------------------------------
def test_extremes_convict_a_backward_that_torch_passes_at_its_point():
    assert torch.autograd.gradcheck(SigmoidOverflow.apply, (f64(*POINT),))
    x = f32(*POINT)
    assert harness.gradcheck(SigmoidOverflow.apply, (x,))   # right where it is asked
    with pytest.raises(GradcheckError) as raised:
        harness.gradcheck(SigmoidOverflow.apply, (x,), extremes=True, grid_size=1)
    (report,) = raised.value.reports
    assert report.case == "gradcheck(SigmoidOverflow.apply) extremes" and report.dtype == "float32"
    assert report.kinds == {"non-finite", "silent-zero"}
    assert min(f.point[0] for f in report.failures if f.kind == "non-finite") == pytest.approx(88.7228, abs=1e-4)
    assert "x >= 88.7228" in str(raised.value)   # the elementwise grid: the region in words


@pytest.mark.skipif("shape" not in {f.name for f in dataclasses.fields(harness.Case)},
                    reason="harness.Case has no structured extreme grid (shape=) yet")
def test_structured_extremes_convict_an_overflowing_logsumexp():
    naive_lse = lambda x: torch.log(torch.exp(x).sum(-1))
    assert torch.autograd.gradcheck(naive_lse, (f64(*POINT),))
    x = f32(*POINT, 0.5, 1.0, -2.0)
    assert harness.gradcheck(naive_lse, (x,))
    with pytest.raises(GradcheckError) as raised:
        harness.gradcheck(naive_lse, (x,), extremes=True)
    (report,) = raised.value.reports
    assert report.case.endswith("extremes") and "non-finite" in report.kinds
    assert any(f.claimed == float("inf") for f in report.failures if f.quantity == "value")


def test_float32_is_judged_where_torch_cannot():
    x = f32(0.5, -3.0, 2.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # torch: "not a double precision floating point"
        with pytest.raises(TorchGradcheckError):   # a correct tanh, failed by finite differences in float32
            torch.autograd.gradcheck(torch.tanh, (x,))
        assert torch.autograd.gradcheck(naive_softplus, (f32(-20.0, -17.0),))   # 0 for 2e-9: passed
    assert harness.gradcheck(torch.tanh, (x,))
    with pytest.raises(GradcheckError) as raised:
        harness.gradcheck(naive_softplus, (f32(-20.0, -17.0),))
    (report,) = raised.value.reports
    assert report.dtype == "float32" and report.kinds == {"silent-zero"}
    assert {f.quantity for f in report.failures} == {"value[0]", "value[1]"}


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=str)
def test_16_bit_inputs_are_judged_in_their_dtype(dtype):
    x = torch.tensor([0.5, -3.0, 2.0], dtype=dtype, requires_grad=True)
    assert harness.gradcheck(torch.sigmoid, (x,))
    with pytest.raises(GradcheckError, match=f"› {str(dtype)[6:]} ›"):
        harness.gradcheck(SoftplusWrongBackward.apply, (x,))


def lcse_of(x):
    """An op ``harness.exact`` lacks (``aten.logcumsumexp``), with autograd's backward."""
    return torch.logcumsumexp(x, 0)


def test_an_op_exact_lacks_falls_back_to_finite_differences_and_says_so():
    class WrongLcse(torch.autograd.Function):
        """d/dx_j = exp(x_j) * sum over k >= j of g_k exp(-y_k), a reversed cumulative
        sum; planted: the cumulative sum taken forward."""

        @staticmethod
        def forward(ctx, x):
            y = torch.logcumsumexp(x, 0)
            ctx.save_for_backward(x, y)
            return y

        @staticmethod
        def backward(ctx, g):
            x, y = ctx.saved_tensors
            return torch.exp(x) * torch.cumsum(g * torch.exp(-y), 0)

    x = f64(*POINT)
    with pytest.warns(GradcheckWarning, match=r"no truth for lcse_of: harness.exact has no exact torch.logcumsumexp"):
        assert harness.gradcheck(lcse_of, (x,))
    with pytest.raises(GradcheckError) as raised, pytest.warns(GradcheckWarning, match="WrongLcse.apply"):
        harness.gradcheck(WrongLcse.apply, (x,))
    text = str(raised.value)
    assert "disagrees with finite differences" in text and "[inconsistent]" in text
    assert "note: no truth for WrongLcse.apply: harness.exact has no exact torch.logcumsumexp" in text
    # With a reference the truth is back, and the same planted bug is named against it.
    reference = lambda x: [mpmath.log(mpmath.fsum(mpmath.exp(v) for v in x[:k + 1])) for k in range(len(x))]
    with pytest.raises(GradcheckError, match="lost-digits|wrong-sign") as raised:
        harness.gradcheck(WrongLcse.apply, (x,), reference=reference)
    assert "no truth" not in str(raised.value)


# -- second order --------------------------------------------------------------------------------------------
def test_gradgradcheck_agrees_on_a_correct_function_and_convicts_a_second_order_bug():
    x = f64(*POINT)
    go = (torch.linspace(-1, 1, 5, dtype=torch.float64),)
    assert torch.autograd.gradgradcheck(Softplus.apply, (x,))
    assert harness.gradgradcheck(Softplus.apply, (x,)) is True
    assert harness.gradgradcheck(Softplus.apply, (x,), go) is True
    assert torch.autograd.gradcheck(SoftplusWrongCurvature.apply, (x,))     # the gradient itself is right
    assert harness.gradcheck(SoftplusWrongCurvature.apply, (x,))
    with pytest.raises(TorchGradcheckError):
        torch.autograd.gradgradcheck(SoftplusWrongCurvature.apply, (x,))
    with pytest.raises(GradcheckError) as raised:
        harness.gradgradcheck(SoftplusWrongCurvature.apply, (x,))
    (report,) = raised.value.reports
    assert {f.quantity.split("[")[0] for f in report.failures} == {"hvp"}
    assert harness.gradgradcheck(SoftplusWrongCurvature.apply, (x,), go, raise_exception=False) is False


# -- torch's keywords ----------------------------------------------------------------------------------------
def test_a_keyword_without_meaning_here_is_said_once_to_be_ignored():
    x = f64(*POINT)
    with pytest.warns(GradcheckWarning) as said:
        assert harness.gradcheck(torch.tanh, (x,), eps=1e-6, not_a_torch_keyword=3)
    assert sorted(str(w.message) for w in said) == [
        "harness.gradcheck: eps= is ignored: the finite differences choose their own step per element (about a "
        "third of the significand bits of |x|, with an error estimate) in the inputs' dtype",
        "harness.gradcheck: not_a_torch_keyword= is ignored: not a keyword of torch.autograd.gradcheck"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")   # the second time, nothing
        assert harness.gradcheck(torch.tanh, (x,), eps=1e-3, not_a_torch_keyword=3)


class ScaledSine(torch.autograd.Function):
    """sin with a backward (1 + 2**-30) times cos: 2**22 ULPs off in float64,
    far below torch's tolerances."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.sin(x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * torch.cos(x) * (1 + 2.0 ** -30)


def test_atol_and_rtol_given_excuse_small_errors_and_never_a_nan():
    x = f64(*POINT)
    assert torch.autograd.gradcheck(ScaledSine.apply, (x,))
    assert harness.gradcheck(ScaledSine.apply, (x,), raise_exception=False) is False   # the budget alone
    assert harness.gradcheck(ScaledSine.apply, (x,), atol=1e-5, rtol=1e-3) is True
    assert harness.gradcheck(SigmoidOverflow.apply, (f64(800.0),), atol=1e9, raise_exception=False) is False


class Alternating(torch.autograd.Function):
    """cos as the backward, one ULP up on every other call: a backward that is
    accurate and not reproducible."""

    calls = 0

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.sin(x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        Alternating.calls += 1
        return g * torch.cos(x) * (1 + 2.0 ** -52 * (Alternating.calls % 2))


def test_nondet_tol_is_torch_s_tolerance_between_two_backward_calls():
    x = f64(*POINT)
    with pytest.raises(TorchGradcheckError, match="not reentrant"):
        torch.autograd.gradcheck(Alternating.apply, (x,))
    with pytest.raises(GradcheckError, match="non-deterministic"):
        harness.gradcheck(Alternating.apply, (x,))
    assert torch.autograd.gradcheck(Alternating.apply, (x,), nondet_tol=1e-12)
    assert harness.gradcheck(Alternating.apply, (x,), nondet_tol=1e-12)
    with pytest.raises(GradcheckError, match="not reentrant"):
        harness.gradcheck(Alternating.apply, (f64(1e6),), nondet_tol=1e-20)


class SineWithoutJvp(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.sin(x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * torch.cos(x)


class SineForwardOnly(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_forward(x)
        return torch.sin(x)

    @staticmethod
    def jvp(ctx, t):
        (x,) = ctx.saved_tensors
        return t * torch.cos(x)


def test_check_forward_ad_judges_the_jvp_and_check_backward_ad_false_needs_no_backward():
    x = f64(*POINT)
    assert harness.gradcheck(torch.sin, (x,), check_forward_ad=True)
    with pytest.raises(GradcheckError, match=r"jvp.*\[unsupported\]"):
        harness.gradcheck(SineWithoutJvp.apply, (x,), check_forward_ad=True)
    assert torch.autograd.gradcheck(SineForwardOnly.apply, (x,), check_forward_ad=True, check_backward_ad=False)
    assert harness.gradcheck(SineForwardOnly.apply, (x,), check_forward_ad=True, check_backward_ad=False)


# -- inputs and outputs of every kind ------------------------------------------------------------------------
def test_inputs_of_every_kind_have_a_defined_behaviour():
    x = f64(*POINT)
    # Mixed dtypes: each group in its own dtype, the other held.
    assert harness.gradcheck(lambda a, b, bias, unused: a * b + bias, (f32(1.0, 2.0), f64(3.0, -4.0), 0.5, None))
    with pytest.raises(ValueError, match="at least one input tensor to require gradient"):
        harness.gradcheck(torch.exp, (x.detach(),))
    with pytest.raises(TypeError, match="returned float, not a floating tensor"):
        harness.gradcheck(lambda x: 1.0, (x,))
    with pytest.warns(GradcheckWarning, match="a complex input is judged by torch.autograd.gradcheck"):
        assert harness.gradcheck(torch.exp, (torch.tensor([0.5 + 1j], dtype=torch.complex128, requires_grad=True),))
    with pytest.raises(GradcheckError, match=r"not real at the given inputs"):
        harness.gradcheck(torch.log, (f64(-1.0, 2.0),))
    with pytest.raises(GradcheckError, match=r"pass domain= where it is defined"):
        harness.gradcheck(torch.log, (f32(0.5, 2.0),), extremes=True, grid_size=1)
    assert harness.gradcheck(torch.log, (f32(0.5, 2.0),), extremes=True, grid_size=1,
                             domain=harness.domains.positive())


def test_the_readme_section_runs():
    match = re.search(r"^## Already using gradcheck\?\n(.*?)(?=^## )", README, flags=re.M | re.S)
    assert match, "README.md has no section 'Already using gradcheck?'"
    (code,) = re.findall(r"^```python\n(.*?)^```", match.group(1), flags=re.M | re.S)
    assert "from harness import gradcheck" in code
    exec(compile(code, "README.md (Already using gradcheck?)", "exec"), {"__name__": "readme_gradcheck"})


# -- a whole suite through the harness -----------------------------------------------------------------------
def test_a_suite_that_patches_torch_still_reaches_torch_for_what_the_harness_hands_over(monkeypatch):
    monkeypatch.setattr(torch.autograd, "gradcheck", harness.gradcheck)
    monkeypatch.setattr(torch.autograd, "gradgradcheck", harness.gradgradcheck)
    z = torch.tensor([0.5 + 1j], dtype=torch.complex128, requires_grad=True)
    with pytest.warns(GradcheckWarning, match="a complex input is judged by torch.autograd.gradcheck"):
        assert torch.autograd.gradcheck(torch.exp, (z,))     # no RecursionError
    with pytest.warns(GradcheckWarning, match="judged by torch.autograd.gradgradcheck"):
        assert torch.autograd.gradgradcheck(torch.exp, (z,))
    s = torch.tensor([[0.0, 1.5], [2.0, 0.0]], dtype=torch.float64).to_sparse().requires_grad_()
    with pytest.warns(GradcheckWarning, match="a torch.sparse_coo input is judged by torch.autograd.gradcheck"):
        assert torch.autograd.gradcheck(lambda t: torch.sparse.sum(t * 2.0), (s,), masked=True)


def test_strict_truth_raises_where_a_call_would_pass_on_differences_alone():
    x = f64(*POINT)
    with pytest.raises(GradcheckError, match=r"no truth for lcse_of: harness.exact has no exact "
                                             r"torch.logcumsumexp .*strict_truth=True"):
        harness.gradcheck(lcse_of, (x,), strict_truth=True)
    z = torch.tensor([0.5 + 1j], dtype=torch.complex128, requires_grad=True)
    with pytest.raises(GradcheckError, match="a complex input has no truth here .* strict_truth=True"):
        harness.gradcheck(torch.exp, (z,), strict_truth=True)
    assert harness.gradcheck(torch.tanh, (x,), strict_truth=True)   # a truth: nothing changes


def test_each_call_site_without_a_truth_is_said_at_its_own_line():
    x = f64(*POINT)
    with pytest.warns(GradcheckWarning) as said:
        harness.gradcheck(lcse_of, (x,))
        harness.gradcheck(lcse_of, (x,))   # another line: said again
    lines = [w.lineno for w in said if "no truth for lcse_of" in str(w.message)]
    assert len(lines) == 2 and lines[0] != lines[1] and all(w.filename == __file__ for w in said)


def test_a_partial_is_named_after_its_function_its_regions_merge_and_a_failure_ends_at_the_call():
    import functools
    import traceback

    def softplus_naive(x, k):
        return torch.log(1 + torch.exp(x * k))

    with pytest.raises(GradcheckError) as raised:
        harness.gradcheck(functools.partial(softplus_naive, k=1.0), (f32(100.0, 0.5),))
    assert "gradcheck(softplus_naive)" in str(raised.value) and "partial" not in str(raised.value)
    # The point's value and gradient fail at the same place: one line says both.
    text = str(raised.value)
    regions = text.split("failing regions:\n")[1].split("worst points:")[0].splitlines()
    assert len(regions) == 1 and "value inf" in regions[0] and "gradient NaN" in regions[0], text
    frames = traceback.extract_tb(raised.value.__traceback__)
    assert frames[0].filename == __file__ and len(frames) == 2   # the call, then harness.gradcheck's raise


def test_the_calls_are_counted_by_how_they_were_judged():
    from harness.gradcheck import tally
    tally.take()
    x = f64(*POINT)
    harness.gradcheck(torch.tanh, (x,))
    with pytest.warns(GradcheckWarning):
        harness.gradcheck(lcse_of, (x,))
        harness.gradcheck(torch.exp, (torch.tensor([0.5 + 1j], dtype=torch.complex128, requires_grad=True),))
    calls = tally.take()
    assert tally.summary(calls) == (
        "3 gradcheck calls: 1 against the truth, 1 by differences only (1 harness.exact has no exact "
        "torch.logcumsumexp), 1 by torch.autograd.gradcheck (1 a complex input)")


def checked_softplus(x):
    """As libraries write them: the input's type, shape and dtype checked first."""
    if not isinstance(x, torch.Tensor) or not torch.is_tensor(x):
        raise TypeError(f"Input type is not a torch.Tensor. Got {type(x)}")
    if x.dim() != 1 or not x.is_floating_point() or x.shape[0] != len(x):
        raise ValueError(f"expected a vector of floats, got {x.shape} {x.dtype}")
    return torch.nn.functional.softplus(x)


def test_a_function_that_checks_its_input_is_a_tensor_is_judged_against_the_truth():
    assert harness.gradcheck(checked_softplus, (f64(*POINT),), strict_truth=True)
    x = harness.exact(checked_softplus)([mpmath.mpf(0.5), mpmath.mpf(-3)])
    assert abs(x[0] - mpmath.log1p(mpmath.exp(0.5))) < 1e-15


def test_a_gradient_that_cancels_to_zero_is_judged_against_the_terms_that_cancel():
    """Normalising constant vectors (kornia's rgb255_to_normals): entries of the
    VJP are sums of terms of size 1 that cancel to 0 or to 2e-4, and autograd's
    rounding of those terms (4.4e-19) is all a backward-stable implementation
    can reach; a planted error far above it is still convicted."""
    img = torch.full((2, 3, 4, 4), 0.5, dtype=torch.float64, requires_grad=True)
    normals = lambda i: torch.nn.functional.normalize(i / 255 * 2 - 1, dim=1)
    assert harness.gradcheck(normals, (img,))
    with pytest.raises(GradcheckError, match="lost-digits"):
        harness.gradcheck(off_normalize, (img.detach().clone().requires_grad_(),))


def normalised_peak(x):
    """kornia's Hausdorff loss normalises its erosion by its extremes, read by
    max pooling: at the maximum the normalised value is identically 1, so the
    function is identically 3 and every gradient entry is a true 0 that
    autograd forms as a difference of quotient-rule terms of size 1."""
    e = torch.exp(x) * 0.7
    hi = torch.nn.functional.adaptive_max_pool1d(e[None, None], 1)[0, 0]
    lo = -torch.nn.functional.adaptive_max_pool1d(-e[None, None], 1)[0, 0]
    n = (e - lo) / (hi - lo)
    return (n * n).max() * 3 + n.min()


def backward_off(forward, offset, name):
    """``forward`` as a custom Function whose backward is autograd's own plus
    ``offset(g)``: a planted error of a known size."""
    class Off(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return forward(x)

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            with torch.enable_grad():
                x = x.detach().requires_grad_()
                (grad,) = torch.autograd.grad(forward(x), x, g)
            return grad + offset(g)
    Off.__name__ = Off.__qualname__ = name
    return Off.apply


# The same forward, with a backward 1e-9 off at its true zeros.
off_peak = backward_off(normalised_peak, lambda g: 1e-9, "OffPeak")


def test_a_true_zero_inside_one_jacobian_entry_is_judged_against_the_paths_that_cancel():
    x = f64(0.9700530018065531, 0.707819864399788, 0.45938294312745087, 0.9207476841219603, 0.6450241201227648)
    assert torch.autograd.grad(normalised_peak(x), x)[0][2] == -2.4606267599883207e-16   # autograd's noise
    assert harness.gradcheck(normalised_peak, (x,))
    with pytest.raises(GradcheckError, match="lost-digits"):
        harness.gradcheck(off_peak, (x,))


def scaled_200_times(x):
    """A pipeline of 200 rounded steps, each as well conditioned as the whole."""
    for _ in range(200):
        x = x * 1.0000001
    return x


def test_a_long_stable_pipeline_has_one_ulp_per_rounded_step():
    """x * c**200 taken as 200 products loses 78 ULPs at this point: each
    product rounds, none amplifies what came before, and the table's 8 ULPs
    of one function would convict it. A cancelling step at the end of the
    same pipeline is convicted all the same."""
    x0 = 1.9761881239205912
    with mpmath.workprec(200):
        truth = mpmath.mpf(x0) * mpmath.mpf(1.0000001) ** 200
        computed = float(scaled_200_times(torch.tensor(x0, dtype=torch.float64)))
        assert abs(computed - truth) / math.ulp(computed) > 64
    assert harness.gradcheck(scaled_200_times, (f64(x0),))
    charbonnier = lambda d: torch.sqrt(scaled_200_times(d) ** 2 + 1) - 1   # Charbonnier loss, cancelling
    with pytest.raises(GradcheckError, match="lost-digits"):
        harness.gradcheck(charbonnier, (f64(-5.18e-3),))


# The same forward, with a backward off by 1e-9 of the terms' size.
off_normalize = backward_off(lambda img: torch.nn.functional.normalize(img / 255 * 2 - 1, dim=1),
                             lambda g: 1e-9 * g.abs().sum(dim=1, keepdim=True) / 255, "OffNormalize")


# -- finite differences alone: noise is not a verdict, a wrong backward is ----------------------------------------
class ThroughNumpy(torch.autograd.Function):
    """``fn``'s forward through numpy, which ``harness.exact`` cannot follow, so
    the call is judged by finite differences of this forward alone; the
    backward is autograd's of ``grad_fn`` (``fn`` itself, or a planted error)."""

    @staticmethod
    def forward(ctx, fn, grad_fn, *xs):
        ctx.grad_fn = grad_fn
        ctx.save_for_backward(*xs)
        return fn(*[torch.from_numpy(x.detach().cpu().numpy().copy()) for x in xs])

    @staticmethod
    def backward(ctx, g):
        xs = [x.detach().requires_grad_() for x in ctx.saved_tensors]
        with torch.enable_grad():
            grads = torch.autograd.grad(ctx.grad_fn(*xs), xs, g)
        return (None, None, *grads)


def through_numpy(fn, grad_fn=None):
    def call(*xs):
        return ThroughNumpy.apply(fn, grad_fn or fn, *xs)
    call.__name__ = fn.__name__
    return call


def ssim_like(x, y, covariance=lambda mx, my: mx * my):
    """SSIM's loss over 3x3x3 windows of (1, 1, 4, 5, 5) volumes: means,
    variances and the covariance, ``(1 - ssim) / 2`` averaged. At ``x = y``
    it is 0, a minimum, and its gradient 0 is formed by long cancellations:
    the forward there is rounding (about 5e-17) and nothing else."""
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    mean = lambda t: torch.nn.functional.avg_pool3d(t, 3, stride=1)
    mx, my = mean(x), mean(y)
    sx, sy, sxy = mean(x * x) - mx * mx, mean(y * y) - my * my, mean(x * y) - covariance(mx, my)
    s = (2 * mx * my + c1) * (2 * sxy + c2) / ((mx * mx + my * my + c1) * (sx + sy + c2))
    return ((1 - s) / 2).mean()


def volume(seed):
    return torch.rand(1, 1, 4, 5, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(seed),
                      requires_grad=True)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_noise_around_a_zero_gradient_is_not_inconsistent_by_differences_alone(seed):
    """kornia's ssim3d_loss(img, img): autograd's -2e-12 and the differences'
    2e-11 were both rounding around the true 0, and the call was convicted."""
    x = volume(seed)
    with pytest.warns(GradcheckWarning, match="no truth for ssim_like"):
        assert harness.gradcheck(through_numpy(ssim_like), (x, x))


PLANTED = [
    ("twice", lambda x, y: 2 * ssim_like(x, y)),
    ("sign flipped", lambda x, y: -ssim_like(x, y)),
    ("covariance term missing", lambda x, y: ssim_like(x, y, covariance=lambda mx, my: mx.detach() * my)),
]


@pytest.mark.parametrize("grad_fn", [p[1] for p in PLANTED], ids=[p[0] for p in PLANTED])
def test_a_wrong_backward_is_convicted_by_differences_alone(grad_fn):
    x, y = volume(0), volume(1)
    with pytest.warns(GradcheckWarning, match="no truth for ssim_like"):
        assert harness.gradcheck(through_numpy(ssim_like), (x, y))
        with pytest.raises(GradcheckError, match="inconsistent"):
            harness.gradcheck(through_numpy(ssim_like, grad_fn), (x, y))


def normalised_sum(x):
    return (x / x.norm()).sum()


def normalised(x):
    return x / x.norm()


@pytest.mark.parametrize("c", [0.3, 1.0, 1e-3])
def test_a_zero_gradient_at_a_constant_vector_passes_with_a_truth_and_without(c):
    """``sum(x / |x|)`` is largest where every entry is the same: its
    gradient there is 0, of terms of size 1/|x| that cancel."""
    x = torch.full((3,), c, dtype=torch.float64, requires_grad=True)
    assert harness.gradcheck(normalised_sum, (x,), strict_truth=True)
    assert harness.gradcheck(normalised, (x,), strict_truth=True)
    with pytest.warns(GradcheckWarning, match="no truth"):
        assert harness.gradcheck(through_numpy(normalised_sum), (x,))
        assert harness.gradcheck(through_numpy(normalised), (x,))


def log_one_plus(x):
    return torch.log(1 + x)


def test_differences_that_cannot_resolve_one_plus_x_flag_nothing_on_the_extreme_grid():
    """Below half an ULP of 1, ``log(1 + x)`` is 0 on the whole stencil: the
    steps are below what the forward resolves, not evidence of a slope 0
    (1,226 entries were convicted). A wrong backward is still convicted where
    the differences see the forward move."""
    x = f64(0.3, 2.0, 5.0)
    with pytest.warns(GradcheckWarning, match="no truth for log_one_plus"):
        assert harness.gradcheck(through_numpy(log_one_plus), (x,), extremes=True, domain=harness.domains.positive())
        with pytest.raises(GradcheckError, match="inconsistent") as raised:
            harness.gradcheck(through_numpy(log_one_plus, lambda t: torch.log(1 + 2 * t)), (x,), extremes=True,
                              domain=harness.domains.positive())
    assert "extremes" in str(raised.value)


# -- extremes with held inputs tied to a judged input's shape ------------------------------------------------------
def focal_like(pred, target):
    """Cross-entropy with kornia's focal_loss's check: (N, C, *) logits, (N, *) classes."""
    if not (pred.shape[0] == target.shape[0] and target.shape[1:] == pred.shape[2:]):
        raise ValueError(f"Expected target size {(pred.shape[0],) + pred.shape[2:]}, got {target.shape}")
    return torch.nn.functional.cross_entropy(pred, target)


class DoubledWhere(torch.autograd.Function):
    """``loss``'s backward, doubled where ``where(pred)`` holds."""

    @staticmethod
    def forward(ctx, loss, where, pred, target):
        ctx.loss, ctx.where = loss, where
        ctx.save_for_backward(pred, target)
        return loss(pred, target)

    @staticmethod
    def backward(ctx, g):
        pred, target = ctx.saved_tensors
        with torch.enable_grad():
            p = pred.detach().requires_grad_()
            (grad,) = torch.autograd.grad(ctx.loss(p, target), p, g)
        return None, None, grad * (2 if ctx.where(pred) else 1), None


#: Logits in [-1, 1]: cross-entropy's own p - 1 cancels beyond the budget for a dominant logit.
LOGITS = (harness.domains.interval(-1, 1), None)


@pytest.mark.parametrize("shape", [(2, 3, 3, 1), (2, 3, 3, 2)], ids=str)
def test_a_target_tied_to_the_logits_shape_is_cut_with_their_rows_on_the_extreme_grid(shape):
    """kornia's focal_loss on (2, 3, 3, 2) logits: the grid's rows of 1 entry
    met the (2, 3, 2) target and the forward raised ``Expected target size
    (2, 3, 1), got (2, 3, 2)``, which broke the whole call."""
    generator = torch.Generator().manual_seed(0)
    logits = torch.rand(*shape, dtype=torch.float64, generator=generator, requires_grad=True)
    target = torch.randint(3, (shape[0], *shape[2:]), generator=generator)
    assert harness.gradcheck(focal_like, (logits, target), extremes=True, domain=LOGITS)


def test_the_rows_a_tied_target_is_cut_for_are_judged():
    logits = torch.rand(1, 3, 1, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0),
                        requires_grad=True)
    target = torch.tensor([[[2, 0]]])
    off = lambda pred, target: DoubledWhere.apply(focal_like, lambda p: p.shape[-1] == 1, pred, target)
    with pytest.raises(GradcheckError) as raised:
        harness.gradcheck(off, (logits, target), extremes=True, domain=LOGITS)
    text = str(raised.value)
    assert "failed (1 of its certifications)" in text and "extremes" in text and "shape (1, 3, 1, 1)" in text
    assert "note: extremes: target (1, 1, 2) held, cut along the last dimension with pred's rows of 1 and 2" in text


def test_rows_the_forward_refuses_are_said_and_the_other_patterns_judged():
    """Cross-entropy over 3 classes in the last dimension: rows of 1 or 2
    classes cannot hold the target's class 2, and the target cannot be cut."""
    logits = torch.rand(4, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0), requires_grad=True)
    target = torch.tensor([0, 2, 1, 2])
    said = (r"input not varied to \(4, 1\) and \(4, 2\): the forward refuses them beside target \(4,\) as given "
            r"\(IndexError: Target 2 is out of bounds.\)")
    with pytest.warns(GradcheckWarning, match=said):
        assert harness.gradcheck(torch.nn.functional.cross_entropy, (logits, target), extremes=True, domain=LOGITS)
    # Planted: off at the domain's edge, which the grid reaches and the given point does not.
    off = lambda input, target: DoubledWhere.apply(torch.nn.functional.cross_entropy,
                                                   lambda p: bool(p.abs().max() >= 0.999), input, target)
    with pytest.warns(GradcheckWarning, match=said), pytest.raises(GradcheckError) as raised:
        harness.gradcheck(off, (logits, target), extremes=True, domain=LOGITS)
    text = str(raised.value)
    assert "failed (1 of its certifications)" in text and "extremes" in text and "input not varied" in text
