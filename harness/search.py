"""Worst-input search: Hypothesis looks between the grid points.

A grid finds what it covers. Here Hypothesis draws points of the dtype from
the case's domain, judges each one exactly as ``certify`` does (the claimed
value and gradient from the case, the truth from the reference, the same
condition-scaled budget), steers toward the most bits of error with
``hypothesis.target`` (targeted property-based testing), and, once a point
exceeds its budget, shrinks it to a minimal witness.

Cases with a reference are searched. An elementwise point is a few
scalars; a structured point is one array per input in the case's shapes,
drawn by Hypothesis's array strategies or taken from the case's grid (its
patterns) and shrunk toward the simplest failing arrays. A search starts from
the grid's worst points: its witness is never better than what the grid
found. Hypothesis is imported when a search runs: it is a test extra, not a
dependency of the harness.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
import torch

from .case import Case
from .certify import _Options, certify
from .claims.claimed import _claimed
from .inputs.samples import _Sample
from .judging.quantities import _quantities
from .truth.solve import _MEMORY_CACHE, _truths
from .truth.units import _Units
from .errors import format_point
from .inputs.patterns import holds
from .judging.report import Report
from .inputs.domains import Domain
from .errors import CaseError
from .inputs.floats import fmt
from .judging.kinds import CODE, KIND_NAMES, SEVERITY
from .judging.tolerance import allowed_ulps, base_ulps, underflow_policy
from .judging.verdict import against_truth

#: Examples a search tries by default: each costs one truth (~1 ms or more),
#: and shrinking a witness adds a few dozen more.
DEFAULT_EXAMPLES = 300

_WIDTH = {torch.float64: 64, torch.float32: 32, torch.float16: 16, torch.bfloat16: 32}


@dataclass(frozen=True)
class Witness:
    """The worst point a search found, judged as ``certify`` judges a grid point.

    ``point`` holds the inputs (floats, exactly values of the dtype);
    ``quantity`` is ``"value"``, ``"gradient"`` or ``"d/d<input>"``; ``truth``
    is rounded to the dtype; ``bits`` is Herbie's ``log2(1 + ULPs)`` and
    ``budget_bits`` the budget there; ``kind`` is the defect (None when the
    point passes); ``evaluations`` counts the points judged by the search.
    """

    case: str
    dtype: str
    names: tuple[str, ...]
    point: tuple   # floats (elementwise) or one array per input (structured)
    quantity: str
    claimed: float
    truth: float
    bits: float
    budget_bits: float
    kind: str | None
    evaluations: int

    @property
    def fails(self) -> bool:
        """Whether ``certify`` would fail this point (over budget, or worse)."""
        return self.kind is not None

    def __str__(self) -> str:
        where = ", ".join(f"{n} = {v!r}" if np.ndim(v) == 0 else f"{n} = {format_point(v)}"
                          for n, v in zip(self.names, self.point))
        verdict = f"[{self.kind}]" if self.kind else "[within budget]"
        return (f"{self.case} › {self.dtype}: worst input {where} ({self.evaluations} points searched): "
                f"{self.quantity} {self.claimed:.9g}, truth {self.truth:.9g}, "
                f"{self.bits:.1f} bits (budget {self.budget_bits:.1f}) {verdict}")


class _OverBudget(AssertionError):
    """Raised inside the property so that Hypothesis shrinks the point."""

    def __init__(self, witness: Witness):
        super().__init__(str(witness))
        self.witness = witness


def worst_input(case: Case, dtype: torch.dtype = torch.float32, device: str = "cpu",
                max_examples: int = DEFAULT_EXAMPLES, quantity: str = "both", seed: int = 0,
                cache=None, report: Report | None = None) -> Witness:
    """Search ``case``'s domain for the input with the most bits of error.

    Returns the shrunk (minimal) point that fails, if Hypothesis finds one
    within ``max_examples``, else the point with the most bits of error seen,
    the grid's worst points included (``report``: the case's certification
    in ``dtype``, made here if not given). ``quantity`` is ``"both"``,
    ``"value"``, ``"gradient"`` or one input's ``"d/d<name>"``. The search is
    deterministic for a given ``seed``. Raises ``CaseError`` when the case is
    broken at a point the search visits, and ``ValueError`` for a case with
    a hand-written grid (no shape to draw arrays of) or without a reference.

    Example:
        >>> import mpmath
        >>> from harness import Case, domains
        >>> case = Case("exp", torch.exp, mpmath.exp, domain=domains.interval(-20, 20))
        >>> worst_input(case, torch.float32, max_examples=50).fails
        False
    """
    hypothesis = _import_hypothesis()
    names = _check_searchable(case, quantity)
    search = _Search(case, dtype, device, quantity, names, cache or _MEMORY_CACHE)
    if report is None:
        report = certify(case, dtype, device, cache=cache or _MEMORY_CACHE, workers=1)
    starts = _grid_worst(report)
    for point in starts:   # the witness to beat: never less than the grid found
        search.seen(point)
    if search.broken is not None:
        raise search.broken
    strategy = _point_strategy(case, dtype, starts)
    prop = hypothesis.given(strategy)(search.check)
    prop = hypothesis.seed(seed)(_settings(hypothesis, max_examples)(prop))
    try:
        prop()
    except _OverBudget as found:
        # Hypothesis re-raises the shrunk example's failure last.
        witness = found.witness
    else:
        witness = search.worst
    if search.broken is not None:
        raise search.broken
    if witness is None:
        raise ValueError(f"case {case.name!r}: the search judged no point (no truth anywhere it looked)")
    return _with_count(witness, search.evaluations)


# -- setup ---------------------------------------------------------------------------------------
def _import_hypothesis():
    try:
        import hypothesis
        import hypothesis.strategies  # noqa: F401  (bound as an attribute of the package)
    except ImportError as exc:
        raise ImportError("worst_input needs hypothesis: pip install 'gradient-harness[search]'") from exc
    return hypothesis


def _check_searchable(case: Case, quantity: str) -> tuple[str, ...]:
    if not case.elementwise and case.shape is None:
        raise ValueError(f"case {case.name!r}: a hand-written grid has no shape to draw arrays of "
                         f"(give the case shape= to search it)")
    if case.reference is None:
        raise ValueError(f"case {case.name!r}: a search needs a reference to measure error against")
    names = case.names_for(case.arity)
    known = {"both", "gradient"} | ({"value"} if not case.gradient_only else set())
    if case.arity > 1:
        known |= {f"d/d{n}" for n in names}
    if quantity not in known:
        raise ValueError(f"case {case.name!r}: quantity {quantity!r} is not one of {sorted(known)}")
    return names


def _settings(hypothesis, max_examples: int):
    """Generate, target, shrink; no explicit or replayed examples and no
    database (a search is not a regression test), no deadline (a truth takes
    milliseconds), quiet, and seeded by ``worst_input``."""
    phases = [hypothesis.Phase.generate, hypothesis.Phase.target, hypothesis.Phase.shrink]
    return hypothesis.settings(max_examples=max_examples, database=None, deadline=None, phases=phases,
                               report_multiple_bugs=False, suppress_health_check=list(hypothesis.HealthCheck),
                               verbosity=hypothesis.Verbosity.quiet, derandomize=False)


def _with_count(witness: Witness, evaluations: int) -> Witness:
    return dataclasses.replace(witness, evaluations=evaluations)


def _grid_worst(report: Report, count: int = 8) -> list[tuple]:
    """The grid's worst points, failing or not: failures first, then the most
    bits of error among the judged entries."""
    points = [f.point for f in report.worst(count)]
    judged = sorted((m for m in report.measured if not math.isnan(m.bits)), key=lambda m: -m.bits)
    for m in judged[:4 * count]:
        if len(points) >= count:
            break
        points.append(m.point)
    out, keys = [], set()
    for p in points:
        key = b"".join(np.asarray(a, dtype=np.float64).tobytes() for a in p)
        if key not in keys:
            keys.add(key)
            out.append(tuple(p))
    return out


# -- what is drawn -------------------------------------------------------------------------------
def _point_strategy(case: Case, dtype: torch.dtype, starts: list[tuple]):
    """A point drawn anew in the domain (scalars, or arrays of the case's
    shapes, which shrink toward zeros), or, for a structured case, one of
    the grid's worst and its pattern points: random arrays seldom hold a
    dominant entry or a masked row. (The grid's worst are judged before the
    search starts: an elementwise search spends its draws between them.)"""
    from hypothesis import strategies as st

    domains = case.domains_for(case.arity)
    if case.elementwise:
        return st.tuples(*[_strategy(d, dtype) for d in domains])
    from hypothesis.extra import numpy as hnp

    from .inputs.patterns import structured_grid

    grid = [p.arrays for p in structured_grid(case.shape, dtype, domains, case.relation)]
    drawn = st.tuples(*[hnp.arrays(np.float64, shape, elements=_strategy(d, dtype))
                        for shape, d in zip(case.shape, domains)])
    if case.relation is not None:
        drawn = drawn.filter(lambda arrays: holds(case.relation, arrays))
    return st.one_of(drawn, st.sampled_from(starts + grid))



def _to_dtype(value: float, dtype: torch.dtype) -> float:
    return torch.tensor(value, dtype=torch.float64).to(dtype).item()


def _inside(bound: float, dtype: torch.dtype, up: bool) -> float:
    """The first value of ``dtype`` strictly inside an open end at ``bound``."""
    v = torch.tensor(_to_dtype(bound, dtype), dtype=dtype)
    if (v.item() <= bound) if up else (v.item() >= bound):
        v = torch.nextafter(v, torch.tensor(math.inf if up else -math.inf, dtype=dtype))
    return v.item()


def _strategy(domain: Domain, dtype: torch.dtype):
    """Values of ``dtype`` in ``domain``, subnormals and unbounded ends' infinities included."""
    from hypothesis import strategies as st

    if domain.discrete:
        # Rounded as the grid rounds them: a label 0.1 is float32's 0.1 in float32.
        return st.sampled_from(sorted({_to_dtype(v, dtype) for v in domain.values}))
    lo = None if domain.lo is None else _inside(domain.lo, dtype, up=True)
    hi = None if domain.hi is None else _inside(domain.hi, dtype, up=False)
    if lo is not None and hi is not None and lo > hi:
        raise ValueError(f"the domain {domain} holds no value of {dtype}")
    tiny = fmt(dtype).tiny
    subnormals = (lo is None or lo < tiny) and (hi is None or hi > -tiny)
    floats = st.floats(min_value=lo, max_value=hi, allow_nan=False,
                       allow_infinity=domain.lo is None or domain.hi is None,
                       allow_subnormal=subnormals, width=_WIDTH[dtype])
    if dtype == torch.bfloat16:
        # Hypothesis has no bfloat16: float32 rounded to it, which stays
        # inside [lo, hi] because lo and hi are bfloat16 values.
        floats = floats.map(lambda v: _to_dtype(v, dtype))
    return floats


# -- one point, judged -----------------------------------------------------------------------------
class _Search:
    """The property Hypothesis runs: judge a point, report its bits, fail over budget."""

    def __init__(self, case: Case, dtype, device, quantity: str, names, cache):
        self.case, self.dtype, self.device, self.quantity, self.names = case, dtype, device, quantity, names
        self.cache, self.f = cache, fmt(dtype)
        self.domains = case.domains_for(case.arity)
        self.evaluations = 0
        self.worst: Witness | None = None
        self.broken: CaseError | None = None

    def seen(self, point: tuple) -> Witness | None:
        """Judge ``point`` and keep it if it is the worst yet (None: nothing judged there)."""
        if self.broken is not None:
            return None
        try:
            witness = self.judge(point)
        except CaseError as err:
            self.broken = err
            return None
        if witness is not None and (self.worst is None or _rank(witness) > _rank(self.worst)):
            self.worst = witness
        return witness

    def check(self, point: tuple) -> None:
        from hypothesis import target

        witness = self.seen(point)
        if witness is None:
            return  # the search is over (certify's error is raised once Hypothesis returns), or no truth here
        target(witness.bits, label="bits of error")
        if math.isfinite(witness.budget_bits):  # no budget where the truth is 0 (kappa is inf)
            target(witness.bits - witness.budget_bits, label="bits over budget")
        if witness.fails:
            raise _OverBudget(witness)

    def judge(self, point: tuple[float, ...]) -> Witness | None:
        """The worst judged quantity at ``point``: failing kinds first, then bits."""
        self.evaluations += 1
        if self.case.elementwise:
            sample = _Sample(tuple(np.array([v], dtype=np.float64) for v in point))
        else:
            sample = _Sample(tuple(np.asarray(a, dtype=np.float64) for a in point))
        try:
            _claimed(self.case, sample, self.dtype, self.device)
            units = _Units(self.case, [sample])
            truths, _ = _truths(self.case, units, self.domains, _Options(cache=self.cache, workers=1))
        except CaseError as err:
            # Named by the scalars drawn, not by the one-element arrays they travel in.
            raise CaseError(self.case.name, err.cause, point) from err
        quantities = _quantities(self.case, units, (truths, None), [sample], self.f, self.names)
        found = [w for q in quantities if self.quantity in ("both", q.family, q.name)
                 for w in self._witnesses(q, point)]
        return max(found, key=_rank, default=None)

    def _witnesses(self, q, point) -> list[Witness]:
        allowed = allowed_ulps(base_ulps(self.dtype, q.family, self.case.budget), q.kappa)
        kinds, _, bits = against_truth(q.claimed, q.truth, allowed, self.f, np.zeros(q.claimed.shape, bool))
        if underflow_policy(self.dtype, self.case.underflow, None, self.case.budget) == "report":
            kinds = np.where(kinds == CODE["underflow"], -1, kinds)   # listed, not failed: as certify does
        out = []
        for j in range(q.claimed.size):
            if np.isnan(q.truth[j]):
                continue  # no truth here: a kink
            kind = KIND_NAMES[kinds[j]] if kinds[j] >= 0 else None
            out.append(Witness(self.case.name, self.f.name, self.names, tuple(point), q.label(j),
                               float(q.claimed[j]), float(q.truth[j]), float(bits[j]),
                               float(np.log2(1.0 + allowed[j])), kind, 0))
        return out


def _rank(w: Witness) -> tuple:
    """Failing before passing, the most severe kind first, then the most bits."""
    return (w.fails, -SEVERITY[w.kind] if w.kind else 0, w.bits)
