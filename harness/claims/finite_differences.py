"""Finite differences of an implementation's own forward, in its own dtype:
does the claimed backward belong to the forward?

Steps are powers of two ``2**-c`` of ``|x|`` with ``c`` about a third of the
significand bits (the classic balance of truncation, O(h**2), against
rounding, O(eps/h), for central differences), never below two units in the
last place, so float16 and bfloat16 get a real step and not the fixed ``1e-6``
that rounds to no step at all. Every perturbed input is rounded to the dtype
and the step actually taken is used. Richardson extrapolation over ``h`` and
``h/2`` gives the estimate and its error; near a domain endpoint the stencil
turns one-sided instead of crossing it.

Each call perturbs a whole *group* of input elements (see ``structure``): an
elementwise grid costs 4 forward calls per input, whatever its length.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch

from ..inputs.domains import Domain
from ..inputs.floats import Format
from ..inputs.structure import Structure

#: Assumed error of the forward itself, in ULPs of its result, when the
#: rounding part of a difference quotient's error is estimated.
FORWARD_ULPS = 2.0


@dataclass
class Estimate:
    """Per input: the VJP estimate and its error (inf where none was possible)."""

    value: list[np.ndarray]
    error: list[np.ndarray]
    calls: int


def _round(x: np.ndarray, dtype: torch.dtype) -> np.ndarray:
    with np.errstate(over="ignore", invalid="ignore"):
        return torch.from_numpy(np.asarray(x, dtype=np.float64)).to(dtype).to(torch.float64).numpy()


def steps_for(x: np.ndarray, f: Format, domain: Domain | None = None) -> np.ndarray:
    """The base step per element: ``2**(exponent(s) - c)`` where ``s`` is ``|x|``
    or, if nearer, the distance to the domain's endpoint (the scale on which
    ``log`` changes next to its pole), at least 4 ULPs."""
    c = math.ceil(f.precision / 3)
    scale = np.abs(x)
    for b in (domain.lo, domain.hi) if domain is not None and not domain.discrete else ():
        if b is not None:
            scale = np.minimum(scale, np.abs(x - b))
    with np.errstate(divide="ignore", invalid="ignore"):
        e = np.floor(np.log2(scale))
    e = np.where(np.isfinite(e), e, 0.0)
    h = np.exp2(e - c)
    ulp = np.exp2(np.maximum(e, f.emin) - f.precision + 1)
    return np.maximum(h, 4 * ulp)


def _inside(values: np.ndarray, domain: Domain) -> np.ndarray:
    return np.isfinite(values) & domain.contains_many(values)


def vjp_estimate(evaluate: Callable[[list[np.ndarray]], np.ndarray], inputs: Sequence[np.ndarray],
                 cotangent: np.ndarray, structure: Structure, dtype: torch.dtype, f: Format,
                 domains: Sequence[Domain], relation: Callable | None = None,
                 only: np.ndarray | None = None,
                 evaluate_many: Callable[[list[list[np.ndarray]]], list[np.ndarray]] | None = None) -> Estimate:
    """Estimate ``cotangent · J`` for every input element from forward calls.

    ``evaluate`` takes float64 arrays (values of ``dtype``), runs the forward
    in ``dtype`` and returns its output as float64. A step that would leave
    the domain or break ``relation`` (a predicate over the inputs, answering
    per element or for the whole point) is not taken: that side's stencil is
    dropped, as next to a domain's endpoint. ``only`` (a flat mask over every
    input's elements, concatenated): the groups holding none of them are not
    taken, and their elements' estimates are NaN. ``evaluate_many``: the
    forward at many inputs at once (one call of a batch), where it gives what
    ``evaluate`` gives at each.

    Example:
        >>> import torch
        >>> from harness.inputs.floats import fmt
        >>> from harness.inputs.structure import elementwise
        >>> from harness.inputs.domains import real
        >>> run = lambda xs: torch.exp(torch.tensor(xs[0], dtype=torch.float16)).double().numpy()
        >>> est = vjp_estimate(run, [np.array([0.0, 1.0])], np.ones(2), elementwise(),
        ...                    torch.float16, fmt(torch.float16), [real()])
        >>> np.round(est.value[0], 2).tolist()   # exp' = exp, to float16's differences
        [1.01, 2.71]
    """
    inputs = [np.asarray(x, dtype=np.float64) for x in inputs]
    with np.errstate(over="ignore", invalid="ignore"):
        return _estimate(evaluate, inputs, cotangent, structure, dtype, f, domains, relation, only,
                         evaluate_many or (lambda many: [evaluate(m) for m in many]))


def _related(relation: Callable | None, moved: list[np.ndarray], x: np.ndarray) -> np.ndarray:
    """Where ``relation`` holds at the moved inputs, over ``x``'s elements."""
    if relation is None:
        return np.ones(x.shape, dtype=bool)
    with np.errstate(invalid="ignore", over="ignore"):
        answer = np.asarray(relation(*moved), dtype=bool)
    if answer.shape == x.shape:
        return answer
    return np.full(x.shape, bool(np.all(answer)))


def _estimate(evaluate, inputs, cotangent, structure, dtype, f, domains, relation, only, evaluate_many) -> Estimate:
    base = evaluate(inputs)
    calls = 1
    flat_sizes = [x.size for x in inputs]
    offsets = np.cumsum([0] + flat_sizes)
    total = offsets[-1]
    num1, num2 = np.zeros(total), np.zeros(total)
    noise = np.zeros(total)
    central = np.zeros(total, dtype=bool)
    usable = np.zeros(total, dtype=bool)
    g = np.asarray(cotangent, dtype=np.float64)
    # Every element's moved value, once: a group only picks its members' (a
    # dense structure has one group per element, and most calls are dense).
    stencil = {}
    for k, x in enumerate(inputs):
        if not domains[k].discrete:
            h = steps_for(x, f, domains[k])
            for scale in (1.0, 0.5):
                for sign in (1, -1):
                    y = _round(x + sign * scale * h, dtype)
                    stencil[scale, sign, k] = (y, np.isfinite(x) & _inside(y, domains[k]))
    # Every group's moved inputs first, then the forward at all of them in one go.
    taken_groups = []
    for group in structure.groups(tuple(x.shape for x in inputs), base.shape):
        if not any(m.any() and not domains[k].discrete for k, m in enumerate(group.members)):
            continue
        if only is not None and not np.concatenate([m.ravel() for m in group.members])[only].any():
            continue
        shifted = {}
        steps = {}
        for scale in (1.0, 0.5):
            for sign in (1, -1):
                moved, taken = [], []
                for k, (x, m) in enumerate(zip(inputs, group.members)):
                    if domains[k].discrete or not m.any():
                        moved.append(x)
                        taken.append(np.zeros_like(x))
                        continue
                    y, inside = stencil[scale, sign, k]
                    ok = m & inside
                    if relation is not None:
                        ok &= _related(relation, [*inputs[:k], np.where(ok, y, x), *inputs[k + 1:]], x)
                    moved.append(np.where(ok, y, x))
                    taken.append(np.where(ok, np.abs(y - x), 0.0))
                shifted[scale, sign] = moved
                steps[scale, sign] = np.concatenate([t.ravel() for t in taken])
                calls += 1
        taken_groups.append((group, shifted, steps))
    outputs = iter(evaluate_many([moved for _, shifted, _ in taken_groups for moved in shifted.values()]))
    for group, shifted, steps in taken_groups:
        for key in shifted:
            shifted[key] = next(outputs)
        owner = group.owner.ravel()
        has = owner >= 0
        for scale, num in ((1.0, num1), (0.5, num2)):
            up, down = steps[scale, 1], steps[scale, -1]
            width = (up + down)[owner[has]]
            with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
                diff = g.ravel()[has] * (shifted[scale, 1].ravel()[has] - shifted[scale, -1].ravel()[has]) / width
                np.add.at(num, owner[has], np.where(width > 0, diff, np.nan))
                if scale == 0.5:
                    # Rounding of the forward, divided by the smaller step. The
                    # largest stencil value sets it (a steep function is tiny at
                    # the centre and large beside it), and never below the
                    # subnormal spacing: an output that underflows to 0 on the
                    # whole stencil gives an estimate of 0 that knows nothing.
                    level = np.maximum.reduce([np.abs(v.ravel()[has]) for v in
                                               (base, *(shifted[key] for key in shifted))])
                    spacing = np.maximum(f.eps * np.where(np.isfinite(level), level, np.inf), f.subnormal)
                    rnd = np.abs(g.ravel()[has]) * FORWARD_ULPS * spacing / width
                    np.add.at(noise, owner[has], np.where(width > 0, rnd, np.inf))
        members = np.concatenate([m.ravel() & (not domains[k].discrete) for k, m in enumerate(group.members)])
        both = (steps[1.0, 1] > 0) & (steps[1.0, -1] > 0) & (steps[0.5, 1] > 0) & (steps[0.5, -1] > 0)
        one = ((steps[1.0, 1] > 0) & (steps[0.5, 1] > 0)) | ((steps[1.0, -1] > 0) & (steps[0.5, -1] > 0))
        central |= members & both
        usable |= members & (both | one)
    with np.errstate(invalid="ignore", over="ignore"):
        # Central differences: error O(h**2), so (4 D(h/2) - D(h)) / 3; one-sided: O(h), so 2 D(h/2) - D(h).
        richardson = np.where(central, (4 * num2 - num1) / 3, 2 * num2 - num1)
        # |D(h) - D(h/2)| bounds the extrapolation's error only in the asymptotic
        # regime; taken whole, it keeps a stencil wider than the function's
        # features (log1p next to -1) from passing for informative.
        error = np.maximum(np.abs(richardson - num2), np.abs(num1 - num2)) + 2 * noise
    richardson = np.where(usable, richardson, np.nan)
    error = np.where(usable & np.isfinite(error), error, np.inf)
    split = lambda a: [a[offsets[k]:offsets[k + 1]].reshape(inputs[k].shape) for k in range(len(inputs))]
    return Estimate(split(richardson), split(error), calls)
