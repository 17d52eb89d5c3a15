"""What a case claims about itself: certified, or convicted of named defects."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Mapping, Union

import torch

from .kinds import KINDS


@dataclass(frozen=True)
class Expectation:
    """``kinds`` empty: the implementation must be certified.

    Otherwise it must be convicted, every defect found must be of one of
    ``kinds`` (a failure for another reason fails the test), and with
    ``within=(lo, hi)`` every failing point's feature (the input, for a
    one-input elementwise case) must lie in ``[lo, hi]``. ``dense_only``: the
    defect lives in a window only a dense sweep holds (``certify(dense=True)``,
    or an exhaustive one); a sparser grid may certify.
    """

    kinds: frozenset[str] = frozenset()
    within: tuple[float, float] | None = None
    dense_only: bool = False

    @property
    def convicted(self) -> bool:
        return bool(self.kinds)

    def __str__(self) -> str:
        if not self.kinds:
            return "certified"
        where = f" within [{self.within[0]:g}, {self.within[1]:g}]" if self.within else ""
        dense = " by a dense sweep" if self.dense_only else ""
        return f"convicted of {', '.join(sorted(self.kinds))}{where}{dense}"


def certified() -> Expectation:
    """The implementation must pass everywhere on the grid.

    Example:
        >>> str(certified())
        'certified'
    """
    return Expectation()


def convicted(*kinds: str, within: tuple[float, float] | None = None, dense_only: bool = False) -> Expectation:
    """The implementation must fail, and only with defects of these kinds;
    ``dense_only``: a dense sweep must convict it, a sparser grid may certify it.

    Example:
        >>> str(convicted("non-finite", "lost-digits"))
        'convicted of lost-digits, non-finite'
        >>> str(convicted("non-finite", dense_only=True))
        'convicted of non-finite by a dense sweep'
    """
    if not kinds:
        raise ValueError("convicted() needs at least one defect kind")
    unknown = set(kinds) - set(KINDS)
    if unknown:
        raise ValueError(f"unknown defect kind(s) {sorted(unknown)}; known: {sorted(KINDS)}")
    return Expectation(frozenset(kinds), within, dense_only)


ExpectSpec = Union[Expectation, Mapping[Union[str, torch.dtype], Expectation]]


def expectation_for(spec: ExpectSpec, dtype: torch.dtype, compiled: bool = False) -> Expectation:
    """Resolve a per-dtype mapping (keys: dtypes or their names, ``"*"`` = the rest);
    a compiled item (``harness.claims.execution``) reads ``"float16-compiled"`` or
    ``"compiled"`` first, and the eager key where neither is given."""
    if isinstance(spec, Expectation):
        return spec
    name = str(dtype).removeprefix("torch.")
    if compiled:
        for key in (f"{name}-compiled", "compiled"):
            if key in spec:
                return spec[key]
    for key, value in spec.items():
        if key == dtype or key == name:
            return value
    return spec.get("*", certified())


def with_compiled(compiled: Mapping[str, Mapping[str, Expectation]], *lists: list) -> None:
    """Add measured compiled expectations (case name -> ``{"float64-compiled": ...}``) to
    the cases of ``lists``, in place. A case held by several lists (a case file's
    ``STABLE`` inside its ``CASES``) is replaced by one new case in all of them: the
    plugin collects a case once only while every list holds the same object. A name
    that no case has is an error, not an expectation that silently applies nowhere."""
    replaced = {}
    for cases in lists:
        for c in cases:
            if c.name in compiled and id(c) not in replaced:
                spec = c.expect if isinstance(c.expect, Mapping) else {"*": c.expect}
                replaced[id(c)] = dataclasses.replace(c, expect={**spec, **compiled[c.name]})
        cases[:] = [replaced.get(id(c), c) for c in cases]
    missing = set(compiled) - {c.name for c in replaced.values()}
    if missing:
        raise KeyError(f"compiled expectations for no case: {sorted(missing)}")
