"""The compiled findings of the accuracy table (``harness.tables.compiled_findings``): the
cause a case file names is checked against the code Inductor generated, and the
worst differing point is evaluated again by hand, eager and compiled torch alike.

One real compilation (torch.expm1 in float64, whose vectorized lowering is
``exp(x) - 1``), reports made by hand around it.
"""

import math

import numpy as np
import pytest
import torch

from harness.tables.compiled_findings import CompiledFinding
from harness.tables import accuracy_table as table
from harness.tables import compiled_findings
from harness.claims import execution
from harness.judging.report import Failure, Report

TINY = 1.1102230246251565e-16      # 2**-53: expm1(x) = x to the last bit, exp(x) - 1 = 0


@pytest.fixture(scope="module")
def expm1_entries():
    """torch.expm1 in float64, eager certified, compiled (really) with one silent-zero recorded."""
    case = next(c for c in table.load()[0] if c.name == "torch.expm1")
    execution.compiled(case, torch.float64)
    eager = Report(case.name, "float64", "cpu", "x", worst_bits={"value": 0.0, "gradient": 0.0})
    compiled = Report(case.name, "float64", "cpu", "x", worst_bits={"value": 61.9, "gradient": 0.0})
    compiled.failures.append(Failure((TINY,), "value", ("silent-zero",), 0.0, TINY, math.nan, math.inf, 61.9, 3.0,
                                     TINY))
    return [table.Entry(case, torch.float64, "cpu", eager),
            table.Entry(case, torch.float64, "cpu", compiled, compiled=True)]


def test_the_cause_is_quoted_from_the_generated_code_or_flagged_stale(expm1_entries):
    named = {"torch.expm1": CompiledFinding("exp(x) - 1 cancels.", ".exp() - decltype(")}
    (item, dtype_line) = compiled_findings.compiled_findings(expm1_entries, named)
    assert item.startswith("- **`torch.expm1`** (float64). Cause: exp(x) - 1 cancels.")
    assert "In the generated code: `auto tmp1 = tmp0.exp() - decltype(tmp0)(1);`" in item
    assert "eager certified, compiled convicted (silent-zero)" in dtype_line and "compiled silent-zero" in dtype_line
    stale = {"torch.expm1": CompiledFinding("exp(x) - 1 cancels.", "std::expm1_vectorized(")}
    assert "may be stale" in compiled_findings.compiled_findings(expm1_entries, stale)[0]
    assert "Cause: not named by hand" in compiled_findings.compiled_findings(expm1_entries, {})[0]


def test_a_difference_made_by_inductors_code_is_told_from_one_made_by_a_decomposition(expm1_entries):
    # expm1 has no decomposition: run op by op, the compiled graph is eager's kernel (exact);
    # only Inductor's vectorized exp(x) - 1 gives 0, and its scalar loop (std::expm1) is exact.
    (item, dtype_line) = compiled_findings.compiled_findings(expm1_entries, {})
    assert "No op of its graphs is decomposed" in item
    assert (f"torch gives eager {TINY!r}, decomposed {TINY!r}, compiled 0.0, unvectorized {TINY!r}: the "
            "decomposition gives eager's number: Inductor's generated code makes the difference; unvectorized "
            "(`cpp.simdlen = 1`) it gives eager's number: the vectorized code makes it") in dtype_line
    # smooth_l1_loss at input = target = inf: the decomposed backward takes sign(inf - inf),
    # which is 0 in torch, where eager's kernel divides NaN by beta.
    case = next(c for c in table.load("cases.torch_structured")[0] if c.name == "torch.nn.functional.smooth_l1_loss")
    point = (np.array([np.inf, 0.625, 0.0, -1.0]), np.array([np.inf, 1.875, 0.75, -0.625]))
    entry = table.Entry(case, torch.float32, "cpu", None, compiled=True)
    difference = execution.Difference(point, "d/dt[0]", "non-finite", "ok", 32.0, math.nan)
    assert compiled_findings.attribution(entry, difference) == (
        "There, torch gives eager nan, decomposed 0.0, compiled 0.0: the decomposition's formula gives the "
        "compiled number.", "decomposition")
    assert "`aten.smooth_l1_loss_backward.default`" in compiled_findings._decomposed_ops(entry)


def test_the_hand_check_calls_eager_and_compiled_torch_at_the_worst_point(expm1_entries):
    (row,) = compiled_findings.hand_checks(expm1_entries)[2:]
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[:4] == ["`torch.expm1`", "float64", f"({TINY!r})", "value"]
    assert cells[5:7] == [repr(TINY), "0.0"]          # eager exact, compiled's vector loop exp(x) - 1
    assert cells[-1] == "yes"


def test_a_hand_check_says_no_when_the_recorded_claim_is_not_what_compiled_torch_returns(expm1_entries):
    eager, compiled = expm1_entries
    wrong = Report(compiled.report.case, "float64", "cpu", "x", worst_bits=compiled.report.worst_bits)
    wrong.failures.append(Failure((TINY,), "value", ("silent-zero",), 5.0, TINY, math.nan, math.inf, 61.9, 3.0,
                                  TINY))
    entries = [eager, table.Entry(compiled.case, torch.float64, "cpu", wrong, compiled=True)]
    (row,) = compiled_findings.hand_checks(entries)[2:]
    assert row.rstrip(" |").endswith("**no**")


def test_a_cause_that_puts_the_difference_where_the_measurement_does_not_is_flagged(expm1_entries):
    inductor = CompiledFinding("Inductor's vectorized expm1 is exp(x) - 1.", None, lies_in="inductor")
    wrong = CompiledFinding("The decomposition of expm1 cancels.", None, lies_in="decomposition")
    assert "does not hold" not in "".join(compiled_findings.compiled_findings(expm1_entries, {"torch.expm1": inductor}))
    flagged = "".join(compiled_findings.compiled_findings(expm1_entries, {"torch.expm1": wrong}))
    assert ("**The cause above puts the difference in the decomposition; measured, it lies in Inductor's generated "
            "code: the cause does not hold for this dtype.**") in flagged


def test_a_difference_made_by_fma_contraction_is_named():
    # i0e's gradient i1e(x) - i0e(x) cancels at 43.5; Inductor's calc_i0e, compiled without
    # contraction (its default), is an ulp from eager's, scalar or vectorized; contracted it is eager's.
    case = next(c for c in table.load()[0] if c.name == "torch.special.i0e")
    entry = table.Entry(case, torch.float64, "cpu", None, compiled=True)
    difference = execution.Difference((43.5,), "gradient", "lost-digits", "ok", 6.4, math.nan)
    words, where = compiled_findings.attribution(entry, difference)
    assert where == "inductor"
    assert "unvectorized (`cpp.simdlen = 1`) it still gives the compiled number" in words
    assert words.endswith("with multiply-adds contracted into fma (`-ffp-contract=fast`; Inductor's default is off) "
                          "it gives eager's number: the difference is the contraction.")
