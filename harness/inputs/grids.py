"""Deterministic extreme-input grids, per dtype and domain.

A grid holds every class of float a numerical defect hides in: ±0, the
subnormals, every binade up to the largest finite value, ±inf and NaN, dense
points where functions change character (|x| <= 50, around ±1), the edges
where ``exp`` overflows or underflows and where squares do, the domain's own
endpoints, and seeded random points. Every point is exactly a value of the
dtype, so the truth is computed at the very input the implementation sees.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .domains import Domain, real
from .floats import FORMATS, Format, fmt

_ALL = list(FORMATS.values())

#: Points per binade, and the scale of every other family of points.
DEFAULT_SIZE = 2
#: Points per binade of a dense sweep (``certify(dense=True)``), over the whole range.
DENSE_SIZE = 16
#: Cap on the points of a multi-input elementwise grid (a seeded subsample of the product);
#: a dense sweep's is ``DENSE_PRODUCT_CAP``.
PRODUCT_CAP = 3000
DENSE_PRODUCT_CAP = 12000


def _round(values: np.ndarray, dtype: torch.dtype) -> np.ndarray:
    with np.errstate(over="ignore", invalid="ignore"):
        return torch.from_numpy(np.asarray(values, dtype=np.float64)).to(dtype).to(torch.float64).numpy()


def _with_neighbours(x: float, f: Format, steps=(1, 2, 4)) -> list[float]:
    ulp = f.ulp(x)
    return [x] + [x + s * k * ulp for k in steps for s in (-1, 1)]


def _specials(f: Format) -> list[float]:
    tiny, sub, mx = f.tiny, f.subnormal, f.max
    return [0.0, -0.0, math.inf, -math.inf, math.nan] + [
        s * v for s in (1, -1) for v in (sub, 2 * sub, tiny - sub, tiny, tiny + 2 * sub * 2 ** (f.precision - 1), mx, mx / 2)
    ]


def _binades(f: Format, size: int, rng: np.random.Generator, whole: bool = False) -> list[float]:
    """``size`` points in every binade (1.0 and seeded mantissas of 8 bits,
    exact in every format, so the formats' grids share points and truths;
    past 9, evenly spaced ones of ``log2(size)`` bits); float64's binades beyond
    float32's range get one point each unless ``whole``."""
    mantissas = np.concatenate([[1.0], np.round(rng.uniform(1.0, 2.0, 8) * 128) / 128])
    if size > mantissas.size:
        spaced = 1.0 + np.arange(1, size) / 2.0 ** math.ceil(math.log2(size))
        mantissas = np.concatenate([mantissas, spaced[~np.isin(spaced, mantissas)][:size - mantissas.size]])
    points = []
    for e in range(f.emin - f.precision + 1, f.emax + 1):
        count = size if whole or -160 <= e <= 130 else 1
        points += [math.ldexp(float(m), e) for m in mantissas[:count]]
    return points + [-p for p in points]


def _character(f: Format, size: int) -> list[float]:
    """Where functions change character: small |x|, around ±1, the exp and
    square overflow/underflow edges of the format."""
    points = list(np.linspace(-50.0, 50.0, 100 * size + 1))
    for j in range(1, f.precision + 1):
        for s in (1, -1):
            points += [s * (1 + 2.0 ** -j), s * (1 - 2.0 ** -j)]
    points += [-1.0, 1.0]
    # A wider format's grid also holds the narrower formats' edges (a float64
    # implementation is often fed float32 data), and shares their truths.
    formats = [g for g in _ALL if g.precision <= f.precision and g.emax <= f.emax] or [f]
    edges = [e for g in formats for e in (math.log(g.max), math.log(g.tiny), math.log(g.subnormal), math.log(g.max) / 2,
                                           math.sqrt(g.max), math.sqrt(g.tiny), math.sqrt(g.subnormal))]
    for edge in edges:
        for s in (1, -1):
            e = s * edge
            points += _with_neighbours(e, f)
            points += [e * (1 + d) for d in (-0.05, -0.01, -1e-3, 1e-3, 0.01, 0.05)]
            points += [e + d for d in (-2.0, -1.0, -0.5, 0.5, 1.0, 2.0)]
    return points


def _endpoints(domain: Domain, f: Format) -> list[float]:
    points = []
    for b in (domain.lo, domain.hi):
        if b is None:
            continue
        points += _with_neighbours(b, f, steps=(1, 2, 3, 4, 8))
        for j in range(1, f.precision + 1):
            points += [b + s * 2.0 ** -j * max(abs(b), 1.0) for s in (1, -1)]
    return points


def _random(f: Format, size: int, rng: np.random.Generator) -> list[float]:
    n = 50 * size
    logs = rng.uniform(math.log2(f.subnormal), math.log2(f.max), n)
    signs = rng.choice([-1.0, 1.0], n)
    return list(signs * np.exp2(logs)) + list(rng.uniform(-20.0, 20.0, n))


def _unique_sorted(values: np.ndarray) -> np.ndarray:
    """Sorted, duplicates removed, -0.0 kept apart from +0.0, NaN last."""
    bits = np.unique(values.view(np.int64))
    out = bits.view(np.float64)
    nan = np.isnan(out)
    order = np.lexsort((np.signbit(out[~nan]) == 0, out[~nan]))
    return np.concatenate([out[~nan][order], out[nan][:1]])


def extreme(dtype: torch.dtype, domain: Domain | None = None, size: int = DEFAULT_SIZE, seed: int = 0,
            whole: bool = False) -> np.ndarray:
    """The 1-D extreme grid of ``dtype`` restricted to ``domain``, as float64
    values that are exactly values of ``dtype``, sorted (NaN last); ``whole``:
    ``size`` points in every binade of float64 too, not one past float32's range.

    Example:
        >>> g = extreme(torch.float32)
        >>> bool((g == 88.72283935546875).any())   # exp overflows just past it
        True
    """
    domain = domain or real()
    f = fmt(dtype)
    if domain.discrete:
        return _unique_sorted(_round(np.array(domain.values), dtype))
    rng = np.random.default_rng(seed)
    raw = (_specials(f) + _binades(f, max(size, 1), rng, whole) + _character(f, max(size, 1))
           + _endpoints(domain, f) + _random(f, max(size, 1), rng))
    values = _round(np.array(raw, dtype=np.float64), dtype)
    keep = domain.contains_many(values) | (np.isnan(values) & (domain == real()))
    return _unique_sorted(values[keep])


def coarse(grid: np.ndarray, count: int) -> np.ndarray:
    """About ``count`` points of a sorted grid, evenly by rank, ends and
    non-finite values kept (one input of a product grid)."""
    finite = grid[np.isfinite(grid)]
    if len(finite) <= count:
        return grid
    picked = finite[np.unique(np.linspace(0, len(finite) - 1, count).round().astype(int))]
    return _unique_sorted(np.concatenate([picked, grid[~np.isfinite(grid)]]))


def product(dtype: torch.dtype, domains: tuple[Domain, ...], size: int = DEFAULT_SIZE, seed: int = 0,
            whole: bool = False) -> np.ndarray:
    """Grid of a several-input elementwise case: the product of coarse per-input
    grids, plus each input's full grid against typical values of the others,
    capped by a seeded subsample, plus every combination of the inputs' special
    values and each of them beside typical values of the others (``corner_points``),
    kept whatever the cap. Shape ``(points, inputs)``."""
    rng = np.random.default_rng(seed)
    cap = DENSE_PRODUCT_CAP if whole else PRODUCT_CAP
    grids = [extreme(dtype, d, size, seed, whole) for d in domains]
    per_input = max(4, int(round((cap / 2) ** (1 / len(domains)))))
    mesh = np.meshgrid(*[coarse(g, per_input) for g in grids], indexing="ij")
    points = np.stack([m.ravel() for m in mesh], axis=1)
    sweeps = []
    for k, g in enumerate(grids):
        typical = [coarse(other[np.isfinite(other)], 3) for other in grids]
        for combo in np.stack(np.meshgrid(*[typical[j] if j != k else [0.0] for j in range(len(grids))],
                                          indexing="ij"), -1).reshape(-1, len(grids)):
            sweep = np.repeat(combo[None, :], len(g), axis=0)
            sweep[:, k] = g
            sweeps.append(sweep)
    points = np.concatenate([points] + sweeps)
    points = np.unique(points.view(np.int64), axis=0).view(np.float64)
    corners = corner_points(dtype, domains)
    if len(points) > cap:
        points = points[np.sort(rng.choice(len(points), cap, replace=False))]
    # The corners go in after the subsample: (-inf, -inf) is where logaddexp's
    # gradient is 0/0, and a seeded sample of 3,000 out of 40,000 points misses it.
    points = np.concatenate([points, corners])
    return np.unique(points.view(np.int64), axis=0).view(np.float64)


def special_values(dtype: torch.dtype, domain: Domain | None = None) -> np.ndarray:
    """The values of ``dtype`` where defects hide whatever the function: ±0, ±1,
    ±inf, ±the largest finite, ±the smallest normal and subnormal, NaN; those in
    ``domain`` (a discrete domain: its values).

    Example:
        >>> special_values(torch.float16).size
        13
    """
    domain = domain or real()
    if domain.discrete:
        return extreme(dtype, domain)
    f = fmt(dtype)
    values = np.array([0.0, -0.0, math.inf, -math.inf, math.nan]
                      + [s * v for s in (1, -1) for v in (1.0, f.max, f.tiny, f.subnormal)])
    keep = domain.contains_many(values) | (np.isnan(values) & (domain == real()))
    return _unique_sorted(values[keep])


#: Ordinary values each special value meets at the other inputs (``corner_points``).
TYPICAL = (0.5, -0.5, 2.0, -2.0, 3.0, -3.0, 100.0, -100.0)


def corner_points(dtype: torch.dtype, domains: tuple[Domain, ...]) -> np.ndarray:
    """Every combination of the inputs' special values, and each special value
    of one input beside typical values of the others (``TYPICAL`` in their
    domains, else the domain's own grid's middle points): shape ``(points, inputs)``.

    Example:
        >>> from harness.inputs.domains import real
        >>> c = corner_points(torch.float32, (real(), real()))
        >>> len(c), bool(((c[:, 0] == np.inf) & (c[:, 1] == 2.0)).any())
        (377, True)
    """
    specials = [special_values(dtype, d) for d in domains]
    mesh = np.meshgrid(*specials, indexing="ij")
    corners = [np.stack([m.ravel() for m in mesh], axis=1)]
    typical = [_typical(dtype, d) for d in domains]
    for k in range(len(domains)):
        axes = [typical[j] if j != k else specials[k] for j in range(len(domains))]
        mesh = np.meshgrid(*axes, indexing="ij")
        corners.append(np.stack([m.ravel() for m in mesh], axis=1))
    return np.unique(np.concatenate(corners).view(np.int64), axis=0).view(np.float64)


def _typical(dtype: torch.dtype, domain: Domain) -> np.ndarray:
    values = _round(np.array(TYPICAL), dtype)
    inside = values[domain.contains_many(values)]
    if inside.size or domain.discrete:
        return inside
    finite = extreme(dtype, domain, 1)
    finite = finite[np.isfinite(finite)]
    return finite[[len(finite) // 3, len(finite) // 2, 2 * len(finite) // 3]]


def _all_values(dtype: torch.dtype) -> np.ndarray:
    """Every bit pattern of a 16-bit format, as float64."""
    patterns = np.arange(1 << 16, dtype=np.uint32)
    if dtype == torch.float16:
        return patterns.astype(np.uint16).view(np.float16).astype(np.float64)
    if dtype == torch.bfloat16:
        with np.errstate(invalid="ignore"):   # signalling NaN patterns
            return (patterns << 16).view(np.float32).astype(np.float64)
    raise ValueError(f"only float16 and bfloat16 are swept exhaustively, not {dtype}")


def every(dtype: torch.dtype, domain: Domain | None = None) -> np.ndarray:
    """Every value of a 16-bit ``dtype`` in ``domain``: each finite value, ±0
    and the unbounded ends' infinities, sorted, and one NaN for the 2,046 (or
    254) NaN patterns where the domain is all of the reals.

    Example:
        >>> every(torch.float16).size     # 63,488 finite values, ±inf, one NaN
        63491
    """
    domain = domain or real()
    values = _all_values(dtype)
    keep = domain.contains_many(values) | (np.isnan(values) & (domain == real()))
    return _unique_sorted(values[keep])


def every_in_words(dtype: torch.dtype, domain: Domain | None = None) -> str:
    """What ``every`` covers, for a report: a certificate over the format.

    Example:
        >>> every_in_words(torch.bfloat16)
        'exhaustive: 65,536 inputs (every bfloat16 bit pattern; the 254 NaN patterns judged as one NaN)'
    """
    domain = domain or real()
    values = _all_values(dtype)
    nans = int(np.isnan(values).sum())
    if domain == real():
        return (f"exhaustive: {values.size:,} inputs (every {fmt(dtype).name} bit pattern; "
                f"the {nans:,} NaN patterns judged as one NaN)")
    inside = every(dtype, domain).size
    return f"exhaustive over the domain {domain}: {inside:,} of the {values.size:,} {fmt(dtype).name} inputs (every value in it)"
