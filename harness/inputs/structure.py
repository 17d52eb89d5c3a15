"""Which inputs a structured output depends on, so finite differences can
perturb many inputs at once (column grouping of a sparse Jacobian).

A structure splits the input elements into *groups* such that no output
depends on two elements of the same group; each output then has at most one
*owner* in a group, and one pair of forward calls yields a whole group's
columns. Cost: 4 forward calls per group (two steps, both sides).
"""

from __future__ import annotations

import abc

from dataclasses import dataclass
from typing import Iterator

import numpy as np


@dataclass(frozen=True)
class Group:
    """``members[k]``: boolean mask over input ``k``'s elements perturbed together;
    ``owner``: for each output element, the flat index (over all inputs' elements,
    concatenated) of the member it depends on, or -1."""

    members: tuple[np.ndarray, ...]
    owner: np.ndarray


class Structure(abc.ABC):
    @abc.abstractmethod
    def groups(self, in_shapes: tuple[tuple[int, ...], ...], out_shape: tuple[int, ...]) -> Iterator[Group]:
        """The groups of input elements and each output's owner in each group."""


class Dense(Structure):
    """Every output may depend on every input element: one group per element."""

    def groups(self, in_shapes, out_shape):
        sizes = [int(np.prod(s)) for s in in_shapes]
        offset = 0
        for k, (shape, size) in enumerate(zip(in_shapes, sizes)):
            for i in range(size):
                members = tuple(np.zeros(s, dtype=bool) for s in in_shapes)
                members[k].reshape(-1)[i] = True
                yield Group(members, np.full(out_shape, offset + i, dtype=np.int64))
            offset += size

    def __repr__(self) -> str:
        return "dense()"


class Elementwise(Structure):
    """Output ``j`` depends on input element ``j`` of every input (same shapes)."""

    def groups(self, in_shapes, out_shape):
        size = int(np.prod(out_shape))
        for k, shape in enumerate(in_shapes):
            members = tuple(np.full(s, j == k, dtype=bool) for j, s in enumerate(in_shapes))
            yield Group(members, (np.arange(size) + k * size).reshape(out_shape))

    def __repr__(self) -> str:
        return "elementwise()"


@dataclass(frozen=True)
class Banded(Structure):
    """One input, output of the same shape; output ``c`` along ``axis`` depends on
    inputs ``c - halfwidth .. c + halfwidth`` at the same other coordinates
    (a cross-channel window). Groups: ``2*halfwidth + 1``, whatever the length."""

    axis: int
    halfwidth: int

    def groups(self, in_shapes, out_shape):
        (shape,) = in_shapes
        if tuple(shape) != tuple(out_shape):
            raise ValueError(f"banded structure needs output shape {shape}, got {out_shape}")
        width = 2 * self.halfwidth + 1
        length = shape[self.axis]
        flat = np.arange(int(np.prod(shape))).reshape(shape)
        channel = np.arange(length).reshape([-1 if d == self.axis % len(shape) else 1 for d in range(len(shape))])
        channel = np.broadcast_to(channel, shape)
        for r in range(min(width, length)):
            members = (channel % width == r,)
            # The one member c' = r (mod width) within [c - halfwidth, c + halfwidth].
            start = channel - self.halfwidth
            owner_c = start + (r - start) % width
            valid = (owner_c >= 0) & (owner_c < length)
            owner_flat = np.take_along_axis(flat, np.clip(owner_c, 0, length - 1), axis=self.axis)
            yield Group(members, np.where(valid, owner_flat, -1))

    def __repr__(self) -> str:
        return f"banded(axis={self.axis}, halfwidth={self.halfwidth})"


def dense() -> Structure:
    """Every output depends on every input (the default for structured cases)."""
    return Dense()


def elementwise() -> Structure:
    """Same-shape inputs and output, output ``j`` from element ``j`` of each input."""
    return Elementwise()


def banded(axis: int, halfwidth: int) -> Structure:
    """A window of ``2*halfwidth + 1`` along ``axis`` (e.g. cross-channel LRN).

    Example:
        >>> banded(axis=1, halfwidth=2)
        banded(axis=1, halfwidth=2)
    """
    return Banded(axis, halfwidth)
