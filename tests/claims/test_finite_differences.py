"""Finite differences are accurate in every dtype, cheap, and stay in the domain."""

import numpy as np
import pytest
import torch

from harness import domains
from harness.claims.finite_differences import vjp_estimate
from harness.inputs.floats import fmt
from harness.inputs.structure import banded, dense, elementwise


def run(fn, dtype):
    return lambda xs: fn(*[torch.tensor(x, dtype=dtype) for x in xs]).double().numpy()


@pytest.mark.parametrize("dtype,rel", [(torch.float64, 1e-9), (torch.float32, 1e-3), (torch.float16, 0.05),
                                       (torch.bfloat16, 0.3)], ids=str)
def test_accuracy_and_error_estimate_per_dtype(dtype, rel):
    x = torch.tensor([-3.0, -0.5, 0.25, 1.0, 2.0, 5.0], dtype=dtype).double().numpy()
    est = vjp_estimate(run(torch.exp, dtype), [x], np.ones_like(x), elementwise(), dtype, fmt(dtype), [domains.real()])
    assert np.allclose(est.value[0], np.exp(x), rtol=rel)
    assert (np.abs(est.value[0] - np.exp(x)) <= 3 * est.error[0] + 1e-300).all()   # the error figure covers the error
    assert est.calls == 5                                                          # whole grid: constant calls


def test_float16_step_is_not_below_epsilon():
    x = np.array([1.0, 100.0])
    est = vjp_estimate(run(lambda t: t * t, torch.float16), [x], np.ones(2), elementwise(), torch.float16,
                       fmt(torch.float16), [domains.real()])
    assert np.allclose(est.value[0], 2 * x, rtol=0.02)


def test_one_sided_at_the_smallest_subnormal():
    seen = []

    def log(t):
        seen.append(t.min().item())
        return torch.log(t)

    x = np.array([1.401298464324817e-45, 1e-3])
    est = vjp_estimate(run(log, torch.float32), [x], np.ones(2), elementwise(), torch.float32,
                       fmt(torch.float32), [domains.positive()])
    assert min(seen) > 0                              # never probed at x <= 0
    assert est.value[0][1] == pytest.approx(1e3, rel=1e-3)


def test_banded_costs_order_bandwidth_and_matches_dense():
    def window(a):
        p = torch.nn.functional.pad(a * a, (0, 0, 0, 0, 2, 2))
        s = sum(p[:, i:i + a.shape[1]] for i in range(5))
        return a / (1 + s)

    a = np.random.default_rng(0).standard_normal((1, 12, 1, 2))
    g = np.ones_like(a)
    t = torch.tensor(a, requires_grad=True)
    window(t).backward(torch.tensor(g))
    band = vjp_estimate(run(window, torch.float64), [a], g, banded(1, 2), torch.float64, fmt(torch.float64), [domains.real()])
    full = vjp_estimate(run(window, torch.float64), [a], g, dense(), torch.float64, fmt(torch.float64), [domains.real()])
    assert np.allclose(band.value[0], t.grad.numpy(), rtol=1e-7)
    assert np.allclose(full.value[0], t.grad.numpy(), rtol=1e-7)
    assert band.calls == 1 + 4 * 5 and full.calls == 1 + 4 * a.size
