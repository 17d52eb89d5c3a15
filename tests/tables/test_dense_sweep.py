"""The page's certified float32 rows hold on a sweep four times denser than the one
that certified them.

docs/torch_ops.md judges its dense rows at 16 points or more in every binade of
float32 (``certify(dense=True)``), with each class edge bisected. Here every one
of those rows that the case file expects certified in float32 is judged again, in
a run of its own, at 64 points in every binade (another set of points: evenly
spaced mantissas besides the seeded ones), edges bisected again, and must still
be certified. Rows with a hand-written mpmath reference are on the grid only on
the page (``accuracy_table.dense_sweepable``) and are not claimed here either.
"""

import torch

from harness.certify import certify_many, check
from harness.judging.expectations import expectation_for
from harness.tables import accuracy_table as table

DENSER = 64


def _certified_dense_rows():
    cases, _, _ = table.load()
    return [c for c in cases if c.elementwise and c.arity == 1 and table.dense_sweepable(c)
            and torch.float32 in c.dtypes and not expectation_for(c.expect, torch.float32).convicted]


def test_the_rows_checked_are_the_pages_dense_certified_float32_rows():
    names = {c.name for c in _certified_dense_rows()}
    assert "torch.exp" in names and "torch.rsqrt" not in names and len(names) >= 20


def test_certified_float32_rows_hold_at_64_points_per_binade():
    rows = _certified_dense_rows()
    reports = certify_many([(c, torch.float32, "cpu") for c in rows], grid_size=DENSER, dense=True)
    broken = []
    for case, report in zip(rows, reports):
        assert not isinstance(report, Exception), report
        assert report.coverage.startswith("dense: ") and f"{DENSER} or more per binade" in report.coverage
        if check(case, report, torch.float32) is not None:
            broken.append(f"{case.name}: {report.summary()}\n{report.table(3)}")
    assert not broken, "\n\n".join(broken)
