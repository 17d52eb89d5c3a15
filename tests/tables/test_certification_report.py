"""The certification report: index.md names every run, its verdict and its
failing regions; every family and dtype gets a stability map; the plugin
writes both at the end of a run, failures or not.

Cases are cheap: squares and products on short intervals (or a planted
sign bug over the real line), float32, ``grid_size=1``.
"""

import struct
import textwrap

import pytest
import torch

import harness
import harness.pytest.plugin
from harness.tables.certification_report import MAPS, Run, write

pytest_plugins = ["pytester"]

SHORT = harness.domains.interval(1, 4)


def square(x):
    return x * x


def square_reference(x):
    return x * x


def abs_backward(x, g):
    return g * 2 * x.abs()   # planted: the sign of x is lost


def product(x, y):
    return x * y


def product_reference(x, y):
    return x * y


GOOD = harness.Case("square.autograd", square, square_reference)
BAD = harness.Case("square.abs", square, square_reference, backward=abs_backward,
                   expect=harness.convicted("wrong-sign"))
# The same bug, claimed certified: the index must say the claim does not hold.
WRONGLY_CERTIFIED = harness.Case("square.claimed", square, square_reference, backward=abs_backward)
HEAT = harness.Case("product.heat", product, product_reference, domain=(SHORT, SHORT))
LABELS = harness.Case("product.labels", product, product_reference,
                      domain=(SHORT, harness.domains.choice(0, 1)))


@pytest.fixture(scope="module")
def runs() -> dict[str, Run]:
    out = {}
    for case in (GOOD, BAD, HEAT, LABELS):
        out[case.name] = Run.of(case, harness.certify(case, torch.float32, grid_size=1), family="square")
    bad = harness.certify(WRONGLY_CERTIFIED, torch.float32, grid_size=1)
    out["claimed"] = Run.of(WRONGLY_CERTIFIED, bad, family="square")
    return out


def png_size(path) -> tuple[int, int]:
    """(width, height) from a PNG's signature and IHDR chunk; fails on anything else."""
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR", f"{path} is not a PNG"
    return struct.unpack(">II", head[16:24])


# -- Run -----------------------------------------------------------------------------------
def test_run_keeps_the_expectation_outcome_and_drops_the_measured_list(runs):
    good, bad, claimed = runs["square.autograd"], runs["square.abs"], runs["claimed"]
    assert (good.expected, good.problem, good.verdict) == ("certified", None, "certified")
    assert (bad.expected, bad.problem) == ("convicted of wrong-sign", None)
    assert bad.verdict == "convicted: wrong-sign"
    assert (claimed.expected, claimed.problem) == ("certified", "expected certified")
    assert bad.report.measured == [] and set(bad.points) == {"value", "gradient"}
    assert bad.points["gradient"].failing.any() and bad.points["gradient"].curve


def test_family_defaults_to_the_case_name_up_to_its_first_dot(runs):
    assert Run(runs["square.abs"].report).family == "square"


def test_two_input_runs_keep_both_inputs_and_their_names(runs):
    heat = runs["product.heat"]
    assert heat.inputs == ("x", "y")
    assert heat.points["value"].xy.shape == (heat.points["value"].bits.size, 2)
    # A discrete input has no gradient to judge.
    assert set(runs["product.labels"].points) == {"value", "d/dx"}


# -- index.md and maps -----------------------------------------------------------------------
def test_index_names_each_run_its_verdict_expectation_and_regions(runs, tmp_path):
    index = write(tmp_path, [runs["square.autograd"], runs["square.abs"], runs["claimed"]]).read_text()
    rows = {line.split(" | ")[0]: line for line in index.splitlines() if line.startswith("| square.")}
    assert "## square" in index and "3 runs" in index
    assert "| float32 | cpu | certified | certified | yes |" in rows["| square.autograd"]
    assert "| convicted: wrong-sign | convicted of wrong-sign | yes |" in rows["| square.abs"]
    assert "| convicted: wrong-sign | certified | **no**: expected certified |" in rows["| square.claimed"]
    assert f"[map]({MAPS}/square.float32.png)" in rows["| square.abs"]
    bad = runs["square.abs"].report
    assert f"{bad.worst_bits['gradient']:.1f} / {bad.mean_bits['gradient']:.2f}" in rows["| square.abs"]
    (region,) = bad.regions
    assert region.words(bad.feature_name).startswith("x <= ")
    assert f"- `{region.words(bad.feature_name)}`" in index
    # The claim that does not hold is listed on its own, before the families.
    assert index.index("## Not as expected") < index.index("## square")
    assert "- **square.claimed › float32 › cpu** in [square](#square): expected certified" in index


def test_one_map_per_family_and_dtype_is_a_sensible_png(runs, tmp_path):
    write(tmp_path, list(runs.values()))
    (path,) = (tmp_path / MAPS).glob("*.png")
    assert path.name == "square.float32.png"
    width, height = png_size(path)
    # Three rows (the curves, the labels' curves, the heat map) of at most three panels.
    assert 1200 <= width <= 3000 and 900 <= height <= 2500, (width, height)


def test_a_map_spans_float64_from_max_to_the_smallest_subnormal(tmp_path):
    # The width of [-1.8e308, 1.8e308] overflows: no axis may compute it.
    run = Run.of(BAD, harness.certify(BAD, torch.float64, grid_size=1))
    write(tmp_path, [run])
    assert png_size(tmp_path / MAPS / "square.float64.png")[0] > 500


def test_a_second_write_removes_maps_of_families_that_are_gone(runs, tmp_path):
    (tmp_path / MAPS).mkdir()
    (tmp_path / MAPS / "gone.float64.png").write_bytes(b"old")
    write(tmp_path, [runs["square.autograd"]])
    assert [p.name for p in (tmp_path / MAPS).iterdir()] == ["square.float32.png"]


# -- the plugin ------------------------------------------------------------------------------
FAMILY = """
    import harness

    DOMAIN = harness.domains.interval(1, 4)


    def negate(x):
        return -x


    def negate_reference(x):
        return -x


    def lost_sign(x, g):
        return g


    neg = harness.Case("neg", negate, negate_reference, domain=DOMAIN)
    wrong = harness.Case("wrong_grad", negate, negate_reference, backward=lost_sign, domain=DOMAIN)
"""

FAST = ("--dtypes", "float32", "--grid-size", "1", "--devices", "cpu", "--truth-cache", "none")


@pytest.fixture
def own_summary(monkeypatch):
    # The plugin's summary rows live in a module-level list: an in-process run
    # gets its own, and stays out of this session's summary.
    monkeypatch.setattr(harness.pytest.plugin, "_SUMMARY", [])


def write_cases(pytester):
    pytester.makeini("[pytest]\naddopts = -p no:hypothesispytest\n")
    (pytester.mkdir("cases") / "fam.py").write_text(textwrap.dedent(FAMILY))


def test_plugin_writes_the_report_also_when_an_item_fails(pytester, own_summary):
    write_cases(pytester)
    result = pytester.runpytest_inprocess(*FAST, "--certify-report", "out")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*certification report:*index.md (2 runs)*"])
    index = (pytester.path / "out" / "index.md").read_text()
    assert "## fam" in index and "| neg | float32 | cpu | certified |" in index
    assert "| wrong_grad | float32 | cpu | convicted: wrong-sign |" in index
    assert "- `every x (" in index and "gradient 1, truth -1 [wrong-sign]`" in index
    assert png_size(pytester.path / "out" / MAPS / "fam.float32.png")[0] > 500


def test_plugin_writes_nothing_without_the_option(pytester, own_summary):
    write_cases(pytester)
    pytester.runpytest_inprocess(*FAST).assert_outcomes(passed=1, failed=1)
    assert not list(pytester.path.rglob("index.md"))


def test_report_under_xdist_is_a_usage_error(pytester, own_summary):
    write_cases(pytester)
    result = pytester.runpytest_inprocess(*FAST, "--certify-report", "out", "-n", "2")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--certify-report needs a run without xdist*"])


def test_a_run_that_certifies_nothing_keeps_the_report_there_is(pytester, own_summary):
    write_cases(pytester)
    (pytester.path / "out").mkdir()
    (pytester.path / "out" / "index.md").write_text("earlier report")
    result = pytester.runpytest_inprocess(*FAST, "--certify-report", "out", "--collect-only")
    result.stdout.fnmatch_lines(["*certification report not written: no case was certified*"])
    assert (pytester.path / "out" / "index.md").read_text() == "earlier report"
