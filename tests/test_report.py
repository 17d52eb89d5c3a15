"""A printed report stays readable: the worst regions first, the rest counted."""

import numpy as np

from harness.kinds import CODE
from harness.report import REGION_LINES, Failure, Report, regions


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
