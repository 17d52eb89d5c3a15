"""Finite differences are accurate in every dtype, cheap, and stay in the domain."""

import numpy as np
import pytest
import torch

from harness import domains
from harness.claims.finite_differences import BESIDE, vjp_estimate
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
    assert est.calls == 5 + BESIDE                        # whole grid: constant calls (and the neighbouring floats)


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
    assert band.calls == 1 + 4 * 5 + BESIDE and full.calls == 1 + 4 * a.size + BESIDE


def ssim_like(x, y):
    """SSIM's loss over 3x3x3 windows: 0 at ``x = y``, its gradient there 0,
    formed by cancellations that leave the forward's rounding (5e-17) alone."""
    mean = lambda t: torch.nn.functional.avg_pool3d(t, 3, stride=1)
    mx, my = mean(x), mean(y)
    sx, sy, sxy = mean(x * x) - mx * mx, mean(y * y) - my * my, mean(x * y) - mx * my
    s = (2 * mx * my + 1e-4) * (2 * sxy + 9e-4) / ((mx * mx + my * my + 1e-4) * (sx + sy + 9e-4))
    return ((1 - s) / 2).mean()


@pytest.mark.parametrize("seed", range(4))
def test_the_error_covers_the_rounding_a_cancelling_forward_leaves(seed):
    """At the minimum the quotients are rounding over the step (1e-9 and
    below): each estimate lies within its error of 0, while a few ULPs of the
    result (itself 1e-17) would call them exact. Off the minimum the same
    differences are informative and meet autograd."""
    x = np.random.default_rng(seed).random((1, 1, 4, 5, 5))
    for y in (x, np.random.default_rng(seed + 100).random(x.shape)):
        a, b = torch.tensor(x, requires_grad=True), torch.tensor(y, requires_grad=True)
        ssim_like(a, b).backward()
        est = vjp_estimate(run(ssim_like, torch.float64), [x, y], np.array(1.0), dense(), torch.float64,
                           fmt(torch.float64), [domains.real()] * 2)
        for value, error, grad in zip(est.value, est.error, (a.grad.numpy(), b.grad.numpy())):
            if y is x:
                assert (np.abs(value) <= error).all()
            else:
                assert (error <= 1e-3 * np.abs(grad)).all() and (np.abs(value - grad) <= 3 * error).all()


def test_a_stencil_the_forward_does_not_resolve_gives_no_estimate():
    """``log(1 + x)`` is flat where ``1 + x`` cannot move: below half an ULP of
    1 (1e-300) and where the step is (4e-17 at 1e-11). There the differences
    know no slope; at 1e-5 and 0.5 they do."""
    x = np.array([1e-300, 1e-11, 1e-5, 0.5])
    est = vjp_estimate(run(lambda t: torch.log(1 + t), torch.float64), [x], np.ones(4), elementwise(),
                       torch.float64, fmt(torch.float64), [domains.positive()])
    assert np.isinf(est.error[0][:2]).all()
    assert np.allclose(est.value[0][2:], 1 / (1 + x[2:]), rtol=1e-6)
    assert (est.error[0][2:] < 1e-6).all()
