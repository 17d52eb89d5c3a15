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
elementwise grid costs 4 forward calls per input, whatever its length, and
``BESIDE`` more at neighbouring floats, where the forward's own rounding is
measured.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch

from ..inputs.domains import Domain
from ..inputs.floats import Format, ulp_of
from ..inputs.structure import Structure

#: The least error of the forward itself, in ULPs of the largest value in a
#: stencil, when the rounding part of a difference quotient's error is estimated.
#: What the forward really rounds is measured besides (``_measured_noise``,
#: ``_beside``): a result formed by cancellation (``1 - ssim`` at its minimum,
#: ``log(1 + x)`` for tiny ``x``) rounds far more than a few ULPs of itself.
FORWARD_ULPS = 2.0
#: Points of neighbouring floats at which the forward's rounding is measured:
#: every input element moved by one ULP, up or down at random, all at once.
BESIDE = 4


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
    moved = np.zeros(total, dtype=bool)   # some output changed on the element's stencil
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
                moved_inputs, taken = [], []
                for k, (x, m) in enumerate(zip(inputs, group.members)):
                    if domains[k].discrete or not m.any():
                        moved_inputs.append(x)
                        taken.append(np.zeros_like(x))
                        continue
                    y, inside = stencil[scale, sign, k]
                    ok = m & inside
                    if relation is not None:
                        ok &= _related(relation, [*inputs[:k], np.where(ok, y, x), *inputs[k + 1:]], x)
                    moved_inputs.append(np.where(ok, y, x))
                    taken.append(np.where(ok, np.abs(y - x), 0.0))
                shifted[scale, sign] = moved_inputs
                steps[scale, sign] = np.concatenate([t.ravel() for t in taken])
                calls += 1
        taken_groups.append((group, shifted, steps))
    beside = _beside(inputs, dtype, f, domains, relation) if taken_groups else []
    calls += len(beside)
    outputs = iter(evaluate_many(beside + [m for _, shifted, _ in taken_groups for m in shifted.values()]))
    spread = _spread(base, [next(outputs) for _ in beside])
    for group, shifted, steps in taken_groups:
        for key in shifted:
            shifted[key] = next(outputs)
        owner = group.owner.ravel()
        has = owner >= 0
        own = owner[has]
        values = {key: shifted[key].ravel()[has] for key in shifted}
        for scale, num in ((1.0, num1), (0.5, num2)):
            width = (steps[scale, 1] + steps[scale, -1])[own]
            with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
                diff = g.ravel()[has] * (values[scale, 1] - values[scale, -1]) / width
            np.add.at(num, own, np.where(width > 0, diff, np.nan))
        # Rounding of the forward, divided by the smaller step: at least a few
        # ULPs of the largest stencil value (a steep function is tiny at the
        # centre and large beside it), never below the subnormal spacing (an
        # output that underflows to 0 on the whole stencil gives an estimate
        # of 0 that knows nothing), and at least what the forward was seen to
        # round, on this stencil and at the neighbouring floats.
        centre = base.ravel()[has]
        level = np.maximum.reduce([np.abs(v) for v in (centre, *values.values())])
        spacing = np.maximum(f.eps * np.where(np.isfinite(level), level, np.inf), f.subnormal)
        taken = {key: steps[key][own] > 0 for key in steps}
        rounding = np.fmax(np.fmax(FORWARD_ULPS * spacing, _measured_noise(centre, values, taken)),
                           spread.ravel()[has])
        width = (steps[0.5, 1] + steps[0.5, -1])[own]
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            rnd = np.abs(g.ravel()[has]) * rounding / width
        np.add.at(noise, own, np.where(width > 0, rnd, np.inf))
        changed = np.zeros(centre.shape, dtype=bool)
        for v in values.values():
            changed |= ~((v == centre) | (np.isnan(v) & np.isnan(centre)))
        np.logical_or.at(moved, own, changed)
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
    # A stencil on which no output moved at all says only that the steps lie
    # below what the forward resolves there (``log(1 + x)`` is 0 for every
    # ``x`` below half an ULP of 1): no bound on the slope, so no estimate.
    error = np.where(usable & moved & np.isfinite(error), error, np.inf)
    split = lambda a: [a[offsets[k]:offsets[k + 1]].reshape(inputs[k].shape) for k in range(len(inputs))]
    return Estimate(split(richardson), split(error), calls)


def _measured_noise(centre: np.ndarray, values: dict, taken: dict) -> np.ndarray:
    """What the forward rounds, per output, read off its own stencil: the
    fourth difference ``f(-h) - 4 f(-h/2) + 6 f(0) - 4 f(h/2) + f(h)`` of a
    smooth function is O(h**4), so on a central stencil it is rounding (its
    coefficients' root sum of squares is 8.4: divided by 8, about one
    evaluation's error); on a one-sided one the second difference, over 2
    (which also holds the O(h**2) curvature the one-sided estimate has)."""
    with np.errstate(invalid="ignore", over="ignore"):
        fourth = np.abs(values[1.0, -1] - 4 * values[0.5, -1] + 6 * centre - 4 * values[0.5, 1] + values[1.0, 1]) / 8
        up = np.abs(centre - 2 * values[0.5, 1] + values[1.0, 1]) / 2
        down = np.abs(centre - 2 * values[0.5, -1] + values[1.0, -1]) / 2
    both = taken[1.0, 1] & taken[0.5, 1] & taken[1.0, -1] & taken[0.5, -1]
    plus = taken[1.0, 1] & taken[0.5, 1]
    minus = taken[1.0, -1] & taken[0.5, -1]
    return np.where(both, fourth, np.where(plus, up, np.where(minus, down, 0.0)))


def _beside(inputs: list[np.ndarray], dtype, f: Format, domains, relation) -> list[list[np.ndarray]]:
    """``BESIDE`` points of neighbouring floats: every element of every
    continuous input one ULP up or down (a seeded draw, so two calls agree),
    staying in the domain and the relation. Where the forward's result is
    formed by cancellation, its rounding changes from one such point to the
    next, by what no count of ULPs of the result foresees."""
    rng = np.random.default_rng([x.size for x in inputs] + [len(inputs)])
    points = []
    for _ in range(BESIDE):
        point = []
        for k, x in enumerate(inputs):
            if domains[k].discrete:
                point.append(x)
                continue
            ulp = ulp_of(x, f)
            sign = rng.choice([-1.0, 1.0], size=x.shape)
            near = _round(x + sign * ulp, dtype)
            other = _round(x - sign * ulp, dtype)
            ok = np.isfinite(x) & _inside(near, domains[k])
            near = np.where(ok, near, np.where(np.isfinite(x) & _inside(other, domains[k]), other, x))
            point.append(near)
        if relation is not None:
            point = [np.where(_related(relation, point, x), y, x) for x, y in zip(inputs, point)]
        points.append(point)
    return points


def _spread(base: np.ndarray, beside: list[np.ndarray]) -> np.ndarray:
    """Per output, the most the forward moved at the neighbouring floats: its
    rounding plus its condition times an ULP of the inputs, both of which a
    difference quotient's numerator carries (inf where it leaves the finite
    numbers there; 0 where the centre is not finite: nothing to compare)."""
    spread = np.zeros(np.shape(base))
    finite = np.isfinite(base)
    for y in beside:
        with np.errstate(invalid="ignore", over="ignore"):
            d = np.where(finite, np.where(np.isfinite(y), np.abs(y - base), np.inf), 0.0)
        spread = np.maximum(spread, d)
    return spread
