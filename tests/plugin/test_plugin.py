"""The pytest plugin, run on a throwaway ``cases/`` directory through ``pytester``.

Case files here are cheap on purpose: negation and doubling, whose truths the
engine settles at its first precision, on a short interval so that a grid has
tens of points, in float32 only, with ``--grid-size 1``.

Runs happen in this process (``inline_run``: no second torch import), except
where a second process is the point (the truth cache read by a new run) and
pytest-xdist's workers. The plugin keeps its summary rows in a module-level
list that outlives an in-process run: ``fresh_summary`` gives a run its own,
which also keeps these runs out of this session's own summary
(``test_summary_counts_only_its_own_run`` is about that list).
"""

import builtins
import re
import textwrap

import pytest
import torch

import harness.pytest.plugin

pytest_plugins = ["pytester"]

FAMILY = """
    import torch

    import harness

    DOMAIN = harness.domains.interval(1, 4)


    def negate(x):
        return -x


    def negate_reference(x):
        return -x


    neg = harness.Case("neg", negate, negate_reference, domain=DOMAIN)
    more = [harness.Case("double", lambda x: 2 * x, lambda x: 2 * x, domain=DOMAIN)]
    only64 = harness.Case("only64", negate, negate_reference, domain=DOMAIN, dtypes=(torch.float64,))
"""

VERDICTS = """
    import harness

    DOMAIN = harness.domains.interval(1, 4)


    def negate(x):
        return -x


    def negate_reference(x):
        return -x


    def plus_one(x, g):
        return g   # the sign is lost: d(-x)/dx is -1


    wrong_grad = harness.Case("wrong_grad", negate, negate_reference, backward=plus_one, domain=DOMAIN)
    convicted_but_fine = harness.Case("convicted_but_fine", negate, negate_reference, domain=DOMAIN,
                                      expect=harness.convicted("lost-digits"))
    convicted_other_kind = harness.Case("convicted_other_kind", negate, negate_reference, backward=plus_one,
                                        domain=DOMAIN, expect=harness.convicted("lost-digits"))
    convicted_right = harness.Case("convicted_right", negate, negate_reference, backward=plus_one, domain=DOMAIN,
                                   expect=harness.convicted("wrong-sign"))
"""

FAST = ("--dtypes", "float32", "--grid-size", "1")

# A module outside cases/: only its CASES list is collected (a test module's other Cases are its fixtures).
LISTED = """
    import harness

    DOMAIN = harness.domains.interval(1, 4)

    loose = harness.Case("loose", lambda x: -x, lambda x: -x, domain=DOMAIN)
    CASES = [harness.Case("listed", lambda x: 2 * x, lambda x: 2 * x, domain=DOMAIN)]
"""

LOOSE_ONLY = """
    import harness

    neg = harness.Case("neg", lambda x: -x, lambda x: -x, domain=harness.domains.interval(1, 4))
"""

DUPLICATES = """
    import harness

    DOMAIN = harness.domains.interval(1, 4)

    neg = harness.Case("neg", lambda x: -x, lambda x: -x, domain=DOMAIN)
    CASES = [neg, harness.Case("neg", lambda x: 0 - x, lambda x: -x, domain=DOMAIN),
             harness.Case("double", lambda x: 2 * x, lambda x: 2 * x, domain=DOMAIN)]
"""


def fresh_summary(monkeypatch) -> list:
    """The summary rows of the next in-process run, kept apart from every other run's."""
    rows = []
    monkeypatch.setattr(harness.pytest.plugin, "_SUMMARY", rows)
    return rows


@pytest.fixture(autouse=True)
def _own_summary(monkeypatch):
    fresh_summary(monkeypatch)


def write_cases(pytester, **files):
    # Hypothesis' plugin imports hypothesis afresh at the end of every in-process run: seconds each.
    pytester.makeini("[pytest]\naddopts = -p no:hypothesispytest\n")
    directory = pytester.mkdir("cases")
    for name, source in files.items():
        (directory / f"{name}.py").write_text(textwrap.dedent(source))
    return directory


def outcomes(reprec) -> dict[str, str]:
    passed, skipped, failed = reprec.listoutcomes()
    return {**{r.nodeid: "passed" for r in passed}, **{r.nodeid: "skipped" for r in skipped},
            **{r.nodeid: "failed" for r in failed}}


def failure_block(lines: list[str], name: str) -> list[str]:
    """What the terminal shows under the "_ case NAME _" heading of a failure."""
    start = next(i for i, line in enumerate(lines) if re.fullmatch(rf"_+ case {re.escape(name)} _+", line))
    end = next(i for i in range(start + 1, len(lines)) if re.match(r"(_{3,}|={3,}) ", lines[i]))
    return [line for line in lines[start + 1:end] if line.strip()]


def failure_text(reprec, nodeid: str) -> str:
    (report,) = [r for r in reprec.getreports("pytest_runtest_logreport") if r.nodeid == nodeid and r.failed]
    return str(report.longrepr)


def certification_line(lines: list[str]) -> str:
    """The line under the "gradient certification" heading of the terminal summary."""
    start = next(i for i, line in enumerate(lines) if re.search(r"=+ gradient certification =+", line))
    return next(line for line in lines[start + 1:] if line.strip())


def truth_points(result) -> int:
    return int(re.search(r"(\d+) truth points computed", certification_line(result.outlines)).group(1))


# -- collection ---------------------------------------------------------------------------
def ids(pytester, *args) -> set[str]:
    """Node ids of the items a run would execute (after ``-k`` deselects)."""
    reprec = pytester.inline_run("--collect-only", *args)
    (call,) = reprec.getcalls("pytest_collection_finish")
    return {item.nodeid for item in call.session.items}


def test_one_item_per_case_dtype_and_device(pytester):
    write_cases(pytester, fam=FAMILY)
    expected = {f"cases/fam.py::{name}[{dtype}-{device}]" for name in ("neg", "double")
                for dtype in ("float64", "float32", "float16", "bfloat16") for device in ("cpu", "cuda")}
    expected |= {"cases/fam.py::only64[float64-cpu]", "cases/fam.py::only64[float64-cuda]"}
    assert ids(pytester) == expected


def test_dtypes_and_devices_options_filter_the_items(pytester):
    write_cases(pytester, fam=FAMILY)
    assert ids(pytester, "--dtypes", "float32", "--devices", "cpu") == {
        "cases/fam.py::neg[float32-cpu]", "cases/fam.py::double[float32-cpu]"}
    assert ids(pytester, "--dtypes", "float64,float16", "--devices", "cuda") == {
        "cases/fam.py::neg[float64-cuda]", "cases/fam.py::neg[float16-cuda]",
        "cases/fam.py::double[float64-cuda]", "cases/fam.py::double[float16-cuda]",
        "cases/fam.py::only64[float64-cuda]"}


def test_k_selects_by_case_name(pytester):
    write_cases(pytester, fam=FAMILY)
    assert ids(pytester, "-k", "double", "--devices", "cpu") == {
        f"cases/fam.py::double[{d}-cpu]" for d in ("float64", "float32", "float16", "bfloat16")}
    assert ids(pytester, "-k", "not double", "--dtypes", "float32") == {
        "cases/fam.py::neg[float32-cpu]", "cases/fam.py::neg[float32-cuda]"}


def test_unknown_dtype_is_a_usage_error(pytester):
    write_cases(pytester, fam=FAMILY)
    result = pytester.runpytest_inprocess("--dtypes", "float32,float8", "--collect-only")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--dtypes*float8*"])


def test_search_without_hypothesis_is_a_usage_error(pytester, monkeypatch):
    write_cases(pytester, fam=FAMILY)
    real_import = builtins.__import__

    def without_hypothesis(name, *args, **kwargs):
        if name.partition(".")[0] == "hypothesis":
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    # Not sys.modules: pytest itself still walks the loaded hypothesis plugin's module.
    monkeypatch.setattr(builtins, "__import__", without_hypothesis)
    result = pytester.runpytest_inprocess("--certify-search", "5", "--collect-only")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--certify-search needs hypothesis*gradient-harness[[]search[]]*"])


def test_cases_outside_cases_dirs_come_from_their_CASES_list(pytester):
    write_cases(pytester, fam=FAMILY)
    pytester.makepyfile(test_mine=textwrap.dedent(LISTED))
    (pytester.mkdir("checks") / "mine.py").write_text(textwrap.dedent(LISTED))
    args = ("--dtypes", "float32", "--devices", "cpu")
    # A test module is collected with the rest; a file in another directory when named.
    assert ids(pytester, *args) == {"cases/fam.py::neg[float32-cpu]", "cases/fam.py::double[float32-cpu]",
                                    "test_mine.py::listed[float32-cpu]"}
    assert ids(pytester, "checks/mine.py", *args) == {"checks/mine.py::listed[float32-cpu]"}
    reprec = pytester.inline_run("test_mine.py", "checks/mine.py", *FAST, "--devices", "cpu")
    assert outcomes(reprec) == {"test_mine.py::listed[float32-cpu]": "passed",
                                "checks/mine.py::listed[float32-cpu]": "passed"}


def test_a_module_whose_cases_nothing_collects_is_named_in_a_warning(pytester):
    write_cases(pytester)
    pytester.makepyfile(test_mine=textwrap.dedent(LISTED), test_loose=textwrap.dedent(LOOSE_ONLY))
    result = pytester.runpytest_inprocess("--collect-only", "--dtypes", "float32", "--devices", "cpu")
    result.stdout.fnmatch_lines(["*test_loose.py defines Case objects (neg) that nothing certifies*CASES*"])
    # A module that gives items is not warned about, whatever else it defines.
    assert "test_mine.py defines" not in result.stdout.str()


# -- devices ------------------------------------------------------------------------------
def test_cuda_items_skip_without_cuda_and_run_with_it(pytester):
    write_cases(pytester, fam=FAMILY)
    reprec = pytester.inline_run(*FAST, "--devices", "cpu,cuda")
    got = outcomes(reprec)
    cuda = "passed" if torch.cuda.is_available() else "skipped"
    assert got == {"cases/fam.py::neg[float32-cpu]": "passed", "cases/fam.py::double[float32-cpu]": "passed",
                   "cases/fam.py::neg[float32-cuda]": cuda, "cases/fam.py::double[float32-cuda]": cuda}
    if not torch.cuda.is_available():
        _, skipped, _ = reprec.listoutcomes()
        for report in skipped:
            assert "CUDA" in report.longrepr[2]


# -- verdicts -----------------------------------------------------------------------------
def test_failures_read_as_short_tables_and_expectations_are_enforced(pytester):
    write_cases(pytester, verdicts=VERDICTS)
    result = pytester.runpytest_inprocess(*FAST, "--devices", "cpu")
    assert outcomes(result.reprec) == {
        "cases/verdicts.py::wrong_grad[float32-cpu]": "failed",
        "cases/verdicts.py::convicted_but_fine[float32-cpu]": "failed",
        "cases/verdicts.py::convicted_other_kind[float32-cpu]": "failed",
        "cases/verdicts.py::convicted_right[float32-cpu]": "passed",
    }

    block = failure_block(result.outlines, "wrong_grad[float32-cpu]")
    assert "wrong_grad › float32 › cpu" in block[0]
    text = "\n".join(block)
    assert "failing regions" in text and "worst points" in text and "wrong-sign" in text
    assert "tensor(" not in text and "Traceback" not in text and "runtest" not in text
    assert len(block) <= 40, text

    assert "known-bad implementation must be convicted" in failure_block(
        result.outlines, "convicted_but_fine[float32-cpu]")[0]
    # The problem line names the kind that was not expected.
    assert "wrong-sign" in failure_block(result.outlines, "convicted_other_kind[float32-cpu]")[0]


def test_a_case_file_that_cannot_be_imported_fails_alone(pytester):
    write_cases(pytester, fam=FAMILY,
                broken="import harness\nraise RuntimeError('this family cannot load')\n",
                missing="import no_such_module_for_the_harness_tests\n")
    reprec = pytester.inline_run(*FAST, "--devices", "cpu")
    assert outcomes(reprec) == {
        "cases/broken.py::import": "failed",
        "cases/missing.py::import": "failed",
        "cases/fam.py::neg[float32-cpu]": "passed",
        "cases/fam.py::double[float32-cpu]": "passed",
    }
    text = failure_text(reprec, "cases/broken.py::import")
    assert "broken.py could not be imported" in text and "this family cannot load" in text
    assert "no_such_module_for_the_harness_tests" in failure_text(reprec, "cases/missing.py::import")


def test_two_cases_of_one_file_with_one_name_are_a_collection_error_of_that_name(pytester):
    write_cases(pytester, fam=FAMILY, dup=DUPLICATES)
    reprec = pytester.inline_run(*FAST, "--devices", "cpu")
    assert outcomes(reprec) == {
        "cases/dup.py::neg": "failed",
        "cases/dup.py::double[float32-cpu]": "passed",
        "cases/fam.py::neg[float32-cpu]": "passed",
        "cases/fam.py::double[float32-cpu]": "passed",
    }
    text = failure_text(reprec, "cases/dup.py::neg")
    assert "duplicate case name in dup.py" in text and "cases/dup.py" in text
    assert "(neg and CASES[1])" in text, text


# -- pytest-xdist ---------------------------------------------------------------------------
def test_xdist_gives_the_serial_outcomes(pytester, monkeypatch):
    write_cases(pytester, fam=FAMILY, verdicts=VERDICTS)
    args = (*FAST, "--devices", "cpu,cuda", "-p", "no:cacheprovider")
    runs = {}
    for mode in ("serial", "xdist"):
        rows = fresh_summary(monkeypatch)
        reprec = pytester.inline_run(*args, *(("-n", "2") if mode == "xdist" else ()),
                                     "--truth-cache", str(pytester.path / f"{mode}.sqlite"))
        runs[mode] = outcomes(reprec), sorted((v["case"], o) for v, o in rows)
    serial_outcomes, serial_rows = runs["serial"]
    assert len(serial_outcomes) == 12 and "failed" in serial_outcomes.values()
    assert len(serial_rows) == sum(o != "skipped" for o in serial_outcomes.values())
    assert runs["xdist"] == runs["serial"]


GRADCHECK_SUITE = """
import torch
import harness

def logcumsumexp_of(x):
    return torch.logcumsumexp(x, 0)

def test_a():
    x = torch.tensor([0.5, 2.0], dtype=torch.float64, requires_grad=True)
    assert harness.gradcheck(torch.tanh, (x,))
    assert harness.gradcheck(logcumsumexp_of, (x,))

def test_b():
    z = torch.tensor([0.5 + 1j], dtype=torch.complex128, requires_grad=True)
    assert harness.gradcheck(torch.exp, (z,))
"""


@pytest.mark.parametrize("mode", ["serial", "xdist"])
def test_a_session_of_gradcheck_calls_ends_with_how_they_were_judged(pytester, monkeypatch, mode):
    monkeypatch.setattr(harness.pytest.plugin, "_GRADCHECKS", [])
    pytester.makeini("[pytest]\naddopts = -p no:hypothesispytest\n")
    pytester.makepyfile(test_suite=GRADCHECK_SUITE)
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", *(("-n", "2") if mode == "xdist" else ()))
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*= harness.gradcheck =*", "3 gradcheck calls: 1 against the truth, 1 by "
                                 "differences only (1 harness.exact has no exact torch.logcumsumexp), 1 by "
                                 "torch.autograd.gradcheck (1 a complex input)"])


# -- the truth cache -------------------------------------------------------------------------
def run_here(pytester, monkeypatch, *args):
    fresh_summary(monkeypatch)
    return pytester.runpytest_inprocess(*args)


def test_truth_cache_is_reused_and_invalidated_by_a_reference_edit(pytester, monkeypatch):
    family = write_cases(pytester, fam=FAMILY) / "fam.py"
    args = (*FAST, "--devices", "cpu", "--truth-cache", str(pytester.path / "truth.sqlite"))

    first = run_here(pytester, monkeypatch, *args)
    first.assert_outcomes(passed=2)
    assert truth_points(first) > 0

    # A second run is a second process: the truths come from the file alone.
    second = pytester.runpytest_subprocess(*args)
    second.assert_outcomes(passed=2)
    assert truth_points(second) == 0

    family.write_text(family.read_text().replace(
        "def negate_reference(x):\n    return -x", "def negate_reference(x):\n    return 0 - x"))
    third = run_here(pytester, monkeypatch, *args)
    third.assert_outcomes(passed=2)
    # The edited reference's truths are computed again; the doubling's are still there.
    assert 0 < truth_points(third) < truth_points(first)


def test_summary_counts_only_its_own_run(pytester):
    write_cases(pytester, fam=FAMILY)
    args = (*FAST, "--devices", "cpu", "--truth-cache", "none")
    first = pytester.runpytest_inprocess(*args)
    second = pytester.runpytest_inprocess(*args)
    assert certification_line(first.outlines).startswith("2 certified,")
    assert certification_line(second.outlines).startswith("2 certified,")


# -- one pool for the run, --exhaustive -----------------------------------------------------------
SHARED = """
    import mpmath

    import harness

    DOMAIN = harness.domains.interval(1, 4)


    def reference(x):
        return -x


    def breaks_at_two(x):
        if x == 2:
            raise ZeroDivisionError("not at two")
        return -x


    CASES = [harness.Case("neg", lambda x: -x, reference, domain=DOMAIN),
             harness.Case("neg.again", lambda x: 0 - x, reference, domain=DOMAIN),
             harness.Case("broken", lambda x: -x, breaks_at_two, domain=DOMAIN)]
"""


def test_the_run_computes_each_shared_truth_once_and_a_broken_reference_fails_its_item_only(pytester):
    write_cases(pytester, shared=SHARED)
    result = pytester.runpytest("cases", *FAST, "--devices", "cpu", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["gradient certification: preparing 3 certifications*",
                                 "*broken case: case 'broken' at 2: reference raised ZeroDivisionError: not at two*"])
    points = harness.grids.extreme(torch.float32, harness.domains.interval(1, 4), 1).size
    # The two working cases share one reference: each point once, whatever the order of the pool.
    summary = next(line for line in result.stdout.lines if "truth points computed" in line)
    computed = int(re.search(r"(\d+) truth points computed", summary).group(1))
    assert points <= computed <= 2 * points - 1, summary


def test_exhaustive_option_sweeps_16_bit_items_and_says_why_others_stay_on_the_grid(pytester):
    write_cases(pytester, family=FAMILY)
    result = pytester.runpytest("cases", "--dtypes", "float16,float32", "--grid-size", "1", "--devices", "cpu",
                                "--exhaustive", "-rA", "-p", "no:cacheprovider", "-k", "neg")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*neg › float16 › cpu: certified; exhaustive over the domain (1, 4): "
                                 "2,047 of the 65,536 float16 inputs*",
                                 "*exhaustive: not applicable (float32 has 4,294,967,296 inputs*"])


FLUSHING = """
    import mpmath
    import torch

    import harness


    def flushed_sigmoid(x, g):
        s = torch.sigmoid(x)
        return g * torch.where(s < torch.finfo(x.dtype).tiny, torch.zeros_like(s), s)


    ftz = harness.Case("ftz", torch.nn.functional.softplus, lambda x: mpmath.log1p(mpmath.exp(x)),
                       backward=flushed_sigmoid, domain=harness.domains.interval(-100, -80))
    neg = harness.Case("neg", lambda x: -x, lambda x: -x, domain=harness.domains.interval(1, 4))
"""


def test_underflow_option_sets_the_policy_of_the_run(pytester):
    write_cases(pytester, flushing=FLUSHING)
    args = ("cases", *FAST, "--devices", "cpu", "-p", "no:cacheprovider", "--truth-cache", "none")
    reported = pytester.runpytest(*args, "-rA")
    reported.assert_outcomes(passed=2)
    reported.stdout.fnmatch_lines(["*underflow (reported, not failed):*", "*gradient 0, truth in *[underflow]*"])
    failed = pytester.runpytest(*args, "--underflow", "fail")
    failed.assert_outcomes(passed=1, failed=1)
    failed.stdout.fnmatch_lines(["*ftz › float32 › cpu: expected certified*"])
