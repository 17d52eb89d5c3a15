"""harness.inputs.matrix_patterns: every matrix is a matrix of the dtype, and its
parameter is what an independent computation (mpmath's SVD and eigensolver at
2,400 bits, exact fractions) finds in the rounded matrix; the kinds hold what they
say; a case's grid of them keeps its pattern names."""

from __future__ import annotations

import math
from fractions import Fraction
from types import SimpleNamespace

import flint
import mpmath
import numpy as np
import pytest
import torch

import harness
from harness.inputs import matrix_patterns as mp
from harness.inputs.patterns import Point
from harness.inputs.samples import _grid

DTYPES = (torch.float64, torch.float32, torch.float16, torch.bfloat16)


def _singular_values(a):
    with mpmath.workprec(2400):
        return sorted(mpmath.svd_r(mpmath.matrix(a.tolist()), compute_uv=False))


def _eigenvalues(a):
    with mpmath.workprec(2400):
        return sorted(mpmath.eigsy(mpmath.matrix(a.tolist()), eigvals_only=True))


def independent(a, name):
    """The parameter ``name`` of ``a`` by mpmath's SVD (not ``measure``'s eigenvalues of A^T A)."""
    if name == "smallest singular value":
        return _singular_values(a)[0]
    if name == "condition number":
        s = _singular_values(a)
        return mpmath.inf if s[0] == 0 else s[-1] / s[0]
    if name == "smallest eigenvalue":
        return _eigenvalues(a)[0]
    values = _eigenvalues(a) if name == "eigenvalue gap" else _singular_values(a)
    return min(b - c for c, b in zip(values, values[1:]))


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: str(d).removeprefix("torch."))
def test_every_entry_is_a_float_of_the_dtype_and_each_point_is_new(dtype):
    points = mp.matrix_points(3, dtype)
    assert len({p.arrays[0].tobytes() for p in points}) == len(points) > 150
    for p in points:
        a = p.arrays[0]
        assert a.shape == (3, 3)
        back = torch.from_numpy(a).to(dtype).double().numpy()
        assert np.array_equal(back, a, equal_nan=True), p.pattern


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: str(d).removeprefix("torch."))
def test_each_parameter_is_the_rounded_matrix_s_own(dtype):
    """Stated after rounding: mpmath's SVD of the matrix as it is agrees to 40 bits."""
    measured = {"smallest singular value", "condition number", "smallest eigenvalue", "eigenvalue gap",
                "singular value gap"}
    checked = 0
    for p in mp.matrix_points(3, dtype):
        if p.parameter_name not in measured:
            continue
        truth = independent(p.arrays[0], p.parameter_name)
        if p.parameter == 0:   # exactly singular (or repeated): 0 to the SVD's own accuracy
            assert abs(truth) < mpmath.mpf("1e-600"), (p.pattern, truth)
        elif math.isinf(p.parameter):
            assert truth > mpmath.mpf("1e600"), (p.pattern, truth)
        else:
            assert abs(truth - p.parameter) <= abs(truth) * 2.0 ** -40, (p.pattern, p.parameter, truth)
        checked += 1
    assert checked > 50


def test_the_direct_parameters_are_the_entries():
    for p in mp.matrix_points(3, torch.float32):
        a = p.arrays[0]
        if p.pattern == "diagonal":
            assert np.count_nonzero(a - np.diag(np.diag(a))) == 0 and np.abs(np.diag(a)).min() == p.parameter
        elif p.pattern in ("upper triangular", "lower triangular"):
            off = np.tril(a, -1) if p.pattern == "upper triangular" else np.triu(a, 1)
            assert not off.any() and np.abs(np.diag(a)).min() == p.parameter
        elif p.pattern == "entries spread over the binades":
            assert np.abs(a).max() == 2.0 ** p.parameter
        if p.remake is not None:   # the same matrix at its own parameter
            assert np.array_equal(p.remake(p.parameter)[0], a)


def test_the_sweeps_reach_what_the_issue_names():
    f64 = mp.matrix_points(3, torch.float64)
    by = lambda name: [p for p in f64 if p.pattern == name]   # noqa: E731
    # inv at condition 2**50: singular values 9, 4.5 and 9 * 2**-50, exactly.
    assert any(p.parameter == 9 * 2.0 ** -50 for p in by("near-singular"))
    assert any(p.parameter == 2.0 ** 50 for p in by("ill-conditioned"))
    # An exactly repeated eigenvalue and nearly repeated ones over the binades.
    gaps = sorted(p.parameter for p in by("symmetric, two close eigenvalues"))
    assert gaps[0] == 0 and sum(0 < g < 1e-8 for g in gaps) >= 5
    # Semidefinite approached from above (SPD) and from below (one eigenvalue below 0).
    spd, indefinite = [p.parameter for p in by("SPD")], [p.parameter for p in by("symmetric indefinite")]
    assert 0 < min(spd) < 1e-14 and 0 > max(indefinite) > -1e-14 and min(indefinite) <= -1
    # Past every float32 cancellation: a smallest singular value in the subnormals, exactly nonsingular.
    f32 = [p for p in mp.matrix_points(3, torch.float32) if p.pattern == "one entry off a singular matrix"]
    assert min(p.parameter for p in f32) < 1e-40 and all(mp.invertible(p.arrays[0]) for p in f32)
    names = {p.pattern for p in f64}
    assert {"rank 2 of 3", "rank 1", "zero matrix", "diagonal", "upper triangular", "signed permutation",
            "+inf entry", "NaN entry", "well-conditioned, scaled"} <= names


def test_an_exactly_repeated_eigenvalue_is_repeated_over_q():
    (p,) = [p for p in mp.matrix_points(3, torch.float64)
            if p.pattern == "symmetric, two close eigenvalues" and p.parameter == 0]
    q = flint.fmpq_mat([[flint.fmpq(Fraction(v).numerator, Fraction(v).denominator) for v in row]
                        for row in p.arrays[0].tolist()])
    poly = q.charpoly()
    assert poly.gcd(poly.derivative()).degree() == 1


@pytest.mark.parametrize("kind", ["invertible", "symmetric", "spd"])
def test_a_kind_keeps_only_its_matrices(kind):
    points = mp.matrix_points(3, torch.float64, kind)
    assert len(points) > 30
    for p in points:
        a = p.arrays[0]
        if kind == "invertible":
            assert np.isfinite(a).all() and mp._det([[Fraction(v) for v in r] for r in a.tolist()], 3) != 0
        else:
            assert np.array_equal(a, a.T, equal_nan=True)
        if kind == "spd":
            assert all(e > 0 for e in _eigenvalues(a)), p.pattern
    assert not any(mp.positive_definite(p.arrays[0]) is False for p in mp.matrix_points(3, torch.float32, "spd"))


def test_a_grid_of_several_inputs_gives_the_others_typical_values():
    grid = mp.matrix_grid((3, 3), (3,), kind="invertible", where=lambda a: np.abs(a).max() < 1e10)
    points = grid(torch.float32)
    assert all(isinstance(p, Point) and p.input == 0 and p.arrays[1].shape == (3,) for p in points)
    assert all(np.abs(p.arrays[0]).max() < 1e10 for p in points)
    assert len({p.arrays[1].tobytes() for p in points}) == 3
    with pytest.raises(ValueError, match="square"):
        mp.matrix_grid((3, 4))


def test_a_case_on_the_matrix_grid_keeps_the_pattern_of_each_point():
    case = harness.Case("trace", torch.trace, harness.exact(torch.trace), grid=mp.matrix_grid((3, 3)))
    options = SimpleNamespace(grid_size=None, exhaustive=False, dense=False)
    samples, *_ = _grid(case, torch.float32, options)
    assert all(s.pattern is not None for s in samples)
    assert {"near-singular", "diagonal"} <= {s.pattern.pattern for s in samples}
    report = harness.certify(case, torch.float64)
    assert report.ok, str(report)


@pytest.mark.parametrize("n", [2, 4])
def test_other_sizes_have_their_patterns(n):
    points = mp.matrix_points(n, torch.float64)
    assert all(p.arrays[0].shape == (n, n) for p in points)
    near = [p for p in points if p.pattern == "near-singular" and p.parameter > 0]
    assert near and all(abs(independent(p.arrays[0], "smallest singular value") - p.parameter)
                        <= p.parameter * 2.0 ** -40 for p in near)
