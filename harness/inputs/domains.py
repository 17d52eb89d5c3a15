"""Where a case's inputs live: the grids and the stencils never leave the domain.

A domain is an open interval of the extended reals, or a finite set of values
(labels such as 0 and 1). Endpoints are excluded: ``positive()`` is ``x > 0``,
so neither ``log``'s pole at 0 nor a negative probe is ever evaluated.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Domain:
    """An open interval ``(lo, hi)``; ``None`` means unbounded on that side.

    ``values`` turns the domain into a finite set (finite differences are then
    not taken along that input: it is a label, not a variable).
    """

    lo: float | None = None
    hi: float | None = None
    values: tuple[float, ...] | None = None
    #: Probability vectors along the last axis: entries in the closed [0, 1].
    simplex: bool = False

    def contains(self, x: float) -> bool:
        if math.isnan(x):
            return False
        if self.values is not None:
            return x in self.values
        if self.simplex:
            return 0.0 <= x <= 1.0
        lo = -math.inf if self.lo is None else self.lo
        hi = math.inf if self.hi is None else self.hi
        if math.isinf(x):
            # ±inf belongs to the domain only where it is unbounded on that side.
            return (x > 0 and self.hi is None) or (x < 0 and self.lo is None)
        return lo < x < hi

    def contains_many(self, x) -> np.ndarray:
        """``contains`` of every value of an array, at once.

        Example:
            >>> import numpy as np
            >>> Domain(lo=0.0).contains_many(np.array([-1.0, 0.0, 2.0, np.inf, np.nan])).tolist()
            [False, False, True, True, False]
        """
        x = np.asarray(x, dtype=np.float64)
        if self.values is not None:
            return np.isin(x, self.values)
        if self.simplex:
            return (0.0 <= x) & (x <= 1.0)
        lo = -np.inf if self.lo is None else self.lo
        hi = np.inf if self.hi is None else self.hi
        inside = (lo < x) & (x < hi)
        # ±inf belongs to the domain only where it is unbounded on that side.
        return inside | ((x == np.inf) & (self.hi is None)) | ((x == -np.inf) & (self.lo is None))

    @property
    def discrete(self) -> bool:
        return self.values is not None

    def __str__(self) -> str:
        if self.values is not None:
            return "{" + ", ".join(f"{v:g}" for v in self.values) + "}"
        if self.simplex:
            return "the probability simplex"
        lo = "-inf" if self.lo is None else f"{self.lo:g}"
        hi = "inf" if self.hi is None else f"{self.hi:g}"
        return f"({lo}, {hi})"


def real() -> Domain:
    """All of the extended reals, ±inf and NaN included in the grid.

    Example:
        >>> real().contains(-1e300)
        True
    """
    return Domain()


def positive() -> Domain:
    """``x > 0`` (and +inf).

    Example:
        >>> positive().contains(0.0)
        False
    """
    return Domain(lo=0.0)


def interval(lo: float | None, hi: float | None) -> Domain:
    """The open interval ``(lo, hi)``; ``None`` leaves a side unbounded.

    Example:
        >>> interval(0, 1).contains(1.0)
        False
    """
    if lo is not None and hi is not None and not lo < hi:
        raise ValueError(f"interval({lo}, {hi}) is empty")
    return Domain(lo=lo, hi=hi)


def choice(*values: float) -> Domain:
    """A finite set of values, such as binary labels ``choice(0, 1)``.

    Example:
        >>> choice(0, 1).contains(0.5)
        False
    """
    if not values:
        raise ValueError("choice() needs at least one value")
    return Domain(values=tuple(float(v) for v in values))


def simplex() -> Domain:
    """Probability vectors along a structured input's last axis (entries in
    [0, 1] summing to 1, as rounded to the dtype). Its default grid holds
    one-hot and nearly one-hot rows, uniform rows and Dirichlet draws; finite
    differences move one entry and stay in [0, 1].

    Example:
        >>> simplex().contains(0.0), simplex().contains(1.5)
        (True, False)
    """
    return Domain(lo=0.0, hi=1.0, simplex=True)
