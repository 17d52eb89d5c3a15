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
