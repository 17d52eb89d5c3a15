"""The worst-input search finds what the grid misses, and only that.

The planted bug sits near x = 1235, between the float32 grid's points on
(1000, 2000): a term divided by the distance to 1235 (as a cancellation
would) adds 8 / |x - 1235| ULPs to the gradient, which is within the 16-ULP
budget everywhere but on (1234.5, 1235.5). The error grows toward the bug
from about 16 away, which is what ``hypothesis.target`` climbs. The centre is
computed, not written, so that Hypothesis cannot draw it from this file's
constants.
"""

import mpmath
import numpy as np
import pytest
import torch
from hypothesis import given, settings

import harness
import harness.pytest.plugin
from harness import domains, grids
from harness.inputs.floats import fmt, representable
from harness.search import _strategy, worst_input

pytest_plugins = ["pytester"]

CENTRE = 5.0 * 13 * 19        # 1235
BAND = (CENTRE - 0.5, CENTRE + 0.5)
DOMAIN = domains.interval(1000, 2000)


def half_square(x):
    return x * x / 2


def near_centre_backward(x, g):
    # 2**-10 is 8 float32 ULPs of x here: 8 / |x - 1235| ULPs in all, capped at the centre.
    return g * (x + 2.0 ** -10 / ((x - CENTRE).abs() + 2.0 ** -10))


NEAR_CENTRE = harness.Case("near-centre", half_square, half_square, backward=near_centre_backward, domain=DOMAIN)


def test_grid_misses_the_band_and_certify_passes():
    grid = grids.extreme(torch.float32, DOMAIN, grids.DEFAULT_SIZE)
    assert not ((grid > BAND[0]) & (grid < BAND[1])).any()
    assert harness.certify(NEAR_CENTRE, torch.float32).ok


def test_search_finds_a_witness_inside_the_band():
    witness = worst_input(NEAR_CENTRE, torch.float32)
    assert witness.fails and witness.kind == "lost-digits"
    assert BAND[0] < witness.point[0] < BAND[1]
    assert witness.quantity == "gradient" and witness.bits > witness.budget_bits
    assert witness.evaluations <= 400


def test_correct_case_has_no_witness_over_budget():
    case = harness.Case("exp", torch.exp, mpmath.exp, domain=domains.interval(-20, 20))
    witness = worst_input(case, torch.float32, max_examples=150)
    assert not witness.fails and witness.kind is None
    assert witness.bits <= witness.budget_bits
    assert witness.evaluations >= 150


def test_value_only_search_does_not_see_a_gradient_bug():
    assert not worst_input(NEAR_CENTRE, torch.float32, max_examples=100, quantity="value").fails


def test_label_input_is_drawn_from_its_values_and_not_differentiated():
    case = harness.Case("scaled", lambda x, y: x * y, lambda x, y: x * y,
                        domain=(domains.interval(-4, 4), domains.choice(0, 1)))
    witness = worst_input(case, torch.float16, max_examples=60, quantity="d/dx")
    assert witness.point[1] in (0.0, 1.0) and not witness.fails


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("domain", [domains.real(), domains.positive(), domains.interval(0.1, 0.3),
                                    domains.interval(None, -1e-3), domains.choice(0, 0.1, 1)],
                         ids=str)
def test_draws_are_values_of_the_dtype_inside_the_domain(dtype, domain):
    drawn = []

    @settings(max_examples=150, database=None, derandomize=True)
    @given(_strategy(domain, dtype))
    def collect(x):
        drawn.append(x)

    collect()
    values = np.array(drawn)
    if domain.discrete:  # labels are rounded to the dtype, as on the grid
        assert set(values) <= set(grids.extreme(dtype, domain))
    else:
        assert all(domain.contains(v) for v in values)
    assert representable(values, dtype).all()
    if domain == domains.positive():
        assert ((values > 0) & (values < fmt(dtype).tiny)).any(), "subnormals are drawn"


def test_broken_case_is_a_case_error_at_the_point():
    def forward(x):
        if (x > 1500).any():
            raise ValueError("no table entry")
        return x * x / 2

    case = harness.Case("table", forward, half_square, domain=DOMAIN)
    with pytest.raises(harness.CaseError, match=r"at 1[5-9]\d\d.*forward raised ValueError: no table entry"):
        worst_input(case, torch.float32, max_examples=100)


def test_misuse_is_a_value_error():
    structured = harness.Case("sum", lambda x: x.sum(), lambda x: sum(x), grid=lambda dtype: [np.ones(3)])
    with pytest.raises(ValueError, match="give the case shape="):
        worst_input(structured)
    with pytest.raises(ValueError, match="needs a reference"):
        worst_input(harness.Case("fd only", torch.exp))
    with pytest.raises(ValueError, match="quantity 'd/dy'"):
        worst_input(NEAR_CENTRE, quantity="d/dy")


def test_plugin_option_adds_the_witness_to_the_report_and_keeps_the_verdict(pytester, monkeypatch):
    monkeypatch.setattr(harness.pytest.plugin, "_SUMMARY", [])  # this run's rows stay out of the session's summary
    pytester.makeini("[pytest]\naddopts = -p no:hypothesispytest\n")
    pytester.mkdir("cases")
    (pytester.path / "cases" / "near.py").write_text("from tests.test_search import NEAR_CENTRE\n")
    result = pytester.runpytest_inprocess("--dtypes", "float32", "--devices", "cpu", "--truth-cache", "none",
                                          "--certify-search", "300", "-rA")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([
        "*worst-input search*",
        "near-centre › float32: worst input x = 123[45].* bits (budget *) [[]lost-digits[]]",
    ])


def _softmax_rows_last(z):
    # Planted: the shift by the maximum is left out, so exp overflows once an
    # entry passes log(max) (88.7 in float32); a shift-free softmax is right below it.
    e = torch.exp(z)
    return (e / e.sum(-1, keepdim=True))[..., -1]


def test_a_structured_search_starts_from_the_grid_and_returns_arrays_of_the_shape():
    case = harness.Case("softmax.unshifted", _softmax_rows_last, harness.exact(lambda z: torch.softmax(z, -1)[..., -1]),
                        shape=(4,))
    report = harness.certify(case, torch.float32)
    worst_grid = max(f.bits for f in report.failures)
    witness = worst_input(case, torch.float32, max_examples=30, report=report)
    assert witness.fails and witness.bits >= worst_grid
    assert all(np.shape(a) == (4,) for a in witness.point)
    assert witness.kind == "non-finite"


def test_an_elementwise_search_is_never_better_than_the_grid():
    # The stable exp is within budget everywhere; the grid's worst error is the floor of the search's.
    case = harness.Case("exp", torch.exp, mpmath.exp, domain=domains.interval(-20, 20))
    report = harness.certify(case, torch.float32)
    grid_worst = max(m.bits for m in report.measured if not np.isnan(m.bits))
    witness = worst_input(case, torch.float32, max_examples=20, report=report)
    assert witness.bits >= grid_worst
