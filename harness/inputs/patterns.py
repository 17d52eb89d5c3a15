"""The default extreme grid of a structured case, built from named patterns.

A reduction breaks on the *shape* of its input, not on one value: a softmax
whose one logit dominates the rest, a layer norm over a constant row, a norm of
entries spread over the binades, an attention row masked to -inf. Each pattern
below builds rows (along the last axis, the one reductions usually take) where
one such thing happens, swept over a parameter (the gap of the dominant entry,
the constant, the largest binade), so a failing region reads as "dominant
entry, gap in [15.9, 88.7]". Every row of a tensor holds the pattern with the
same parameter; the other entries are seeded small integers over 8, exact in
every dtype, so the four dtypes' grids share most points and truths.

Several inputs: each input's patterns against typical values of the others,
and every input at once at its special values. ``structured_grid`` is the
entry point; ``Point`` is what it returns.
"""

from __future__ import annotations

import functools
import math
import dataclasses
from dataclasses import dataclass
from itertools import product as cartesian
from typing import Callable, Iterator

import numpy as np
import torch

from .domains import Domain, real
from .floats import Format, fmt
from .grids import extreme

#: Cap on the points of a structured grid: several inputs' corners are a product.
POINT_CAP = 1500
#: Typical points (seeded small values) per input.
TYPICAL = 3
#: Values of a pattern's sweep (evenly by rank), besides the edges it must hold.
SWEEP = 20


@dataclass(frozen=True, eq=False)
class Point:
    """One structured grid point: one array per input, and the pattern that
    made it. ``input`` is the input carrying the pattern (None: all of them at
    once, the corners); ``parameter`` is NaN where the pattern has none."""

    arrays: tuple[np.ndarray, ...]
    pattern: str
    parameter_name: str | None = None
    parameter: float = math.nan
    input: int | None = None
    #: The same point at another value of its parameter (the same seeded other entries),
    #: for bisecting an edge along the parameter; None where the pattern cannot be remade.
    remake: Callable[[float], tuple[np.ndarray, ...]] | None = None


@dataclass(frozen=True)
class _Rows:
    """A pattern for one input: ``make(rng, n, value) -> row``, for each value
    of the sweep. ``all_rows`` False: only the first row gets it (one masked
    row among ordinary ones)."""

    name: str
    parameter_name: str | None
    values: list
    make: Callable[[np.random.Generator, int, float], np.ndarray]
    all_rows: bool = True
    special: bool = False
    edges: tuple = ()

    def sweep(self, count: int = SWEEP) -> list:
        """About ``count`` of the values, evenly by rank, ends and edges kept."""
        values = sorted(self.values)
        if len(values) > count:
            values = [values[i] for i in np.unique(np.linspace(0, len(values) - 1, count).round().astype(int))]
        return sorted(set(values) | set(self.edges), key=lambda v: (math.isnan(v), v))


def _small(rng: np.random.Generator, n: int) -> np.ndarray:
    """Ordinary entries: multiples of 1/8 in [-2, 2], exact in every dtype."""
    return rng.integers(-16, 17, n) / 8.0


def _binade_sweep(lo: int, hi: int, dense: tuple[int, int] = (-4, 12), stride: int = 4) -> list[float]:
    """2**k for k in [lo, hi]: every binade in ``dense``, every ``stride``-th beyond."""
    ks = [k for k in range(lo, hi + 1) if dense[0] <= k <= dense[1] or k % stride == 0]
    return [math.ldexp(1.0, k) for k in ks] + ([math.ldexp(1.0, hi)] if hi not in ks else [])


def _edges(f: Format, n: int) -> list[float]:
    """Gaps where a softmax changes character in format ``f``: exp(-gap) below
    half an ULP of 1 (the rest is absorbed), at the smallest normal and
    subnormal (the rest underflows), n exp(-gap) at the overflow edge."""
    eps = 2.0 ** (1 - f.precision)
    marks = [math.log(2 / eps), math.log(n / eps), -math.log(f.tiny), -math.log(f.subnormal), math.log(f.max),
             math.log(f.max) - math.log(n)]
    return [m + d for m in marks for d in (-0.5, 0.5)]


def _dominant(f: Format, n: int, position: int) -> _Rows:
    def make(rng, n, gap):
        row = _small(rng, n)
        row[position % n] = gap
        return row
    # The others are within 2 of 0, the entry at `gap`: the gap is the entry, to within 2.
    gaps = [g for g in _binade_sweep(-2, f.emax) if 2.0 < g <= f.max]
    where = "first" if position == 0 else "last"
    return _Rows(f"dominant {where} entry", "gap", gaps, make, edges=tuple(e for e in _edges(f, n) if e <= f.max))


def _signed_magnitudes(f: Format) -> list[float]:
    """Coarse binades of both signs (``_MAGNITUDE_EDGES`` adds 0 and the format's edges)."""
    return sorted({s * m for m in _binade_sweep(f.emin, f.emax, dense=(-2, 4), stride=8) for s in (1.0, -1.0)})


def _magnitude_edges(f: Format) -> tuple:
    """0, the smallest subnormal and normal, the largest finite; both signs."""
    return (0.0,) + tuple(s * m for m in (f.subnormal, f.tiny, f.max) for s in (1.0, -1.0))


def _patterns(f: Format, n: int) -> list[_Rows]:
    """The patterns of a real input whose rows have ``n`` entries."""
    emax = f.emax
    # Special values first: a row they share with a sweep (0 everywhere) is named for them.
    out = _specials(f, n) + [_dominant(f, n, 0)]
    if n > 2:
        out.append(_dominant(f, n, n - 1))

    def tie(rng, n, m):
        row = m - np.abs(_small(rng, n)) - 1.0 if math.isfinite(m) else _small(rng, n)
        row[:2] = m
        return row
    if n >= 2:
        out.append(_Rows("tie of two maxima", "tied value", _signed_magnitudes(f), tie, edges=_magnitude_edges(f)))
    out.append(_Rows("constant row", "constant", _signed_magnitudes(f), lambda rng, n, c: np.full(n, c),
                     edges=_magnitude_edges(f)))

    def offset(rng, n, c):
        # A spread of a few ULPs of c: the mean and variance cancel all but them.
        return c + rng.integers(-4, 5, n) * f.ulp(c)
    out.append(_Rows("large offset, spread of ULPs", "offset",
                     [s * c for c in _binade_sweep(0, emax - 1, dense=(0, 4), stride=8) for s in (1.0, -1.0)],
                     offset))

    def spread(rng, n, top):
        # Entries from 2**top down toward the smallest subnormal, signs mixed:
        # the sum of squares over- or underflows while the norm does not.
        step = max(1, (int(top) - (f.emin - f.precision + 1)) // max(n - 1, 1))
        exps = int(top) - step * np.arange(n)
        row = np.ldexp(1.0, np.maximum(exps, f.emin - f.precision + 1)) * rng.choice([-1.0, 1.0], n)
        return row
    tops = list(range(f.emin, emax + 1, max(1, (emax - f.emin) // 24))) + [emax // 2, emax // 2 + 1, emax]
    out.append(_Rows("entries spread over the binades", "log2 of the largest", sorted(set(tops)), spread))

    def cancel(rng, n, scale):
        # Pairs +-a with a one-ULP residue: the sum is about 0 at any scale.
        a = scale * (1 + rng.integers(0, 8, (n + 1) // 2) / 8.0)
        row = np.concatenate([a, -a])[:n]
        row[0] += f.ulp(row[0])
        return row
    if n >= 2:
        out.append(_Rows("mixed signs summing to about 0", "scale",
                         _binade_sweep(f.emin, emax - 2, dense=(-2, 4), stride=8), cancel))

    def exp_edge(rng, n, delta):
        return np.full(n, math.log(f.max) - math.log(n) + delta)
    out.append(_Rows("sum of exp at the overflow edge", "offset from log(max/n)",
                     [-2.0, -1.0, -0.5, -2.0 ** -6, 0.0, 2.0 ** -6, 0.5, 1.0, 2.0], exp_edge))
    return out


def _specials(f: Format, n: int) -> list[_Rows]:
    """Special values in rows: each a pattern of its own, without a parameter."""
    def put(values: list[float], fill: Callable[[np.random.Generator, int], np.ndarray] = _small):
        def make(rng, n, _):
            row = fill(rng, n)
            row[:len(values)] = values[:n]
            return row
        return make
    zeros = lambda rng, n: np.zeros(n)
    cases = [
        ("+inf entry", put([math.inf]), True),
        ("-inf entry", put([-math.inf]), True),
        ("+inf and -inf entries", put([math.inf, -math.inf]), True),
        ("row all -inf (masked)", put([-math.inf] * n), False),
        ("-inf entries but one (masked)", put([-math.inf] * (n - 1)), True),
        ("NaN entry", put([math.nan]), True),
        ("all-zero row", put([], zeros), False),
        ("zero entries", put([0.0, -0.0]), True),
        ("subnormal entries", lambda rng, n, _: rng.choice([-1.0, 1.0], n) * f.subnormal * rng.integers(1, 4, n), True),
        ("largest finite entries", put([f.max, -f.max, f.max]), True),
    ]
    return [_Rows(name, None, [math.nan], make, all_rows, special=True) for name, make, all_rows in cases
            if not (n < 2 and name in ("+inf and -inf entries", "-inf entries but one (masked)"))]


def _rows_of(shape: tuple[int, ...]) -> tuple[int, int]:
    """(rows, entries per row) of a tensor whose last axis is the row."""
    if not shape:
        return 1, 1
    return int(np.prod(shape[:-1])), int(shape[-1])


def _tensor(p: _Rows, shape: tuple[int, ...], value, seed: int) -> np.ndarray:
    rows, n = _rows_of(shape)
    rng = np.random.default_rng(seed)
    out = np.stack([p.make(rng, n, value) if (r == 0 or p.all_rows) else _small(rng, n) for r in range(rows)])
    return out.reshape(shape)


def _round(a: np.ndarray, dtype: torch.dtype) -> np.ndarray:
    with np.errstate(over="ignore", invalid="ignore"):
        return torch.from_numpy(np.asarray(a, dtype=np.float64)).to(dtype).double().numpy()


# -- domains --------------------------------------------------------------------------------------------
def _into(domain: Domain, a: np.ndarray) -> np.ndarray | None:
    """A real pattern's tensor moved into ``domain`` where that keeps its shape
    (``positive``: magnitudes, 0 as the smallest subnormal is not), else None."""
    if domain == real():
        return a
    if domain.lo == 0.0 and domain.hi is None:
        a = np.abs(a)
    inside = domain.contains_many(a)
    return a if inside.all() else None


#: Parameters that are values of the entries: moved into a domain with them.
_VALUE_PARAMETERS = ("tied value", "constant", "offset")


def _moved(domain: Domain, name: str | None, v: float) -> float:
    """A pattern's parameter as ``_into`` moves its entries (magnitudes for ``positive``):
    a tie at 1e308 in a positive domain reads "tied value 1e308", not -1e308."""
    return abs(v) if name in _VALUE_PARAMETERS and domain.lo == 0.0 and domain.hi is None else v


def _generic(domain: Domain, dtype: torch.dtype, shape, seed: int) -> Iterator[tuple[str, str | None, float, np.ndarray]]:
    """Patterns any continuous domain has, from its 1-D extreme grid: a constant
    row at each of its values, one extreme entry among middling ones, entries
    spread over the grid."""
    line = extreme(dtype, domain)
    line = line[np.isfinite(line)]
    rows, n = _rows_of(shape)
    rng = np.random.default_rng(seed)
    middle = line[len(line) // 4: 3 * len(line) // 4 + 1]
    picks = line[np.unique(np.linspace(0, len(line) - 1, 24).round().astype(int))]
    for c in picks:
        yield "constant row", "constant", float(c), np.full(shape, c)
    for c in picks:
        a = rng.choice(middle, (rows, n))
        a[:, 0] = c
        yield "one entry at a value, the others middling", "value", float(c), a.reshape(shape)
    for k in range(TYPICAL):
        ranks = np.sort(rng.choice(len(line), (rows, n)), axis=-1)
        yield "entries spread over the domain", None, math.nan, line[ranks].reshape(shape)


def _discrete(domain: Domain, shape, seed: int) -> Iterator[tuple[str, str | None, float, np.ndarray]]:
    """Labels or class indices: every entry one value, and seeded mixtures."""
    values = np.array(domain.values)
    for v in values:
        yield "every entry the same label", "label", float(v), np.full(shape, v)
    rng = np.random.default_rng(seed)
    for k in range(TYPICAL):
        yield "mixed labels", None, math.nan, rng.choice(values, shape) if shape else np.array(rng.choice(values))


def _simplex(dtype: torch.dtype, shape, seed: int) -> Iterator[tuple[str, str | None, float, np.ndarray]]:
    """Probability vectors along the last axis: uniform, one-hot and nearly so
    (the rest swept down to the subnormals), Dirichlet draws, binade-spread."""
    f = fmt(dtype)
    rows, n = _rows_of(shape)
    rng = np.random.default_rng(seed)
    yield "uniform", None, math.nan, np.full(shape, 1.0 / n)
    hot = np.zeros((rows, n))
    hot[:, 0] = 1.0
    yield "one-hot", None, math.nan, hot.reshape(shape)
    for delta in [f.subnormal, f.tiny] + _binade_sweep(f.emin, -2, dense=(-4, -2), stride=8):
        row = np.full((rows, n), delta)
        row[:, 0] = 1.0 - (n - 1) * delta
        if row[0, 0] > 0:
            yield "nearly one-hot", "each other entry", delta, row.reshape(shape)
    for k in range(TYPICAL):
        yield "Dirichlet draw", None, math.nan, rng.dirichlet(np.full(n, 0.5), rows).reshape(shape)
    spread = np.ldexp(1.0, -np.arange(1, n + 1) * max(1, -f.emin // n))
    spread[0] = 1.0 - spread[1:].sum()
    yield "entries spread over the binades", None, math.nan, np.broadcast_to(spread, (rows, n)).reshape(shape).copy()


# -- one input ------------------------------------------------------------------------------------------
#: The patterns rows of one and two entries get.
SHORT = {"dominant first entry", "tie of two maxima", "constant row", "large offset, spread of ULPs",
         "sum of exp at the overflow edge", "+inf entry", "-inf entry", "+inf and -inf entries",
         "row all -inf (masked)", "NaN entry", "all-zero row", "subnormal entries", "largest finite entries"}


def input_patterns(shape: tuple[int, ...], dtype: torch.dtype, domain: Domain | None = None,
                   seed: int = 0, short: bool = False) -> list[Point]:
    """The patterns of one input of ``shape`` in ``dtype``, in ``domain``, as
    one-input points (rounded to the dtype, duplicates removed).

    Example:
        >>> pts = input_patterns((8,), torch.float32)
        >>> sorted({p.pattern for p in pts})[:3]
        ['+inf and -inf entries', '+inf entry', '-inf entries but one (masked)']
    """
    domain = domain or real()
    shape = tuple(shape)
    made: list[tuple] = []
    typical = [("typical", None, math.nan, a) for a in typical_values(shape, dtype, domain, seed)]
    if domain.discrete:
        made = list(_discrete(domain, shape, seed))
    elif domain.simplex:
        made = list(_simplex(dtype, shape, seed))
    else:
        if not shape:   # a scalar input: the elementwise grid's values, coarse
            line = extreme(dtype, domain)
            picks = line[np.unique(np.linspace(0, len(line) - 1, 40).round().astype(int))]
            made = [("value", "value", float(v), np.array(v)) for v in picks]
        else:
            f = fmt(dtype)
            for i, p in enumerate(_patterns(f, shape[-1])):
                if short and p.name not in SHORT:
                    continue
                for j, v in enumerate(p.sweep(SWEEP // 2 if short else SWEEP)):
                    a = _into(domain, _round(_tensor(p, shape, v, seed + 7919 * i + j), dtype))
                    if a is not None:
                        remake = _remaker(p, shape, seed + 7919 * i + j, dtype) if domain == real() else None
                        made.append((p.name, p.parameter_name, _moved(domain, p.parameter_name, float(v)), a, remake))
            # The finite reals keep every real pattern but the special ones: nothing to add.
            if domain != real() and not (domain.lo == -math.inf and domain.hi == math.inf):
                made += list(_generic(domain, dtype, shape, seed))
    points, seen = [], set()
    for name, pname, v, a, *remake in typical + made:
        a = _round(a, dtype)
        if not domain.simplex and not (domain.contains_many(a) | (np.isnan(a) & (domain == real()))).all():
            continue
        key = a.tobytes()
        if key not in seen:
            seen.add(key)
            points.append(Point((a,), name, pname, v, 0, remake[0] if remake and pname is not None else None))
    return points


def _remaker(p: _Rows, shape: tuple[int, ...], seed: int, dtype: torch.dtype) -> Callable[[float], tuple]:
    """A real pattern's point at another parameter value, its other entries drawn from the same seed."""
    return lambda v: (_round(_tensor(p, shape, v, seed), dtype),)


def typical_values(shape: tuple[int, ...], dtype: torch.dtype, domain: Domain | None = None,
                   seed: int = 0) -> list[np.ndarray]:
    """``TYPICAL`` ordinary tensors of ``shape`` in ``domain``: what the other
    inputs hold while one input runs through its patterns."""
    domain = domain or real()
    rng = np.random.default_rng(seed + 1)
    out = []
    for k in range(TYPICAL):
        if domain.discrete:
            a = rng.choice(np.array(domain.values), shape)
        elif domain.simplex:
            a = rng.dirichlet(np.full(shape[-1] if shape else 1, 2.0), _rows_of(shape)[0]).reshape(shape)
        elif domain == real():
            a = rng.integers(-16, 17, shape) / 8.0
        else:
            line = extreme(dtype, domain)
            line = line[np.isfinite(line)]
            a = rng.choice(line[len(line) // 4: 3 * len(line) // 4 + 1], shape)
        out.append(_round(np.asarray(a, dtype=np.float64), dtype))
    return out


def special_patterns(points: list[Point]) -> list[Point]:
    """The points of one input at special values (infinities, NaN, zeros, ...):
    what the corners combine."""
    return [p for p in points if p.pattern in _SPECIAL_NAMES]


_SPECIAL_NAMES = {"+inf entry", "-inf entry", "row all -inf (masked)", "NaN entry", "all-zero row", "subnormal entries",
                  "largest finite entries", "one-hot", "every entry the same label"}


# -- several inputs -------------------------------------------------------------------------------------
def structured_grid(shapes: tuple[tuple[int, ...], ...], dtype: torch.dtype,
                    domains: tuple[Domain, ...] | None = None, relation: Callable[..., bool] | None = None,
                    seed: int = 0) -> list[Point]:
    """The default grid of a structured case with inputs of ``shapes``: each
    input's patterns against typical values of the others, and the corners,
    every input at a special pattern at once; only points ``relation`` holds at.

    Example:
        >>> pts = structured_grid(((8,),), torch.float32)
        >>> any(p.pattern == "dominant first entry" and p.parameter == 88.0 for p in pts)
        True
    """
    domains = tuple(domains or (real(),) * len(shapes))
    if len(domains) != len(shapes):
        raise ValueError(f"{len(shapes)} shapes and {len(domains)} domains")
    # The same grid for every case of these shapes, made once; each caller gets its own arrays.
    made = _grid(tuple(map(tuple, shapes)), dtype, domains, seed)
    return [dataclasses.replace(p, arrays=tuple(a.copy() for a in p.arrays)) for p in made
            if relation is None or holds(relation, p.arrays)]


@functools.lru_cache(maxsize=64)
def _grid(shapes, dtype, domains, seed) -> tuple[Point, ...]:
    own = [input_patterns(s, dtype, d, seed + 101 * k) for k, (s, d) in enumerate(zip(shapes, domains))]
    if len(shapes) == 1:
        points = own[0]
        # Rows of one and two entries: a softmax of one entry, a variance of two.
        for short in lengths(shapes[0])[1:]:
            points += [Point(p.arrays, f"{p.pattern}, rows of {short[-1]}", p.parameter_name, p.parameter, 0, p.remake)
                       for p in input_patterns(short, dtype, domains[0], seed, short=True)]
    else:
        typical = [typical_values(s, dtype, d, seed + 101 * k) for k, (s, d) in enumerate(zip(shapes, domains))]
        points = []
        for k, mine in enumerate(own):
            for i, p in enumerate(mine):
                others = [typical[j][i % TYPICAL] for j in range(len(shapes))]
                others[k] = p.arrays[0]
                points.append(Point(tuple(others), p.pattern, p.parameter_name, p.parameter, k,
                                    _beside(p.remake, others, k)))
        corners = list(cartesian(*[special_patterns(mine) for mine in own]))
        points += [Point(tuple(c.arrays[0] for c in combo), " / ".join(c.pattern for c in combo)) for combo in corners]
    special = {id(p) for p in points if p.pattern in _SPECIAL_NAMES}
    if len(points) > POINT_CAP:   # a seeded subsample, the corners and special patterns kept
        keep = [p.input is None or id(p) in special for p in points]
        rng = np.random.default_rng(seed)
        rest = [i for i, k in enumerate(keep) if not k]
        drop = set(rng.choice(rest, max(0, len(points) - POINT_CAP), replace=False).tolist()) if rest else set()
        points = [p for i, p in enumerate(points) if i not in drop]
    return tuple(points)


def _beside(remake, others: list[np.ndarray], k: int):
    """A remaker of input ``k`` among the other inputs' fixed arrays."""
    if remake is None:
        return None
    return lambda v: tuple(remake(v)[0] if j == k else a for j, a in enumerate(others))


def holds(relation: Callable[..., bool], arrays: tuple[np.ndarray, ...]) -> bool:
    """Whether ``relation`` holds at a point (an array answer: at every entry)."""
    with np.errstate(invalid="ignore", over="ignore"):
        return bool(np.all(relation(*arrays)))


def lengths(shape: tuple[int, ...]) -> list[tuple[int, ...]]:
    """The shape, and the same with rows of 1 and 2 entries (where that is shorter)."""
    if not shape:
        return [()]
    return [tuple(shape)] + [tuple(shape[:-1]) + (n,) for n in (1, 2) if n < shape[-1]]
