"""Compiled cases (``harness.claims.execution``): items of their own, compiled once per
case and dtype, their verdict compared with the eager one entry by entry.

One real compilation (exp, float32; ~25 s cold on 2 cores, seconds with
Inductor's cache warm), the rest on reports made by hand.
"""

import math
import textwrap

import pytest
import torch

import harness
from harness.claims import execution
from harness.judging.report import Failure, Report

pytest_plugins = ["pytester"]


@pytest.fixture(scope="module", autouse=True)
def _inductor_imported():
    """One compilation before the in-process runs: pytester restores sys.modules after
    each, and Inductor's modules imported again register their operator library twice."""
    x = torch.ones(4, requires_grad=True)
    torch.compile(lambda v: v * 2, dynamic=True)(x).sum().backward()

EXP = """
    import torch
    import harness

    CASES = [harness.Case("exp", torch.exp, harness.exact(torch.exp), domain=harness.domains.interval(-30, 30),
                          compile={"float32": True})]
"""


def test_a_compiled_case_gets_its_own_item_compared_with_eager(pytester):
    pytester.makeini("[pytest]\naddopts = -p no:hypothesispytest\n")
    (pytester.mkdir("cases") / "exp.py").write_text(textwrap.dedent(EXP))
    result = pytester.runpytest_inprocess("--dtypes", "float64,float32", "--devices", "cpu", "--grid-size", "1",
                                          "-rA", "-v")
    result.assert_outcomes(passed=3)
    text = "\n".join(result.outlines)
    assert "exp[float32-cpu-compiled] PASSED" in text and "exp[float64-cpu-compiled]" not in text
    assert "compiled against eager" in text and "compiled in " in text
    assert "the compiled verdict judges every entry as eager's does" in text


def test_compile_everywhere_adds_a_compiled_item_per_dtype(pytester):
    pytester.makeini("[pytest]\naddopts = -p no:hypothesispytest\n")
    source = EXP.replace(', compile={"float32": True}', "")
    (pytester.mkdir("cases") / "exp.py").write_text(textwrap.dedent(source))
    reprec = pytester.inline_run("--collect-only", "--compile", "--dtypes", "float64,float32", "--devices", "cpu")
    (call,) = reprec.getcalls("pytest_collection_finish")
    names = sorted(item.name for item in call.session.items)
    assert names == ["exp[float32-cpu-compiled]", "exp[float32-cpu]", "exp[float64-cpu-compiled]", "exp[float64-cpu]"]


STABLE_TOO = """
    import torch
    import harness
    from harness.judging.expectations import with_compiled

    CASES = [harness.Case("exp", torch.exp, harness.exact(torch.exp))]
    STABLE = [harness.Case("exp.stable", torch.exp, harness.exact(torch.exp))]
    CASES += STABLE
    with_compiled({"exp.stable": {"float32-compiled": harness.convicted("lost-digits")}}, CASES, STABLE)
"""


def test_compiled_expectations_keep_one_case_where_two_lists_hold_it(pytester):
    pytester.makeini("[pytest]\naddopts = -p no:hypothesispytest\n")
    (pytester.mkdir("cases") / "exp.py").write_text(textwrap.dedent(STABLE_TOO))
    reprec = pytester.inline_run("--collect-only", "--compile", "--dtypes", "float32", "--devices", "cpu")
    (call,) = reprec.getcalls("pytest_collection_finish")
    items = {item.name: item for item in call.session.items}
    assert sorted(items) == ["exp.stable[float32-cpu-compiled]", "exp.stable[float32-cpu]",
                             "exp[float32-cpu-compiled]", "exp[float32-cpu]"]
    expect = items["exp.stable[float32-cpu-compiled]"].case.expect
    assert expect["float32-compiled"] == harness.convicted("lost-digits") and expect["*"] == harness.certified()


def test_compiled_expectations_for_no_case_are_an_error():
    from harness.judging.expectations import with_compiled

    cases = [harness.Case("exp", torch.exp, None)]
    with pytest.raises(KeyError, match="torch.exp"):
        with_compiled({"torch.exp": {"float32-compiled": harness.certified()}}, cases)


def test_which_dtypes_a_case_compiles_in():
    case = harness.Case("c", torch.exp, None, compile={"float16": True, "*": False})
    assert execution.compiled_in(case, torch.float16) and not execution.compiled_in(case, torch.float32)
    assert execution.compiled_in(case, torch.float32, everywhere=True)
    assert not execution.compiled_in(harness.Case("e", torch.exp), torch.float32)


def _report(*failures) -> Report:
    report = Report("c", "float32", "cpu", "x", worst_bits={"value": 0.0, "gradient": 0.0})
    report.failures.extend(failures)
    return report


def _failure(x: float, quantity: str, kind: str, bits: float) -> Failure:
    return Failure((x,), quantity, (kind,), 0.0, 1.0, math.nan, 1.0, bits, 3.0, x)


def test_differences_name_the_entries_whose_kind_or_bits_differ():
    eager = _report(_failure(1.0, "gradient", "lost-digits", 9.0), _failure(2.0, "gradient", "silent-zero", 24.0),
                    _failure(3.0, "value", "lost-digits", 6.0))
    compiled = _report(_failure(1.0, "gradient", "lost-digits", 9.5), _failure(2.0, "gradient", "lost-digits", 12.0),
                       _failure(4.0, "gradient", "non-finite", 32.0))
    found = {(d.point, d.quantity, d.eager, d.compiled) for d in execution.differences(eager, compiled)}
    # x = 1 fails alike within a bit: not listed.
    assert found == {((2.0,), "gradient", "silent-zero", "lost-digits"), ((3.0,), "value", "lost-digits", "ok"),
                     ((4.0,), "gradient", "ok", "non-finite")}
    text = execution.compared(eager, compiled)
    assert "3 entries judged differently" in text and "eager ok" in text and "compiled non-finite" in text


SCALED = """
    import torch
    import harness

    # float16: x * 1024 overflows past 64 in eager; Inductor keeps the product in float32.
    CASES = [harness.Case("scaled", lambda x: (x * 1024) / 1024, harness.exact(lambda x: x),
                          dtypes=(torch.float16,), compile=True,
                          expect={"float16-compiled": harness.certified(), "*": harness.convicted("non-finite")})]
"""


def test_a_compiled_verdict_that_differs_from_eager_is_reported_with_its_points(pytester):
    pytester.makeini("[pytest]\naddopts = -p no:hypothesispytest\n")
    (pytester.mkdir("cases") / "scaled.py").write_text(textwrap.dedent(SCALED))
    result = pytester.runpytest_inprocess("--devices", "cpu", "--grid-size", "1", "-rA")
    result.assert_outcomes(passed=2)
    text = "\n".join(result.outlines)
    assert "eager: convicted non-finite; compiled: certified" in text
    assert "entries judged differently" in text and "eager non-finite" in text and "compiled ok" in text


def test_a_compiled_backward_is_called_twice_on_two_graphs():
    """The harness calls a backward twice to see it is deterministic; hardsigmoid's
    compiled backward donates a saved buffer, which forbids a second call on one graph
    (it was a broken case), so a compiled forward is run again for the second."""
    from references import torch_ops as ref

    case = harness.Case("hardsigmoid", torch.nn.functional.hardsigmoid, ref.hardsigmoid)
    twin, _ = execution.compiled(case, torch.float32)
    report = harness.certify(twin, torch.float32, grid_size=1)
    assert report.ok, report.summary()


def test_a_compiled_second_order_is_judged_unsupported_with_torchs_reason():
    # AOTAutograd does not differentiate its compiled backward again: the HVP entries are
    # 'unsupported', with torch's message, and the first order is judged as usual.
    case = harness.Case("square", lambda x: x * x, lambda x: x * x, order=2, dtypes=(torch.float64,),
                        domain=harness.domains.interval(1, 2))
    twin, _ = execution.compiled(case, torch.float64)
    report = harness.certify(twin, torch.float64, grid_size=1)
    assert {f.kind for f in report.failures} == {"unsupported"}
    assert {f.quantity for f in report.failures} == {"hvp"}
    assert any("does not currently support double backward" in note for note in report.notes)
