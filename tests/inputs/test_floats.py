"""ULPs and bits mean what Herbie's do; rounding of truths is exact."""

import math

import mpmath
import numpy as np
import pytest
import torch

from harness.inputs.floats import bits_of_error, fmt, from_ordinal, ordinal, round_to, ulps_between

F32, F64, F16, BF16 = (fmt(d) for d in (torch.float32, torch.float64, torch.float16, torch.bfloat16))


@pytest.mark.parametrize("f,a,b,ulps", [
    (F32, 1.0, 1.0 + 2 ** -23, 1), (F32, 0.0, -0.0, 0), (F32, 0.0, 1.401298464324817e-45, 1),
    (F32, -1.401298464324817e-45, 1.401298464324817e-45, 2), (F32, 3.4028234663852886e38, math.inf, 1),
    (F64, 1.0, 1.0 + 2 ** -52, 1), (F64, 1.7976931348623157e308, math.inf, 1), (F16, 1.0, 1.0009765625, 1),
    (BF16, 1.0, 1.0078125, 1), (F32, 1.0, 2.0, 2 ** 23),
])
def test_ulps_on_known_values(f, a, b, ulps):
    assert ulps_between(np.array([a]), np.array([b]), f)[0] == ulps


def test_bits_are_log2_of_one_plus_ulps_and_nan_is_full_width():
    assert bits_of_error(np.array([0.0, 1.0, 3.0, 2 ** 23 - 1]), F32).tolist() == [0.0, 1.0, 2.0, 23.0]
    assert bits_of_error(ulps_between(np.array([np.nan]), np.array([1.0]), F32), F32)[0] == 32
    assert bits_of_error(ulps_between(np.array([np.nan]), np.array([1.0]), BF16), BF16)[0] == 16


def test_round_to_matches_torch_rounding():
    rng = np.random.default_rng(1)
    for f, dtype in ((F32, torch.float32), (F16, torch.float16), (BF16, torch.bfloat16)):
        xs = rng.standard_normal(200) * 10.0 ** rng.integers(-45, 39, 200)
        expected = torch.tensor(xs, dtype=torch.float64).to(dtype).double().numpy()
        got = [round_to(mpmath.mpf(x), f) for x in xs]
        assert np.array_equal(np.array(got), expected)


def test_truths_beyond_the_range_round_to_zero_and_inf():
    assert round_to(mpmath.mpf(2) ** -150, F32) == 0.0
    assert round_to(-mpmath.mpf(2) ** -1076, F64) == 0.0 and math.copysign(1, round_to(-mpmath.mpf(2) ** -1076, F64)) < 0
    assert round_to(mpmath.mpf(2) ** 128, F32) == math.inf
    assert round_to(mpmath.exp(mpmath.mpf(10) ** 400), F64) == math.inf
    assert round_to(mpmath.mpf(65520), F16) == math.inf and round_to(mpmath.mpf(65519), F16) == 65504


def test_split_pairs_round_like_the_exact_value_at_a_float16_midpoint():
    from harness.inputs.floats import round_split, split

    mid = mpmath.mpf(1) + mpmath.mpf(2) ** -11            # halfway between two float16 values
    for nudge, want in ((0, 1.0), (1, 1.0009765625), (-1, 1.0)):
        with mpmath.workprec(100):
            hi, side = split(mid + nudge * mpmath.mpf(2) ** -70)
        assert hi == float(mid) and round_split(np.array([hi]), np.array([side]), F16)[0] == want


def test_ulp_of_is_format_ulp_elementwise():
    from harness.inputs.floats import ulp_of

    xs = np.array([0.0, 1.0, -3.5, 1e-45, 6e-8, 1e300, math.inf, math.nan])
    for f in (F64, F32, F16, BF16):
        assert ulp_of(xs, f).tolist() == [f.ulp(float(x)) for x in xs]


def test_from_ordinal_inverts_ordinal_in_every_format():
    for dtype in (torch.float64, torch.float32, torch.float16, torch.bfloat16):
        f = fmt(dtype)
        x = torch.tensor([-f.max, -1.5, -f.subnormal, 0.0, f.subnormal, f.tiny, 3.0, f.max, np.inf],
                         dtype=torch.float64).to(dtype).double().numpy()
        o = ordinal(x, f)
        assert np.array_equal(from_ordinal(o, f), x)
        nxt = from_ordinal(o[:-1] + 1, f)
        assert (nxt > x[:-1]).all()
        assert np.array_equal(torch.from_numpy(nxt).to(dtype).double().numpy(), nxt)   # values of the format
