"""softplus = log(1 + exp(x)) and its naive twins; logsumexp as a structured example.

Sources: the textbook identity log(1 + e^x) = max(x, 0) + log1p(e^-|x|), and
torch.nn.functional.softplus (threshold 20: returns x above it).
"""

import torch

import harness
from harness import certified, convicted
from references.softplus import softplus as softplus_ref


def naive(x):
    """exp overflows to inf above ~88.7 (float32); 1 + exp(x) absorbs exp(x) below ~-16.6."""
    return torch.log(1 + torch.exp(x))


def max_log1p(x):
    # max(x, 0) carries the large part exactly; exp(-|x|) <= 1 never overflows and
    # log1p keeps its digits when it is tiny. But autograd through clamp and abs
    # at x = 0 gives 1 + 0, not 1/2: the value is stable, the gradient at 0 is not.
    return x.clamp(min=0) + torch.log1p(torch.exp(-x.abs()))


class StableSoftplus(torch.autograd.Function):
    """The stable value with the derivative written out: sigmoid(x) as
    exp(-softplus(-x)), which keeps sigmoid's subnormal values (torch.sigmoid on
    CPU gives 0 below x = -709.78 in float64: 1 / (1 + inf))."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return max_log1p(x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * torch.exp(-max_log1p(-x))


def logsumexp_naive(a):
    return torch.log(torch.exp(a).sum(-1))


def logsumexp_textbook(a):
    """``log(sum(exp(a)))``: evaluated exactly (``harness.exact``), the definition itself."""
    return torch.log(torch.exp(a).sum(-1))


CASES = [
    harness.Case("softplus.stable", StableSoftplus.apply, softplus_ref),
    # Second order: the backward, exp(-max_log1p(-x)), is made of torch ops and
    # differentiable, but autograd through max_log1p at 0 takes clamp's and
    # abs's one-sided slopes (1 and 0): the Hessian there is 1/2, not 1/4, in
    # every dtype (52 bits in float64); everywhere else certified.
    # cases/second_order.py has the fix (a sigmoid Function of its own).
    harness.Case("softplus.stable.order2", StableSoftplus.apply, softplus_ref, order=2,
                 expect=convicted("lost-digits", within=(-0.0, 0.0))),
    harness.Case("softplus.max_log1p", max_log1p, softplus_ref,
                 expect=convicted("lost-digits", "inconsistent", within=(-0.0, 0.0))),
    # Measured: float64 loses up to 18 bits of the value and 23 of the gradient on
    # x in (20, 35): the threshold of 20 suits float32 only.
    harness.Case("softplus.torch", torch.nn.functional.softplus, softplus_ref,
                 expect={"float64": convicted("lost-digits", "inconsistent"), "*": certified()}),
    # Underflow (issue 11): log(1 + exp(x)) at x = -9.7109375 is 6.0615022e-5 in
    # mpmath, the subnormal 6.0617924e-5 in float16; the naive form returns 0
    # (1 + exp(x) rounds to 1). Once silent-zero, now underflow: fails in float16.
    harness.Case("softplus.naive", naive, softplus_ref,
                 expect={"float16": convicted("non-finite", "silent-zero", "lost-digits", "inconsistent",
                                              "finite-vs-inf", "underflow"),
                         "*": convicted("non-finite", "silent-zero", "lost-digits", "inconsistent", "finite-vs-inf")}),
    # exp(a - lse) turns lse's absolute rounding, |a| eps, into a relative error of
    # the softmax that no perturbation of the inputs explains: inherent to every
    # logsumexp backward, so the gradient gets 64 ULPs (measured: 31 at a = 88.7).
    # Beyond any budget: where k entries of a row tie for the maximum and log k is
    # below half an ULP of it, lse rounds to the maximum itself and exp(a - lse)
    # gives each tied entry 1 instead of 1/k. Measured in float64: the row
    # (1, 7.588550360256754e81, 7.588550360256754e81) gets [0, 1, 1] from torch,
    # [0, 0.5, 0.5] in mpmath (and from finite differences); on the default grid
    # the "tie of two maxima" beyond 7.9e28 and "large offset, spread of ULPs"
    # patterns. In float32 and below torch accumulates in float32 or wider: no tie fails.
    # Non-finite in every dtype, at the patterns with infinite entries: a row
    # with a +inf entry gets the gradient exp(inf - inf) = NaN where the limit is
    # one-hot (torch.logsumexp(tensor([inf, 1., 2.])) backward: [nan, 0, 0]), and
    # a row all -inf (a masked row) gets NaN where the harness reads the limit
    # along the diagonal, the uniform weights (docs/patterns.md).
    harness.Case("logsumexp.torch", lambda a: torch.logsumexp(a, -1), harness.exact(logsumexp_textbook),
                 shape=(2, 3), budget={"*": {"gradient": 64}},
                 expect={"float64": convicted("lost-digits", "non-finite"), "*": convicted("non-finite")}),
    # Underflow (float16): exp(a) of a row around -10 is subnormal and loses its digits before the log.
    harness.Case("logsumexp.naive", logsumexp_naive, harness.exact(logsumexp_textbook), shape=(2, 3),
                 expect={"float16": convicted("non-finite", "silent-zero", "lost-digits", "inconsistent",
                                              "finite-vs-inf", "wrong-sign", "underflow"),
                         "*": convicted("non-finite", "silent-zero", "lost-digits", "inconsistent", "finite-vs-inf",
                                        "wrong-sign")}),
]


# -- benchmarks -------------------------------------------------------------------------------
# `pytest cases/softplus.py --benchmark-only` times forward + backward of every
# implementation on a million float32 pre-activations ~ N(0, 4**2) (fixed seed),
# logsumexp on 1000 rows of 1000; a plain `pytest cases/` runs each once as a
# test (benchmarks disabled) on 1000 elements (10 rows of 100): that it runs,
# not how fast.

import pytest

from harness.tables.benchmarking import DEVICES, forward_backward, sized

N, N_ONCE = 1_000_000, 1000

#: Implementation -> (function, the naive twin its time is compared with).
SOFTPLUS = {
    "naive": (naive, None),
    "max_log1p": (max_log1p, "naive"),
    "torch": (torch.nn.functional.softplus, "naive"),
    "stable": (StableSoftplus.apply, "naive"),
}
LOGSUMEXP = {
    "logsumexp.naive": (logsumexp_naive, None),
    "logsumexp.torch": (lambda a: torch.logsumexp(a, -1), "logsumexp.naive"),
}




def _run(benchmark, table, implementation, device, shape):
    f, twin = table[implementation]
    x = (4 * torch.randn(shape, generator=torch.Generator().manual_seed(0))).to(device).requires_grad_()
    benchmark.extra_info.update(implementation=implementation, twin=twin, shape=list(shape), dtype="float32",
                                device=device, threads=torch.get_num_threads())
    benchmark(forward_backward(lambda: f(x).sum(), x, device))


@pytest.mark.benchmark(group="softplus")
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("implementation", list(SOFTPLUS))
def test_benchmark_softplus(benchmark, implementation, device):
    _run(benchmark, SOFTPLUS, implementation, device, sized(benchmark, (N,), (N_ONCE,)))


@pytest.mark.benchmark(group="softplus")
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("implementation", list(LOGSUMEXP))
def test_benchmark_logsumexp(benchmark, implementation, device):
    _run(benchmark, LOGSUMEXP, implementation, device, sized(benchmark, (1000, 1000), (10, 100)))   # rows of logits
