"""harness.truth.derivative_truth: truths of exact references by forward mode.

Two engines, one truth: where both resolve, forward-mode truths of
``exact(formula)`` and the difference engine's truths of each family's
hand-written reference round alike in every format. Planted multi-input
references that swallow an input (``a + exp(b)``, ``exp(x) + log1p(y)``, a
sum dominated by one entry, logaddexp at gaps of 1e300) are certified: with
``exact`` every entry is judged; with hand-written references nothing fails
and what the differences cannot resolve is counted, never read as 0."""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest
import torch

import harness
from harness.truth.flat_reference import _FlatReference
from harness.inputs.domains import real
from harness.truth.exact import exact
from harness.judging.judge import INDETERMINATE_WORDS, UNRESOLVED, UNSETTLED_WORDS
from harness.inputs.floats import fmt
from harness.truth.mpmath_engine import PointTruth, ReferenceFailure
from harness.truth.point import solve_point
from harness.truth.table import decode, encode
from tests.truth import test_exact

FORMATS = [fmt(d) for d in (torch.float64, torch.float32, torch.float16, torch.bfloat16)]


def truth(reference, point, labels=()):
    """The engine's truth of ``reference`` at ``point`` (a tuple of inputs;
    ``labels``: the positions of discrete inputs, not differentiated)."""
    shapes = tuple(np.shape(v) for v in point)
    with mpmath.workprec(64):
        out = reference(*[test_exact.mp_input(v) for v in point])
    size = int(np.size(np.array(out, dtype=object))) if isinstance(out, list) else 1
    flat = _FlatReference(reference, shapes, size)
    x = [float(v) for a in point for v in np.ravel(a)]
    domains = [harness.domains.choice(*np.ravel(a)) if k in labels else real()
               for k, a in enumerate(point) for _ in range(np.size(a))]
    return solve_point(flat, x, [1.0] * size, domains)


def same_rounding(a, b) -> tuple[int, list]:
    """(entries compared, (format, quantity, rounded a, rounded b) where they round differently)."""
    ta, tb = decode(encode(a)), decode(encode(b))
    compared, differ = 0, []
    for f in FORMATS:
        for name, u, v in (("value", ta.value_in(f), tb.value_in(f)), ("grad", ta.grad_in(f), tb.grad_in(f))):
            both = ~np.isnan(u) & ~np.isnan(v)
            compared += int(both.sum())
            for j in np.flatnonzero(both & (u != v)):
                exact_a, exact_b = (a.value, b.value) if name == "value" else (a.grad, b.grad)
                # The difference engine verifies 66 bits, not the rounding: a
                # truth within 2**-66 of a rounding boundary may round either
                # way (d/dx of the paraboloid at (-1.676e154, 4.3e-78) is
                # -1.25698199343211825480e154 by hand, forward mode's
                # rounding). Such a near tie is not a disagreement.
                if not test_exact.agree(exact_a[j], exact_b[j]):
                    differ.append((f.name, name, u[j], v[j]))
    return compared, differ


@pytest.fixture
def engines(monkeypatch):
    """Each family test's (formula, hand-written reference, points) solved by
    both engines instead of compared as values."""
    seen = {"points": 0, "forward": 0, "compared": 0}

    def both_engines(formula, reference, points):
        ref = exact(formula)
        points = list(points)
        # Inputs that take a few integer values over a family's grid are its
        # labels (the network's a0 and y): references branch on them.
        labels = [k for k in range(len(points[0]))
                  if len({float(v) for p in points for v in np.ravel(p[k])}) <= 3
                  and all(float(v).is_integer() for p in points for v in np.ravel(p[k]))]
        for point in points[::3]:
            if any(np.isnan(np.asarray(v, dtype=float)).any() for v in point):
                continue
            try:
                by_differences = truth(reference, point, labels)
            except ReferenceFailure:
                continue   # a stencil left the family's domain (real() here): nothing to compare
            by_rules = truth(ref, point, labels)
            seen["points"] += 1
            seen["forward"] += by_rules.method == "forward mode"
            compared, differ = same_rounding(by_rules, by_differences)
            seen["compared"] += compared
            assert not differ, (point, differ, by_rules.value, by_differences.value, by_rules.grad, by_differences.grad)
    monkeypatch.setattr(test_exact, "assert_agree", both_engines)
    return seen


@pytest.mark.parametrize("family", ["softplus", "sigmoid_loss", "bernoulli", "sparsity", "hand_derived",
                                    "elbo", "norm2"])
def test_forward_mode_and_differences_round_alike_on_every_family(engines, family):
    getattr(test_exact, f"test_{family}_family")()
    assert engines["points"] >= 5
    # Most points are smooth for the rules; the rest went to the differences.
    assert engines["forward"] >= engines["points"] // 2
    assert engines["compared"] > 0


# -- planted two-input references that swallow an input ---------------------------------------------------

def a_plus_exp(a, b):
    return a + torch.exp(b)


def exp_plus_log1p(x, y):
    return torch.exp(x) + torch.log1p(y)


def dominated_sum(z):
    return torch.sum(z)


def planted():
    """(name, forward, hand-written reference, domain)."""
    return [
        ("a + exp(b)", a_plus_exp, lambda a, b: a + mpmath.exp(b), (real(), real())),
        ("exp(x) + log1p(y)", exp_plus_log1p, lambda x, y: mpmath.exp(x) + mpmath.log(1 + y),
         (real(), harness.domains.interval(-1, math.inf))),
        ("logaddexp", torch.logaddexp, lambda x, y: mpmath.log(mpmath.exp(x) + mpmath.exp(y)), (real(), real())),
    ]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("name, forward, reference, domain", planted(), ids=[p[0] for p in planted()])
def test_planted_exact_references_judge_every_entry(name, forward, reference, domain, dtype):
    case = harness.Case(name, forward, exact(forward), domain=domain)
    report = harness.certify(case, dtype=dtype, device="cpu")
    assert report.counts.get(UNRESOLVED, 0) == 0
    # Every entry has a truth but where both inputs are infinite and the limit
    # depends on the path: a + exp(b) at (-inf, inf), logaddexp's gradient at
    # (-inf, -inf) and (inf, inf) (1/2 on the diagonal, 0 or 1 off it:
    # harness.truth.limits).
    # (Where the value has no limit, the gradient is not judged either: unsettled.)
    assert report.counts["judged"] + report.counts["gradients at NaN inputs"] + report.counts[INDETERMINATE_WORDS] \
        + report.counts[UNSETTLED_WORDS] == report.counts["entries"]
    assert report.counts[UNSETTLED_WORDS] == (2 if name == "a + exp(b)" else 0)
    assert all(all(math.isinf(v) for v in e.point) for e in report.indeterminate)
    expected = {"a + exp(b)": {((-math.inf, math.inf), "value")},
                "logaddexp": {(corner, f"d/dx{i}") for corner in ((-math.inf, -math.inf), (math.inf, math.inf))
                              for i in (0, 1)}}
    assert {(e.point, e.quantity) for e in report.indeterminate} == expected.get(name, set()), str(report)
    # What fails is the value where exp(b) overflows the dtype on its own
    # (a = -3.4e38, b = 88.72 in float32: -3.4e38 + exp(b) is 5.3e33, torch's
    # exp(b) is inf), a real defect of the formula in the dtype.
    overflow = math.log(torch.finfo(dtype).max)
    for f in report.failures:
        assert f.quantity == "value" and not math.isfinite(f.claimed) and f.point[-1] > overflow, str(report)


def sampled_grid(domains, every: int = 60):
    """Every ``every``-th point of the float64 product grid (the full 3,000
    by differences take minutes: exp of 1e308 at thousands of bits), with
    the points where differences made up derivatives, as structured points."""
    def grid(dtype):
        points = harness.grids.product(dtype, domains, 1)[::every].tolist()
        points += [[-1e-323, 1.7e308], [32768.0, 8.6e-78], [-7.0e9, -6.1e-297], [53760.0, -0.9999999999999999]]
        return [tuple(np.array(v, dtype=np.float64) for v in p) for p in points
                if all(d.contains(v) for d, v in zip(domains, p))]
    return grid


@pytest.mark.parametrize("name, forward, reference, domain", planted(), ids=[p[0] for p in planted()])
def test_planted_hand_written_references_fail_nothing_and_count_what_is_unresolved(name, forward, reference,
                                                                                  domain):
    case = harness.Case(name, forward, reference, domain=domain, grid=sampled_grid(domain))
    report = harness.certify(case, dtype=torch.float64, device="cpu")
    assert report.ok, str(report)
    if name != "logaddexp":   # its terms never dwarf each other past MAX_BITS
        assert report.counts[UNRESOLVED] > 0, report.coverage_line()
        assert "write the reference with harness.exact" in report.coverage_line()


def test_the_issue_points_by_forward_mode():
    """The points where differences made up derivatives, by hand: d/da (a + exp(b)) = 1;
    d/dy (exp(x) + log1p(y)) = 1/(1 + y); exp(-7e9) + log1p(-6.1e-297) = -6.1e-297."""
    t = truth(exact(a_plus_exp), (-1e-323, 1.7e308))
    assert t.method == "forward mode" and t.grad[0] == 1
    t = truth(exact(exp_plus_log1p), (32768.0, 8.6e-78))
    assert t.method == "forward mode" and mpmath.almosteq(t.grad[1], 1 / (1 + mpmath.mpf(8.6e-78)), 2 ** -60)
    t = truth(exact(exp_plus_log1p), (53760.0, -0.9999999999999999))
    assert float(t.grad[1]) == 2.0 ** 53
    t = truth(exact(exp_plus_log1p), (-7.0e9, -6.1e-297))
    assert float(t.value[0]) == -6.1e-297


def test_a_sum_dominated_by_one_entry():
    # d/dz_i sum(z) = 1 for every entry, beside 1e300 or not.
    point = (np.array([1e300, 1.0, -3e-300, 2.0 ** -1074]),)
    t = truth(exact(dominated_sum), point)
    assert t.method == "forward mode" and [float(g) for g in t.grad] == [1.0] * 4


def test_a_flat_stencil_is_unresolved_not_zero_by_differences():
    t = truth(lambda x, y: mpmath.exp(x) + mpmath.log(1 + y), (32768.0, 8.6e-78))
    assert t.method == "differences"
    assert t.unresolved == [False, True] and t.grad[1] is None


def test_the_difference_engine_covers_the_dynamic_range_before_agreement_counts():
    # 1 + y loses y = -6.1e-297 below 990 bits at every precision alike.
    t = truth(lambda x, y: mpmath.exp(x) + mpmath.log(1 + y), (-7.0e9, -6.1e-297))
    assert float(t.value[0]) == -6.1e-297


def test_a_reference_that_computes_in_floats_is_an_error_naming_the_cause():
    case = harness.Case("softplus floats", torch.nn.functional.softplus,
                        lambda x: float(mpmath.log1p(mpmath.exp(x))), domain=harness.domains.interval(-20, 20))
    with pytest.raises(harness.CaseError, match="Python float"):
        harness.certify(case, dtype=torch.float32, device="cpu")


def test_a_switching_point_goes_to_the_differences():
    # The stable softplus is smooth at 0 (derivative 1/2) though its pieces have kinks there.
    t = truth(exact(lambda x: torch.clamp(x, min=0) + torch.log1p(torch.exp(-torch.abs(x)))), (0.0,))
    assert t.method == "differences" and float(t.grad[0]) == 0.5 and t.kink == [False]
    t = truth(exact(lambda x: torch.abs(x)), (0.0,))
    assert t.kink == [True]


def kernel_of_normalised(x):
    """A min-max normalisation into [0, 4] and a kernel of the distance to
    each bin centre that switches at 0 (``abs``) and at 1 (kornia's mutual
    information): the extremes land on both switches exactly."""
    s = (x - x.min()) / (x.max() - x.min()) * 4
    d = (torch.arange(5, dtype=x.dtype)[:, None] - s[None, :]).abs()
    k = torch.where(d < 0.5, 1 - d * d, torch.where(d <= 1.0, (d - 1.5) * (d - 1.5) - 0.2, torch.zeros_like(d)))
    return (k * torch.arange(1, 6, dtype=x.dtype)[:, None]).sum()


def test_a_normalised_extreme_is_a_constant_and_meets_no_switching_point():
    # x - min(x) at the minimum is identically 0 and (max - min) / (max - min)
    # identically 1: the kernel's switches at 0 and 1 see constants, so the point
    # is differentiated by rules (the kernel jumps by 0.05 at 1: a zero slope alone
    # could not rule out a crossing at second order).
    point = (np.array([0.3, 1.7, 0.9, 1.1]),)
    t = truth(exact(kernel_of_normalised), point)
    assert t.method == "forward mode"
    x = torch.tensor(point[0], requires_grad=True)
    expected = torch.autograd.grad(kernel_of_normalised(x), x)[0]
    assert [float(g) for g in t.grad] == pytest.approx(expected.tolist(), rel=1e-12)
    # A zero slope that is not an identity still marks: |x * x| at 0.
    assert truth(exact(lambda x: (x * x).abs() + torch.where(x * x <= 0, 1.0, 0.0)), (0.0,)).method == "differences"


def test_an_element_formed_twice_is_one_element_so_its_difference_is_a_constant():
    # kornia's edge_aware_blur_pool2d: a reflected padding puts one element at two
    # places, log2 is taken at each, and |difference| against a threshold meets a
    # switching point at 0, unless the two logs are the same element: they are, and
    # the point is differentiated by rules.
    def edges(x):
        padded = torch.nn.functional.pad(x[None], (2, 2), mode="reflect")[0]
        logs = (padded + 1e-6).log2()
        d = (logs[4:] - logs[:-4]).abs()
        return torch.where(d > 0.5, d, 0.25 * d).sum()
    point = (np.array([0.3, 1.7, 0.9, 1.1]),)
    t = truth(exact(edges), point)
    assert t.method == "forward mode"
    x = torch.tensor(point[0], requires_grad=True)
    assert [float(g) for g in t.grad] == pytest.approx(torch.autograd.grad(edges(x), x)[0].tolist(), rel=1e-12)


def test_a_zero_that_paths_cancel_to_is_scaled_by_the_paths():
    # d/dx (3x - 3x) is 0 from terms of 3 and 3: autograd may round to a few
    # eps of 6, and the entry is judged against 6; x * 0 has no such terms.
    t = truth(exact(lambda x: x * 3 - x * 3), (0.7,))
    assert float(t.grad[0]) == 0.0 and t.grad_scale[0] == pytest.approx(6.0)
    t = truth(exact(lambda x: x * 0.0 + 1), (0.7,))
    assert float(t.grad[0]) == 0.0 and t.grad_scale[0] == 0.0


@pytest.mark.parametrize("formula", [torch.logaddexp, torch.logaddexp2,
                                     lambda a, b: torch.logsumexp(torch.stack([a, b]), 0)],
                         ids=["logaddexp", "logaddexp2", "logsumexp"])
def test_logaddexp_at_a_gap_of_1e196_weighs_by_exact_differences(formula):
    # Weights exp(b - out) took out's rounding (2**-160 of 8e195) as an error of
    # the exponent: d/dy read exp(-2**490), not 1 (the torch ops sweep found it).
    x, y = float.fromhex("0x0.0000000000020p-1022"), float.fromhex("0x1.44194f9e399f5p+651")
    t = truth(exact(formula), (x, y))
    assert t.method == "forward mode" and float(t.grad[1]) == 1.0 and float(t.grad[0]) == 0.0
    t = truth(exact(formula), (1e300, -1e300))
    assert float(t.grad[0]) == 1.0 and float(t.grad[1]) == 0.0


def test_agreement_on_a_rounding_boundary_reads_further():
    # d/dlogit of the Bernoulli log-likelihood at (420, 0.0359) is the float16
    # midpoint -0.964111328125 plus exp(-420) (2**-606): two readings that both
    # lose exp(-420) agree on the midpoint, which rounds to even, the wrong side.
    from cases.bernoulli import log_likelihood
    point = (np.array(420.0), np.array(0.035888671875))
    t = truth(log_likelihood, point)
    f16 = fmt(torch.float16)
    from harness.inputs.floats import round_to
    assert t.method == "forward mode" and round_to(t.grad[0], f16) == -0.9638671875


# -- the interval engine against forward mode ------------------------------------------------------------

def _torch_ops_formulas():
    from cases import torch_ops
    return [c for c in torch_ops.CASES if c.elementwise and hasattr(c.reference, "formula")]


@pytest.mark.parametrize("case", _torch_ops_formulas(), ids=lambda c: c.name)
def test_intervals_and_forward_mode_round_alike_on_the_torch_ops_sweep(case):
    """Every elementwise exact formula of the torch ops sweep, on a sample of its
    float32 and float64 grids: each truth the interval engine proves rounds in
    all four formats as the mpmath engine's (forward mode, or differences
    where that hands over), and the interval engine proves nearly all points."""
    from harness.truth.ball import Handover, solve_grid

    domains = case.domains_for(case.arity)
    grid = (harness.grids.extreme if case.arity == 1 else harness.grids.product)
    points = []
    for dtype, step in ((torch.float32, 11), (torch.float64, 37)):
        x = grid(dtype, domains[0] if case.arity == 1 else tuple(domains), size=2)
        x = x.reshape(len(x), -1)
        points.append(x[np.isfinite(x).all(axis=1)][::step])
    x = np.concatenate(points)
    handover = Handover()
    records, left = solve_grid(case.reference.formula, x, np.ones(len(x)), [True] * case.arity, handover)
    assert len(records) >= 0.97 * len(x), dict(handover.causes)
    flat = _FlatReference(case.reference, ((),) * case.arity, 1)
    differ = []
    for row, record in records.items():
        a = decode(record)
        hand = _by_hand(case.name, x[row])
        b = decode(encode(solve_point(flat, list(x[row]), [1.0], list(domains)) if hand is None else hand))
        for f in FORMATS:
            if not (np.array_equal(a.value_in(f), b.value_in(f), equal_nan=True)
                    and np.array_equal(a.grad_in(f), b.grad_in(f), equal_nan=True)):
                differ.append((x[row].tolist(), f.name, a.value_in(f), b.value_in(f), a.grad_in(f), b.grad_in(f)))
    assert not differ, differ[:5]


def _by_hand(name: str, x):
    """The truth where the mpmath engine is known to be wrong, written out.

    ``log2`` of a power of two is an integer, and -409 and 441 are bfloat16
    midpoints: forward mode accepted ``-409 - eps`` at 600 bits (bfloat16 -410),
    the exact -409 ties to even (-408, as torch rounds ``-409.0``)."""
    if name != "torch.log2" or math.frexp(x[0])[0] != 0.5:
        return None
    k = math.frexp(x[0])[1] - 1
    with mpmath.workprec(200):
        return PointTruth([mpmath.mpf(k)], [1.0], [1 / (mpmath.mpf(x[0]) * mpmath.ln2)], [1.0], [False], 200)


def _structured_formulas():
    from cases import norm2, softplus, torch_structured
    return [c for m in (softplus, norm2, torch_structured) for c in m.CASES
            if not c.elementwise and hasattr(c.reference, "formula")]


@pytest.mark.parametrize("case", _structured_formulas(), ids=lambda c: c.name)
def test_intervals_and_forward_mode_round_alike_on_structured_formulas(case):
    """Every structured exact formula of the shipped cases and the structured
    sweep, on every ninth point of its float32 default grid: what the interval
    engine proves rounds in all four formats as the mpmath engine's truth."""
    from harness.certify import _Options, prepare
    from harness.truth.cache import TruthCache
    from harness.truth.ball import solve_tasks

    dtype = torch.float32 if torch.float32 in case.dtypes else case.dtypes[0]
    prepared = prepare(case, dtype, "cpu", _Options(cache=TruthCache(None)))
    tasks = [task for _, (_, task) in prepared.todo.items()][::9]
    kept = {}
    solve_tasks(tasks, keep=kept.__setitem__)
    differ = []
    for k, record in kept.items():
        t = tasks[k]
        a, b = decode(record), decode(encode(solve_point(t.reference, t.x, t.cotangent, t.domains)))
        for f in FORMATS:
            # Where the mpmath engine judged no derivative (a kink its differences
            # saw, or an unresolved entry), the enclosure may still prove one: the
            # triplet margin loss at a row 6e-29 from its clamp, inside every
            # stencil but not at the point, is smooth there, with derivative 0.
            judged = ~np.isnan(b.grad_in(f))
            if not (np.array_equal(a.value_in(f), b.value_in(f), equal_nan=True)
                    and np.array_equal(a.grad_in(f)[judged], b.grad_in(f)[judged], equal_nan=True)):
                differ.append((t.x, f.name, a.value_in(f), b.value_in(f), a.grad_in(f), b.grad_in(f)))
    assert not differ, differ[:3]
