"""Sparsity penalties on hidden activations: KL to a target rate, Student-t, mean activation.

Source: the thread "Activation Sparsity For Non-Sigmoid Units" (Theano
notation there, ``T.log``, ``T.mean``), which lists for sigmoid units

    p * log(p / h) + (1 - p) * log((1 - p) / (1 - h))     the cross entropy with a target rate p
    log(1 + h**2)                                          the Student-t penalty

and for units unbounded above (relu, elu) the squared distance of each unit's
mean activation over the mini-batch from 0,

    sum((0 - mean(h, axis=0))**2)     h shaped (batch, units)

The references are ``references.sparsity``.

Verdicts measured here (details and per-dtype tables in ``docs/families/sparsity.md``):

* ``kl.naive`` (from ``h = sigmoid(z)``): ``h`` rounds to 0 below
  ``z = -88.7`` (float32) and to 1 above 16.6: ``log(p / 0) = inf`` and
  ``log((1-p) / 0) = inf`` where the penalty is finite, NaN gradients; and
  between, ``1 - h`` loses the digits of the penalty's slope.
* ``kl.logits`` (from ``z``: ``log h = logsigmoid(z)``, ``log(1-h) = logsigmoid(-z)``):
  no inf and no NaN, and certified on the extreme grid, whose nearest point
  to the penalty's minimum ``z = logit(p)`` is 0.2 away. Near the minimum the
  sum of terms of size 0.2 cancels to a penalty of ``p(1-p)(z - logit(p))**2 / 2``,
  and the error grows like the inverse square of the distance, faster than
  the condition number allows: on ``near_minimum`` it is convicted, with
  negative penalties (wrong sign) and exact zeros.
* ``kl.stable``: ``p*g(u) + (1-p)*g(v)`` with ``g(t) = t - log1p(t) >= 0``,
  ``u = h/p - 1``, ``v = (1-h)/(1-p) - 1`` (the first-order terms ``p*u + (1-p)*v``
  are 0 and are left out), and ``log(h/p)`` taken from the logit away from the
  minimum. Both terms are non-negative, so nothing cancels but ``g`` itself,
  whose error is that of ``u``.
* ``student_t.naive``: ``1 + h**2`` rounds to 1 for ``|h| < 2**-12`` (float32):
  the penalty is exactly 0 where it is ``h**2``; ``h**2`` overflows for
  ``|h| > 1.8e19`` (float32; 256 in float16) where the penalty is ``2 log|h|``.
* ``student_t.log1p``: the small side is right; the overflow stays: inf and a
  zero gradient (``2h / inf``) where the truth is ``2 log|h|`` and ``2 / h``.
  The issue expected ``log1p`` to be the fix; measured, it is half of it.
* ``student_t.stable``: ``log1p(h**2)`` for ``|h| <= 1``, ``2 log|h| + log1p(h**-2)`` above.
* ``mean_activation.naive``: ``torch.mean`` sums before it divides, so the sum
  of a batch of large activations overflows where the mean does not (float64,
  float32, bfloat16; float16 accumulates in float32), and the gradient
  ``2 * mean`` overflows before it is divided by the batch size: inf where the
  truth ``2 * mean / B`` is finite.
* ``mean_activation.stable``: divides before it sums, and a backward that
  forms ``(2 / B) * mean``.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch
import torch.nn.functional as F

import harness
from references import sparsity as ref

#: The target activation rate. The thread's 0.05 is not a float of any
#: format, and near the penalty's minimum the penalty is as small as the
#: difference its rounding makes; 1/16 is exact everywhere.
P = 0.0625


# -- KL divergence to a target rate --------------------------------------------------------------

def kl_naive(z: torch.Tensor, p: float = P) -> torch.Tensor:
    """The thread's ``p*log(p/h) + (1-p)*log((1-p)/(1-h))`` with ``h = sigmoid(z)``.

    Example:
        >>> kl_naive(torch.tensor([math.log(1 / 15), 20.0]))   # the minimum, logit(1/16); h rounds to 1 at 20
        tensor([0., inf])
    """
    h = torch.sigmoid(z)
    return p * torch.log(p / h) + (1 - p) * torch.log((1 - p) / (1 - h))


def kl_logits(z: torch.Tensor, p: float = P) -> torch.Tensor:
    """The same penalty from the logit: ``log h = logsigmoid(z)``, ``log(1-h) = logsigmoid(-z)``.

    Example:
        >>> kl_logits(torch.tensor([math.log(1 / 15), 20.0]))   # a negative penalty; the truth is 6.7e-15
        tensor([-6.9849e-09,  1.8516e+01])
    """
    return p * (math.log(p) - F.logsigmoid(z)) + (1 - p) * (math.log(1 - p) - F.logsigmoid(-z))


def _log1p_or(t: torch.Tensor, far: torch.Tensor, near: torch.Tensor) -> torch.Tensor:
    """``log1p(t)`` where ``near``, else ``far`` (the same number, from the logit).

    The unused ``log1p`` sees 0, not ``t``: at ``t = -1`` its gradient ``1/(1+t)``
    is inf, and zero times inf in ``where``'s backward is NaN.
    """
    return torch.where(near, torch.log1p(torch.where(near, t, torch.zeros_like(t))), far)


def kl_stable(z: torch.Tensor, p: float = P) -> torch.Tensor:
    """``p*g(u) + (1-p)*g(v)``, ``g(t) = t - log1p(t)``: two non-negative terms.

    Example:
        >>> kl_stable(torch.tensor([math.log(1 / 15), 20.0]))
        tensor([6.6613e-15, 1.8516e+01])
    """
    h, one_minus_h = torch.sigmoid(z), torch.sigmoid(-z)
    # u = h/p - 1 and v = (1-h)/(1-p) - 1 satisfy p*u + (1-p)*v = 0, so the
    # penalty -p*log1p(u) - (1-p)*log1p(v) equals p*g(u) + (1-p)*g(v), where
    # g >= 0 and the first-order terms, which cancel near the minimum, are gone.
    u, v = h / p - 1, one_minus_h / (1 - p) - 1
    # Near the minimum log1p keeps the digits; away from it u or v is far from
    # 0 (v -> -1 as h -> 1) and the logs come straight from the logit, where
    # h and 1 - h are never rounded to 0.
    log_h_over_p = _log1p_or(u, F.logsigmoid(z) - math.log(p), u.abs() <= 0.5)
    log_q_over_1mp = _log1p_or(v, F.logsigmoid(-z) - math.log(1 - p), v.abs() <= 0.5)
    return p * (u - log_h_over_p) + (1 - p) * (v - log_q_over_1mp)


# -- Student-t ---------------------------------------------------------------------------------------

def student_t_naive(h: torch.Tensor) -> torch.Tensor:
    """The thread's ``log(1 + h**2)``.

    Example:
        >>> student_t_naive(torch.tensor([1e-4, 1e20]))   # the truth is 1e-8 and 92.1
        tensor([0., inf])
    """
    return torch.log(1 + h**2)


def student_t_log1p(h: torch.Tensor) -> torch.Tensor:
    """``log1p(h**2)``.

    Example:
        >>> student_t_log1p(torch.tensor([1e-4, 1e20]))
        tensor([1.0000e-08,        inf])
    """
    return torch.log1p(h**2)


def student_t_stable(h: torch.Tensor) -> torch.Tensor:
    """``log1p(h**2)`` for ``|h| <= 1``, ``2*log|h| + log1p(h**-2)`` above.

    Example:
        >>> student_t_stable(torch.tensor([1e-4, 1e20]))
        tensor([1.0000e-08, 9.2103e+01])
    """
    small = h.abs() <= 1
    # log(1 + h^2) = log(h^2 (1 + h^-2)): no square of a large h is formed.
    # Each branch sees a harmless stand-in where it is not used, so neither
    # an overflow nor a 1/0 reaches where's backward as 0 * inf.
    h_small = torch.where(small, h, torch.zeros_like(h))
    h_big = torch.where(small, torch.ones_like(h), h)
    return torch.where(small, torch.log1p(h_small**2), 2 * torch.log(h_big.abs()) + torch.log1p((1 / h_big) ** 2))


# -- mean activation over a batch ---------------------------------------------------------------------

def mean_activation_naive(h: torch.Tensor) -> torch.Tensor:
    """The thread's ``sum((0 - mean(h, axis=0))**2)`` for ``h`` shaped ``(batch, units)``.

    Example:
        >>> mean_activation_naive(torch.tensor([[1.0, 2.0], [3.0, 0.0]]))
        tensor(5.)
    """
    return torch.sum((0 - torch.mean(h, dim=0)) ** 2)


class MeanActivationPenalty(torch.autograd.Function):
    """``sum_u mean_b(h)**2`` that overflows only where the penalty does.

    Example:
        >>> h = torch.full((4, 1), 3e38, requires_grad=True)   # float32 max is 3.4e38
        >>> MeanActivationPenalty.apply(h).backward(); h.grad.flatten()   # 2 * 3e38 / 4
        tensor([1.5000e+38, 1.5000e+38, 1.5000e+38, 1.5000e+38])
    """

    @staticmethod
    def forward(ctx, h):
        batch = h.shape[0]
        # Divide, then sum: no partial sum exceeds the largest |h|.
        mean = torch.sum(h / batch, dim=0)
        ctx.save_for_backward(mean)
        ctx.batch = batch
        return torch.sum(mean * mean)

    @staticmethod
    def backward(ctx, grad):
        (mean,) = ctx.saved_tensors
        # (2 / B) * mean: 2 / B <= 1, so the factor 2 cannot overflow a mean
        # that autograd's 2 * mean, divided by B afterwards, would.
        return (grad * (2 / ctx.batch) * mean).expand(ctx.batch, -1)


def mean_activation_stable(h: torch.Tensor) -> torch.Tensor:
    """The mean-activation penalty through ``MeanActivationPenalty``.

    Example:
        >>> mean_activation_stable(torch.tensor([[1.0, 2.0], [3.0, 0.0]]))
        tensor(5.)
    """
    return MeanActivationPenalty.apply(h)


def near_minimum(dtype: torch.dtype) -> list[tuple[np.ndarray]]:
    """Logits around the KL penalty's minimum ``logit(P)``, from 0.5 away down to
    the dtype's spacing: the extreme grid has no point closer than 0.2."""
    centre = math.log(P / (1 - P))
    offsets = [s * 2.0 ** -k for k in range(1, 60, 3) for s in (1.0, -1.0)]
    z = torch.tensor([centre] + [centre + d for d in offsets], dtype=torch.float64).to(dtype).double()
    return [(np.array(v),) for v in np.unique(z.numpy())]


#: A mini-batch of 4 examples of 3 units: 12 inputs per point.
BATCH, UNITS = 4, 3


def batch_grid(dtype: torch.dtype) -> list[tuple[np.ndarray]]:
    """Activations ``(BATCH, UNITS)``: relu-like (zeros, positives), signed
    (leaky, elu), tiny, and large enough that a sum or a doubled mean overflows."""
    info = torch.finfo(dtype)
    big, sub = info.max, info.tiny * info.eps
    rng = np.random.default_rng(5)
    relu = np.maximum(rng.normal(0.0, 1.0, (BATCH, UNITS)), 0.0)
    signed = rng.normal(0.0, 2.0, (BATCH, UNITS))
    batches = [
        np.zeros((BATCH, UNITS)),
        relu,
        signed,
        signed * 1e-3,
        np.array([[0.0, 5.0, 1.0], [0.0, 0.0, 1.0], [0.0, 0.0, 1.0], [0.0, 0.0, -3.0]]),   # one unit's mean is 0
        np.full((BATCH, UNITS), big / 2),            # the sum overflows, the mean does not
        np.full((BATCH, UNITS), big * 0.75),         # 2 * mean overflows, 2 * mean / B does not
        np.array([[big, -big, 1.0], [big, -big, 2.0], [big, -big, 3.0], [-big, big, 4.0]]) / 2,
        np.full((BATCH, UNITS), math.sqrt(big) * 2),   # the squared mean overflows: so does the truth
        np.full((BATCH, UNITS), sub) * np.arange(1, BATCH * UNITS + 1).reshape(BATCH, UNITS),
        np.array([[1e30, 1.0, 0.0], [1.0, 1e-30, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 7.0]]),
    ]
    return [(torch.from_numpy(b).to(dtype).double().numpy(),) for b in batches]


# -- cases ---------------------------------------------------------------------------------------------

def _kl(name, forward, expect, near_expect) -> list[harness.Case]:
    """The penalty over the extreme grid, and over ``near_minimum`` (elementwise, given points)."""
    reference = functools.partial(ref.kl_sparsity, p=P)
    return [harness.Case(f"sparsity.kl.{name}", forward, reference, expect=expect, input_names=("z",)),
            harness.Case(f"sparsity.kl.{name}.near_minimum", forward, reference, expect=near_expect,
                         grid=near_minimum, structure=harness.elementwise(), input_names=("z",),
                         feature=float, feature_name="z")]


def _student_t(name, forward, expect) -> harness.Case:
    return harness.Case(f"sparsity.student_t.{name}", forward, ref.student_t, expect=expect)


def _mean_activation(name, forward, expect) -> harness.Case:
    return harness.Case(f"sparsity.mean_activation.{name}", forward, ref.mean_activation, expect=expect,
                        grid=batch_grid, input_names=("h",))


CASES = [
    *_kl("naive", kl_naive, harness.convicted("non-finite", "wrong-sign", "silent-zero", "lost-digits"),
         harness.convicted("wrong-sign", "silent-zero", "lost-digits")),
    *_kl("logits", kl_logits, harness.certified(),
         {"bfloat16": harness.certified(), "*": harness.convicted("wrong-sign", "silent-zero", "lost-digits")}),
    *_kl("stable", kl_stable, harness.certified(), harness.certified()),
    # Underflow (issue 11): log(1 + h**2) at h = -0.0078048706 is 6.091415e-5 in
    # mpmath, the subnormal 6.0915947e-5 in float16; the naive form returns 0
    # (1 + h**2 rounds to 1). Once silent-zero, now underflow: fails in float16.
    _student_t("naive", student_t_naive,
               {"float16": harness.convicted("non-finite", "silent-zero", "lost-digits", "underflow"),
                "*": harness.convicted("non-finite", "silent-zero", "lost-digits")}),
    _student_t("log1p", student_t_log1p, harness.convicted("non-finite", "silent-zero")),
    _student_t("stable", student_t_stable, harness.certified()),
    _mean_activation("naive", mean_activation_naive, harness.convicted("non-finite")),
    _mean_activation("stable", mean_activation_stable, harness.certified()),
]


# -- benchmarks -------------------------------------------------------------------------------
# `pytest cases/sparsity.py --benchmark-only` times forward + backward of every
# penalty on a million float32 activations (fixed seed): logits ~ N(0, 4**2)
# for the KL penalty, ``h ~ N(0, 4**2)`` for Student-t, and a mini-batch of
# 1000 x 1000 relu activations for the mean activation; a plain `pytest cases/`
# runs each once as a test (benchmarks disabled) on 1000 activations (10 x 100
# for the mean activation): that it runs, not how fast.

import pytest

from harness.tables.benchmarking import DEVICES, forward_backward, sized

N, N_ONCE = 1_000_000, 1000

#: Implementation -> (function, the naive twin its time is compared with, input).
BENCHMARKS = {
    "kl.naive": (kl_naive, None, "logits"),
    "kl.logits": (kl_logits, "kl.naive", "logits"),
    "kl.stable": (kl_stable, "kl.naive", "logits"),
    "student_t.naive": (student_t_naive, None, "signed"),
    "student_t.log1p": (student_t_log1p, "student_t.naive", "signed"),
    "student_t.stable": (student_t_stable, "student_t.naive", "signed"),
    "mean_activation.naive": (mean_activation_naive, None, "relu"),
    "mean_activation.stable": (mean_activation_stable, "mean_activation.naive", "relu"),
}


def _input(kind: str, n: int = N) -> torch.Tensor:
    """``n`` inputs of ``kind``; relu ones a mini-batch of 1000 rows at the timed size, else 10."""
    x = 4 * torch.randn(n, generator=torch.Generator().manual_seed(0))
    return torch.relu(x / 4).reshape(1000 if n == N else 10, -1) if kind == "relu" else x




@pytest.mark.benchmark(group="sparsity")
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("implementation", list(BENCHMARKS))
def test_benchmark(benchmark, implementation, device):
    f, twin, kind = BENCHMARKS[implementation]
    x = _input(kind, sized(benchmark, N, N_ONCE)).to(device).requires_grad_()
    benchmark.extra_info.update(implementation=implementation, twin=twin, shape=list(x.shape), dtype="float32",
                                device=device, threads=torch.get_num_threads())
    benchmark(forward_backward(lambda: f(x).sum(), x, device))
