"""The accuracy table (``harness.tables.accuracy_table``) and the --torch-ops gate.

Cheap on purpose: two ops of cases/torch_ops.py in float16 at ``grid_size=1``
(a few hundred truths, settled at the engine's first precisions), reports
made by hand for the rendering, and collection only for the gate.
"""

import math
import re
import textwrap

import numpy as np
import pytest
import torch

import harness.pytest.plugin
from harness.tables import accuracy_table as table
from harness.judging.report import Failure, Region, Report

pytest_plugins = ["pytester"]


@pytest.fixture(scope="module")
def swept():
    """torch.exp (certified) and torch.expm1 (its backward, result + 1, rounds to 0 below -9.7) in float16."""
    cases, notes, harness_notes = table.load()
    picked = [c for c in cases if c.name in ("torch.exp", "torch.expm1", "torch.special.erfcx")]
    entries = table.sweep(picked, dtypes=(torch.float16,), grid_size=1)
    return {e.case.name: e for e in entries}, notes, harness_notes


def test_rows_carry_verdict_worst_bits_and_kind_per_quantity(swept):
    entries, _, _ = swept
    exp, expm1 = entries["torch.exp"], entries["torch.expm1"]
    assert exp.report.ok and expm1.real_kinds == {"silent-zero", "lost-digits"}
    row = table._row(expm1)
    assert "**convicted**" in row and "silent-zero" in row and "gradient 0" in row
    assert table._row(exp).startswith("| `torch.exp` | float16 | cpu | certified |")
    assert table._quantity_cells(expm1)[1].endswith("silent-zero")     # the gradient's kind


def test_an_op_without_the_dtype_says_not_run(swept):
    entries, _, _ = swept
    erfcx = entries["torch.special.erfcx"]
    assert erfcx.report is None and "not run" in table._row(erfcx)


def test_findings_name_cause_and_alternative_and_hand_checks_agree(swept):
    entries, notes, harness_notes = swept
    text = table.findings(list(entries.values()), notes, harness_notes)
    line = next(line for line in text.splitlines() if "`torch.expm1`" in line)
    assert "result + 1" in line and "Alternative: `expm1.stable`" in line
    assert "Harness notes" in text
    (row,) = table.hand_checks(list(entries.values()))[2:]
    assert row.startswith("| `torch.expm1` | float16 |") and row.endswith("| yes |")


def _entry(kinds_by_quantity: dict, underflow_only: bool = False) -> table.Entry:
    """A two-input entry with one failure per quantity, built by hand."""
    case = harness.Case("torch.fake", torch.hypot, None, domain=(harness.domains.real(),) * 2,
                        input_names=("x", "y"))
    report = Report("torch.fake", "float16", "cpu", "x", worst_bits={"value": 0.0, "d/dx": 1.0, "d/dy": 16.0})
    for q, kind in kinds_by_quantity.items():
        report.failures.append(Failure((1.0, 2.0), q, (kind,), 0.0, 1.0, math.nan, 1.0, 16.0, 3.0, 1.0))
        report.regions.append(Region(q, kind, 1.0, 1.0, 1, False, False, "0", "1"))
    return table.Entry(case, torch.float16, "cpu", report)


def test_two_input_ops_list_each_gradient_and_underflow_stands_apart():
    value, grads = table._quantity_cells(_entry({"d/dy": "silent-zero"}))
    assert value == "0.0" and grads == "d/dx: 1.0<br>d/dy: 16.0 silent-zero"
    text = table.findings([_entry({"d/dy": "underflow"})], {})
    assert text.index("### Underflow only") < text.index("`torch.fake`")


def test_hand_evaluation_raises_precision_until_two_agree():
    # erfinv(2p - 1) needs more than 1075 bits to keep a subnormal p.
    ndtri, _ = table.HAND["torch.special.ndtri"]
    assert float(table._evaluate(ndtri, (5e-324,))) == pytest.approx(-38.467405617, rel=1e-9)


@pytest.mark.parametrize("p", [5e-324, 2.2250738585072014e-308, 1e-30, 0.025, 0.5, 0.75, 1 - 2 ** -53])
def test_the_ndtri_reference_inverts_ndtr(p):
    # references.torch_ops.ndtri is Arb's erfcinv: ndtr of it gives p back, at 400 bits.
    import mpmath
    from references.torch_ops import ndtr, ndtri
    with mpmath.workprec(400):
        x = ndtri(mpmath.mpf(p))
        assert abs(ndtr(x) / p - 1) < mpmath.ldexp(1, -380)


# -- the gate ---------------------------------------------------------------------------------
SWEEP = """
    import pytest

    import harness

    pytestmark = pytest.mark.torch_ops
    CASES = [harness.Case("neg", lambda x: -x, lambda x: -x, domain=harness.domains.interval(1, 4))]
"""


@pytest.fixture(autouse=True)
def _own_summary(monkeypatch):
    monkeypatch.setattr(harness.pytest.plugin, "_SUMMARY", [])


def _collected(pytester, *args) -> set[str]:
    reprec = pytester.inline_run("--collect-only", "--dtypes", "float32", "--devices", "cpu", *args)
    (call,) = reprec.getcalls("pytest_collection_finish")
    return {item.nodeid for item in call.session.items}


def test_the_sweep_runs_only_with_torch_ops(pytester):
    pytester.makeini("[pytest]\naddopts = -p no:hypothesispytest\n")
    pytester.mkdir("cases")
    (pytester.path / "cases" / "sweep.py").write_text(textwrap.dedent(SWEEP))
    (pytester.path / "cases" / "plain.py").write_text(textwrap.dedent(SWEEP).replace("pytestmark", "unmarked"))
    assert _collected(pytester) == {"cases/plain.py::neg[float32-cpu]"}
    assert _collected(pytester, "--torch-ops") == {"cases/plain.py::neg[float32-cpu]",
                                                  "cases/sweep.py::neg[float32-cpu]"}


def test_the_command_writes_the_page(tmp_path):
    out = tmp_path / "ops.md"
    assert table.main(["--ops", "torch.exp", "--dtypes", "float16", "--grid-size", "1", "--truth-cache", "none",
                       "--out", str(out)]) == 0
    page = out.read_text()
    assert page.startswith("# The accuracy table of PyTorch's autograd")
    assert f"torch {torch.__version__}" in page and "| `torch.exp` | float16 | cpu | certified |" in page


# -- part 2: structured hand checks ------------------------------------------------------------

def test_a_structured_hand_check_agrees_with_the_harness_where_torch_is_wrong():
    # log_softmax's dominant entry: torch's log(1 + tiny) is 0, the truth -tiny.
    cases, _, _ = table.load("cases.torch_structured")
    case = next(c for c in cases if c.name == "torch.nn.functional.log_softmax")
    point = ((np.array([64.0, -0.25, 1.5, 0.875, 1.75, 1.125, 1.25, -1.5])),)
    report = harness.certify(harness.Case(case.name, case.forward, case.reference, grid=lambda dtype: [point]),
                             torch.float32)
    entry = table.Entry(case, torch.float32, "cpu", report)
    row = table.hand_check(entry)
    assert row.startswith("| `torch.nn.functional.log_softmax` | float32 |") and "silent-zero" in row
    assert row.endswith("| yes |")


def test_a_structured_hand_check_says_no_to_a_wrong_truth():
    cases, _, _ = table.load("cases.torch_structured")
    case = next(c for c in cases if c.name == "torch.nn.functional.softmax")
    x = np.array([-1.5, -1.5, 1.75, 2.0, 1.875, -1.0, 1.5, 707.2032713517042])
    report = harness.certify(harness.Case(case.name, case.forward, case.reference, grid=lambda dtype: [(x,)]),
                             torch.float64)
    failure = next(f for f in report.failures if f.quantity == "gradient[7]")
    assert failure.kind == "silent-zero"      # torch: 0, truth -1.25e-306
    wrong = Report(report.case, "float64", "cpu", report.feature_name, failures=[
        Failure(failure.point, failure.quantity, failure.kinds, failure.claimed, 2.5 * failure.truth, math.nan,
                failure.ulps, failure.bits, failure.budget_bits, failure.feature)])
    assert table.hand_check(table.Entry(case, torch.float64, "cpu", report)).endswith("| yes |")
    assert table.hand_check(table.Entry(case, torch.float64, "cpu", wrong)).endswith("| **no** |")


def test_a_structured_hand_evaluation_starts_above_the_cancellation_of_its_inputs():
    # The two scores' value rows share a 2.5e291 entry: dq's 1.37e-5 is their difference, which
    # 400 and 800 bits both round to 0 (two agreeing precisions, both too short).
    from harness.tables import hand_structured
    from harness.inputs.samples import _cotangent

    name = "torch.nn.functional.scaled_dot_product_attention(attn_mask)"
    q = np.array([[1.1222063866923024e-190, 2.256492969831037e-277, -3.814697265625e-06, -2.0078125],
                  [2.117582368135751e-22, 1.4981364335015035e-95, 2.527783052008247e-33, 6.567258882077402e-288]])
    k = np.array([[1.2638915260041235e-33, 4.527839539413356e-72, 8.0, 5.253807105661922e-287],
                  [-4.2030456845295373e-286, 0.025634765625, 1.6016664761464807e-145, 11.089866488461018],
                  [4.845781754539109e-268, 0.007812500000000003, -3.3927329811745276e-25, -6.018531076210112e-36]])
    v = np.array([[1.0, 0.125, 0.875, 2.4948003869184e+291], [1.0, 1.375, -1.0, 2.4948003869184e+291],
                  [2.0, 1.5, 0.0, 2.4948003869184e+291]])
    got = hand_structured.exact_at(name, (q, k, v), "d/dq[0, 2]", ("q", "k", "v"), _cotangent((2, 4)))
    assert float(got) == pytest.approx(1.3705151415484708e-05, rel=1e-12)


def test_torch_in_a_structured_hand_check_runs_as_the_harness_runs_it():
    # Eager batch_norm's float32 variance of a channel at -8.5e37: NaN on the one thread the
    # harness certifies in, finite on two (another split of the reduction).
    from harness.tables import hand_structured
    from harness.inputs.samples import _cotangent

    cases, _, _ = table.load("cases.torch_structured")
    case = next(c for c in cases if c.name == "torch.nn.functional.batch_norm")
    x = np.array([[-8.507060187143942e+37, -8.507057144782501e+37, -8.507059173023462e+37],
                  [-8.507056130662021e+37, -8.507058158902981e+37, -8.507063229505382e+37],
                  [-8.507055116541541e+37, -8.507056130662021e+37, -8.507057144782501e+37],
                  [-8.507056130662021e+37, -8.507062215384902e+37, -8.507057144782501e+37]])
    report = harness.certify(harness.Case(case.name, case.forward, case.reference, grid=lambda dtype: [(x,)]),
                             torch.float32)
    failure = next(f for f in report.failures if f.quantity == "gradient[1, 2]")
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        claim, _ = hand_structured.torch_at(case, (x,), torch.float32, "gradient[1, 2]", ("x",))
    finally:
        torch.set_num_threads(threads)
    assert math.isnan(failure.claimed) and math.isnan(claim)


def test_compiled_rows_stand_beside_eager_ones_and_their_differences_are_findings():
    case = harness.Case("torch.fake", torch.exp, None)
    eager = Report("torch.fake", "float32", "cpu", "x", worst_bits={"value": 1.0, "gradient": 1.0})
    compiled = Report("torch.fake", "float32", "cpu", "x", worst_bits={"value": 29.7, "gradient": 1.0})
    compiled.failures.append(Failure((1e-16,), "value", ("silent-zero",), 0.0, 1e-16, math.nan, 1.0, 29.7, 3.0,
                                     1e-16))
    entries = [table.Entry(case, torch.float32, "cpu", eager),
               table.Entry(case, torch.float32, "cpu", compiled, compiled=True, compile_seconds=3.25)]
    text = table.findings(entries, {})
    section = text[text.index("### Compiled against eager"):]
    assert "eager certified, compiled convicted (silent-zero)" in section and "compiled silent-zero" in section
    assert "### In ordinary ranges\n\nNone." in text      # the compiled defect is not an eager finding
    assert "| cpu, compiled in 3.2 s | **convicted**" in table._row(entries[1])


# -- dense pages (issue: "Certified" means no denser sweep can break it) --------------------------

def test_a_dense_page_convicts_what_the_grid_certified_and_says_so_at_the_top(tmp_path):
    # torch.rsqrt's float32 gradient is -inf in [1.3e-26, 2.05e-26], inside one binade.
    out = tmp_path / "ops.md"
    common = ["--ops", "torch.rsqrt", "--dtypes", "float32", "--truth-cache", "none", "--out", str(out),
              "--coverage-modules", "none"]
    assert table.main(common) == 0
    assert "| `torch.rsqrt` | float32 | cpu | certified | " in out.read_text()
    assert table.main(common + ["--dense", "--search", "0"]) == 0
    page = out.read_text()
    changed = page.split("## What changed")[1].split("## Findings")[0]
    assert "1 rows went from certified to convicted" in changed
    assert "`torch.rsqrt` float32: certified → convicted (non-finite)" in changed
    (check,) = [line for line in changed.splitlines() if line.startswith("| `torch.rsqrt` | float32 |")]
    assert check.endswith("| yes |") and "| -inf |" in check
    row = next(line for line in page.splitlines() if line.startswith("| `torch.rsqrt` | float32 | cpu |"))
    assert "**convicted**" in row and "(dense, 2 edges bisected)<br>domain: x in (0, inf)" in row
    assert "`--dense`: every value of float16 and bfloat16" in page


def test_a_search_that_fails_convicts_a_certified_row_and_compiled_rows_say_why_not_searched(swept, monkeypatch):
    import harness.search
    from harness.search import Witness

    entries, notes, _ = swept
    exp = entries["torch.exp"]
    witness = Witness("torch.exp", "float16", ("x",), (11.0859375,), "gradient", 65504.0, math.inf, 16.0, 5.0,
                      "non-finite", 42)
    searched = []
    monkeypatch.setattr(harness.search, "worst_input",
                        lambda case, dtype, device, **kw: searched.append((case.name, kw["report"])) or witness)
    compiled = table.Entry(exp.case, exp.dtype, exp.device, report=exp.report, compiled=True)
    entry = table.Entry(exp.case, exp.dtype, exp.device, report=exp.report)
    table.search([entry, compiled, entries["torch.expm1"]], 50)
    assert searched == [("torch.exp", exp.report)]   # certified eager rows only, seeded with their report
    assert compiled.witness is None and "sweep only" in compiled.searched
    assert entry.convicted_by_search and not entry.ok and entry.real_kinds == {"non-finite"}
    row = table._row(entry)
    assert "**convicted** by search" in row and "searched: 42 points" in row
    assert "search: x = 11.0859375: gradient 6.55e+04, truth inf" in row
    text = table.findings([entry], notes)
    assert "`torch.exp`** (non-finite; float16). Largest region, float16: search: x = 11.0859375" in text


def test_page_changes_read_the_previous_table_both_ways(swept):
    from harness.tables.page_changes import changes

    entries, _, _ = swept
    previous = ("| `torch.exp` | float16 | cpu | **convicted** | 1 |\n"
                "| `torch.expm1` | float16 | cpu | certified | 1 |\n"
                "| `torch.expm1` | float16 | cpu, compiled in 1.0 s | certified | 1 |\n")
    lines = "\n".join(changes(list(entries.values()), previous, lambda e: "| checked |"))
    assert "1 rows went from certified to convicted, 1 from convicted to certified" in lines
    assert "`torch.expm1` float16: certified → convicted (lost-digits, silent-zero). Largest region:" in lines
    assert "`torch.exp` float16: convicted → certified." in lines and "| checked |" in lines
    assert "No previous page" in "\n".join(changes(list(entries.values()), None, lambda e: None))


def test_every_threshold_a_finding_states_is_a_placeholder_the_sweep_fills():
    import cases.torch_linalg
    import cases.torch_ops
    import cases.torch_structured
    from harness.judging.kinds import KINDS
    from harness.tables.measured_words import placeholders

    for module in (cases.torch_ops, cases.torch_structured, cases.torch_linalg):
        names = {c.name for c in module.CASES}
        for name, note in module.FINDINGS.items():
            for text in (note.cause, getattr(note, "fix", None) or ""):
                found = placeholders(text)
                meant = len(re.findall(r"\{(float|bfloat)", text))
                assert meant == len(found), (name, text)   # each one meant as a threshold parses as one
                for m in found:
                    assert m["kind"] in KINDS and name in names, (name, m[0])


def test_a_stated_threshold_is_the_edge_of_the_defect_it_describes():
    # sigmoid's gradient `result * (1 - result)` is 0 from where `result` rounds to 1.
    cases, notes, _ = table.load()
    sigmoid = [c for c in cases if c.name == "torch.sigmoid"]
    entries = table.sweep(sigmoid, dtypes=(torch.float64, torch.float32), dense=True)
    line = table.findings(entries, notes).split("**`torch.sigmoid`**")[1].splitlines()[0]
    for e in entries:
        zero = max((r for r in e.report.regions if r.quantity == "gradient" and r.kind == "silent-zero"),
                   key=lambda r: r.count)
        assert f"{zero.lo:.4g} ({e.dtype_name})" in line
        below = np.nextafter(np.array(zero.lo, dtype=e.dtype_name), np.array(0, dtype=e.dtype_name))
        x = torch.tensor([float(below), zero.lo] * 32, dtype=e.dtype, requires_grad=True)
        torch.sigmoid(x).sum().backward()
        assert x.grad[0].item() != 0 and x.grad[1].item() == 0
