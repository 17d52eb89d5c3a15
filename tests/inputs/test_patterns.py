"""The default structured grid: named patterns from shapes, per dtype and domain,
corners of several inputs, relations between inputs; and what certify makes of it."""

import math

import mpmath
import numpy as np
import pytest
import torch

import harness
from harness import domains
from harness.errors import CaseError
from harness.inputs.patterns import input_patterns, structured_grid

DTYPES = (torch.float64, torch.float32, torch.float16, torch.bfloat16)

#: Every pattern a real row of 8 gets (issue: where reductions break).
NAMED = {"typical", "dominant first entry", "dominant last entry", "tie of two maxima", "constant row",
         "large offset, spread of ULPs", "entries spread over the binades", "mixed signs summing to about 0",
         "sum of exp at the overflow edge", "+inf entry", "-inf entry", "+inf and -inf entries",
         "row all -inf (masked)", "-inf entries but one (masked)", "NaN entry", "all-zero row", "zero entries",
         "subnormal entries", "largest finite entries"}


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_every_pattern_is_in_the_grid_of_every_dtype_exactly_in_the_dtype(dtype):
    points = structured_grid(((4, 8),), dtype)
    assert {p.pattern for p in points} >= NAMED
    assert {p.pattern for p in points if p.pattern.endswith("rows of 1")}   # the short rows too
    for p in points:
        (a,) = p.arrays
        assert a.shape in ((4, 8), (4, 1), (4, 2))
        assert np.array_equal(torch.from_numpy(a).to(dtype).double().numpy(), a, equal_nan=True)
    again = structured_grid(((4, 8),), dtype)
    assert all(np.array_equal(p.arrays[0], q.arrays[0], equal_nan=True) for p, q in zip(points, again))


def test_a_dominant_entry_sweeps_its_gap_over_the_softmax_edges():
    gaps = {p.parameter for p in structured_grid(((8,),), torch.float32) if p.pattern == "dominant first entry"}
    eps = 2.0 ** -23
    # Where exp(-gap) drops below half an ULP of 1, and where it underflows.
    assert any(abs(g - math.log(2 / eps)) <= 0.5 for g in gaps)
    assert any(abs(g - -math.log(torch.finfo(torch.float32).tiny)) <= 0.5 for g in gaps)
    masked = [p for p in structured_grid(((4, 8),), torch.float32) if p.pattern == "row all -inf (masked)"][0]
    assert np.isneginf(masked.arrays[0][0]).all() and np.isfinite(masked.arrays[0][1:]).all()   # one row masked


def test_domains_shape_the_patterns():
    positive = input_patterns((6,), torch.float32, domains.positive())
    assert all((p.arrays[0] > 0).all() for p in positive)
    labels = input_patterns((5,), torch.float32, domains.choice(0, 1, 2))
    assert all(np.isin(p.arrays[0], [0, 1, 2]).all() for p in labels)
    simplex = input_patterns((3, 4), torch.float64, domains.simplex())
    assert {"one-hot", "nearly one-hot", "uniform", "Dirichlet draw"} <= {p.pattern for p in simplex}
    for p in simplex:
        rows = p.arrays[0]
        assert ((rows >= 0) & (rows <= 1)).all() and np.allclose(rows.sum(-1), 1.0, atol=1e-12)


def test_several_inputs_meet_typical_values_and_every_corner():
    points = structured_grid(((4, 8), (4,)), torch.float32, (domains.real(), domains.choice(*range(8))))
    assert {p.input for p in points} == {0, 1, None}
    corners = [p for p in points if p.input is None]
    assert any(np.isneginf(p.arrays[0]).any() and p.pattern.endswith("the same label") for p in corners)
    # Input 0's dominant entry sweep, input 1 held at typical labels.
    sweep = [p for p in points if p.input == 0 and p.pattern == "dominant first entry"]
    assert len(sweep) > 10 and all(np.isin(p.arrays[1], range(8)).all() for p in sweep)


def test_a_relation_keeps_the_grid_inside_it():
    points = structured_grid(((3,), (3,)), torch.float64, relation=lambda x, y: x > y)
    assert points and all((p.arrays[0] > p.arrays[1]).all() for p in points)


# -- certify on the default grid -------------------------------------------------------------------------------

class SoftmaxLoss(torch.autograd.Function):
    """-log softmax(z)[0] with the backward ``exp(z - lse) - onehot``: ``lse - z[0]``
    loses every digit when z[0] dominates, and ``p[0] - 1`` cancels to 0."""

    @staticmethod
    def forward(ctx, z):
        lse = torch.logsumexp(z, -1)
        ctx.save_for_backward(z, lse)
        return lse - z[..., 0]

    @staticmethod
    def backward(ctx, g):
        z, lse = ctx.saved_tensors
        p = torch.exp(z - lse[..., None])
        p[..., 0] -= 1
        return g[..., None] * p


def cross_entropy_reference():
    return harness.exact(lambda z: -torch.log_softmax(z, -1)[..., 0])


def test_a_structured_case_needs_only_its_shape_and_reads_in_patterns():
    case = harness.Case("ce.naive", SoftmaxLoss.apply, cross_entropy_reference(), shape=(8,))
    report = harness.certify(case, torch.float32)
    assert "silent-zero" in report.kinds and "non-finite" in report.kinds
    words = [r.words(report.feature_name) for r in report.regions]
    dominant = [w for w in words if w.startswith("dominant first entry, gap in [") and "[silent-zero]" in w]
    assert dominant, words
    assert len(set(words)) == len(words)                       # no line twice
    # A row all -inf (masked) has no truth: its limit depends on how the entries go out.
    masked = [e for e in report.indeterminate if e.point[0].size == 8 and np.isneginf(e.point[0]).all()]
    assert {e.quantity for e in masked} == {"value"} | {f"gradient[{i}]" for i in range(8)}
    # The limits along the paths read: -7/8 on the diagonal, -1 with the first entry going out faster.
    assert [(e.lo, e.hi) for e in masked if e.quantity == "gradient[0]"] == [(-1.0, -0.875)]
    assert report.failures[0].finite_difference is not None


class StableSoftmaxLoss(torch.autograd.Function):
    """The same loss as (m - z[0]) + log1p(sum of the others' exp(z - m)), m the
    maximum: the sum never forms 1 + tiny, and at a dominant z[0] the backward's
    p[0] - 1 is -rest / (1 + rest)."""

    @staticmethod
    def forward(ctx, z):
        m, k = z.max(-1, keepdim=True)
        e = torch.exp(z - m)
        rest = e.scatter(-1, k, 0).sum(-1, keepdim=True)
        ctx.save_for_backward(e, rest, k)
        return ((m - z[..., :1]) + torch.log1p(rest)).squeeze(-1)

    @staticmethod
    def backward(ctx, g):
        e, rest, k = ctx.saved_tensors
        p = e / (1 + rest)
        p0 = torch.where(k == 0, -rest / (1 + rest), p[..., :1] - 1)
        return g[..., None] * torch.cat([p0, p[..., 1:]], -1)


def test_the_default_grid_certifies_a_stable_softmax_loss_and_convicts_log_softmax():
    finite = domains.interval(-math.inf, math.inf)
    case = harness.Case("ce.stable", StableSoftmaxLoss.apply, cross_entropy_reference(), shape=(8,), domain=finite)
    for dtype in DTYPES:
        assert harness.certify(case, dtype).ok
    # log_softmax's z[0] - lse cancels where z[0] dominates: the loss reads 0 for a truth of 1e-16.
    textbook = harness.Case("ce.log_softmax", lambda z: -torch.log_softmax(z, -1)[..., 0], cross_entropy_reference(),
                            shape=(8,), domain=finite)
    report = harness.certify(textbook, torch.float64)
    assert "silent-zero" in report.kinds
    assert any(r.where.startswith("dominant first entry") for r in report.regions if r.kind == "silent-zero")


def test_inputs_that_constrain_each_other_are_certified_inside_their_relation():
    def log_diff_exp(x, y):
        # log(exp(x) - exp(y)) = x + log(-expm1(y - x)) for x > y: no overflow, no cancellation.
        return x + torch.log(-torch.expm1(y - x))

    def reference(x, y):
        return mpmath.log(mpmath.exp(x) - mpmath.exp(y))
    without = harness.Case("logdiffexp", log_diff_exp, reference, dtypes=(torch.float64,))
    with pytest.raises(CaseError, match=r"relation=lambda x, y: x > y"):
        harness.certify(without, torch.float64, grid_size=1)
    # The difference engine's stencils see domains, not relations: at (-0, -5e-324) they cross x = y.
    crossing = harness.Case("logdiffexp", log_diff_exp, reference, relation=lambda x, y: x > y)
    with pytest.raises(CaseError, match="write the reference with harness.exact"):
        harness.certify(crossing, torch.float64, grid_size=1)
    exact = harness.exact(lambda x, y: torch.log(torch.exp(x) - torch.exp(y)))
    case = harness.Case("logdiffexp", log_diff_exp, exact, relation=lambda x, y: x > y)
    report = harness.certify(case, torch.float64, grid_size=1)
    assert report.counts["judged"] > 1000
    assert "inconsistent" not in report.kinds     # no stencil crossed x = y


def test_the_number_of_inputs_comes_from_the_signature():
    case = harness.Case("hypot", lambda x, y: torch.hypot(x, y), None)
    assert case.arity == 2 and case.names_for(2) == ("x", "y")
    report = harness.certify(case, torch.float32, grid_size=1)
    assert report.counts["entries"] > 0
    unknown = harness.Case("add", lambda *xs: torch.add(*xs), None)
    with pytest.raises(CaseError, match=r"domain=\(d1, d2, \.\.\.\)"):
        harness.certify(unknown, torch.float32, grid_size=1)


def test_shape_and_grid_are_exclusive_and_shapes_are_checked():
    with pytest.raises(TypeError, match="not both"):
        harness.Case("x", torch.exp, None, shape=(3,), grid=lambda dtype: [np.ones(3)])
    with pytest.raises(TypeError, match="tuple of positive ints"):
        harness.Case("x", torch.exp, None, shape=(0,))


def test_a_positive_domain_names_its_patterns_by_the_values_it_holds():
    # Entries moved into the domain as magnitudes: a "tied value" of -1e308 would name no entry there.
    pts = structured_grid(((4,),), torch.float64, (domains.positive(),))
    valued = [p for p in pts if p.parameter_name in ("tied value", "constant", "offset")]
    assert valued and all(p.parameter >= 0 for p in valued)
    tie = next(p for p in valued if p.pattern == "tie of two maxima" and p.parameter > 1e300)
    assert np.sort(tie.arrays[0])[-2:].tolist() == [tie.parameter] * 2
