"""harness.exact: torch formulas evaluated exactly, checked against torch itself
(semantics), against the hand-written references of every family (values, to
the truth engine's 66 bits, at points of each family's grid), and end to end."""

from __future__ import annotations

import functools
import math
import os
import subprocess
import sys

import mpmath
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import harness
from harness.truth.cache import fingerprint
from harness.truth.exact import ExactUnsupported, exact
from harness.inputs.patterns import structured_grid
from harness.truth.mpmath_engine import VERIFIED_BITS, ZERO_CHECK_BITS
from harness.truth.limits import FAR
from harness.truth.point import solve_point

BITS = 256
mpf = mpmath.mpf


def at(reference, *inputs, bits: int = BITS):
    with mpmath.workprec(bits):
        return reference(*inputs)


def mp_input(value):
    """A grid input as the truth engine reads it: mpf, ±inf as ±2**1200 (the first reading out)."""
    if isinstance(value, (list, tuple, np.ndarray)) and np.ndim(value):
        return [mp_input(v) for v in value]
    value = float(value)
    return mpf(value) if math.isfinite(value) else math.copysign(1, value) * FAR


def agree(a, b, bits: int = VERIFIED_BITS) -> bool:
    """Equal to ``bits`` bits, or both below every float format's smallest
    subnormal (they round to the same zero)."""
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(agree(x, y, bits) for x, y in zip(a, b))
    a, b = mpf(a), mpf(b)
    if mpmath.isnan(a) or mpmath.isnan(b) or mpmath.isinf(a) or mpmath.isinf(b):
        return (mpmath.isnan(a) and mpmath.isnan(b)) or a == b
    scale = max(abs(a), abs(b))
    return scale < mpmath.ldexp(1, -1100) or abs(a - b) <= mpmath.ldexp(scale, -bits)


def as_float(values):
    if isinstance(values, list):
        return [as_float(v) for v in values]
    return float(values)


# -- semantics: exact(op) matches torch in float64 at ordinary inputs ------------------------------------

RNG = np.random.default_rng(0)
A = RNG.normal(size=(2, 3))
B = RNG.normal(size=(2, 3))
P = RNG.uniform(0.05, 0.95, size=(2, 3))
X4 = RNG.normal(size=(2, 5, 2, 1))
LOGITS = RNG.normal(size=(3, 4))
W = RNG.uniform(0.5, 2.0, size=4)
LABELS = torch.tensor([1, 3, 0])

OPS = {
    "exp expm1 exp2": (lambda a: torch.exp(a) + torch.expm1(a) * a.exp2(), A),
    "logs": (lambda p: torch.log(p) + p.log1p() - torch.log2(p) * torch.log10(p), P),
    "sqrt rsqrt pow": (lambda p: torch.sqrt(p) + p.rsqrt() + p ** 1.5 + torch.pow(2.0, p) + p.pow(p), P),
    "sigmoids": (lambda a: torch.sigmoid(a) + F.logsigmoid(a) + torch.special.expit(a) + F.softplus(a)
                 + F.softplus(a, beta=2.0), A),
    "hyperbolic": (lambda a: torch.tanh(a) + torch.sinh(a) + torch.cosh(a) + torch.asinh(a)
                   + torch.atanh(a / 4) + torch.acosh(a.abs() + 1), A),
    "trigonometric": (lambda a, b: torch.sin(a) + torch.cos(a) + torch.tan(a) + torch.atan(a)
                      + torch.atan2(a, b) + torch.hypot(a, b), A, B),
    "special": (lambda a, p: torch.erf(a) + torch.erfc(a) + torch.erfinv(p) + torch.lgamma(a)
                + torch.digamma(a) + torch.special.xlog1py(a, p) + torch.xlogy(p, p), A, P),
    "logaddexp": (lambda a, b: torch.logaddexp(a, b) + torch.logaddexp2(a, 3 * b), A, B),
    "activations": (lambda a: F.relu(a) + F.gelu(a) + F.gelu(a, approximate="tanh") + F.silu(a) + F.mish(a)
                    + F.elu(a) + F.elu(a, alpha=0.5) + F.leaky_relu(a) + torch.relu(a) + F.celu(a)
                    + F.celu(a, alpha=0.5) + F.selu(a) + F.hardsigmoid(4 * a) + F.hardswish(4 * a), A),
    # polygamma(1, x) is left out: torch's float64 trigamma is 22 bits off (cases/torch_ops.py).
    "torch.special": (lambda a, p: torch.special.erfcx(a) + torch.special.ndtr(a) + torch.special.log_ndtr(a)
                      + torch.special.ndtri(p) + torch.i0(a) + torch.special.i0e(a) + torch.special.i1(a)
                      + torch.special.i1e(a) + torch.sinc(a) + a.sinc() + torch.polygamma(2, p) + p.polygamma(3)
                      + torch.mvlgamma(p + 1, 2) + torch.special.multigammaln(p + 2, 3), A, P),
    "arithmetic": (lambda a, b: (a + b) * (a - b) / (b + 3) - 2 * a + 1 / (a + 5) - a.sub(b, alpha=2)
                   + torch.add(a, b, alpha=0.5) - torch.rsub(a, 1.0) + (-a) + abs(b), A, B),
    "sign clamp min max": (lambda a, b: torch.sign(a) + a.clamp(min=-0.5, max=0.5) + torch.clip(a, b)
                           + torch.maximum(a, b) - torch.minimum(a, b) + a.clamp_min(0) + a.clamp_max(b)
                           + torch.max(a, b), A, B),
    "where and masks": (lambda a, b: torch.where(a > b, a, b) + a.masked_fill(a < 0, 0.25)
                        + (a >= 0) * b + (a != b).float() - (a == a).long() + a.where(b > 0, 2.0), A, B),
    "reductions": (lambda a: a.sum() + a.sum(-1).prod() + torch.mean(a, dim=0).sum() + a.amax(1).sum()
                   + a.amin() + a.max() + torch.max(a, 1).values.sum() + torch.min(a, dim=0)[0].sum()
                   + a.var() + a.std(1, unbiased=False).sum() + a.norm() + torch.linalg.vector_norm(a, 1)
                   + torch.linalg.vector_norm(a, math.inf, dim=1).sum(), A),
    "arg reductions": (lambda a: (a.argmax(1) * 10 + torch.argmin(a)).float(), A),
    "logsumexp softmax": (lambda a: torch.logsumexp(a, -1).sum() + F.softmax(a, -1) * F.log_softmax(a, 0)
                          + torch.softmax(a, 1) + a.log_softmax(-1) + torch.special.logsumexp(a, 0).sum(), A),
    "cumsum": (lambda a: torch.cumsum(a, 1) + a.cumsum(0), A),
    "matmul": (lambda a, b: a @ b.T + torch.matmul(a.T, b).sum() + torch.mm(a, b.t()) + (a[0] @ b[0])
               + torch.dot(a[1], b[1]) + torch.outer(a[0], b[1]).sum() + F.linear(a, b, b[:, 0]), A, B),
    "einsum": (lambda a, b: torch.einsum("ij,kj->ik", a, b) + torch.einsum("ij->", a)
               + torch.einsum("ij,ij->i", a, b)[:, None] + torch.einsum("ij,kj", a, b), A, B),
    "shapes": (lambda a: a.reshape(3, 2).T.reshape(-1) + a.view(6) + a.transpose(0, 1).flatten()
               + a.permute(1, 0).reshape(6) + torch.cat([a, a], 1)[:, 1:4].reshape(6)
               + torch.stack((a, a), -1).sum(-1).reshape(-1) + a.unsqueeze(0).squeeze().flatten()
               + a[:, :1].expand(2, 3).reshape(6) + a.flip(0).reshape(6) + a.repeat(1, 2)[:, 3:].flatten()
               + a.narrow(1, 0, 3).flatten() + torch.gather(a, 1, torch.tensor([[2, 1, 0], [0, 0, 1]])).ravel()
               + F.pad(a, (1, 1))[:, 1:-1].flatten(), A),
    "indexing": (lambda a: a[0, 1] + a[-1] .sum() + a[a > 0].sum() + a[:, [2, 0]].sum() + a[None, 1, ::2].sum()
                 + a[torch.tensor([1, 0])][0, 0] + sum(row.sum() for row in a) + a.index_select(1, torch.tensor([0]))
                 .sum() + torch.unbind(a, 1)[2].sum() + a.split(2, 1)[1].sum() + a.chunk(3, 1)[0].sum(), A),
    "creation": (lambda a: torch.zeros_like(a) + torch.ones_like(a) * 2 + torch.full_like(a, 0.5) * a
                 + a.new_zeros(3) + a.new_ones((2, 3)) + a.new_full((3,), 2.0) + a.new_tensor([1.0, 2.0, 3.0]), A),
    "layer_norm": (lambda x: F.layer_norm(x, (5, 2, 1), torch.full((5, 2, 1), 1.5, dtype=torch.float64),
                                 torch.full((5, 2, 1), 0.25, dtype=torch.float64))
                   + F.layer_norm(x, [1]) + F.normalize(x) + F.normalize(x, p=1.0, dim=-2), X4),
    "local_response_norm": (lambda x: F.local_response_norm(x, 3, alpha=1.0, beta=0.75, k=2.0)
                            + F.local_response_norm(x, 2) + F.local_response_norm(x, 4, alpha=0.5, beta=1.0), X4),
    "cross_entropy": (lambda z: F.cross_entropy(z, LABELS) + F.cross_entropy(z, LABELS, reduction="sum")
                      + F.cross_entropy(z, LABELS, weight=torch.from_numpy(W), ignore_index=0)
                      + F.cross_entropy(z, LABELS, label_smoothing=0.2)
                      + F.cross_entropy(z, LABELS, weight=torch.from_numpy(W), label_smoothing=0.1)
                      + F.cross_entropy(z, torch.softmax(z.flip(0), 1)) + F.cross_entropy(z[0], LABELS[0])
                      + F.nll_loss(F.log_softmax(z, 1), LABELS, reduction="none").sum(), LOGITS),
    "binary_cross_entropy": (lambda a, p: F.binary_cross_entropy(p, torch.sigmoid(a))
                             + F.binary_cross_entropy(p, p.flip(1), reduction="none").sum()
                             + F.binary_cross_entropy_with_logits(a, p)
                             + F.binary_cross_entropy_with_logits(a, p, pos_weight=torch.tensor(3.0),
                                                                  weight=p, reduction="sum")
                             + F.mse_loss(a, p) + F.l1_loss(a, p, reduction="sum"), A, P),
}


@pytest.mark.parametrize("name", list(OPS))
def test_exact_matches_torch_in_float64_at_ordinary_inputs(name):
    fn, *inputs = OPS[name]
    want = fn(*[torch.from_numpy(np.asarray(v)) for v in inputs])
    got = at(exact(fn), *[mp_input(v) for v in inputs], bits=80)
    np.testing.assert_allclose(np.asarray(as_float(got), dtype=np.float64), want.double().numpy(), rtol=1e-12,
                               atol=1e-14)


#: The special functions at the inputs where a cancelling form of their value or
#: derivative would show (tiny, huge, below 0, the middle of the range).
HARD = [-1e300, -1e10, -30.0, -0.5, -5e-324, 5e-324, 1e-8, 0.5, 3.0, 700.0, 1e10, 1e300]
SPECIAL = {
    "erfcx": (torch.special.erfcx, HARD), "ndtr": (torch.special.ndtr, HARD),
    "log_ndtr": (torch.special.log_ndtr, HARD),
    "ndtri": (torch.special.ndtri, [5e-324, 1e-30, 0.025, 0.5, 1 - 2 ** -53]),
    "i0": (torch.i0, HARD), "i0e": (torch.special.i0e, HARD), "i1": (torch.special.i1, HARD),
    "i1e": (torch.special.i1e, HARD), "sinc": (torch.sinc, HARD + [1.5, 2 ** 51 + 0.5]),
    "polygamma": (lambda x: torch.polygamma(1, x), [5e-324, 1e-8, 0.5, 3.0, 1e10, 1e300]),
    "mvlgamma": (lambda x: torch.mvlgamma(x, p=2), [0.5 + 2 ** -52, 1.0, 30.0, 1e300]),
}


@pytest.mark.parametrize("name", list(SPECIAL))
def test_special_functions_by_forward_mode_round_as_their_ball_rules_at_hard_points(name):
    """The mpmath stand-in's rules, by forward mode, against the interval engine's:
    two implementations, rounded alike in every format."""
    from harness.inputs.floats import FORMATS
    from harness.truth.ball import solve_grid
    from harness.truth.flat_reference import _FlatReference
    from harness.truth.table import decode, encode

    fn, xs = SPECIAL[name]
    records, left = solve_grid(fn, np.array(xs)[:, None], np.ones(len(xs)), [True])
    assert left == []
    flat = _FlatReference(exact(fn), ((),), 1)
    for row, x in enumerate(xs):
        truth = solve_point(flat, [x], [1.0], [harness.domains.real()])
        a, b = decode(records[row]), decode(encode(truth))
        assert truth.method == "forward mode", x
        for f in FORMATS.values():
            assert np.array_equal(a.value_in(f), b.value_in(f)) and np.array_equal(a.grad_in(f), b.grad_in(f)), \
                (x, f.name)


# -- the stand-in -----------------------------------------------------------------------------------------

def test_broadcasting_and_scalars_mixed_with_tensors():
    ref = exact(lambda x, row: x * row + torch.tensor([[1.0], [2.0]]) + 0.5 - 2 * torch.tensor(3.0))
    got = at(ref, [mpf(1), mpf(2), mpf(3)], [[mpf(10)], [mpf(20)]])
    assert got == [[10 + 1 - 5.5, 20 + 1 - 5.5, 30 + 1 - 5.5], [20 + 2 - 5.5, 40 + 2 - 5.5, 60 + 2 - 5.5]]


def test_integer_and_boolean_tensors():
    def fn(x):
        mask = x > 0
        count = mask.sum()                   # an integer tensor
        assert count.dtype == torch.int64 and mask.dtype == torch.bool
        index = torch.arange(3) * 2 // 2     # integers stay integers
        both = mask & (x < 5) | ~mask        # logical operations on masks
        return x[mask].sum() / count + x[index].sum() + both.float().sum() + mask.long().sum()
    got = at(exact(fn), [mpf(-1), mpf(2), mpf(7)])
    assert got == (2 + 7) / 2 + 8 + 2 + 2


def test_python_control_flow_on_a_zero_d_stand_in():
    ref = exact(lambda x: x if x > 0 else -x)
    assert at(ref, mpf(-3)) == 3 and at(ref, mpf(2)) == 2


def test_in_place_methods_mutate_the_stand_in_and_its_views():
    def fn(x):
        y = x.clone()
        y.add_(1).mul_(2)
        y[0] = 10
        y[1:].clamp_(max=5)
        y[2].sub_(1)                      # a view of one element writes through
        y += torch.tensor([0.0, 0.5, 0.25])
        x.exp_()                          # the input itself
        return y + x.log()
    assert at(exact(fn), [mpf(1), mpf(2), mpf(3)]) == [11, 5.5 + 2, 4.25 + 3]


def test_indexing_and_item_assignment_into_new_tensors():
    def fn(a):
        padded = a.new_full((a.shape[0], a.shape[1] + 2), 0.0)
        padded[:, 1:-1] = a
        padded[a[:, :1].expand(-1, 4) > 1] = -1.0
        return padded
    got = at(exact(fn), [[mpf(1), mpf(2)], [mpf(3), mpf(4)]])
    assert got == [[0, 1, 2, 0], [-1, -1, -1, -1]]


def test_an_unknown_operation_names_itself_and_the_way_out():
    with pytest.raises(ExactUnsupported, match=r"torch\.special\.bessel_j0 \(special_bessel_j0\).*mpmath reference"):
        at(exact(lambda x: torch.special.bessel_j0(x)), mpf(1))
    with pytest.raises(ExactUnsupported, match=r"torch\.Tensor\.histc .*mpmath reference"):
        at(exact(lambda x: x.histc()), [mpf(1)])
    with pytest.raises(ExactUnsupported, match="float"):
        at(exact(lambda x: math.exp(x)), mpf(1))   # a double would round it


class ScaledExp(torch.autograd.Function):
    """exp(k x) with a backward; its forward, run by exact, is the reference."""

    @staticmethod
    def forward(ctx, x, k):
        ctx.save_for_backward(x)
        ctx.mark_non_differentiable(x)
        ctx.k = k
        return torch.exp(k * x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * ctx.k * torch.exp(ctx.k * x), None


class Square(torch.autograd.Function):
    @staticmethod
    def forward(x):
        return x * x

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(*inputs)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return 2 * x * g


BOUND_BEFOREHAND = ScaledExp.apply


def test_a_custom_function_forward_runs_on_the_stand_ins():
    assert at(exact(lambda x: ScaledExp.apply(x, 3) + Square.apply(x)), mpf(2)) == at(lambda: mpmath.exp(6) + 4)
    assert at(exact(functools.partial(ScaledExp.apply, k=2)), mpf(1)) == at(lambda: mpmath.exp(2))
    assert at(exact(Square.apply), mpf(3)) == 9
    assert at(exact(lambda x: BOUND_BEFOREHAND(x, 1)), mpf(0)) == 1   # bound outside, runs torch's apply
    # Outside a reference torch's own apply is back.
    x = torch.tensor(2.0, requires_grad=True)
    ScaledExp.apply(x, 3).backward()
    assert torch.isclose(x.grad, 3 * torch.exp(torch.tensor(6.0)))


def test_precision_follows_workprec():
    ref = exact(lambda x: torch.log1p(x))
    x = mpf(1e-30)
    for bits in (53, 200, 700):
        assert at(ref, x, bits=bits) == at(mpmath.log1p, x, bits=bits)
    assert at(ref, x, bits=200) != at(ref, x, bits=100)


def test_no_finite_precision_rounds_the_formula_away():
    # 1 - sigmoid(1e30) needs 1e30 bits as a difference; it is sigmoid(-1e30).
    assert agree(at(exact(lambda x: -torch.log(1 - torch.sigmoid(x))), mpf(1e30), bits=160), mpf(1e30))
    # log(1 + exp(x)) at x = -1e30 is exp(-1e30), not log(1) = 0.
    with mpmath.workprec(160):
        assert agree(at(exact(lambda x: torch.log(1 + torch.exp(x))), mpf(-1e30), bits=160), mpmath.exp(-1e30))
    # (mu + s) - mu is s exactly, 900 bits below mu, at 160 bits.
    ref = exact(lambda mu, s: ((mu + s) - mu) / s)
    assert at(ref, mpf(2.0 ** 768), mpf(2.0 ** -144), bits=160) == 1
    # Nothing overflows; x / 0 is the limit, log(0) is -inf.
    assert agree(at(exact(lambda x: torch.exp(x) / torch.exp(x - 1)), mpf(1e6)), at(lambda: +mpmath.e))
    assert at(exact(lambda x: 1 / x), mpf(0)) == mpmath.inf
    assert mpmath.isnan(at(exact(lambda x: x / x), mpf(0)))
    assert at(exact(lambda x: torch.log(x)), mpf(0)) == -mpmath.inf


def test_the_truth_engine_resolves_what_needs_1e30_bits_as_a_difference():
    truth = solve_point(lambda v: [LOSS_NEG(v[0])], [1e30], [1.0], [harness.domains.real()])
    assert float(truth.value[0]) == 1e30 and float(truth.grad[0]) == 1.0 and truth.bits <= 640


LOSS_NEG = exact(lambda x: -torch.log(1 - torch.sigmoid(x)))


def test_where_discards_the_branch_off_the_domain_and_the_engine_reports_a_kept_one():
    ref = exact(lambda x: torch.where(x > 0, torch.log(x), torch.zeros_like(x)))
    assert at(ref, mpf(-2)) == 0
    # Off its real domain a function is NaN, as torch's: the branch not taken may
    # pass through more operations first (kornia's rotation_matrix_to_quaternion).
    clamped = exact(lambda x: torch.where(x > 0, torch.clamp(torch.sqrt(x), min=1e-30), -x))
    assert at(clamped, mpf(-4)) == 4 and at(clamped, mpf(4)) == 2
    with pytest.raises(harness.CaseError, match=r"the reference is NaN .* \(narrow the domain"):
        harness.certify(harness.Case("log.negative", torch.log, exact(lambda x: torch.log(x))), torch.float16)


def test_fingerprint_is_stable_across_processes_and_follows_the_formula():
    ref = exact(naive_softplus)
    code = ("from harness.truth.cache import fingerprint; from harness.truth.exact import exact; import tests.truth.test_exact as t;"
            "print(fingerprint(exact(t.naive_softplus)))")
    env = dict(os.environ, PYTHONHASHSEED="12345")
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env,
                           cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    assert other.stdout.strip() == fingerprint(ref)
    assert fingerprint(exact(lambda x: torch.log(1 + torch.exp(x)))) == fingerprint(ref)
    assert fingerprint(exact(lambda x: torch.log(2 + torch.exp(x)))) != fingerprint(ref)
    assert fingerprint(exact(ScaledExp.apply)) != fingerprint(exact(Square.apply))


def naive_softplus(x):
    return torch.log(1 + torch.exp(x))


# -- agreement with every family's hand-written reference -------------------------------------------------

def elementwise_points(dtype=torch.float64, every: int = 1):
    """~25 inputs of the elementwise extreme grid, ±inf and 0 among them."""
    grid = harness.grids.extreme(dtype)
    grid = grid[~np.isnan(grid)]
    picks = grid[:: max(1, len(grid) // 18)]
    extra = [0.0, 1e30, -1e30, 700.0, -700.0, 40.0, -40.0, math.inf, -math.inf]
    return np.unique(np.concatenate([picks, extra]))[::every]


def assert_agree(formula, reference, points):
    """exact(formula) at 256 bits against the reference at the engine's
    ZERO_CHECK_BITS: hand-written references round 1 + exp(-700) to 1 at 256
    bits too, where the engine raises the precision before it trusts them."""
    ref = exact(formula)
    for point in points:
        inputs = [mp_input(v) for v in point]
        got, want = at(ref, *inputs, bits=BITS), at(reference, *inputs, bits=ZERO_CHECK_BITS)
        assert agree(got, want), (point, got, want)


def scalar_points(*columns):
    return [tuple(p) for p in zip(*columns)]


def test_softplus_family():
    from cases import softplus as cases
    from references import softplus as ref
    xs = [(x,) for x in elementwise_points()]
    assert_agree(cases.naive, ref.softplus, xs)
    assert_agree(lambda x: F.softplus(x), ref.softplus, xs)
    # Finite pattern points; none whose log(exp(x)) needs more than 256 bits to tell from 0.
    grid = [p.arrays for p in structured_grid(((2, 3),), torch.float64)
            if np.isfinite(p.arrays[0]).all() and not ((p.arrays[0] != 0) & (abs(p.arrays[0]) < 1e-60)).any()][::7]
    assert_agree(cases.logsumexp_naive, ref.logsumexp, grid)
    assert_agree(lambda a: torch.logsumexp(a, -1), ref.logsumexp, grid)


def test_sigmoid_loss_family():
    from cases import sigmoid_loss as cases
    from references import sigmoid_loss as ref
    xs = [(x,) for x in elementwise_points()]
    assert_agree(cases.loss_pos_naive, ref.loss_pos, xs)
    assert_agree(cases.loss_neg_naive, ref.loss_neg, xs)
    grid = [p for p in cases.vector_grid(torch.float64) if not np.isnan(p).any()]
    assert_agree(cases.skipgram_pos_naive, ref.skipgram_pos, grid)
    assert_agree(cases.skipgram_neg_naive, ref.skipgram_neg, grid)


def test_bernoulli_family():
    from references.bernoulli import log_likelihood

    def naive(logit, obs):
        return obs * torch.log(torch.sigmoid(logit)) + (1 - obs) * torch.log(1 - torch.sigmoid(logit))
    logits = elementwise_points(every=2)
    points = [(z, o) for z in logits for o in (0.0, 1.0, 2.0 ** -1074, 0.25, 1 - 2.0 ** -53)]
    assert_agree(naive, log_likelihood, points)
    assert_agree(lambda z, o: -F.binary_cross_entropy_with_logits(z, o, reduction="none"), log_likelihood, points)


def test_sparsity_family():
    from cases import sparsity as cases
    from references import sparsity as ref
    xs = [(x,) for x in elementwise_points()]
    assert_agree(cases.kl_naive, functools.partial(ref.kl_sparsity, p=cases.P), xs)
    assert_agree(cases.kl_naive, functools.partial(ref.kl_sparsity, p=cases.P), cases.near_minimum(torch.float64)[::4])
    assert_agree(cases.student_t_naive, ref.student_t, xs)
    assert_agree(cases.mean_activation_naive, ref.mean_activation, cases.batch_grid(torch.float64))


def test_hand_derived_family():
    from cases import hand_derived as cases
    from references import hand_derived as ref
    assert_agree(cases.linear_regression_mse, cases._line, cases.line_grid(torch.float64)[::3])
    network = cases.network_grid(torch.float64)[::2]

    def squared_error(w1, w2, a0, y):
        return (torch.sigmoid(w2 * torch.sigmoid(w1 * a0)) - y) ** 2 / 2

    def cross_entropy(w1, w2, a0, y):
        a2 = torch.sigmoid(w2 * torch.sigmoid(w1 * a0))
        return -(y * torch.log(a2) + (1 - y) * torch.log(1 - a2))
    assert_agree(squared_error, ref.network_squared_error, network)
    assert_agree(cross_entropy, ref.network_cross_entropy, network)
    pairs = cases.pair_grid(torch.float64)[::37]

    def paraboloid(x, y):
        # x_rot**2 = (x + y)**2 / 2 and y_rot**2 = (y - x)**2 / 2: cos(pi/4)**2 = 1/2, exactly.
        return (x + y) ** 2 / 2 / cases.C_DIFF_SIGN + (y - x) ** 2 / 2 / cases.C_SAME_SIGN
    assert_agree(paraboloid, cases._paraboloid, pairs)
    assert_agree(cases.negative_penalty, cases._penalty, pairs)


def test_lrn_family():
    from cases import lrn as cases
    from references.lrn import lrn_reference
    for params in (cases.P5, cases.P3_HALF, cases.P3_K0, cases.P2, cases.P4):
        size, alpha, beta, k = params
        bind = {"size": size, "alpha": alpha, "beta": beta, "k": k}
        points = [p for p in cases.extreme_grid(size, k)(torch.float64) if not np.isnan(p[0]).any()][::2]
        points += cases.peaks_grid(size, k)(torch.float64)[:1]
        if size % 2:
            # torch's window is cuDNN's for odd sizes only.
            assert_agree(functools.partial(F.local_response_norm, **bind), lrn_reference(**bind), points)
        else:
            # lrn_plain's alpha / size is a Python float: exact for these sizes only.
            assert_agree(functools.partial(cases.lrn_plain, **bind), lrn_reference(**bind), points)


def test_elbo_family():
    from cases import elbo as cases
    from references.elbo import iw_elbo, mean_log_weight
    grid = cases.weight_grid(torch.float64)
    assert_agree(cases.iw_elbo_naive, iw_elbo, grid)
    # log K from a stand-in: torch.log(torch.tensor(2.0)) would be a float32 constant.
    assert_agree(lambda log_w: torch.logsumexp(log_w, -1) - torch.log(torch.full_like(log_w[..., 0], log_w.shape[-1])),
                 iw_elbo, grid)
    assert_agree(lambda log_w: torch.mean(log_w, -1), mean_log_weight, grid)


def test_iwae_family():
    from cases import iwae as cases
    from references.iwae import reparameterized_log_density

    def gaussian(mu, log_std, eps):
        # The thread's formula; log(2 pi) from a stand-in (a float constant would round it).
        z = mu + torch.exp(log_std) * eps
        two_pi = 8 * torch.atan(torch.ones_like(mu))
        return -((z - mu) / torch.exp(log_std)) ** 2 / 2 - log_std - torch.log(two_pi) / 2
    assert_agree(gaussian, reparameterized_log_density, cases.gaussian_grid(torch.float64)[::2])

    def tiny(enc_w, enc_b, dec_w, dec_b):
        x, eps = torch.tensor(cases.IMAGE), torch.tensor(cases.EPS)         # (D,), (K, L)
        h = enc_w @ x + enc_b
        latent = h.shape[0] // 2
        mu, log_std = h[:latent], h[latent:]
        z = mu + torch.exp(log_std) * eps                                    # (K, L)
        theta = torch.sigmoid(z @ dec_w.T + dec_b)                           # (K, D)
        log_px = torch.sum(x * torch.log(theta) + (1 - x) * torch.log(1 - theta), -1)
        half_log_2pi = torch.log(8 * torch.atan(torch.ones_like(mu[0]))) / 2
        log_pz = torch.sum(-z ** 2 / 2 - half_log_2pi, -1)
        log_qz = torch.sum(-((z - mu) / torch.exp(log_std)) ** 2 / 2 - log_std - half_log_2pi, -1)
        return torch.log(torch.mean(torch.exp(log_px + log_pz - log_qz)))
    assert_agree(tiny, cases.TINY, cases.parameter_grid(torch.float64)[::2])


def test_norm2_family():
    from cases import norm2 as cases
    from references.norm2 import log_mean_squared_norm, mean_squared_norm
    grid = [p.arrays for p in structured_grid(((2, 3),), torch.float64) if np.isfinite(p.arrays[0]).all()][::5]
    assert_agree(cases.norm2_plain, mean_squared_norm, grid)
    assert_agree(cases.norm2_vector_norm, mean_squared_norm, grid)
    assert_agree(lambda d: torch.log(torch.sum(d ** 2, -1).mean()), log_mean_squared_norm, grid)


# -- end to end ---------------------------------------------------------------------------------------------

def stable_softplus(x):
    return x.clamp(min=0) + torch.log1p(torch.exp(-x.abs()))


class StableSoftplus(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return stable_softplus(x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * torch.sigmoid(x)


def test_certified_against_exact_of_the_naive_formula():
    reference = exact(lambda x: torch.log(1 + torch.exp(x)))
    stable = harness.certify(harness.Case("softplus.stable-exact", StableSoftplus.apply, reference=reference),
                             torch.float16)
    assert stable.ok, stable
    naive = harness.certify(harness.Case("softplus.naive-exact", naive_softplus, reference=reference),
                            torch.float16)
    assert not naive.ok and "non-finite" in naive.kinds


# -- cost --------------------------------------------------------------------------------------------------

def softplus_points() -> list[float]:
    grid = harness.grids.extreme(torch.float32)
    grid = grid[~np.isnan(grid)]
    return [float(x) for x in grid[:: len(grid) // 50][:50]]


@pytest.mark.benchmark(group="exact")
@pytest.mark.parametrize("reference", ["hand-written", "exact"])
def test_benchmark_truth_cost(benchmark, reference):
    """The truths of 50 softplus points (float32 extreme grid) from
    ``references.softplus.softplus`` and from ``exact(log(1 + exp(x)))``;
    docs/exact.md has the measured figures (the issue allows 3x)."""
    from references.softplus import softplus
    ref = softplus if reference == "hand-written" else exact(naive_softplus)
    calls = []

    def flat(v):
        calls.append(1)
        return [ref(v[0])]
    points = softplus_points()
    truths = benchmark(lambda: [solve_point(flat, [x], [1.0], [harness.domains.real()]) for x in points])
    benchmark.extra_info.update(reference=reference, points=len(points), reference_calls=len(calls))
    assert len(truths) == len(points)


@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
def test_the_dominant_entry_of_a_softmax_keeps_its_derivative_past_every_precision_tried(op):
    # Gap 707: the others' weights sum to 2**-1020, which 1 - s_dominant loses at
    # 160 and 600 bits alike; both readings agreed on a derivative 2.5x off.
    from harness.truth.flat_reference import _FlatReference
    from harness.inputs.domains import real
    from harness.truth.point import solve_point

    x = [-1.5, -1.5, 1.75, 2.0, 1.875, -1.0, 1.5, 707.2032713517042]
    g = [0.5, 1.25, 1.625, 1.875, 1.875, 1.5, 1.25, 1.0]
    fn = getattr(torch.nn.functional, op)
    truth = solve_point(_FlatReference(harness.exact(lambda v: fn(v, -1)), ((8,),), 8), x, g, [real()] * 8)
    with mpmath.workprec(3000):
        v = [mpmath.mpf(a) for a in x]
        e = [mpmath.exp(a - v[-1]) for a in v]
        p = [a / mpmath.fsum(e) for a in e]
        if op == "softmax":   # p_7 sum_j p_j (g_7 - g_j)
            expected = p[7] * mpmath.fsum(p[j] * (g[7] - g[j]) for j in range(8))
        else:                 # g_7 - p_7 sum_j g_j
            expected = g[7] - p[7] * mpmath.fsum(g)
        assert abs(truth.grad[7] - expected) <= abs(expected) * mpmath.mpf(2) ** -60


def test_fmax_and_fmin_let_a_nan_lose_as_torch_does_where_maximum_propagates_it():
    nan, one = mpmath.nan, mpmath.mpf(1)
    assert harness.exact(torch.fmax)(nan, one) == 1 and harness.exact(torch.fmin)(one, nan) == 1
    assert mpmath.isnan(harness.exact(torch.maximum)(nan, one))
    # 0/0 inside the formula: torch's fmax keeps the number, and so does the truth.
    assert harness.exact(lambda x: torch.fmax(x / x - x / x, torch.zeros_like(x) + 2))(mpmath.mpf(0)) == 2
