"""A printed report stays readable: the worst regions first, the rest counted."""

import numpy as np

from harness.kinds import CODE
from harness.report import REGION_LINES, Failure, Report, boxes, regions


def test_a_report_prints_the_worst_regions_and_counts_the_rest():
    # Forty separate failing runs (every other point fails), one of them non-finite.
    n = 80
    kind = np.where(np.arange(n) % 2 == 0, CODE["lost-digits"], -1)
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
