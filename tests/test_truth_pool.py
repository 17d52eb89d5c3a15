"""Truths computed in worker processes equal the serial ones, and a failing
reference stops the batch with the point named."""

import mpmath
import pytest

from harness.domains import real
from harness.truth import ReferenceFailure
from harness.truth_pool import MIN_PARALLEL, PointFailure, Task, solve_all


def tasks(reference, xs):
    # A lambda: workers are forked, so nothing is pickled but the results.
    return [Task(lambda v: [reference(v[0])], [x], [1.0], [real()]) for x in xs]


def test_parallel_truths_equal_serial_ones():
    xs = [k / 7 - 3 for k in range(MIN_PARALLEL + 5)]
    serial = solve_all(tasks(lambda x: mpmath.log1p(mpmath.exp(x)), xs), workers=1)
    parallel = solve_all(tasks(lambda x: mpmath.log1p(mpmath.exp(x)), xs), workers=2)
    assert [(t.value, t.grad, t.grad_kappa) for t in serial] == [(t.value, t.grad, t.grad_kappa) for t in parallel]


@pytest.mark.parametrize("workers", [1, 2])
def test_a_failing_reference_names_its_point(workers):
    def reference(x):
        if x == 5:
            raise ZeroDivisionError("at five")
        return x
    xs = [float(k) for k in range(MIN_PARALLEL + 5)]
    with pytest.raises(PointFailure, match="at five") as err:
        solve_all(tasks(reference, xs), workers=workers)
    assert err.value.index == 5 and isinstance(err.value, ReferenceFailure)
