"""Thresholds in a finding's words, read from the judged points.

A cause that says where a defect starts ("is 0 above 37 in float64", "from a
gap of about 64") is a claim about numbers, and a number written by hand drifts
from the sweep that should back it. A case file writes such a threshold as a
placeholder instead::

    "`1 - result` is 0 above {float64 gradient silent-zero lo} (float64)"

``fill`` replaces it with the end of the failing region it names, from the
entry's report: ``lo`` or ``hi`` of the largest region (most points) of that
quantity and kind in that dtype, or of the largest one whose words contain the
optional quoted text (a structured pattern: ``{float32 gradient silent-zero lo
"dominant entry"}``). A dense sweep bisects class changes to adjacent floats, so
``lo`` is then the first failing float. A placeholder no report backs is an
error: the page never states a threshold it did not measure.
"""

from __future__ import annotations

import re

#: ``{dtype quantity kind lo|hi ["words"]}``.
PLACEHOLDER = re.compile(r'\{(?P<dtype>float64|float32|float16|bfloat16) (?P<quantity>value|gradient|d/d\w+) '
                         r'(?P<kind>[a-z-]+) (?P<end>lo|hi)(?: "(?P<words>[^"]+)")?\}')


class UnmeasuredThreshold(ValueError):
    """A placeholder that no failing region of the sweep backs."""


def placeholders(text: str) -> list[re.Match]:
    """The thresholds ``text`` states by placeholder.

    Example:
        >>> [m["end"] for m in placeholders("0 above {float64 gradient silent-zero lo}, x")]
        ['lo']
    """
    return list(PLACEHOLDER.finditer(text))


def threshold(match: re.Match, reports: dict) -> float:
    """The number a placeholder stands for: an end of the largest failing region
    it names in ``reports`` (dtype name -> the op's report in that dtype)."""
    report = reports.get(match["dtype"])
    if report is None:
        raise UnmeasuredThreshold(f"{match[0]}: no report in {match['dtype']}")
    regions = [r for r in report.regions if r.quantity.split("[")[0] == match["quantity"] and r.kind == match["kind"]
               and (match["words"] is None or match["words"] in r.words(report.feature_name))]
    if not regions:
        raise UnmeasuredThreshold(f"{match[0]}: {report.case} has no such failing region in {match['dtype']}")
    region = max(regions, key=lambda r: r.count)
    return region.lo if match["end"] == "lo" else region.hi


def fill(text: str, reports: dict) -> str:
    """``text`` with each placeholder replaced by its measured threshold (4 significant digits).

    Example:
        >>> from harness.judging.report import Region, Report
        >>> r = Report("torch.sigmoid", "float64", "cpu", "x")
        >>> r.regions.append(Region("gradient", "silent-zero", 36.7368005696771, 708.4, 220, False, False, "0", "1e-16"))
        >>> fill("0 above {float64 gradient silent-zero lo}", {"float64": r})
        '0 above 36.74'
    """
    return PLACEHOLDER.sub(lambda m: f"{threshold(m, reports):.4g}", text)
