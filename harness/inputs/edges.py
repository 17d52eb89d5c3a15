"""Edges found, not listed: where a claimed quantity changes class between two
neighbouring grid points (finite and inf, zero and nonzero, a number and NaN),
bisection on the format's floats narrows the pair down to adjacent floats.

A grid lists the edges it knows (where ``exp`` overflows, where squares do);
an implementation has edges of its own (``x**3`` overflowing inside a backward,
a cancellation that reaches 0), and a window between two of them can be
narrower than the spacing of any fixed grid. Bisection needs only the
implementation: the claims at about 64 points per step, one call each, and at
most the format's width of steps. The truth is then computed at the edges'
floats like at every other point.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np

from .floats import Format, from_ordinal, ordinal

#: Pairs bisected at most per grid (the first ones in input order): a claim whose class
#: flickers point by point (noise around 0) gives an edge per pair, and the grid already
#: holds both classes there.
MAX_EDGES = 512
#: A step's call holds at least this many points (midpoints repeated): CPU kernels take
#: another path on a handful of elements (sinh's scalar path is not its vectorised one).
BATCH = 64

Claims = Callable[[np.ndarray], tuple[np.ndarray, ...]]


def classes(values: np.ndarray) -> np.ndarray:
    """The class of each value: 0 NaN, 1 +inf, 2 -inf, 3 zero (either sign), 4 finite nonzero."""
    v = np.asarray(values, dtype=np.float64)
    return np.select([np.isnan(v), v == np.inf, v == -np.inf, v == 0], [0, 1, 2, 3], 4)


def _signature(claims: tuple[np.ndarray, ...]) -> np.ndarray:
    """One integer per point holding every claim's class (5 classes a claim)."""
    out = np.zeros(np.shape(claims[0]), dtype=np.int64)
    for c in claims:
        out = out * 5 + classes(c)
    return out


def edges(xs: np.ndarray, claimed: tuple[np.ndarray, ...], evaluate: Claims, f: Format) -> tuple[np.ndarray, int, int]:
    """Adjacent floats of ``f`` on both sides of each class change between
    neighbours of the sorted finite points ``xs`` (``claimed``: each claimed
    quantity at ``xs``; ``evaluate``: the same claims at other points), how many
    changes were bisected, and how many were left past ``MAX_EDGES``.

    Example:
        >>> import torch
        >>> from harness.inputs.floats import fmt
        >>> cube = lambda x: (x.astype(np.float32) ** 3,)    # overflows past 6.98e12
        >>> xs = np.array([1.0, 1e12, 1e13])
        >>> with np.errstate(over="ignore"):
        ...     found, bisected, left = edges(xs, cube(xs), cube, fmt(torch.float32))
        >>> [f"{v:.9g}" for v in found], bisected, left
        (['6.98146357e+12', '6.9814641e+12'], 1, 0)
    """
    xs = np.asarray(xs, dtype=np.float64)
    keep = np.isfinite(xs)
    xs = xs[keep]
    sig = _signature(tuple(np.asarray(c, dtype=np.float64)[keep] for c in claimed))
    o = ordinal(xs, f)
    change = np.flatnonzero((sig[1:] != sig[:-1]) & (o[1:] - o[:-1] > 1))
    left = max(0, change.size - MAX_EDGES)
    change = change[:MAX_EDGES]
    lo, hi, sig_lo = o[change], o[change + 1], sig[change]
    while True:
        open_ = hi - lo > 1
        if not open_.any():
            break
        mid = lo[open_] + (hi[open_] - lo[open_]) // 2
        at = _signature(_claims_at(from_ordinal(mid, f), evaluate))
        same = at == sig_lo[open_]
        lo[np.flatnonzero(open_)[same]] = mid[same]
        hi[np.flatnonzero(open_)[~same]] = mid[~same]
    found = from_ordinal(np.concatenate([lo, hi]), f)
    return np.unique(found), change.size, left


def _claims_at(points: np.ndarray, evaluate: Claims) -> tuple[np.ndarray, ...]:
    padded = np.resize(points, max(points.size, BATCH))
    return tuple(np.asarray(c, dtype=np.float64)[:points.size] for c in evaluate(padded))


#: Pattern edges bisected at most per structured grid (each step is one call of the forward
#: and backward on one point).
MAX_PATTERN_EDGES = 64


def signature(claims: tuple[np.ndarray, ...]) -> bytes:
    """Every entry's class of one structured point's claims, as one key."""
    return b"".join(classes(np.ravel(c)).astype(np.int8).tobytes() for c in claims)


def along_patterns(points: list, claimed: list[tuple[np.ndarray, ...]], evaluate: Callable, f: Format) -> tuple[list, int, int]:
    """New structured points on both sides of each class change between
    neighbouring values of one pattern's parameter (``patterns.Point``: the
    same pattern and input, ``remake`` to build it at another value), bisected
    to adjacent floats of ``f``; how many changes were bisected and how many
    were left past ``MAX_PATTERN_EDGES``. ``claimed[k]``: point k's claims;
    ``evaluate(arrays)``: the claims at other arrays."""
    groups: dict[tuple, list[int]] = {}
    for k, p in enumerate(points):
        if p.remake is not None and np.isfinite(p.parameter):
            groups.setdefault((p.pattern, p.input), []).append(k)
    pairs = []
    for members in groups.values():
        members.sort(key=lambda k: points[k].parameter)
        for a, b in zip(members, members[1:]):
            if _count(points[b].parameter, f) - _count(points[a].parameter, f) > 1 and signature(claimed[a]) != signature(claimed[b]):
                pairs.append((a, b))
    left = max(0, len(pairs) - MAX_PATTERN_EDGES)
    found = []
    for a, b in pairs[:MAX_PATTERN_EDGES]:
        found += _bisect_pattern(points[a], points[b].parameter, signature(claimed[a]), evaluate, f)
    return found, min(len(pairs), MAX_PATTERN_EDGES), left


def _count(value: float, f: Format) -> int:
    return int(ordinal(np.array([value]), f)[0])


def _bisect_pattern(start, stop: float, start_class: bytes, evaluate: Callable, f: Format) -> list:
    """The two points, a float of the parameter apart, where ``start``'s pattern
    (its own seeded other entries) leaves ``start_class`` on the way to ``stop``;
    none if it never does with those entries."""
    # Python integers: float64's ordinals from -max to max span more than int64 holds.
    lo, hi = _count(start.parameter, f), _count(stop, f)
    if signature(evaluate(start.remake(float(from_ordinal(np.int64(hi), f))))) == start_class:
        return []
    while hi - lo > 1:
        mid = lo + (hi - lo) // 2
        if signature(evaluate(start.remake(float(from_ordinal(np.int64(mid), f))))) == start_class:
            lo = mid
        else:
            hi = mid
    return [dataclasses.replace(start, arrays=start.remake(v), parameter=v)
            for v in map(float, from_ordinal(np.array([lo, hi], dtype=np.int64), f))]
