"""A broken case raises CaseError naming the case, the point and the cause."""

import math

import mpmath
import numpy as np
import pytest
import torch

import harness
import harness.truth.mpmath_engine
from harness.errors import format_point

HUGE = 2.0 ** 100   # on every float32 grid (a power of two), and past 1e30


def negate(x):
    return -x


def broken(case: harness.Case, point, *causes: str) -> harness.CaseError:
    """Certify ``case``; it must raise a CaseError naming it, ``point`` (None:
    the one the error carries, which must then be named) and every cause."""
    with pytest.raises(harness.CaseError) as info:
        harness.certify(case, torch.float32, grid_size=1)
    err = info.value
    message = str(err)
    assert err.case == case.name and f"case {case.name!r}" in message
    assert err.point is not None
    named = format_point(err.point if point is None else point)
    assert f" at {named}:" in message, message
    for cause in causes:
        assert cause in message, message
    return err


# -- forward ---------------------------------------------------------------------------------
def test_forward_raising_at_one_grid_point_names_that_point():
    def forward(x):
        if (x == HUGE).any():
            raise ValueError("cannot take this one")
        return -x

    broken(harness.Case("raises once", forward), (HUGE,), "forward raised ValueError: cannot take this one")


def test_forward_raising_above_a_threshold_names_a_point_above_it():
    def forward(x):
        if (x > 1e30).any():
            raise OverflowError("too large")
        return -x

    err = broken(harness.Case("raises above 1e30", forward), None, "forward raised OverflowError: too large")
    (x,) = err.point
    assert x > 1e30
    with pytest.raises(OverflowError):
        forward(torch.tensor([x], dtype=torch.float32))


def misshapen(case: harness.Case, *causes: str) -> harness.CaseError:
    """Certify ``case``; it must raise a CaseError naming it and every cause,
    and no point: what a call returns has the wrong form whatever the point."""
    with pytest.raises(harness.CaseError) as info:
        harness.certify(case, torch.float32, grid_size=1)
    err, message = info.value, str(info.value)
    assert err.case == case.name and err.point is None and message.startswith(f"case {case.name!r}: "), message
    for cause in causes:
        assert cause in message, message
    return err


def test_a_forward_returning_one_value_too_few_names_the_real_shapes():
    size = harness.grids.extreme(torch.float32, size=1).size
    misshapen(harness.Case("one short", lambda x: -x[1:]),
              f"forward returned shape ({size - 1},), expected ({size},)", f"the whole grid, {size} points")


@pytest.mark.parametrize("forward,cause", [
    (lambda x: (-x).sum(), "forward returned shape ()"),
    (lambda x: (-x).double(), "forward returned dtype torch.float64, expected torch.float32"),
    (lambda x: (-x).to("meta"), "forward returned a tensor on meta, expected cpu"),
    (lambda x: (-x).tolist(), "forward returned list, not a tensor"),
], ids=["shape", "dtype", "device", "not-a-tensor"])
def test_forward_returning_the_wrong_thing(forward, cause):
    misshapen(harness.Case("wrong output", forward), cause)


def test_forward_raising_at_one_structured_point_names_that_point():
    points = [np.array([1.0, 2.0]), np.array([3.0, 7.0]), np.array([5.0, 6.0])]

    def forward(a):
        if (a == 7).any():
            raise ZeroDivisionError("seven")
        return a.sum()

    broken(harness.Case("structured raises", forward, grid=lambda dtype: points),
           points[1], "forward raised ZeroDivisionError: seven")


# -- backward --------------------------------------------------------------------------------
@pytest.mark.parametrize("backward,cause", [
    (lambda x, g: None, "backward (gradient 0) returned None"),
    (lambda x, g: (-g).sum(), "backward (gradient 0) returned shape ()"),
    (lambda x, g: (-g, -g), "backward returned 2 gradients for 1 inputs"),
], ids=["none", "shape", "count"])
def test_custom_backward_returning_the_wrong_thing(backward, cause):
    misshapen(harness.Case("wrong backward", negate, backward=backward), cause)


def test_custom_backward_raising_names_the_point():
    def backward(x, g):
        if (x == HUGE).any():
            raise RuntimeError("no gradient here")
        return -g

    broken(harness.Case("backward raises", negate, backward=backward), (HUGE,),
           "backward raised RuntimeError: no gradient here")


class SquareInPlace(torch.autograd.Function):
    """x**2 whose backward scales the grad_output it is handed."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g.mul_(2 * x)


@pytest.mark.parametrize("case", [
    harness.Case("in place", lambda x: x * x, lambda x: x * x, backward=lambda x, g: g.mul_(2 * x)),
    harness.Case("in place Function", SquareInPlace.apply, lambda x: x * x),
], ids=["backward=", "autograd.Function"])
def test_a_backward_writing_into_grad_output_is_a_broken_case(case):
    with pytest.raises(harness.CaseError, match="changed grad_output in place") as info:
        harness.certify(case, torch.float32, grid_size=1)
    assert info.value.case == case.name


# -- reference -------------------------------------------------------------------------------
def test_reference_raising_names_the_point():
    def reference(x):
        if x == HUGE:
            raise ZeroDivisionError("no truth here")
        return -x

    broken(harness.Case("reference raises", negate, reference), (HUGE,),
           "reference raised ZeroDivisionError: no truth here")


def test_reference_returning_a_complex_value():
    err = broken(harness.Case("complex reference", torch.sqrt, mpmath.sqrt), None,
                 "reference returned a complex value")
    (x,) = err.point
    assert x < 0   # sqrt is real everywhere else


def test_reference_returning_no_number():
    broken(harness.Case("string reference", negate, lambda x: "minus x"), None, "reference returned str")


def test_reference_that_never_converges(monkeypatch):
    # A lower ceiling than the engine's 32768 bits: the same path, in a fraction of the time.
    monkeypatch.setattr(harness.truth.mpmath_engine, "MAX_BITS", 2048)
    broken(harness.Case("random reference", negate, lambda x: mpmath.rand()), None,
           "never converged (unresolved at 2048 bits)")


def test_a_nan_reference_inside_the_domain_never_certifies():
    broken(harness.Case("nan reference", lambda x: 3 * x + 7, lambda x: mpmath.nan,
                        domain=harness.domains.interval(1, 2)), None, "the reference is NaN (value)")
    # NaN above 10 would hide a naive softplus's NaN gradients above 88.7.
    err = broken(harness.Case("nan above 10", lambda x: torch.log(1 + torch.exp(x)),
                              lambda x: mpmath.log1p(mpmath.exp(x)) if x < 10 else mpmath.nan), None,
                 "the reference is NaN")
    (x,) = err.point
    assert x >= 10


# -- grid ------------------------------------------------------------------------------------
def test_structured_grid_with_nan_in_a_positive_domain():
    points = [np.array([1.0, 2.0]), np.array([3.0, math.nan])]
    err = broken(harness.Case("nan grid", lambda a: a.sum(), lambda a: mpmath.fsum(a),
                              grid=lambda dtype: points, domain=harness.domains.positive()),
                 (points[1],), "grid holds NaN", str(harness.domains.positive()))
    assert "nan" in str(err)


def test_structured_grid_outside_its_domain():
    points = [np.array([1.0, 2.0]), np.array([3.0, -4.0])]
    broken(harness.Case("negative grid", lambda a: a.sum(), lambda a: mpmath.fsum(a),
                        grid=lambda dtype: points, domain=harness.domains.positive()),
           (points[1],), "grid holds -4")


def test_a_warning_raised_from_a_harness_module_run_as_main_is_issued(tmp_path):
    # `python -m harness.tables.accuracy_table` is __main__: its loader refuses the source
    # line warnings look up, which once ended a cold sweep with an ImportError.
    import os
    import subprocess
    import sys
    from pathlib import Path

    script = ("import warnings\n"
              "from harness.errors import warn_user\n"
              "warnings.simplefilter('always')\n"
              "import harness.tables.accuracy_table as t\n"
              "ns = {'__name__': '__main__', '__loader__': t.__loader__, '__spec__': t.__spec__, "
              "'warn_user': warn_user, 'UserWarning': UserWarning}\n"
              "exec(compile('warn_user(UserWarning(\"long\"))', t.__file__, 'exec'), ns)\n"
              "print('issued')\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": str(Path.cwd())})
    assert done.returncode == 0, done.stderr
    assert "issued" in done.stdout and "long" in done.stderr
