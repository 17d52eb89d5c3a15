"""Worst-input search: Hypothesis looks between the grid points.

A grid finds what it covers. Here Hypothesis draws points of the dtype from
the case's domain, judges each one exactly as ``certify`` does (the claimed
value and gradient from the case, the truth from the reference, the same
condition-scaled budget), steers toward the most bits of error with
``hypothesis.target`` (targeted property-based testing), and, once a point
exceeds its budget, shrinks it to a minimal witness.

Only elementwise cases with a reference are searched: a point is then a few
scalars, and its truth is one ``solve_point`` call (about a millisecond or
more), so a search costs seconds rather than the minutes of a dense grid.
Hypothesis is imported when a search runs: it is a test extra, not a
dependency of the harness.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
import torch

from .case import Case
from .certify import _MEMORY_CACHE, _claimed, _Options, _quantities, _Sample, _truths, _Units
from .domains import Domain
from .errors import CaseError
from .floats import fmt
from .kinds import CODE, KIND_NAMES, SEVERITY
from .tolerance import allowed_ulps, base_ulps, underflow_policy
from .verdict import against_truth

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
    point: tuple[float, ...]
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
        where = ", ".join(f"{n} = {v!r}" for n, v in zip(self.names, self.point))
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
                cache=None) -> Witness:
    """Search ``case``'s domain for the input with the most bits of error.

    Returns the shrunk (minimal) point that fails, if Hypothesis finds one
    within ``max_examples``, else the point with the most bits of error seen.
    ``quantity`` is ``"both"``, ``"value"``, ``"gradient"`` or one input's
    ``"d/d<name>"``. The search is deterministic for a given ``seed``. Raises
    ``CaseError`` when the case is broken at a point the search visits, and
    ``ValueError`` for a structured case or one without a reference.

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
    strategy = hypothesis.strategies.tuples(*[_strategy(d, dtype) for d in case.domains_for(case.arity)])
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
    if not case.elementwise:
        raise ValueError(f"case {case.name!r}: only elementwise cases are searched (it has a grid)")
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


# -- what is drawn -------------------------------------------------------------------------------
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

    def check(self, point: tuple[float, ...]) -> None:
        from hypothesis import target

        if self.broken is not None:
            return  # the search is over: certify's error is raised once Hypothesis returns
        try:
            witness = self.judge(point)
        except CaseError as err:
            self.broken = err
            return
        if witness is None:
            return
        target(witness.bits, label="bits of error")
        if math.isfinite(witness.budget_bits):  # no budget where the truth is 0 (kappa is inf)
            target(witness.bits - witness.budget_bits, label="bits over budget")
        if self.worst is None or _rank(witness) > _rank(self.worst):
            self.worst = witness
        if witness.fails:
            raise _OverBudget(witness)

    def judge(self, point: tuple[float, ...]) -> Witness | None:
        """The worst judged quantity at ``point``: failing kinds first, then bits."""
        self.evaluations += 1
        sample = _Sample(tuple(np.array([v], dtype=np.float64) for v in point))
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
            out.append(Witness(self.case.name, self.f.name, self.names, tuple(point), q.name,
                               float(q.claimed[j]), float(q.truth[j]), float(bits[j]),
                               float(np.log2(1.0 + allowed[j])), kind, 0))
        return out


def _rank(w: Witness) -> tuple:
    """Failing before passing, the most severe kind first, then the most bits."""
    return (w.fails, -SEVERITY[w.kind] if w.kind else 0, w.bits)
