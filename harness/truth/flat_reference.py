"""A case's reference as the engines take it: ``list[mpf] -> list[mpf]``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..case import Case
from .mpmath_engine import ReferenceFailure


def _nest(flat: list, shape: tuple[int, ...]):
    if not shape:
        return flat[0]
    step = len(flat) // shape[0]
    return [_nest(flat[i * step:(i + 1) * step], shape[1:]) for i in range(shape[0])]


def _flatten(out) -> list:
    if isinstance(out, (list, tuple)):
        return [v for item in out for v in _flatten(item)]
    if isinstance(out, np.ndarray):
        return [v for item in out.tolist() for v in _flatten(item)] if out.ndim else [out.item()]
    return [out]


def _flat_reference(case: Case, shapes: tuple[tuple[int, ...], ...], out_size: int):
    return _FlatReference(case.reference, shapes, out_size)


@dataclass(frozen=True)
class _FlatReference:
    """``case.reference`` as ``list[mpf] -> list[mpf]``. Holds the reference
    alone, not the case (forwards, autograd classes), and is no closure: a
    remote executor pickles it with each chunk of tasks, and pickle sends
    the one reference that a chunk's tasks share once, not once per task."""

    reference: Callable
    shapes: tuple[tuple[int, ...], ...]
    out_size: int

    def _args(self, values: list) -> list:
        args, pos = [], 0
        for shape in self.shapes:
            n = int(np.prod(shape)) if shape else 1
            args.append(_nest(values[pos:pos + n], shape))
            pos += n
        return args

    def __call__(self, values: list) -> list:
        out = _flatten(self.reference(*self._args(values)))
        if len(out) != self.out_size:
            raise ReferenceFailure(f"reference returned {len(out)} values, forward returns {self.out_size}")
        return out

    @property
    def differentiable(self) -> bool:
        """An ``exact`` reference gives its derivatives (``harness.truth.dual``)."""
        return hasattr(self.reference, "jacobian")

    @property
    def ball_formula(self) -> Callable | None:
        """The torch formula of an ``exact`` reference, which the interval engine
        runs over a whole grid of points of these shapes."""
        return getattr(self.reference, "formula", None)

    def derivatives(self, values: list, active) -> tuple[list, list, str | None]:
        """Values, their tangents (dicts by flat input index) and why the
        point is not differentiable by rules (None when it is)."""
        out, tangents, marked = self.reference.jacobian(*self._args(values), active=active)
        out, tangents = _flatten(out), _flatten(tangents)
        if len(out) != self.out_size:
            raise ReferenceFailure(f"reference returned {len(out)} values, forward returns {self.out_size}")
        return out, tangents, marked
