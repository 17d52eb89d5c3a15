"""Truth records round to every format exactly as the engine's mpmath values
do, and a grid of records decodes into the right columns."""

import math

import mpmath
import numpy as np

from harness.inputs.floats import FORMATS, round_to
from harness.truth.mpmath_engine import PointTruth
from harness.truth.table import TruthTable, decode, encode

F64 = FORMATS[next(iter(FORMATS))]


def midpoints(rng) -> list:
    """Exact midpoints of every format, and values a hair above and below them:
    where rounding the float64 nearest the value instead of the value goes wrong."""
    values = []
    for f in FORMATS.values():
        for _ in range(300):
            e = int(rng.integers(f.emin - f.precision - 3, f.emax + 2))
            m = int(rng.integers(1 << (f.precision - 1), 1 << f.precision))
            mid = mpmath.ldexp(2 * m + 1, e - f.precision)
            for nudge in (0, 1, -1):
                v = mid + nudge * mpmath.ldexp(1, e - f.precision - 80)
                values.append(v if rng.random() < 0.5 else -v)
    return values


def test_records_round_to_every_format_as_the_exact_values_do():
    rng = np.random.default_rng(3)
    values = midpoints(rng) + [mpmath.mpf(0), -mpmath.mpf(0), mpmath.inf, -mpmath.inf,
                               mpmath.ldexp(1, -1100), -mpmath.ldexp(1, 2000), mpmath.ldexp(3, -1076),
                               mpmath.mpf((0, 0x1FFFFFFFFFFFFF, 10**9, 53))]
    with mpmath.workprec(300):
        truths = [PointTruth([v], [1.0], [v], [1.0], [False], 300) for v in values]
    table = TruthTable.of([encode(t) for t in truths], [(1, 1)] * len(truths))
    for f in FORMATS.values():
        want = np.array([round_to(v, f) for v in values])
        for got in (table.value_in(f), table.grad_in(f)):
            assert np.array_equal(got, want) and np.array_equal(np.signbit(got), np.signbit(want)), f.name


def test_a_grid_of_mixed_shapes_decodes_point_by_point():
    one = PointTruth([mpmath.mpf(2)], [3.0], [mpmath.mpf(5), None], [7.0, math.nan], [False, False], 160,
                     [11.0], [13.0, 0.0])
    two = PointTruth([mpmath.mpf(1), mpmath.mpf(-1)], [1.0, 1.0], [mpmath.mpf(4)], [2.0], [True], 320)
    table = TruthTable.of([encode(one), None, encode(two)], [(1, 2), (1, 1), (2, 1)])
    assert table.value_at.tolist() == [0, 1, 2, 4] and table.grad_at.tolist() == [0, 2, 3, 4]
    assert table.present.tolist() == [True, False, True] and table.bits.tolist() == [160, 0, 320]
    assert np.array_equal(table.value_in(F64), [2.0, np.nan, 1.0, -1.0], equal_nan=True)
    assert np.array_equal(table.grad_in(F64), [5.0, np.nan, np.nan, np.nan], equal_nan=True)  # a label, none, a kink
    assert table.value_kappa.tolist() == [3.0, 1.0, 1.0, 1.0] and table.value_scale.tolist()[:2] == [11.0, math.inf]
    assert table.grad_scale.tolist() == [13.0, 0.0, math.inf, math.inf]
    assert table.kink.tolist() == [False, False, False, True]


def test_one_record_decodes_alone():
    t = PointTruth([mpmath.mpf(1) / 3], [1.5], [mpmath.mpf(-2)], [4.0], [False], 160)
    table = decode(encode(t))
    assert table.value_kappa.tolist() == [1.5] and table.grad_in(F64).tolist() == [-2.0]
