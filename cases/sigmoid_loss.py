"""The sigmoid + log loss of a skip-gram model, naive, kludged and stable.

Source: the thread "PyTorch: Kludges To Ensure Numerical Stability" (a
skip-gram-like loss relating samples and tags):

    loss_pos = -log(sigmoid(dot(anchor, tag_p)))
    loss_neg = -log(1 - sigmoid(dot(anchor, tag_n)))

and its kludge, ``clamp(sigmoid(x), eps, 1 - eps)`` with ``eps = 1e-4``. The
stable form is the log-sigmoid, ``-log(sigmoid(x)) = softplus(-x)``, and
``1 - sigmoid(x) = sigmoid(-x)``: ``torch.nn.functional.logsigmoid`` computes
``min(x, 0) - log1p(exp(-|x|))``, where ``exp`` never overflows and ``log1p``
keeps the digits of a loss near 0. (``torch.nn.functional.softplus`` would do
in float32 but is convicted in float64: its default ``threshold=20`` returns
``x`` where ``log1p(exp(-x))`` still counts; see docs/findings.md.)

Each loss is a case of the score ``x`` (elementwise, the whole extreme grid)
and of the two vectors through the dot product (structured: gradients with
respect to both vectors). The references are ``references.sigmoid_loss``.

Verdicts measured here (float32 figures; the other dtypes in the family's
page, ``docs/families/sigmoid_loss.md``):

* ``pos.naive``: ``sigmoid`` is ``1 / (1 + exp(-x))``, and ``exp(-x)``
  overflows for ``x < -88.72``: ``sigmoid = 0``, loss ``inf``, gradient NaN
  (truth ``-1``), as the issue measured. But the issue's "loses digits on
  (5, 17]" is the smaller half of the story on the other side: ``sigmoid(x)``
  rounds to 1 for ``x > 16.6`` and the loss and its gradient are then exactly
  0 where the truth is ``exp(-x)`` (a silent zero, down to where the truth
  itself underflows); below 16.6 the digits go from about ``x > 4.5``. Convicted
  of non-finite, silent-zero and lost-digits.
* ``neg.naive``: ``1 - sigmoid(x)`` is 0 for ``x > 16.6``: loss ``inf`` and
  gradient NaN where the truth is ``x`` and ``1``, as the issue measured; on
  the other side ``1 - sigmoid(x)`` cancels towards ``x -> -inf`` where the
  truth is ``exp(x)``: lost digits, then a silent zero.
* ``pos.kludge`` / ``neg.kludge``: no NaN or inf in float32, float64, but the
  clamp cuts the gradient: exactly 0 where the truth is about ``-1`` for
  ``x < -9.21`` (pos; ``x > 9.21`` for neg), a silent wrong gradient, worse
  than a NaN because nothing announces it, and a wrong constant loss
  ``-log(1e-4) = 9.21`` there; on the saturated side the clamp at ``1 - eps``
  gives a constant loss ``1e-4`` with a zero gradient where the truth is
  ``exp(-|x|)``. In float16 and bfloat16 ``1 - 1e-4`` rounds to 1, so the
  upper clamp does nothing and the kludge fails like the naive formula there
  (``log(0)``: non-finite).
* ``pos.stable`` / ``neg.stable`` (log-sigmoid): certified in every dtype.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

import harness
from references import sigmoid_loss as ref

#: The thread's clamp bound.
EPS = 1e-4


# -- implementations of the loss of a score ------------------------------------------------

def loss_pos_naive(x: torch.Tensor) -> torch.Tensor:
    """``-log(sigmoid(x))`` as written in the thread.

    Example:
        >>> loss_pos_naive(torch.tensor([0.0, -100.0]))   # exp(100) overflows float32
        tensor([0.6931,    inf])
    """
    return -torch.log(torch.sigmoid(x))


def loss_neg_naive(x: torch.Tensor) -> torch.Tensor:
    """``-log(1 - sigmoid(x))`` as written in the thread.

    Example:
        >>> loss_neg_naive(torch.tensor([0.0, 20.0]))   # sigmoid(20) rounds to 1 in float32
        tensor([0.6931,    inf])
    """
    return -torch.log(1 - torch.sigmoid(x))


def clamped_sigmoid(x: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    """The thread's kludge: ``sigmoid(x)`` held inside ``[eps, 1 - eps]``.

    Example:
        >>> clamped_sigmoid(torch.tensor([-50.0, 0.0, 50.0]))
        tensor([1.0000e-04, 5.0000e-01, 9.9990e-01])
    """
    return torch.clamp(torch.clamp(torch.sigmoid(x), min=eps), max=1 - eps)


def loss_pos_kludge(x: torch.Tensor) -> torch.Tensor:
    """``-log(clamped_sigmoid(x))``: finite, but the clamp stops the gradient.

    Example:
        >>> x = torch.tensor([-20.0], requires_grad=True)
        >>> loss_pos_kludge(x).backward(); x.grad   # the truth is -1
        tensor([0.])
    """
    return -torch.log(clamped_sigmoid(x))


def loss_neg_kludge(x: torch.Tensor) -> torch.Tensor:
    """``-log(1 - clamped_sigmoid(x))``.

    Example:
        >>> loss_neg_kludge(torch.tensor([20.0]))   # -log(1e-4); the truth is 20
        tensor([9.2102])
    """
    return -torch.log(1 - clamped_sigmoid(x))


def loss_pos_stable(x: torch.Tensor) -> torch.Tensor:
    """``-logsigmoid(x)``, i.e. ``softplus(-x)`` without a threshold.

    Example:
        >>> loss_pos_stable(torch.tensor([-100.0, 0.0, 100.0]))
        tensor([1.0000e+02, 6.9315e-01, 3.9236e-44])
    """
    # logsigmoid(x) = min(x, 0) - log1p(exp(-|x|)): exp's argument is never
    # positive, and log1p keeps exp(-|x|) where it is below the ULP of 1.
    return -F.logsigmoid(x)


def loss_neg_stable(x: torch.Tensor) -> torch.Tensor:
    """``-logsigmoid(-x)``: ``1 - sigmoid(x) = sigmoid(-x)`` needs no subtraction.

    Example:
        >>> loss_neg_stable(torch.tensor([100.0, 0.0, -100.0]))
        tensor([1.0000e+02, 6.9315e-01, 3.9236e-44])
    """
    return -F.logsigmoid(-x)


# -- the same losses of two vectors, through the dot product ---------------------------------

def skipgram_pos_naive(anchor: torch.Tensor, tag: torch.Tensor) -> torch.Tensor:
    """``loss_pos_naive(dot(anchor, tag))``, the thread's ``loss_pos``.

    Example:
        >>> skipgram_pos_naive(torch.tensor([1.0, 2.0]), torch.tensor([0.5, -0.25]))
        tensor(0.6931)
    """
    return loss_pos_naive(torch.dot(anchor, tag))


def skipgram_neg_naive(anchor: torch.Tensor, tag: torch.Tensor) -> torch.Tensor:
    """``loss_neg_naive(dot(anchor, tag))``, the thread's ``loss_neg``."""
    return loss_neg_naive(torch.dot(anchor, tag))


def skipgram_pos_kludge(anchor: torch.Tensor, tag: torch.Tensor) -> torch.Tensor:
    """``loss_pos_kludge(dot(anchor, tag))``."""
    return loss_pos_kludge(torch.dot(anchor, tag))


def skipgram_neg_kludge(anchor: torch.Tensor, tag: torch.Tensor) -> torch.Tensor:
    """``loss_neg_kludge(dot(anchor, tag))``."""
    return loss_neg_kludge(torch.dot(anchor, tag))


def skipgram_pos_stable(anchor: torch.Tensor, tag: torch.Tensor) -> torch.Tensor:
    """``loss_pos_stable(dot(anchor, tag))``.

    Example:
        >>> skipgram_pos_stable(torch.tensor([10.0, 10.0]), torch.tensor([-5.0, -5.0]))   # score -100
        tensor(100.)
    """
    return loss_pos_stable(torch.dot(anchor, tag))


def skipgram_neg_stable(anchor: torch.Tensor, tag: torch.Tensor) -> torch.Tensor:
    """``loss_neg_stable(dot(anchor, tag))``."""
    return loss_neg_stable(torch.dot(anchor, tag))


# -- the grid of vector pairs ------------------------------------------------------------------

#: Embedding width of the vector cases: 4 + 4 inputs per point keeps the truth cheap.
WIDTH = 4


def _scores(dtype: torch.dtype) -> list[float]:
    """Scores where the three implementations part ways, in both signs: the
    clamp edge ``log(1/eps - 1) = 9.21``, where ``sigmoid`` rounds to 1, the
    ``exp`` overflow edge ``log(max)``, and far beyond."""
    info = torch.finfo(dtype)
    saturate = -math.log(info.eps / 2)          # sigmoid(x) rounds to 1 above about this
    overflow = math.log(info.max)
    magnitudes = [0.0, 0.75, 3.0, 7.0, 9.0, 9.5, saturate - 1, saturate + 1, 40.0,
                  overflow - 1, overflow + 1, 2 * overflow, 1e4]
    return sorted({s * m for m in magnitudes for s in (1.0, -1.0)})


def vector_grid(dtype: torch.dtype) -> list[tuple[np.ndarray, np.ndarray]]:
    """Pairs ``(anchor, tag)`` of width ``WIDTH`` whose score sweeps ``_scores``.

    Hand-made rather than ``shape=``: the losses break on the score, the dot
    product of the two inputs, and the default grid varies one input's
    patterns against typical values of the other, so its scores stay near
    the typical ones; here each pair is built to land on a chosen score.

    The anchor has entries of mixed sign and size; the tag is the anchor
    scaled to the target score, so every product has the score's sign and the
    dot product does not cancel. The score is then whatever the rounded
    vectors give (the reference takes their exact dot product).
    """
    rng = np.random.default_rng(3)
    points = []
    for score in _scores(dtype):
        anchor = rng.choice([-1.0, 1.0], WIDTH) * rng.uniform(0.25, 4.0, WIDTH)
        anchor = torch.from_numpy(anchor).to(dtype).double().numpy()
        tag = torch.from_numpy(score * anchor / np.dot(anchor, anchor)).to(dtype).double().numpy()
        points.append((anchor, tag))
    # Two pairs whose products cancel: the score is small, the entries are not.
    for big in (64.0, 1024.0):
        anchor = np.array([big, -big, 1.0, 0.5])
        tag = np.array([big, big, -2.0, 3.0])
        points.append((anchor, tag))
    # A NaN entry must give a NaN loss.
    points.append((np.array([1.0, math.nan, -2.0, 0.5]), np.array([0.5, 1.0, 1.0, -1.0])))
    return points


def score(anchor: np.ndarray, tag: np.ndarray) -> float:
    """The point's score ``anchor . tag``, the feature failing regions are described by."""
    return float(np.dot(anchor, tag))


# -- cases -------------------------------------------------------------------------------------

def _scalar(name, forward, reference, expect) -> harness.Case:
    return harness.Case(f"sigmoid_loss.{name}", forward, reference, expect=expect, input_names=("x",))


def _vector(name, forward, reference, expect) -> harness.Case:
    return harness.Case(f"sigmoid_loss.{name}", forward, reference, expect=expect, grid=vector_grid,
                        feature=score, feature_name="anchor.tag")


#: Underflow (issue 11): where the loss or its gradient is a float16 subnormal
#: (|x| 9.7 to 12, e.g. loss_pos(9.7109375): mpmath 6.0615022e-5, the subnormal
#: 6.0617924e-5 in float16) the naive and kludge forms return 0: once
#: silent-zero, now underflow, which fails in float16 only.
NAIVE = {"float16": harness.convicted("non-finite", "silent-zero", "lost-digits", "underflow"),
         "*": harness.convicted("non-finite", "silent-zero", "lost-digits")}
#: The kludge: a zero gradient and a constant loss where the clamp holds, and
#: no bound at all above in float16 and bfloat16, where 1 - 1e-4 rounds to 1.
KLUDGE = {"float16": harness.convicted("silent-zero", "lost-digits", "finite-vs-inf", "underflow"),
          "*": harness.convicted("silent-zero", "lost-digits", "finite-vs-inf")}
KLUDGE_NEG = {"float16": harness.convicted("non-finite", "silent-zero", "lost-digits", "underflow"),
              "bfloat16": harness.convicted("non-finite", "silent-zero", "lost-digits"),
              "*": KLUDGE["*"]}

CASES = [
    _scalar("pos.naive", loss_pos_naive, ref.loss_pos, NAIVE),
    _scalar("pos.kludge", loss_pos_kludge, ref.loss_pos, KLUDGE),
    _scalar("pos.stable", loss_pos_stable, ref.loss_pos, harness.certified()),
    _scalar("neg.naive", loss_neg_naive, ref.loss_neg, NAIVE),
    _scalar("neg.kludge", loss_neg_kludge, ref.loss_neg, KLUDGE_NEG),
    _scalar("neg.stable", loss_neg_stable, ref.loss_neg, harness.certified()),
    _vector("skipgram.pos.naive", skipgram_pos_naive, ref.skipgram_pos, NAIVE),
    _vector("skipgram.pos.kludge", skipgram_pos_kludge, ref.skipgram_pos, KLUDGE),
    _vector("skipgram.pos.stable", skipgram_pos_stable, ref.skipgram_pos, harness.certified()),
    _vector("skipgram.neg.naive", skipgram_neg_naive, ref.skipgram_neg, NAIVE),
    _vector("skipgram.neg.kludge", skipgram_neg_kludge, ref.skipgram_neg, KLUDGE_NEG),
    _vector("skipgram.neg.stable", skipgram_neg_stable, ref.skipgram_neg, harness.certified()),
]


# -- benchmarks -------------------------------------------------------------------------------
# `pytest cases/sigmoid_loss.py --benchmark-only` times forward + backward of
# every loss of a score on a million float32 scores ~ N(0, 4**2) (fixed seed);
# a plain `pytest cases/` runs each once as a test (benchmarks disabled) on
# 1000 scores: that it runs, not how fast. The
# vector forms add one dot product to the same scalar loss: not timed.

import pytest

from harness.tables.benchmarking import DEVICES, forward_backward, sized

N, N_ONCE = 1_000_000, 1000

#: Implementation -> (function, the naive twin its time is compared with).
BENCHMARKS = {
    "pos.naive": (loss_pos_naive, None),
    "pos.kludge": (loss_pos_kludge, "pos.naive"),
    "pos.stable": (loss_pos_stable, "pos.naive"),
    "neg.naive": (loss_neg_naive, None),
    "neg.kludge": (loss_neg_kludge, "neg.naive"),
    "neg.stable": (loss_neg_stable, "neg.naive"),
}




@pytest.mark.benchmark(group="sigmoid_loss")
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("implementation", list(BENCHMARKS))
def test_benchmark(benchmark, implementation, device):
    f, twin = BENCHMARKS[implementation]
    n = sized(benchmark, N, N_ONCE)
    x = (4 * torch.randn(n, generator=torch.Generator().manual_seed(0))).to(device).requires_grad_()
    benchmark.extra_info.update(implementation=implementation, twin=twin, shape=[n], dtype="float32",
                                device=device, threads=torch.get_num_threads())
    benchmark(forward_backward(lambda: f(x).sum(), x, device))
