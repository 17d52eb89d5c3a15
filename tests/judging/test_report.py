"""A printed report stays readable: the worst regions first, the rest counted."""

import numpy as np

from harness.judging.kinds import CODE
from harness.judging.report import REGION_LINES, Failure, Report, boxes, regions


def test_a_report_prints_the_worst_regions_and_counts_the_rest():
    # Forty separate failing runs (every fourth point fails: three passing
    # points between two failing ones are not bridged), one of them non-finite.
    n = 160
    kind = np.where(np.arange(n) % 4 == 0, CODE["lost-digits"], -1)
    kind[40] = CODE["non-finite"]
    feature = np.arange(n, dtype=np.float64)
    columns = [("gradient", feature, kind, feature, feature, np.full(n, 9.0), np.arange(n))]
    report = Report("case", "float32", "cpu", "x", regions=regions(columns))
    report.failures.append(Failure((40.0,), "gradient", ("non-finite",), np.nan, 40.0, np.nan, np.nan, 32.0, 4.0, 40.0))
    text = str(report).splitlines()
    shown = [line for line in text if line.startswith("  x ")]
    assert len(report.regions) == 40 and len(shown) == REGION_LINES
    assert "[non-finite]" in shown[0]      # the worst kind leads
    assert f"  and {40 - REGION_LINES} more regions (every point on a map: --certify-report)" in text


def test_two_input_regions_are_boxes_in_x_and_y():
    x, y = (a.ravel().astype(np.float64) for a in np.meshgrid(np.arange(10), np.arange(5), indexing="ij"))
    kind = np.full(x.size, -1)
    kind[x >= 7] = CODE["non-finite"]               # x >= 7, every y
    kind[(x == 2) & (y >= 3)] = CODE["lost-digits"]   # one row, the upper part
    columns = [("value", x, y, kind, np.where(x >= 7, np.inf, 1.0), np.ones(x.size), np.full(x.size, 9.0),
                np.arange(x.size))]
    words = [r.words("max|x,y|") for r in boxes(columns, ("x", "y"))]
    assert words == ["x >= 7, every y (15 pts): value inf, truth 1 [non-finite]",
                     "x = 2, y >= 3 (2 pts): value off by up to 9.0 bits, truth 1 [lost-digits]"]


def test_runs_of_one_kind_join_across_other_kinds_and_short_passing_gaps():
    # Lost digits over [0, 30], with silent zeros and one passing point inside:
    # one problem area, one line, which says how many of its points fail.
    n = 40
    kind = np.full(n, -1)
    kind[:31] = CODE["lost-digits"]
    kind[10:14] = CODE["silent-zero"]
    kind[20] = -1
    feature = np.arange(n, dtype=np.float64)
    columns = [("value", feature, kind, feature, feature, np.full(n, 9.0), np.arange(n))]
    words = [r.words("x") for r in regions(columns)]
    assert words == ["x in [10, 13] (4 pts): value in [10, 13], truth in [10, 13] [silent-zero]",
                     "x <= 30 (26 of 27 pts): value off by up to 9.0 bits, truth in [0, 30] [lost-digits]"]


def test_structured_regions_read_as_patterns_one_line_per_stretch():
    # Two points of one pattern (parameter 16 and 32), each with a value and
    # two gradient entries; the gradient fails at one entry of each point.
    unit = np.array([0, 1])
    group = np.zeros(2, dtype=np.int64)
    fail = CODE["silent-zero"]
    value = ("value", np.array([16.0, 32.0]), np.array([fail, fail]), np.zeros(2), np.ones(2), np.zeros(2),
             np.array([0, 3]), group, unit)
    grad = ("gradient", np.array([16.0, 16.0, 32.0, 32.0]), np.array([fail, -1, fail, -1]), np.zeros(4),
            np.ones(4), np.zeros(4), np.array([1, 2, 4, 5]), np.zeros(4, dtype=np.int64), np.array([0, 0, 1, 1]))
    words = [r.words("max|z|") for r in regions([value, grad], [("dominant first entry", "gap")])]
    assert words == ["dominant first entry, every gap (2 pts): value 0, truth 1; gradient 0, truth 1 [silent-zero]"]


def test_a_failure_just_past_its_budget_shows_the_digits_that_make_it_fail():
    report = Report("case", "float64", "cpu", "x")
    report.failures.append(Failure((0.5,), "gradient", ("lost-digits",), 1.0, 1.0, 1.0, 1.0, 61.934, 61.912, 0.5))
    report.failures.append(Failure((0.7,), "gradient", ("lost-digits",), 1.0, 1.0, 1.0, 1.0, 40.0, 4.1, 0.7))
    rows = report.table().splitlines()[1:]
    assert any(r.split()[-3:] == ["61.93", "61.91", "lost-digits"] for r in rows), rows
    assert any(r.split()[-3:] == ["40.0", "4.1", "lost-digits"] for r in rows), rows
