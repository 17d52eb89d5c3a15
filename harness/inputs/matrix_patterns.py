"""Named patterns of square matrices, where linear algebra's gradients break.

``det``'s backward breaks at a singular matrix, ``inv``'s and ``solve``'s at a
small singular value, ``cholesky``'s near a semidefinite matrix, ``eigh``'s and
``svd``'s where two eigenvalues or singular values meet. Each pattern below
builds matrices where one such thing happens, swept over a parameter in the
binades (the smallest singular value, the condition number, the gap between two
eigenvalues), so a failing region reads as "smallest singular value in
[1.8e-15, 9e-12]", as the structured patterns of ``patterns`` read for rows.

Every matrix is built exactly (integers and powers of two, in Python
fractions) and rounded once to the dtype (``floats.round_to``). The
constructions keep their parameter exactly where the dtype holds every entry:

* ``A = M diag(d) N^T`` with the integer matrices ``M`` and ``N`` of
  ``scaled_orthogonal`` (``M M^T = m I``; for 3 x 3 ``m = 9``: no 3 x 3 orthogonal
  matrix but a signed permutation has entries that are dyadic, so the scale is
  kept instead of divided out). Its singular values are exactly
  ``sqrt(m_M m_N) d``, its eigenvalues ``m d`` when ``N = M``. Entries are
  ``sum_k M_ik N_jk d_k``: exact while ``d``'s smallest entry has bits left
  beside the largest (to ``2**-50`` in float64, ``2**-21`` in float32).
* Where a dtype cannot hold a construction, the matrix is rounded and its
  parameter measured again in mpmath (``measure``: 2,300 bits, past float64's
  smallest subnormal): the parameter always names the matrix as it is, never
  the one it was meant to be. A rounding that lands on another pattern's matrix
  (a small singular value rounded away to an exactly singular matrix) is
  dropped as a duplicate.
* Patterns that need no cancellation reach every binade in every dtype: a
  diagonal or triangular matrix's smallest diagonal entry, one entry ``delta`` off a
  singular integer matrix at a zero entry (``det = delta * cofactor`` exactly).

``matrix_grid`` is the entry point: ``harness.Case(..., grid=matrix_grid((3, 3)))``.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Callable

import mpmath
import numpy as np
import torch

from .floats import Format, fmt, round_to
from .patterns import Point, typical_values

__all__ = ["KINDS", "MatrixPattern", "matrix_grid", "matrix_points", "measure", "scaled_orthogonal"]

#: Which matrices a grid holds: every pattern, the finite nonsingular ones (where
#: torch's inv and solve do not raise), the symmetric ones, or the symmetric
#: positive definite ones (Cholesky's domain); each decided exactly, in fractions.
KINDS = ("general", "invertible", "symmetric", "spd")
#: Values of a sweep (evenly by exponent), besides its edges.
SWEEP = 16
#: Bits at which a rounded matrix's parameter is measured: past float64's smallest
#: subnormal (2**-1074) beside entries of 16, with room to spare.
MEASURE_BITS = 2300
#: Typical matrices (seeded multiples of 1/8 in [-2, 2]).
TYPICAL = 3


# -- exact constructions ------------------------------------------------------------------------------------

def scaled_orthogonal(n: int, second: bool = False) -> tuple[list[list[int]], int]:
    """An integer matrix ``M`` with ``M M^T = m I`` and its ``m``: for 3 x 3 the
    rows (1, 2, 2), (2, 1, -2), (2, -2, 1) (``second``: (2, -1, 2), (2, 2, -1),
    (-1, 2, 2)), both ``m = 9``; a Hadamard matrix for 2 and 4 (``m = n``); for
    more, the 3 x 3 one beside ``3 I``.

    Example:
        >>> m, scale = scaled_orthogonal(3)
        >>> [sum(a * b for a, b in zip(m[0], r)) for r in m], scale
        ([9, 0, 0], 9)
    """
    if n == 1:
        return [[1]], 1
    if n == 2:
        return ([[1, -1], [1, 1]] if second else [[1, 1], [1, -1]]), 2
    if n == 4:
        h = [[1, 1, 1, 1], [1, -1, 1, -1], [1, 1, -1, -1], [1, -1, -1, 1]]
        return ([[r[3], -r[1], r[2], r[0]] for r in h] if second else h), 4
    three = [[2, -1, 2], [2, 2, -1], [-1, 2, 2]] if second else [[1, 2, 2], [2, 1, -2], [2, -2, 1]]
    out = [[0] * n for _ in range(n)]
    for i in range(n):
        for j in range(n):
            out[i][j] = three[i][j] if i < 3 and j < 3 else (3 if i == j else 0)
    return out, 9


def _product(m, d, n_matrix) -> list[list[Fraction]]:
    """``M diag(d) N^T`` exactly."""
    n = len(d)
    return [[sum(Fraction(m[i][k]) * n_matrix[j][k] * d[k] for k in range(n)) for j in range(n)] for i in range(n)]


def _spectrum(n: int, last: Fraction, top: Fraction = Fraction(1)) -> list[Fraction]:
    """``(top, top/2, ..., top/2**(n-2), last)``: distinct, the last one swept."""
    return [top / 2 ** k for k in range(n - 1)] + [Fraction(last)]


def _singular_base(n: int) -> list[list[Fraction]]:
    """A singular integer matrix with a 0 at ``(n-1, n-1)`` and a nonzero cofactor
    there: rows of small integers, the last a combination of the first two that
    cancels its last entry. For 3 x 3: (1, 2, 3), (2, -1, 1), (-5, 5, 0)."""
    if n == 1:
        return [[Fraction(0)]]
    rows = [[1, 2, 3], [2, -1, 1]] if n == 3 else \
        [[((3 * i + 5 * j) % 7) - 3 + (4 if i == j else 0) for j in range(n)] for i in range(n - 1)]
    if n == 2:
        rows = [[1, 0]]
        last = [2, 0]
    else:
        a, b = rows[0][-1], rows[1][-1]
        last = [b * x - a * y for x, y in zip(rows[0], rows[1])]
    return [[Fraction(v) for v in r] for r in rows + [last]]


# -- rounding and measuring ------------------------------------------------------------------------------------

def _rounded(a: list[list[Fraction]], f: Format) -> tuple[np.ndarray, bool]:
    """The exact matrix rounded once to ``f`` (as float64 values) and whether that was exact."""
    out = np.empty((len(a), len(a[0])))
    exact = True
    with mpmath.workprec(4 * MEASURE_BITS):
        for i, row in enumerate(a):
            for j, v in enumerate(row):
                x = mpmath.mpf(v.numerator) / v.denominator   # dyadic: exact at this precision
                out[i, j] = round_to(x, f)
                exact &= Fraction(out[i, j]) == v if math.isfinite(out[i, j]) else False
    return out, exact


def measure(a: np.ndarray, what: str) -> float:
    """A parameter of the float matrix ``a``, in mpmath at ``MEASURE_BITS``, rounded to float64:
    ``"smallest singular value"``, ``"condition number"``, ``"smallest eigenvalue"``
    (of the symmetric matrix), ``"eigenvalue gap"`` and ``"singular value gap"``
    (the least distance between two of them).

    Example:
        >>> measure(np.array([[2.0, 0.0], [0.0, 0.5]]), "condition number")
        4.0
    """
    with mpmath.workprec(MEASURE_BITS):
        m = mpmath.matrix(a.tolist())
        if what in ("smallest eigenvalue", "eigenvalue gap"):
            values = sorted(mpmath.eigsy(m, eigvals_only=True))
        else:   # the singular values, as the square roots of A^T A's eigenvalues (no SVD iteration to stall)
            values = sorted(mpmath.sqrt(max(v, 0)) for v in mpmath.eigsy(m.T * m, eigvals_only=True))
        if what in ("smallest singular value", "smallest eigenvalue"):
            return float(values[0])
        if what == "condition number":
            return math.inf if values[0] == 0 else float(values[-1] / values[0])
        if what in ("eigenvalue gap", "singular value gap"):
            return float(min(b - a for a, b in zip(values, values[1:])))
    raise ValueError(f"no measure {what!r}")


def invertible(a: np.ndarray) -> bool:
    """Whether the float matrix ``a`` is finite and nonsingular, decided exactly."""
    if not np.all(np.isfinite(a)):
        return False
    q = [[Fraction(v) for v in row] for row in a.tolist()]
    return _det(q, len(q)) != 0


def positive_definite(a: np.ndarray) -> bool:
    """Whether the float matrix ``a`` is symmetric positive definite, decided
    exactly (its leading minors, in fractions)."""
    if not (np.all(np.isfinite(a)) and np.array_equal(a, a.T)):
        return False
    q = [[Fraction(v) for v in row] for row in a.tolist()]
    return all(_det(q, k) > 0 for k in range(1, len(q) + 1))


def _det(q, k) -> Fraction:
    """The leading ``k x k`` minor, by elimination in fractions (exact)."""
    m = [row[:k] for row in q[:k]]
    det = Fraction(1)
    for c in range(k):
        p = next((r for r in range(c, k) if m[r][c] != 0), None)
        if p is None:
            return Fraction(0)
        if p != c:
            m[c], m[p] = m[p], m[c]
            det = -det
        det *= m[c][c]
        for r in range(c + 1, k):
            ratio = m[r][c] / m[c][c]
            m[r] = [x - ratio * y for x, y in zip(m[r], m[c])]
    return det


# -- the patterns ------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class MatrixPattern:
    """A named family of ``n x n`` matrices: ``make(n, value)`` exact (fractions)
    for each value of ``values``; ``known(n, value)`` its parameter where the
    dtype holds the matrix exactly (None: none, or measured as ``parameter_name``)."""

    name: str
    parameter_name: str | None
    values: Callable[[Format], list]
    make: Callable[[int, object], list[list[Fraction]]]
    known: Callable[[int, object], float] | None = None
    #: Whether the parameter is the value itself (then the pattern can be remade at another one).
    direct: bool = False


def _exponents(lo: int, hi: int, edges=(), count: int = SWEEP) -> list[int]:
    """About ``count`` exponents evenly from ``lo`` to ``hi``, and the edges inside."""
    ks = set(np.linspace(lo, hi, count).round().astype(int).tolist())
    return sorted(ks | {k for k in edges if lo <= k <= hi})


def _powers(lo: int, hi: int, edges=()) -> list[Fraction]:
    return [Fraction(2) ** k for k in _exponents(lo, hi, edges)]


def _tiny(f: Format) -> int:
    """The exponent of the smallest subnormal."""
    return f.emin - f.precision + 1


def _patterns(n: int, f: Format) -> list[MatrixPattern]:
    m, sm = scaled_orthogonal(n)
    nm, sn = scaled_orthogonal(n, second=True)
    sigma = math.sqrt(sm * sn)    # exact for the scales used (9 * 9, 2 * 2, 4 * 4)
    last = -(n - 2) if n > 1 else 0   # the exponent of the spectrum's second smallest value

    def mixed(f: Format, hi: int) -> list[Fraction]:
        # A mixed construction keeps its smallest value exactly beside entries below 8
        # down to 2**-(p - 3): swept evenly by exponent from there to ``hi``, and past it
        # at -p and -2p (rounded and measured; most land on the singular matrix, dropped).
        beyond = tuple(k for k in (-f.precision, -2 * f.precision) if k > _tiny(f))
        return _powers(-(f.precision - 2), hi, tuple(-(f.precision - 3) + d for d in (-1, 0, 1)) + (-50,)) + \
            [Fraction(2) ** k for k in beyond]

    def general(d):
        return _product(m, d, nm)

    def symmetric(d):
        return _product(m, d, m)

    def triangular(n_, s, lower=False):
        small = [[Fraction(((3 * i + 2 * j) % 5) - 2, 2) for j in range(n_)] for i in range(n_)]
        t = [[(small[i][j] if j > i else Fraction(0)) for j in range(n_)] for i in range(n_)]
        for i, v in enumerate(_spectrum(n_, s)):
            t[i][i] = v
        return [list(r) for r in zip(*t)] if lower else t

    def one_off(n_, delta):
        b = [row[:] for row in _singular_base(n_)]
        b[-1][-1] += delta
        return b

    def scaled(n_, scale):
        base = [[Fraction(v) for v in row] for row in ([[2, -1, 1], [1, 3, -2], [-1, 1, 2]] if n_ == 3 else
                                                        [[(2 if i == j else 0) + ((i - j) % 3) - 1 for j in range(n_)]
                                                         for i in range(n_)])]
        return [[v * scale for v in row] for row in base]

    def spread(n_, top):
        # Entries from 2**top down, signs mixed, exponents spread over the dtype's range (a seeded order).
        rng = np.random.default_rng(n_)
        k = rng.permutation(n_ * n_)
        step = max(1, (int(top) - _tiny(f)) // max(n_ * n_ - 1, 1))
        exps = [max(int(top) - int(v) * step, _tiny(f)) for v in k]
        signs = rng.choice([-1, 1], n_ * n_)
        return [[Fraction(int(signs[i * n_ + j])) * Fraction(2) ** exps[i * n_ + j] for j in range(n_)]
                for i in range(n_)]

    return [
        MatrixPattern("near-singular", "smallest singular value",
                      lambda f: mixed(f, last - 1),
                      lambda n_, s: general(_spectrum(n_, s)), lambda n_, s: sigma * float(s)),
        MatrixPattern("ill-conditioned", "condition number",
                      lambda f: [1 / v for v in mixed(f, last - 1)],
                      lambda n_, k: general(_spectrum(n_, Fraction(1), k)), lambda n_, k: float(k)),
        MatrixPattern("one entry off a singular matrix", "smallest singular value",
                      lambda f: _powers(max(_tiny(f), -1010), -1), one_off),   # its parameter a normal float64
        MatrixPattern(f"rank {n - 1} of {n}", "scale",
                      lambda f: _powers(_tiny(f) + 8, f.emax - 4, (0,)),
                      lambda n_, c: [[v * c for v in row] for row in general(_spectrum(n_, Fraction(0)))],
                      lambda n_, c: float(c), direct=True),
        MatrixPattern("SPD", "smallest eigenvalue",
                      lambda f: mixed(f, last - 1),
                      lambda n_, t: symmetric(_spectrum(n_, t)), lambda n_, t: sm * float(t)),
        MatrixPattern("symmetric indefinite", "smallest eigenvalue",
                      lambda f: [-v for v in mixed(f, 0)],
                      lambda n_, t: symmetric(_spectrum(n_, t)), lambda n_, t: sm * float(t)),
        MatrixPattern("symmetric, two close eigenvalues", "eigenvalue gap",
                      lambda f: [Fraction(0)] + mixed(f, -2),
                      lambda n_, g: symmetric(_gapped(n_, g)), lambda n_, g: sm * float(g) / 2 ** max(n_ - 2, 0)),
        MatrixPattern("two close singular values", "singular value gap",
                      lambda f: [Fraction(0)] + mixed(f, -2),
                      lambda n_, g: general(_gapped(n_, g)), lambda n_, g: sigma * float(g) / 2 ** max(n_ - 2, 0)),
        MatrixPattern("diagonal", "smallest entry",
                      lambda f: _powers(_tiny(f), last - 1),
                      lambda n_, s: [[(v if i == j else Fraction(0)) for j, v in enumerate(_spectrum(n_, s))]
                                     for i in range(n_)], lambda n_, s: float(s), direct=True),
        MatrixPattern("upper triangular", "smallest diagonal entry",
                      lambda f: _powers(_tiny(f), last - 1), triangular, lambda n_, s: float(s), direct=True),
        MatrixPattern("lower triangular", "smallest diagonal entry",
                      lambda f: _powers(_tiny(f), last - 1), lambda n_, s: triangular(n_, s, lower=True),
                      lambda n_, s: float(s), direct=True),
        MatrixPattern("well-conditioned, scaled", "scale",
                      lambda f: _powers(_tiny(f) + 4, f.emax - 3, (0,)), scaled, lambda n_, c: float(c), direct=True),
        MatrixPattern("entries spread over the binades", "log2 of the largest",
                      lambda f: [Fraction(k) for k in _exponents(-8, f.emax, count=8)], spread,
                      lambda n_, k: float(k), direct=True),
    ]


def _gapped(n: int, g: Fraction) -> list[Fraction]:
    """A spectrum whose two smallest values are ``g / 2**(n-2)`` apart: ``(1, ..., s (1 + g), s)``."""
    d = _spectrum(n, Fraction(1, 2 ** max(n - 2, 0)))
    if n >= 2:
        d[-2] = d[-1] * (1 + g)
    return d


def _specials(n: int) -> list[tuple[str, list[list[float]]]]:
    """Matrices without a parameter: exactly singular ones, exact orthogonal ones,
    zeros, infinities and NaN."""
    m, _ = scaled_orthogonal(n)
    base = [[((3 * i + 5 * j) % 7 - 3) / 2 for j in range(n)] for i in range(n)]
    permutation = [[(1.0 if j == (i + 1) % n else 0.0) * (-1.0 if i == 0 else 1.0) for j in range(n)]
                   for i in range(n)]

    def put(value, where=((0, 0),)):
        a = [row[:] for row in base]
        for i, j in where:
            a[i % n][j % n] = value
        return a
    rank_one = [[float((i + 1) * (1 - 2 * (j % 2)) * (j + 1)) / 2 for j in range(n)] for i in range(n)]
    zero_row = [row[:] for row in base]
    zero_row[-1] = [0.0] * n
    equal_rows = [row[:] for row in base]
    equal_rows[-1] = equal_rows[0][:]
    out = [
        ("rank 1", rank_one), ("a zero row", zero_row), ("two equal rows", equal_rows),
        ("zero matrix", [[0.0] * n for _ in range(n)]),
        ("identity", [[float(i == j) for j in range(n)] for i in range(n)]),
        ("signed permutation", permutation), ("scaled orthogonal (M M^T = m I)", [[float(v) for v in r] for r in m]),
        ("zero entries", put(0.0, [(0, 0), (1, 2), (2, 1)])),
        ("+inf entry", put(math.inf)), ("-inf entry", put(-math.inf)), ("NaN entry", put(math.nan)),
        ("+inf on the diagonal of the identity", [[(math.inf if i == j == 0 else float(i == j)) for j in range(n)]
                                                  for i in range(n)]),
    ]
    return [(name, a) for name, a in out if n > 1 or name in ("zero matrix", "identity", "+inf entry", "NaN entry")]


def _typical(n: int, dtype: torch.dtype, seed: int) -> list[np.ndarray]:
    return typical_values((n, n), dtype, None, seed)


def _round_floats(a, dtype) -> np.ndarray:
    with np.errstate(over="ignore", invalid="ignore"):
        return torch.tensor(a, dtype=torch.float64).to(dtype).double().numpy()


def _subnormal_and_largest(n: int, f: Format) -> list[tuple[str, np.ndarray]]:
    sub = np.array([[f.subnormal * ((i + 2 * j) % 3 + 1) * (-1) ** (i + j) for j in range(n)] for i in range(n)])
    big = np.array([[f.max * (-1) ** (i * j) if (i + j) % 2 == 0 else 1.0 for j in range(n)] for i in range(n)])
    return [("subnormal entries", sub), ("largest finite entries", big)]


# -- the grid ------------------------------------------------------------------------------------------------------

def matrix_points(n: int, dtype: torch.dtype, kind: str = "general", seed: int = 0) -> list[Point]:
    """The patterns of an ``n x n`` input in ``dtype``, as one-input points
    (rounded to the dtype, each parameter named after rounding, duplicates
    removed); ``kind`` (``KINDS``) keeps only invertible, symmetric or SPD ones.

    Example:
        >>> pts = matrix_points(3, torch.float64)
        >>> p = next(p for p in pts if p.pattern == "near-singular" and p.parameter < 1e-14)
        >>> p.parameter_name, measure(p.arrays[0], "smallest singular value") == p.parameter
        ('smallest singular value', True)
    """
    return [Point((p.arrays[0].copy(),), p.pattern, p.parameter_name, p.parameter, p.input, p.remake)
            for p in _points(n, dtype, kind, seed)]


@functools.lru_cache(maxsize=32)
def _points(n: int, dtype: torch.dtype, kind: str, seed: int) -> tuple[Point, ...]:
    if kind not in KINDS:
        raise ValueError(f"kind={kind!r}: expected one of {KINDS}")
    f = fmt(dtype)
    made: list[Point] = [Point((a,), "typical") for a in _typical(n, dtype, seed)]
    for p in _patterns(n, f):
        for value in p.values(f):
            a, exact = _rounded(p.make(n, value), f)
            if not np.all(np.isfinite(a)):
                continue   # past the dtype's range: the special patterns have infinities
            if exact and p.known is not None:
                parameter = p.known(n, value)
            elif p.direct:
                continue   # the dtype cannot hold it: its parameter would name another matrix
            else:
                parameter = measure(a, p.parameter_name)
            remake = _remaker(p, n, f) if p.direct else None
            made.append(Point((a,), p.name, p.parameter_name, parameter, 0, remake))
    made += [Point((_round_floats(a, dtype),), name) for name, a in _specials(n)]
    made += [Point((_round_floats(a, dtype),), name) for name, a in _subnormal_and_largest(n, f)]
    keep = {"general": lambda a: True, "invertible": invertible,
            "symmetric": lambda a: np.array_equal(a, a.T, equal_nan=True), "spd": positive_definite}[kind]
    points, seen = [], set()
    for p in made:
        key = p.arrays[0].tobytes()
        if key not in seen and keep(p.arrays[0]):
            seen.add(key)
            points.append(p)
    return tuple(points)


def _remaker(p: MatrixPattern, n: int, f: Format) -> Callable[[float], tuple[np.ndarray, ...]]:
    """The pattern at another value of its (direct) parameter."""
    return lambda v: (_rounded(p.make(n, Fraction(v)), f)[0],)


def matrix_grid(*shapes: tuple[int, ...], kind: str = "general", where: Callable[[np.ndarray], bool] | None = None,
                seed: int = 0) -> Callable[[torch.dtype], list[Point]]:
    """A case's ``grid=``: the first input (of shape ``(n, n)``) runs through
    the matrix patterns, each other input holds typical values (seeded small
    multiples of 1/8), as the structured grid has them.

    Args:
        shapes: the inputs' shapes, the matrix first (default ``(3, 3)``).
        kind: ``"general"`` (every pattern), ``"invertible"`` (finite and
            nonsingular: where torch's inv and solve do not raise), ``"symmetric"``
            or ``"spd"`` (symmetric positive definite: Cholesky's domain); decided
            exactly, in fractions.
        where: a predicate on the matrix (a float64 array) that a point must
            satisfy besides ``kind``: the inputs where the forward is called at
            all (torch's ``eigh`` raises at entries of 1e308: ``lambda A:
            np.abs(A).max() < 1e300``).

    Example:
        >>> grid = matrix_grid((3, 3))   # harness.Case("det", torch.linalg.det, harness.exact(torch.linalg.det), grid=grid)
        >>> sorted({p.pattern for p in grid(torch.float32)})[:2]
        ['+inf entry', '+inf on the diagonal of the identity']
    """
    shapes = tuple(tuple(s) for s in shapes) or ((3, 3),)
    n = shapes[0][-1]
    if len(shapes[0]) != 2 or shapes[0][0] != n:
        raise ValueError(f"matrix_grid: the first input is a square matrix, not {shapes[0]}")

    def grid(dtype: torch.dtype) -> list[Point]:
        own = [p for p in _points(n, dtype, kind, seed) if where is None or where(p.arrays[0])]
        others = [typical_values(s, dtype, None, seed + 101 * k) for k, s in enumerate(shapes)]
        out = []
        for i, p in enumerate(own):
            arrays = (p.arrays[0],) + tuple(others[k][i % len(others[k])] for k in range(1, len(shapes)))
            remake = None if p.remake is None else \
                (lambda r, rest: lambda v: r(v) + rest)(p.remake, arrays[1:])
            out.append(Point(tuple(a.copy() for a in arrays), p.pattern, p.parameter_name, p.parameter, 0, remake))
        return out
    grid.__name__ = grid.__qualname__ = f"matrix_grid({', '.join(map(str, shapes))}, kind={kind!r})"
    return grid
