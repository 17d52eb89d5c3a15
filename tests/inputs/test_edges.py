"""Edges where a claim changes class are bisected down to adjacent floats."""

import numpy as np
import torch

from harness.inputs import edges as edges_module
from harness.inputs.edges import classes, edges
from harness.inputs.floats import fmt, ordinal


def cube32(x):
    with np.errstate(over="ignore"):
        return (x.astype(np.float32) ** 3,)


def test_classes_tell_nan_infinities_zero_and_numbers_apart():
    assert classes(np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-300, -2.0])).tolist() == [0, 1, 2, 3, 3, 4, 4]


def test_an_overflow_edge_is_narrowed_to_two_adjacent_floats():
    f = fmt(torch.float32)
    xs = np.array([1.0, 1e12, 1e13, 1e14])
    found, bisected, left = edges(xs, cube32(xs), cube32, f)
    assert bisected == 1 and left == 0 and found.size == 2
    assert np.diff(ordinal(found, f)).tolist() == [1]
    assert np.isfinite(cube32(found[:1])[0]).all() and np.isinf(cube32(found[1:])[0]).all()


def test_every_claim_counts_and_each_change_gets_its_own_edge():
    f = fmt(torch.float64)

    def claims(x):   # a value that flushes to 0 below 1e-300 and a gradient that is inf above 1e300
        return np.where(np.abs(x) < 1e-300, 0.0, x), np.where(x > 1e300, np.inf, 1.0)

    xs = np.array([1e-310, 1.0, 1e308])
    found, bisected, _ = edges(xs, claims(xs), claims, f)
    assert bisected == 2
    lo, hi = found[:2], found[2:]   # sorted: the zero edge's pair, then the overflow edge's
    assert lo[0] < 1e-300 <= lo[1] and hi[0] <= 1e300 < hi[1]
    assert np.diff(ordinal(found, f))[[0, 2]].tolist() == [1, 1]


def test_infinite_and_nan_inputs_and_adjacent_pairs_are_not_bisected():
    f = fmt(torch.float32)
    xs = np.array([-np.inf, 1.0, np.nextafter(np.float32(1.0), np.float32(2.0)), np.inf, np.nan])
    step = lambda x: (np.where(x > 1.0, 0.0, 1.0),)   # noqa: E731
    found, bisected, left = edges(xs, step(xs), step, f)
    assert (found.size, bisected, left) == (0, 0, 0)


def test_a_flickering_claim_is_capped_and_the_rest_counted(monkeypatch):
    monkeypatch.setattr(edges_module, "MAX_EDGES", 3)
    f = fmt(torch.float64)
    xs = np.arange(1.0, 21.0)
    parity = lambda x: (np.where(np.floor(x) % 2 == 0, 0.0, 1.0),)   # noqa: E731
    found, bisected, left = edges(xs, parity(xs), parity, f)
    assert bisected == 3 and left == 19 - 3


def test_each_bisection_step_is_one_call_of_at_least_a_batch():
    calls = []

    def recorded(x):
        calls.append(x.size)
        return cube32(x)

    xs = np.array([1.0, 1e30])
    edges(xs, cube32(xs), recorded, fmt(torch.float32))
    assert calls and all(n >= edges_module.BATCH for n in calls)
    assert len(calls) <= 32   # one call per halving of at most 2**31 floats


def test_a_pattern_edge_is_bisected_along_its_parameter_with_the_points_own_other_entries():
    from harness.inputs.edges import along_patterns
    from harness.inputs.patterns import Point

    f = fmt(torch.float32)

    def remake(gap):
        return (np.array([np.float32(gap), 0.5, -0.25]),)

    def claims(arrays):   # a "gradient" that flushes to 0 once the first entry passes 10.3
        x = arrays[0]
        return (np.where(x[0] > 10.3, 0.0, 1.0) * np.ones(3),)

    points = [Point(remake(g), "dominant first entry", "gap", g, 0, remake) for g in (4.0, 16.0, 64.0)]
    points.append(Point(remake(16.0), "+inf entry", None, float("nan"), 0, None))   # no parameter: left alone
    found, bisected, left = along_patterns(points, [claims(p.arrays) for p in points], claims, f)
    assert (bisected, left) == (1, 0)
    lo, hi = sorted(p.parameter for p in found)
    assert lo <= 10.3 < hi and np.diff(ordinal(np.array([lo, hi]), f)).tolist() == [1]
    assert all(p.pattern == "dominant first entry" and p.arrays[0][0] == p.parameter for p in found)
