"""The Bernoulli log-likelihood of a sigmoid decoder: ``+1e-18`` against logits.

Source: the question "Importance weighted autoencoder doing worse than VAE",
whose decoder ends in a sigmoid and whose likelihood was "fussed with in order
to not get nan during training":

    def compute_log_probability_bernoulli(theta, obs, axis=1):  # Add 1e-18 to avoid nan
        return torch.sum(obs*torch.log(theta+1e-18) + (1-obs)*torch.log(1-theta+1e-18), axis)

Here ``theta = sigmoid(logit)`` and the sum over pixels is left out (each
term is one point of the grid). The stable form never forms ``theta``:
``log(theta) = logsigmoid(logit)`` and ``log(1 - theta) = logsigmoid(-logit)``:
mathematically minus ``binary_cross_entropy_with_logits``, whose PyTorch
implementation is convicted below. The reference is the thread's formula
without the ``+1e-18``, evaluated exactly (``harness.exact``), so its
derivatives come by forward mode; ``references.bernoulli.log_likelihood``, the
same mathematics in mpmath, agrees with it (``tests/test_exact.py``,
``tests/test_derivative_truth.py``).

Verdicts measured here (tables in ``docs/families/bernoulli.md``):

* ``eps`` (labels in {0, 1}): where ``theta`` rounds to 0 (logit below -88.7
  in float32) or to 1 (above 16.6) the ``1e-18`` does stop the NaN, but
  ``log(1e-18) = -41.4`` is not the log-likelihood: a logit of -1000 observed
  as 1 scores -41.4 instead of -1000 (-41.4 at ``logit = -inf``, where the
  truth is ``-inf``), with a gradient of exactly 0 instead of ±1: a silent
  zero for margins ``(2*obs - 1)*logit`` below -88.7 (observed 1) and below
  -16.6 (observed 0, where ``1 - theta`` rounds to 0). In float16 ``1e-18``
  itself rounds to 0, so the thread's NaN comes back: ``log(0)``, non-finite.
* ``eps.soft`` (soft labels in (0, 1)): the same, and a gradient of the wrong
  sign where ``theta`` is below ``1e-18``: the guard kills the ``obs / theta``
  term.
* ``torch``, ``torch.soft``: ``-binary_cross_entropy_with_logits``. The issue
  expected it to be certified; measured, it is convicted in every dtype.
  PyTorch computes ``(1 - obs)*logit + m + log(exp(-m) + exp(-logit - m))``,
  ``m = max(-logit, 0)``: for a confident right negative (``obs = 0``,
  ``logit < -14.6`` in float32) the first two terms cancel exactly and there
  is no ``log1p``, so the loss is exactly 0 where it is ``exp(logit)``; its
  backward ``sigmoid(logit) - obs`` loses the digits of ``1 - sigmoid`` for
  confident right positives (up to 15 bits) and is 0 beyond 16.6; at
  ``logit = ±inf`` the value is NaN (``0 * inf``).
* ``logits``, ``logits.soft``: ``BernoulliLogits`` below. Certified (the
  soft-label case where the harness can judge it: see the family's page).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

import harness


#: The thread's guard against ``log(0)``.
EPS = 1e-18


def log_likelihood_eps(logit: torch.Tensor, obs: torch.Tensor) -> torch.Tensor:
    """The thread's ``obs*log(theta+1e-18) + (1-obs)*log(1-theta+1e-18)``, ``theta = sigmoid(logit)``.

    Example:
        >>> log_likelihood_eps(torch.tensor([-1000.0]), torch.tensor([1.0]))   # the truth is -1000
        tensor([-41.4465])
    """
    theta = torch.sigmoid(logit)
    return obs * torch.log(theta + EPS) + (1 - obs) * torch.log(1 - theta + EPS)


def log_likelihood_torch(logit: torch.Tensor, obs: torch.Tensor) -> torch.Tensor:
    """``-binary_cross_entropy_with_logits(logit, obs)``, elementwise.

    Example:
        >>> log_likelihood_torch(torch.tensor([-1000.0]), torch.tensor([1.0]))
        tensor([-1000.])
        >>> log_likelihood_torch(torch.tensor([-30.0]), torch.tensor([0.0]))   # the truth is -9.4e-14
        tensor([-0.])
    """
    return -F.binary_cross_entropy_with_logits(logit, obs, reduction="none")


def _weighted_log(weight: torch.Tensor, log_p: torch.Tensor) -> torch.Tensor:
    """``weight * log_p`` with ``0 * log(0) = 0``: an impossible outcome that was not observed costs nothing."""
    return torch.where(weight == 0, torch.zeros_like(log_p), weight * log_p)


def sigmoid(x: torch.Tensor) -> torch.Tensor:
    """The logistic function, also where it is subnormal.

    ``torch.sigmoid`` computes ``1 / (1 + exp(-x))``, and ``exp(-x)`` overflows
    for ``x < -88.7`` in float32 (-709.8 in float64): it returns 0 where
    ``sigmoid(x) = exp(x) / (1 + exp(x))`` is still a subnormal number.

    Example:
        >>> sigmoid(torch.tensor([-95.0, 0.0]))
        tensor([5.5211e-42, 5.0000e-01])
    """
    # exp(-|x|) <= 1 never overflows; on the negative side it is sigmoid(x)'s own numerator.
    e = torch.exp(-x.abs())
    return torch.where(x >= 0, 1 / (1 + e), e / (1 + e))


class BernoulliLogits(torch.autograd.Function):
    """``obs * log(theta) + (1 - obs) * log(1 - theta)`` from the logit, with an exact label gradient.

    ``log(theta) = logsigmoid(logit)`` and ``log(1 - theta) = logsigmoid(-logit)``
    never round ``theta`` to 0 or 1, and the two terms never cancel (both
    are at most 0). The gradient in the logit, ``obs * sigmoid(-logit) -
    (1 - obs) * sigmoid(logit)``, is ``obs - theta`` without the subtraction
    that loses ``1 - theta`` near 1. The gradient in a soft label is
    ``logsigmoid(logit) - logsigmoid(-logit)``, which is exactly ``logit``:
    autograd would subtract two numbers near ``-log 2`` and keep none of the
    digits of a small logit.

    Example:
        >>> logit = torch.tensor([1e-10], dtype=torch.float64, requires_grad=True)
        >>> obs = torch.tensor([0.25], dtype=torch.float64, requires_grad=True)
        >>> BernoulliLogits.apply(logit, obs).backward(); obs.grad
        tensor([1.0000e-10], dtype=torch.float64)
    """

    @staticmethod
    def forward(ctx, logit, obs):
        ctx.save_for_backward(logit, obs)
        return _weighted_log(obs, F.logsigmoid(logit)) + _weighted_log(1 - obs, F.logsigmoid(-logit))

    @staticmethod
    def backward(ctx, grad):
        logit, obs = ctx.saved_tensors
        d_logit = obs * sigmoid(-logit) - (1 - obs) * sigmoid(logit)
        return grad * d_logit, grad * logit


def log_likelihood_logits(logit: torch.Tensor, obs: torch.Tensor) -> torch.Tensor:
    """The log-likelihood straight from the logit (see ``BernoulliLogits``).

    Example:
        >>> log_likelihood_logits(torch.tensor([-1000.0, -30.0]), torch.tensor([1.0, 0.0]))
        tensor([-1.0000e+03, -9.3576e-14])
    """
    return BernoulliLogits.apply(logit, obs)


def textbook(logit: torch.Tensor, obs: torch.Tensor) -> torch.Tensor:
    """``obs*log(theta) + (1-obs)*log(1-theta)``, ``theta = sigmoid(logit)``: wrong in
    floats, the truth in ``harness.exact``, where ``1 - sigmoid(logit)`` keeps its
    distance from 1 (``exp(-logit)`` at any logit) and nothing overflows."""
    theta = torch.sigmoid(logit)
    return obs * torch.log(theta) + (1 - obs) * torch.log(1 - theta)


log_likelihood = harness.exact(textbook)


def margin(logit: float, obs: float) -> float:
    """``(2*obs - 1) * logit``: how confidently right (> 0) or wrong (< 0) the
    prediction is, the feature failing regions of hard labels are described by."""
    return (2 * obs - 1) * logit


REAL = harness.domains.real()
HARD = harness.domains.choice(0, 1)
SOFT = harness.domains.interval(0, 1)


def soft_grid(dtype: torch.dtype) -> list[tuple[np.ndarray, np.ndarray]]:
    """Pairs ``(logit, obs)`` of a coarse extreme grid of logits (every scale,
    ±inf, NaN) and soft labels from the extreme grid of (0, 1) (subnormal to
    1 - ulp) and a few ordinary ones: a few hundred points where the product
    grid of two continuous inputs would hold thousands."""
    logits = harness.grids.coarse(harness.grids.extreme(dtype), 28)
    labels = harness.grids.coarse(harness.grids.extreme(dtype, SOFT), 8)
    labels = np.concatenate([labels, torch.tensor([0.5, 0.25, 0.0625, 0.9375], dtype=dtype).double().numpy()])
    return [(np.array(z), np.array(o)) for z in logits for o in np.unique(labels)]


def _case(name, forward, labels, expect) -> harness.Case:
    if labels.discrete:
        return harness.Case(f"bernoulli.{name}", forward, log_likelihood, domain=(REAL, labels), expect=expect,
                            feature=margin, feature_name="margin")
    return harness.Case(f"bernoulli.{name}", forward, log_likelihood, domain=(REAL, labels), expect=expect,
                        grid=soft_grid, structure=harness.elementwise(), input_names=("logit", "obs"),
                        feature=lambda logit, obs: float(logit), feature_name="logit")



# Underflow (issue 11): where the log-likelihood's truth is a float16 subnormal
# (|margin| 9.7 to 12, truth -6.06e-5 to -6.1e-6) the eps and torch forms give 0:
# mpmath's log(sigmoid(-9.7109375)) = -6.0615022e-5 rounds to the subnormal
# -6.0617924e-5, torch returns 0 in float16. Once silent-zero, now underflow,
# which fails in float16 (and is reported, not failed, in the other dtypes).
CASES = [
    _case("eps", log_likelihood_eps, HARD,
          {"float16": harness.convicted("non-finite", "silent-zero", "lost-digits", "underflow"),
           "*": harness.convicted("finite-vs-inf", "silent-zero", "lost-digits")}),
    _case("torch", log_likelihood_torch, HARD,
          {"float16": harness.convicted("non-finite", "silent-zero", "lost-digits", "inconsistent", "underflow"),
           "*": harness.convicted("non-finite", "silent-zero", "lost-digits", "inconsistent")}),
    _case("logits", log_likelihood_logits, HARD, harness.certified()),
    _case("eps.soft", log_likelihood_eps, SOFT,
          {"float16": harness.convicted("non-finite", "silent-zero", "lost-digits", "underflow"),
           "*": harness.convicted("finite-vs-inf", "wrong-sign", "silent-zero", "lost-digits")}),
    _case("torch.soft", log_likelihood_torch, SOFT,
          {"float16": harness.convicted("non-finite", "wrong-sign", "silent-zero", "lost-digits", "inconsistent",
                                        "underflow"),
           "*": harness.convicted("non-finite", "wrong-sign", "silent-zero", "lost-digits", "inconsistent")}),
    _case("logits.soft", log_likelihood_logits, SOFT, harness.certified()),
]


# -- benchmarks -------------------------------------------------------------------------------
# `pytest cases/bernoulli.py --benchmark-only` times forward + backward (in the
# logits) of every log-likelihood on a million float32 pixels: logits ~ N(0, 4**2),
# binary observations drawn from them (a decoder that is mostly right), fixed
# seed; a plain `pytest cases/` runs each once as a test (benchmarks disabled)
# on 1000 pixels: that it runs, not how fast.

import pytest

from harness.tables.benchmarking import DEVICES, forward_backward, sized

N, N_ONCE = 1_000_000, 1000

#: Implementation -> (function, the naive twin its time is compared with).
BENCHMARKS = {
    "eps": (log_likelihood_eps, None),
    "torch": (log_likelihood_torch, "eps"),
    "logits": (log_likelihood_logits, "eps"),
}




@pytest.mark.benchmark(group="bernoulli")
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("implementation", list(BENCHMARKS))
def test_benchmark(benchmark, implementation, device):
    f, twin = BENCHMARKS[implementation]
    gen = torch.Generator().manual_seed(0)
    n = sized(benchmark, N, N_ONCE)
    logit = 4 * torch.randn(n, generator=gen)
    obs = torch.bernoulli(torch.sigmoid(logit), generator=gen)
    logit, obs = logit.to(device).requires_grad_(), obs.to(device)
    benchmark.extra_info.update(implementation=implementation, twin=twin, shape=[n], dtype="float32",
                                device=device, threads=torch.get_num_threads())
    benchmark(forward_backward(lambda: f(logit, obs).sum(), logit, device))
