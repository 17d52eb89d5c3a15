"""A point's truth, whatever its inputs: the entry of the mpmath engine.

``solve_point`` takes a point of floats. Finite inputs go to forward mode
where the reference gives derivatives and the point is smooth for its rules
(``derivative_truth``), else to the difference engine (``mpmath_engine``).
Entries that are NaN are held while the outputs they do not reach are solved
(``_around_nan``), and inputs at ±inf are read as limits where they exist
(``limits.at_infinity``).
Both engines build on ``mpmath_engine``; this module is the one that chooses
between them, so neither imports the other back.
"""

from __future__ import annotations

import math

import mpmath

from ..inputs.domains import Domain
from .derivative_truth import solve_by_rules
from .limits import at_infinity
from .mpmath_engine import START_BITS, PointSolver, PointTruth, _Evaluator

def solve(solver: PointSolver) -> PointTruth:
    """By forward mode where the reference gives derivatives and the point
    is smooth for its rules (``derivative_truth``), else by differences."""
    if solver.f.differentiable:
        truth = solve_by_rules(solver)
        if truth is not None:
            return truth
    return solver.solve_by_differences()


def solve_point(flat_reference, x: list[float], g: list[float], domains: list[Domain]) -> PointTruth:
    """Verified truth at one point of a flat reference ``list[mpf] -> list[mpf]``.

    ``x``: the inputs (floats; ±inf stand for the limit, see ``limits``),
    ``g``: the cotangent, ``domains``: one per input element.

    Example:
        >>> t = solve_point(lambda v: [mpmath.log(mpmath.cosh(v[0]))], [1e-22], [1.0], [Domain()])
        >>> float(t.grad[0])
        1e-22
    """
    if any(math.isnan(v) for v in x):
        return _around_nan(flat_reference, x, g, domains)
    gs = [mpmath.mpf(v) for v in g]
    evaluate = _Evaluator(flat_reference)
    if all(math.isfinite(v) for v in x):
        return solve(PointSolver(evaluate, [mpmath.mpf(v) for v in x], gs, domains))
    return at_infinity(solve, evaluate, x, gs, domains)


#: What stands in for the NaN entries in the two probes that confirm an output
#: does not depend on them.
NAN_PROBES = (mpmath.mpf(0.5), mpmath.mpf(0.75))


def _around_nan(flat_reference, x: list[float], g: list[float], domains: list[Domain]) -> PointTruth:
    """Truth at a point with NaN entries (a structured point's): an output the
    NaN entries reach is NaN; one they do not reach (another channel of a batch
    norm, the logits a class-index loss does not pick) is a function of the
    other entries alone, solved as any truth. An output is unreached when NaN
    does not propagate to it in mpmath and two numbers in the NaN entries' place
    give it the same value (the second guards against an operation that drops a
    NaN operand). Derivatives at such a point are not judged: none is given."""
    nan_at = {i for i, v in enumerate(x) if math.isnan(v)}

    def with_entries(values: list, fill) -> list:
        it = iter(values)
        return [fill if i in nan_at else next(it) for i in range(len(x))]

    rest = [mpmath.mpf(v) for i, v in enumerate(x) if i not in nan_at]
    with mpmath.workprec(START_BITS):
        try:
            probes = [flat_reference(with_entries(rest, fill)) for fill in (mpmath.nan,) + NAN_PROBES]
        except Exception:   # the reference cannot say which outputs NaN reaches: all of them
            probes = None
        live = [] if probes is None else [
            j for j, (at_nan, a, b) in enumerate(zip(*probes))
            if not mpmath.isnan(at_nan) and a == b]
    outputs = len(g)
    grads = len(x)
    truth = PointTruth([mpmath.nan] * outputs, [math.nan] * outputs, [None] * grads, [math.nan] * grads,
                       [False] * grads, START_BITS, [math.inf] * outputs, [math.inf] * grads, [False] * grads)
    if not live:
        return truth
    solved = solve_point(_Restricted(flat_reference, x, nan_at, live), [v for i, v in enumerate(x) if i not in nan_at],
                         [g[j] for j in live], [d for i, d in enumerate(domains) if i not in nan_at])
    for k, j in enumerate(live):
        truth.value[j] = solved.value[k]
        truth.value_kappa[j] = solved.value_kappa[k]
        truth.value_scale[j] = solved.value_scale[k] if solved.value_scale else math.inf
    truth.bits, truth.method = solved.bits, solved.method
    return truth


class _Restricted:
    """A flat reference with its NaN entries held, as a function of the other
    entries and of the outputs they alone reach (``_around_nan``)."""

    def __init__(self, flat_reference, x: list[float], nan_at: set[int], live: list[int]):
        self.ref, self.n, self.nan_at, self.live = flat_reference, len(x), nan_at, live
        self.kept = [i for i in range(len(x)) if i not in nan_at]   # restricted index -> full index

    def _full(self, values: list) -> list:
        full, it = [], iter(values)
        for i in range(self.n):
            full.append(mpmath.nan if i in self.nan_at else next(it))
        return full

    def __call__(self, values: list) -> list:
        out = self.ref(self._full(values))
        return [out[j] for j in self.live]

    @property
    def differentiable(self) -> bool:
        return getattr(self.ref, "differentiable", False)

    def derivatives(self, values: list, active) -> tuple[list, list, str | None]:
        full_active = None if active is None else frozenset(self.kept[k] for k in active)
        out, tangents, marked = self.ref.derivatives(self._full(values), full_active)
        back = {i: k for k, i in enumerate(self.kept)}
        return ([out[j] for j in self.live],
                [{back[i]: d for i, d in tangents[j].items() if i in back} for j in self.live], marked)
