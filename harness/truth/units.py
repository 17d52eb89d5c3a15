"""The units of a certification: one truth computation per grid point of an
elementwise case, one per structured point, and their cache keys."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..case import Case
from ..inputs.samples import _Sample
from .cache import point_key, point_key_prefix


@dataclass
class _Unit:
    """One truth computation: a point (tuple of arrays), its cotangent, where its
    outputs and gradients sit in the samples."""

    point: tuple[np.ndarray, ...]
    cotangent: np.ndarray
    out_shape: tuple[int, ...]
    sample: int
    index: int | None  # element of an elementwise sample


class _Units:
    """The truth computations of a certification: one per grid point of an
    elementwise case (kept as the grid's arrays: a 16-bit sweep has 65,536),
    one per point of a structured case. Indexing gives a ``_Unit``."""

    def __init__(self, case: Case, samples: list[_Sample]):
        self.elementwise = case.elementwise
        if self.elementwise:
            (s,) = samples
            self.arrays = s.arrays
            self.stacked = np.stack([np.asarray(a, dtype=np.float64) for a in s.arrays], axis=1)
            self.list = None
        else:
            self.list = [_Unit(s.arrays, s.cotangent, s.output.shape, k, None) for k, s in enumerate(samples)]

    def __len__(self) -> int:
        return self.stacked.shape[0] if self.elementwise else len(self.list)

    def __getitem__(self, j: int) -> _Unit:
        if self.list is not None:
            return self.list[j]
        return _Unit(tuple(np.array(v) for v in self.stacked[j]), np.array(1.0), (), 0, j)

    def __iter__(self):
        return (self[j] for j in range(len(self)))

    def sizes(self) -> list[tuple[int, int]]:
        """(values, VJP entries) of each unit's truth."""
        if self.elementwise:
            return [(1, self.stacked.shape[1])] * len(self)
        return [(int(np.prod(u.out_shape)) if u.out_shape else 1, sum(int(np.size(a)) for a in u.point))
                for u in self.list]

    def nan(self) -> np.ndarray:
        """Units with a NaN input: no truth, a value that must be NaN."""
        if self.elementwise:
            return np.isnan(self.stacked).any(axis=1)
        return np.array([any(np.isnan(a).any() for a in u.point) for u in self.list], dtype=bool)

    def points(self):
        """Each unit's input as reports name it (floats, or a structured point's
        arrays), indexable by unit: an elementwise grid's are made when read."""
        if self.elementwise:
            return _Rows(self.stacked)
        return [u.point for u in self.list]

    def keys(self, ref_print: str) -> list[str]:
        """``point_key`` of every unit; an elementwise grid's share one prefix."""
        if not self.elementwise:
            return [point_key(ref_print, tuple(np.shape(a) for a in u.point), u.cotangent, u.point)
                    for u in self.list]
        arity = self.stacked.shape[1]
        prefix = point_key_prefix(ref_print, ((),) * arity, np.array(1.0))
        rows = np.ascontiguousarray(self.stacked).tobytes()
        width = 8 * arity
        keys = []
        for start in range(0, len(rows), width):
            h = prefix.copy()
            h.update(rows[start:start + width])
            keys.append(h.hexdigest())
        return keys


class _Rows:
    """Row ``u`` of a 2-D float array as a tuple of floats, made when read."""

    def __init__(self, stacked: np.ndarray):
        self.stacked = stacked

    def __getitem__(self, u: int) -> tuple:
        return tuple(self.stacked[u].tolist())
