"""The grids hold the extremes and respect domains."""

import math

import numpy as np
import pytest
import torch

from harness import domains, grids
from harness.inputs.floats import fmt
from harness.inputs.grids import extreme, product

DTYPES = [torch.float64, torch.float32, torch.float16, torch.bfloat16]


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_grid_holds_every_extreme(dtype):
    f = fmt(dtype)
    g = extreme(dtype)
    finite = g[np.isfinite(g)]
    for v in (0.0, f.subnormal, -f.subnormal, f.tiny, f.max, -f.max, math.inf, -math.inf):
        assert (g == v).any(), v
    assert np.isnan(g).any() and (np.signbit(g[g == 0])).any() and (~np.signbit(g[g == 0])).any()
    exps = {math.frexp(abs(v))[1] for v in finite if v != 0}
    assert len(exps) == f.emax - (f.emin - f.precision + 1) + 1   # every binade, subnormal ones too
    back = torch.tensor(g, dtype=torch.float64).to(dtype).double().numpy()
    assert np.array_equal(back[~np.isnan(g)], g[~np.isnan(g)])   # exact values of the dtype
    assert ((np.abs(finite) <= 50).sum()) >= 100


def test_exp_overflow_edges_are_inside():
    g = extreme(torch.float32)
    edge = math.log(fmt(torch.float32).max)
    assert ((g > edge - 0.01) & (g < edge)).any() and ((g > edge) & (g < edge + 0.01)).any()
    assert ((g > -104) & (g < -103)).any()   # exp underflows below the smallest subnormal


def test_domains_restrict_the_grid():
    g = extreme(torch.float32, domains.positive())
    assert (g > 0).all() and np.isinf(g).any()
    g = extreme(torch.float32, domains.interval(-1, 1))
    assert ((g > -1) & (g < 1)).all() and (g > 1 - 1e-7).any()
    assert extreme(torch.float32, domains.choice(0, 1)).tolist() == [0.0, 1.0]


def test_grids_are_deterministic_and_sized():
    assert np.array_equal(extreme(torch.float32, size=2), extreme(torch.float32, size=2), equal_nan=True)
    assert len(extreme(torch.float32, size=4)) > len(extreme(torch.float32, size=1))


def test_product_grid_of_two_inputs():
    p = product(torch.float32, (domains.real(), domains.interval(0, 1)))
    corners = grids.corner_points(torch.float32, (domains.real(), domains.interval(0, 1)))
    assert p.shape[1] == 2 and len(p) <= 3000 + len(corners)
    assert ((p[:, 1] > 0) & (p[:, 1] < 1)).all()


def test_product_grid_holds_every_corner_in_every_dtype():
    # (-inf, -inf), where logaddexp's gradient is 0/0, once missed by the subsample.
    for dtype in (torch.float64, torch.float32, torch.float16, torch.bfloat16):
        p = product(dtype, (domains.real(), domains.real()))
        held = {tuple(np.asarray(r).view(np.int64)) for r in p}
        corners = grids.corner_points(dtype, (domains.real(), domains.real()))
        assert len(corners) == 13 * 13 + 2 * 13 * len(grids.TYPICAL)
        assert all(tuple(np.asarray(c).view(np.int64)) in held for c in corners)


def test_every_special_value_meets_every_other_and_typical_values_in_every_dtype():
    # xlogy's NaN at (inf, 1) hid from three dtypes' grids: 1 was no special value,
    # and no special value met an ordinary one.
    for dtype in (torch.float64, torch.float32, torch.float16, torch.bfloat16):
        p = product(dtype, (domains.real(), domains.real()))
        held = {tuple(r) for r in np.asarray(p).view(np.int64)}
        for pair in ((np.inf, 1.0), (-1.0, np.nan), (0.0, -0.0), (2.0, np.inf), (-np.inf, -100.0), (0.5, -0.0)):
            assert tuple(np.array(pair).view(np.int64)) in held, (dtype, pair)


def test_typical_values_keep_to_a_domain():
    c = grids.corner_points(torch.float32, (domains.real(), domains.interval(0, 1)))
    assert ((c[:, 1] > 0) & (c[:, 1] < 1)).all()
    assert ((c[:, 0] == np.inf) & (c[:, 1] > 0)).sum() >= 3   # the special beside the domain's middle points


def test_a_dense_grid_has_its_points_in_every_binade_of_the_whole_range():
    sparse = extreme(torch.float64, size=16)
    dense = extreme(torch.float64, size=16, whole=True)
    for lo in (2.0 ** 600, 2.0 ** -900, 1.0):
        inside = lambda g: ((g >= lo) & (g < 2 * lo)).sum()   # noqa: E731
        assert inside(dense) >= 16
    assert ((sparse >= 2.0 ** 600) & (sparse < 2.0 ** 601)).sum() == 1
    assert np.array_equal(extreme(torch.float32, size=2), extreme(torch.float32, size=2, whole=True), equal_nan=True)


def test_every_holds_each_16_bit_value_once_and_one_nan():
    for dtype, finite in ((torch.float16, 63488), (torch.bfloat16, 65280)):
        values = grids.every(dtype)
        assert np.isfinite(values).sum() == finite and np.isinf(values).sum() == 2 and np.isnan(values).sum() == 1
        assert (np.signbit(values[values == 0]) == [True, False]).all()   # -0 and +0 apart
        assert np.array_equal(torch.from_numpy(values).to(dtype).double().numpy(), values, equal_nan=True)


def test_every_keeps_to_the_domain():
    values = grids.every(torch.float16, domains.interval(1, 2))
    assert values.size == 1023 and values.min() > 1 and values.max() < 2
    assert "1,023 of the 65,536 float16 inputs" in grids.every_in_words(torch.float16, domains.interval(1, 2))
