"""The harness convicts planted backward bugs and certifies correct code."""

import importlib
import math

import mpmath
import numpy as np
import pytest
import torch

import harness
from harness.inputs.grids import every
from harness.inputs.patterns import structured_grid
from harness.inputs.samples import _cotangent
from harness.truth.cache import TruthCache


def softplus_ref(x):
    return mpmath.log(1 + mpmath.exp(x))


def neg_log_sigmoid_ref(x):
    return -mpmath.log(1 / (1 + mpmath.exp(-x)))


def with_backward(name, forward, backward, reference, **kw):
    return harness.Case(name, forward, reference, backward=lambda x, g: g * backward(x), **kw)


def sigmoid(x):
    return torch.sigmoid(x)


PLANTED = [
    # (case, dtype, the defect kind that must be named)
    (with_backward("wrong constant", torch.nn.functional.softplus, lambda x: 1.01 * sigmoid(x), softplus_ref),
     torch.float32, "lost-digits"),
    (with_backward("missing sign", lambda x: x * x, lambda x: 2 * x.abs(), lambda x: x * x),
     torch.float64, "wrong-sign"),
    (with_backward("overflow NaN", torch.nn.functional.softplus,
                   lambda x: torch.exp(x) * (1 + torch.exp(x)) / (1 + torch.exp(x)) ** 2, softplus_ref),
     torch.float32, "non-finite"),
    (with_backward("cancellation", lambda x: torch.log(torch.cosh(x)),
                   lambda x: (torch.exp(x) - torch.exp(-x)) / (torch.exp(x) + torch.exp(-x)),
                   lambda x: mpmath.log(mpmath.cosh(x)), domain=harness.domains.interval(-80, 80)),
     torch.float32, "lost-digits"),
    (with_backward("wrong branch", torch.nn.functional.softplus,
                   lambda x: torch.where(x > 10, torch.ones_like(x), sigmoid(x)), softplus_ref),
     torch.float32, "lost-digits"),
    (with_backward("sigmoid - 1", lambda x: -torch.nn.functional.logsigmoid(x), lambda x: sigmoid(x) - 1,
                   neg_log_sigmoid_ref),
     torch.float32, "silent-zero"),
]


@pytest.mark.parametrize("case,dtype,kind", PLANTED, ids=[c.name for c, _, _ in PLANTED])
def test_planted_bug_is_convicted_with_its_kind(case, dtype, kind):
    report = harness.certify(case, dtype, grid_size=1)
    assert not report.ok
    assert kind in report.kinds, str(report)


def test_sigmoid_minus_one_loses_digits_on_5_to_17_in_float32():
    case = PLANTED[-1][0]
    report = harness.certify(case, torch.float32, grid_size=1)
    lost = [f.point[0] for f in report.failures if f.kind == "lost-digits"]
    zero = [f.point[0] for f in report.failures if f.kind == "silent-zero"]
    assert lost and 3 < min(lost) < 6 and 15 < max(lost) <= 17.5
    assert zero and min(zero) > 16


CORRECT = [
    harness.Case("torch logsigmoid", torch.nn.functional.logsigmoid, lambda x: -neg_log_sigmoid_ref(x)),
    harness.Case("torch log1p", torch.log1p, mpmath.log1p, domain=harness.domains.interval(-1, None)),
    harness.Case("torch exp", torch.exp, mpmath.exp),
    harness.Case("torch log", torch.log, mpmath.log, domain=harness.domains.positive()),
]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("case", CORRECT, ids=[c.name for c in CORRECT])
def test_correct_implementation_is_certified(case, dtype):
    report = harness.certify(case, dtype, grid_size=1)
    assert report.ok, str(report)


def test_kink_is_reported_not_failed():
    case = harness.Case("relu", torch.relu, lambda x: max(x, 0))
    report = harness.certify(case, torch.float32, grid_size=1)
    assert report.ok, str(report)
    assert any(p == (0.0,) for p, _ in report.kinks)


def test_gradient_only_claim_skips_value():
    # A surrogate whose value is 0 but whose gradient is softplus'.
    def surrogate(x):
        return torch.nn.functional.softplus(x) - torch.nn.functional.softplus(x).detach()

    case = harness.Case("surrogate", surrogate, softplus_ref, gradient_only=True)
    assert harness.certify(case, torch.float32, grid_size=1).ok
    claimed_value = harness.Case("surrogate value", surrogate, softplus_ref)
    assert not harness.certify(claimed_value, torch.float32, grid_size=1).ok


def test_backward_inconsistent_with_forward_without_reference():
    case = with_backward("no reference", torch.nn.functional.softplus, lambda x: 2 * sigmoid(x), None)
    report = harness.certify(case, torch.float32, grid_size=1)
    assert report.kinds == {"inconsistent"}


def test_failure_report_is_a_short_table_with_regions():
    report = harness.certify(PLANTED[-1][0], torch.float32, grid_size=1)
    text = str(report)
    assert "failing regions:" in text and "worst points:" in text
    assert len(text.splitlines()) < 40
    assert "tensor(" not in text


def test_wrong_result_where_the_truth_is_exactly_zero_is_convicted():
    # The relative condition number is infinite where the truth is 0; the budget is not.
    off_at_zero = with_backward("x*x, gradient 0.5 at 0", lambda x: x * x,
                                lambda x: 2 * x + 0.5 * (x == 0), lambda x: x * x)
    report = harness.certify(off_at_zero, torch.float32, grid_size=1)
    assert not report.ok and {f.point[0] for f in report.failures} == {0.0}
    log_off_at_one = harness.Case("log, value 1e-3 at 1", lambda x: torch.log(x) + 1e-3 * (x == 1), mpmath.log,
                                  domain=harness.domains.positive())
    report = harness.certify(log_off_at_one, torch.float32, grid_size=1)
    assert [(f.point, f.quantity, f.kind) for f in report.failures] == [((1.0,), "value", "lost-digits")]
    assert harness.certify(harness.Case("log", torch.log, mpmath.log, domain=harness.domains.positive()),
                           torch.float32, grid_size=1).ok


def test_a_small_kink_on_a_steep_slope_is_a_kink():
    # (t - y)**2 + 2 relu(-y) at y = 0, t = -1e12: a jump of 2 on a slope of 2e12.
    case = harness.Case("penalty", lambda y, t: (t - y) ** 2 + 2 * torch.relu(-y),
                        lambda y, t: (t - y) ** 2 + 2 * max(-y, 0),
                        grid=lambda dtype: [(0.0, -1e12), (1.0, -1e12)], domain=(harness.domains.real(),) * 2)
    report = harness.certify(case, torch.float64)
    assert report.ok, str(report)
    assert [q for _, q in report.kinks] == ["d/dy"]   # at y = 0 only; judged at y = 1


def test_max_where_the_truth_rounds_to_inf_is_within_one_ulp():
    # 2 * 65520 rounds to inf in float16 (past max 65504): the truth of d/dx x**2 at x = 32760.
    def backward(x, g):
        return g * torch.full_like(x, 65504.0)
    case = harness.Case("square", lambda x: x * x, lambda x: x * x, backward=backward,
                        grid=lambda dtype: [(32760.0,)], gradient_only=True)
    assert harness.certify(case, torch.float16).ok
    far = harness.Case("square", lambda x: x * x, lambda x: x * x, backward=lambda x, g: g * 60000.0 + 0 * x,
                            grid=lambda dtype: [(32760.0,)], gradient_only=True)
    assert {f.kind for f in harness.certify(far, torch.float16).failures} == {"finite-vs-inf"}


def test_exhaustive_sweep_convicts_a_bug_at_one_value_the_grid_misses():
    bad = 1.5009765625   # one float16 value in (1, 2): not on the grid

    def forward(x):
        return torch.where(x == bad, x * 1.5, x * x)

    case = harness.Case("square, wrong once", forward, lambda x: x * x, domain=harness.domains.interval(1, 2))
    assert harness.certify(case, torch.float16, grid_size=1).ok
    report = harness.certify(case, torch.float16, exhaustive=True)
    assert report.stats["points"] == 1023 and "exhaustive over the domain (1, 2): 1,023 of the 65,536" in str(report)
    assert {f.point for f in report.failures} == {(bad,)} and report.kinds == {"lost-digits"}


def test_exhaustive_says_where_it_does_not_apply():
    case = harness.Case("exp", torch.exp, mpmath.exp, domain=harness.domains.interval(1, 4))
    report = harness.certify(case, torch.float32, grid_size=1, exhaustive=True)
    assert report.coverage is None and "only 16-bit formats are swept" in str(report)
    two = harness.Case("hypot", torch.hypot, mpmath.hypot, domain=(harness.domains.interval(1, 2),) * 2)
    report = harness.certify(two, torch.float16, grid_size=1, exhaustive=True)
    assert report.coverage is None and "2 inputs: 4,294,967,296 tuples" in str(report)


def test_a_dense_sweep_finds_a_window_narrower_than_a_binade_and_names_its_edges():
    # torch's rsqrt backward, -0.5 g result**3: result**3 overflows in float32 below
    # x = 2.05e-26 while the truth -x**-1.5 / 2 stays finite down to 1.28e-26.
    case = harness.Case("rsqrt", torch.rsqrt, lambda x: 1 / mpmath.sqrt(x), domain=harness.domains.positive())
    assert harness.certify(case, torch.float32).ok
    report = harness.certify(case, torch.float32, dense=True)
    assert report.kinds == {"non-finite"}
    window = [f.point[0] for f in report.failures if f.quantity == "gradient"]
    assert window and 1.28e-26 < min(window) and max(window) < 2.06e-26
    # The window's upper end was bisected: the float after the last failing one has a finite gradient.
    edge = np.float32(max(window))
    x = torch.tensor([edge, np.nextafter(edge, np.float32(1))] * 32, requires_grad=True)
    torch.rsqrt(x).sum().backward()
    assert x.grad[0].item() == -math.inf and math.isfinite(x.grad[1].item())
    assert report.coverage.startswith("dense: ") and "16 or more per binade over the whole range of float32" in report.coverage
    assert "edges where a claim changes class bisected to adjacent floats" in report.coverage


def test_a_dense_sweep_of_a_16_bit_format_is_exhaustive():
    case = harness.Case("exp", torch.exp, mpmath.exp, domain=harness.domains.interval(1, 4))
    report = harness.certify(case, torch.bfloat16, dense=True)
    assert report.ok and report.coverage.startswith("exhaustive over the domain (1, 4)")
    assert report.stats["points"] == every(torch.bfloat16, harness.domains.interval(1, 4)).size


def flushing_sigmoid(x):
    """sigmoid with its subnormal results flushed to zero, as an FTZ kernel gives them."""
    s = torch.sigmoid(x)
    return torch.where(s.abs() < torch.finfo(x.dtype).tiny, torch.zeros_like(s), s)


def test_a_flush_to_zero_is_reported_in_float32_and_fails_in_float16():
    case = with_backward("softplus, FTZ gradient", torch.nn.functional.softplus, flushing_sigmoid, softplus_ref,
                         domain=harness.domains.interval(-120, 0))
    report = harness.certify(case, torch.float32, grid_size=1)
    assert report.ok, str(report)
    assert [(r.quantity, r.kind) for r in report.underflows] == [("gradient", "underflow")]
    assert report.underflows[0].hi < -87 and "underflow (reported, not failed):" in str(report)
    f16 = harness.certify(case, torch.float16, grid_size=1)
    assert f16.kinds == {"underflow"} and not f16.underflows
    assert harness.certify(case, torch.float16, grid_size=1, underflow="report").ok
    strict = harness.Case("strict", case.forward, case.reference, backward=case.backward, domain=case.domain,
                          underflow="fail")
    assert harness.certify(strict, torch.float32, grid_size=1).kinds == {"underflow"}


def test_every_report_says_how_many_entries_were_judged_and_why_not_the_others():
    report = harness.certify(harness.Case("relu", torch.relu, lambda x: max(x, 0)), torch.float32, grid_size=1)
    c = report.counts
    assert c["judged"] + c["gradients at NaN inputs"] + c["kinks"] == c["entries"] > c["judged"]
    assert (c["gradients at NaN inputs"], c["kinks"]) == (1, 2)   # NaN; -0 and +0
    assert f"judged {c['judged']:,} of {c['entries']:,} entries; not judged: 1 gradient at NaN inputs" in str(report)


def test_a_backward_that_changes_between_calls_is_non_deterministic_where_it_does():
    calls = []

    def noisy(x, g):   # a different last bit on every other call, for x > 3 only
        calls.append(1)
        return g * torch.sigmoid(x) * (1 + (len(calls) % 2) * 2.0 ** -20 * (x > 3))

    case = harness.Case("noisy", torch.nn.functional.softplus, softplus_ref, backward=noisy,
                        domain=harness.domains.interval(-4, 8))
    report = harness.certify(case, torch.float32, grid_size=1)
    assert report.kinds == {"non-deterministic"}
    assert all(f.point[0] > 3 and f.quantity == "gradient" for f in report.failures)
    assert "changes between two backward calls" in str(report)


def test_the_finite_difference_column_shows_the_estimate_where_the_claim_is_nan():
    naive = with_backward("naive sigmoid", torch.nn.functional.softplus,
                          lambda x: torch.exp(x) / (1 + torch.exp(x)), softplus_ref, domain=harness.domains.interval(80, 100))
    report = harness.certify(naive, torch.float32, grid_size=1)
    # The column is what the report prints: its worst points (the bulk pass takes no
    # differences where a NaN claim is convicted already). Next to the domain's end at
    # 100 no stencil fits: no estimate there.
    nan = [f for f in report.worst() if f.quantity == "gradient" and f.claimed != f.claimed and f.point[0] < 99]
    assert nan and all(f.finite_difference == 1.0 for f in nan) and {f.kind for f in nan} == {"non-finite"}


def test_certify_many_gives_a_broken_job_its_error_in_its_place():
    from harness.certify import certify_many

    domain = harness.domains.interval(1, 4)
    good = harness.Case("double", lambda x: 2 * x, lambda x: 2 * x, domain=domain)

    def raises_at_two(x):
        if x == 2:
            raise ZeroDivisionError("not at two")
        return -x

    raising = harness.Case("raises", lambda x: -x, raises_at_two, domain=domain)
    misshapen = harness.Case("misshapen", lambda x: x[1:], lambda x: x, domain=domain)
    out = certify_many([(good, torch.float32, "cpu"), (raising, torch.float32, "cpu"),
                        (misshapen, torch.float32, "cpu")], grid_size=1)
    assert isinstance(out[0], harness.Report) and out[0].ok
    assert isinstance(out[1], harness.CaseError) and out[1].point == (2.0,) and "not at two" in str(out[1])
    assert isinstance(out[2], harness.CaseError) and "forward returned shape" in str(out[2])


def test_a_long_certification_warns_first_with_its_size_and_cost(monkeypatch):
    from harness.truth import solve

    monkeypatch.setattr(solve, "LONG_SECONDS", 0.0)
    case = harness.Case("double", lambda x: 2 * x, lambda x: 2 * x, domain=harness.domains.interval(1, 4))
    with pytest.warns(solve.LongCertification, match=r"case 'double': \d+ points \(\d+ input elements\) "
                                                             r"need truths; expect about"):
        # A cache of its own: another test may have computed these truths in this process.
        harness.certify(case, torch.float32, grid_size=1, workers=1, cache=TruthCache(None))


def test_progress_lines_name_the_truths_done_and_the_rate():
    from harness.truth.solve import _reporter

    lines = []
    report = _reporter(lines.append, every=0.0)
    for done in (1, 2, 3):
        report(done, 3)
    assert len(lines) == 3 and lines[-1].startswith("truths 3/3 (") and lines[-1].endswith(" points/s)")


def test_after_a_reference_fails_the_other_truths_are_not_computed_again():
    # The good case's points come first; the broken one's last point raises.
    # The pass after the failure must find the good truths in the cache.
    certify_module = importlib.import_module("harness.certify")
    calls = []

    def good(a):
        calls.append(float(a[0]))
        return mpmath.exp(a[0])

    def broken(a):
        if a[0] == 3:
            raise ValueError("no truth at 3")
        return mpmath.exp(a[0])

    grid = lambda dtype: [(np.array([v]),) for v in (1.0, 2.0, 3.0)]
    jobs = [(harness.Case("good", torch.exp, good, grid=grid), torch.float64, "cpu"),
            (harness.Case("broken", torch.exp, broken, grid=grid), torch.float64, "cpu")]
    reports = certify_module.certify_many(jobs, cache=TruthCache(None), workers=1)
    assert reports[0].ok and isinstance(reports[1], harness.CaseError)
    first = len(calls)
    assert first > 0
    certify_module.certify_many(jobs[:1], cache=TruthCache(None), workers=1)
    assert len(calls) == 2 * first   # as many reference calls as one clean run: none repeated


ROWS = harness.exact(lambda x: torch.logsumexp(x, -1))
NAN_IN_FIRST_ROW = lambda dtype: [(np.array([[np.nan, 0.5, -1.0], [0.25, 2.0, -3.0]]),)]   # noqa: E731


def test_a_nan_entry_reaches_only_the_outputs_that_depend_on_it():
    # Rows are independent: the second row's logsumexp has a truth at this point.
    right = harness.Case("logsumexp rows", lambda x: torch.logsumexp(x, -1), ROWS, grid=NAN_IN_FIRST_ROW)
    assert harness.certify(right, torch.float64).ok

    # A NaN spread to every row is convicted where the truth is a number ...
    spread = harness.Case("spread", lambda x: torch.logsumexp(x, -1) + 0 * x.sum(), ROWS, grid=NAN_IN_FIRST_ROW)
    report = harness.certify(spread, torch.float64)
    assert {(f.quantity, f.kind) for f in report.failures} == {("value[1]", "non-finite")}

    # ... and a NaN swallowed where it reaches the output still is.
    swallowed = harness.Case("swallowed", lambda x: torch.logsumexp(torch.nan_to_num(x), -1), ROWS,
                             grid=NAN_IN_FIRST_ROW)
    report = harness.certify(swallowed, torch.float64)
    assert {(f.quantity, f.kind) for f in report.failures} == {("value[0]", "nan-swallowed")}


def test_a_dense_structured_sweep_bisects_along_a_patterns_parameter():
    # softmax's dominant-entry gradient is exactly 0 in float32 from a gap of about 17.3;
    # the pattern's sweep holds 16 and 32 and would place the edge anywhere between.
    softmax = lambda x: torch.softmax(x, -1)   # noqa: E731
    case = harness.Case("softmax", softmax, harness.exact(softmax), shape=(8,))
    sparse = harness.certify(case, torch.float32)
    report = harness.certify(case, torch.float32, dense=True)
    assert report.coverage.startswith("dense: ") and "edges where a claim changes class bisected along" in report.coverage
    assert report.stats["points"] > sparse.stats["points"]
    zero = max((r for r in report.regions if r.kind == "silent-zero" and r.words("").startswith("dominant first")),
               key=lambda r: r.count)
    assert 17 < zero.lo < 18
    # The float before the edge's gap gives a nonzero gradient at that pattern's point.
    point = next(p for p in structured_grid(((8,),), torch.float32) if p.pattern == "dominant first entry"
                 and p.remake is not None)
    below = np.nextafter(np.float32(zero.lo), np.float32(0))
    x = torch.tensor(point.remake(float(below))[0], dtype=torch.float32, requires_grad=True)
    cot = torch.tensor(_cotangent((8,)), dtype=torch.float32)   # the cotangent the harness hands
    (torch.softmax(x, -1) * cot).sum().backward()
    assert x.grad[0].item() != 0
