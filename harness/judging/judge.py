"""Claims against truths: each quantity's entries judged (``_judge_quantity``),
then the report filled: failures, kinks, counts, regions, measures."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from ..case import Case
from ..errors import _RELATION_HINT, CaseError
from ..inputs import patterns
from ..inputs.floats import Format, bits_of_error, ulps_between
from ..inputs.samples import _Sample
from ..truth.limits import INDETERMINATE, UNSETTLED
from ..truth.units import _Units
from .kinds import CODE, KIND_NAMES
from .quantities import _Quantity, _quantities
from .report import Failure, Indeterminate, Measures, Report, boxes, regions
from .tolerance import allowed_at_zero, allowed_ulps, base_ulps
from .verdict import against_finite_differences, against_truth


def _feature_name(case: Case, names) -> str:
    if case.feature_name:
        return case.feature_name
    if case.elementwise and len(names) == 1:
        return names[0]
    return "max|" + ",".join(names) + "|"


def _feature(case: Case, point: tuple[np.ndarray, ...]) -> float:
    if case.feature is not None:
        try:
            return float(case.feature(*point))
        except Exception as exc:
            raise CaseError(case.name, f"feature raised {type(exc).__name__}: {exc}", point) from exc
    if len(point) == 1 and np.ndim(point[0]) == 0:
        return float(point[0])
    finite = [np.abs(a[np.isfinite(a)]).max(initial=0.0) for a in map(np.asarray, point)]
    return float(max(finite))


@dataclass
class _Judged:
    """One quantity's verdict per entry: kind codes (-1: none), errors, what is shown."""

    q: _Quantity
    kind: np.ndarray          # the truth's verdict
    fd_kind: np.ndarray       # finite differences' verdict, where it adds one
    ulps: np.ndarray
    bits: np.ndarray
    judged: np.ndarray
    fd_value: np.ndarray
    budget_bits: np.ndarray
    reported: np.ndarray      # underflow the policy lists but does not fail (``kind`` is -1 there)

    @property
    def worst_kind(self) -> np.ndarray:
        return np.where((self.fd_kind >= 0) & ((self.kind < 0) | (self.fd_kind < self.kind)), self.fd_kind, self.kind)


def _judge_quantity(case, q: _Quantity, dtype, f: Format, nan_unit: np.ndarray,
                    forward_wrong: np.ndarray, estimates, underflow: str = "fail",
                    indeterminate: str = "report") -> _Judged:
    """``estimates``: finite differences this quantity is checked against
    (of the forward for a gradient, of the claimed gradient for a
    Hessian-vector product), or None."""
    base = base_ulps(dtype, q.family, case.budget)
    allowed = allowed_ulps(base, q.kappa)
    at_zero = np.where(q.truth == 0, allowed_at_zero(base, q.scale, f), allowed)
    # A value at a NaN input must be NaN where the NaN reaches it (no truth says
    # otherwise); a gradient there is not judged.
    nan_mask = nan_unit[q.unit] & (q.family == "value") & np.isnan(q.truth)
    kind, ulps, bits = against_truth(q.claimed, q.truth, at_zero, f, nan_mask)
    # A flush to zero the policy only lists: the truth explains the claim to
    # within the format's range, so neither it nor finite differences fail it.
    flushed = kind == CODE["underflow"]
    reported = flushed if underflow == "report" else np.zeros(kind.shape, dtype=bool)
    kind = np.where(reported, -1, kind)
    no_truth = case.reference is None
    fd_kind = np.full(kind.shape, -1)
    fd_value = np.full(q.claimed.shape, np.nan)
    if estimates is not None:
        # Differences of a forward that misses its truth judge nothing.
        judged_fd = ~nan_unit[q.unit] & ~forward_wrong[q.unit]
        # Differences of a forward cannot overrule a verified truth: a claim
        # that meets it disagrees only with a forward rounding more than the
        # noise model assumes, which the value check judges.
        # A flush to zero is named by the truth too: the forward's noise adds nothing to it.
        confirmed = ~np.isnan(q.truth) & ((kind < 0) | flushed)
        # A NaN or inf claim against a finite verified truth is convicted already:
        # differences of the forward could only add that they disagree with it too.
        settled = ~np.isnan(q.truth) & np.isfinite(q.truth) & ~np.isfinite(q.claimed)
        need = judged_fd & ~q.kink & ~confirmed & ~settled
        estimate, error = estimates.entries(q, need)
        bad, informative = against_finite_differences(q.claimed, estimate, error, allowed, f)
        informative &= judged_fd
        bad &= need
        fd_value = np.where(informative, estimate, np.nan)
        named = np.where(no_truth & ~np.isfinite(q.claimed), CODE["non-finite"], CODE["inconsistent"])
        fd_kind = np.where(bad & (named != kind), named, -1)
        if no_truth:
            # Without a reference the estimate stands in for the truth in the error measure.
            ulps = np.where(judged_fd, np.where(informative, ulps_between(q.claimed, fd_value, f), np.nan), ulps)
            bits = np.where(judged_fd, np.where(informative, bits_of_error(ulps, f), np.nan), bits)
    if q.unstable is not None:
        # Whatever the first answer's error, the backward has no one answer there.
        fd_kind = np.where(q.unstable, CODE["non-deterministic"], fd_kind)
    if q.unsupported is not None:
        # No number was computed: that, not its NaN, is the finding, wherever the quantity exists.
        exists = ~nan_unit[q.unit] & ~(q.kink if q.kink is not None else False)
        kind = np.where(q.unsupported, np.where(exists, CODE["unsupported"], -1), kind)
        fd_kind = np.where(q.unsupported, -1, fd_kind)
    if indeterminate == "finite" and q.limit is not None:
        # No truth where the limit depends on the path, but the policy asks for a
        # number there (a masked row whose NaN would poison training).
        kind = np.where((q.limit == INDETERMINATE) & ~np.isfinite(q.claimed) & ~nan_unit[q.unit],
                        CODE["indeterminate"], kind)
        no_measure = kind == CODE["indeterminate"]   # no truth to measure an error against
        ulps, bits = np.where(no_measure, np.nan, ulps), np.where(no_measure, np.nan, bits)
    judged = ~np.isnan(bits) & (~np.isnan(q.truth) | nan_mask | no_truth)
    return _Judged(q, kind, fd_kind, ulps, bits, judged, fd_value, np.log2(1.0 + at_zero), reported)


def _pattern_words(p: patterns.Point, names) -> str:
    """A structured point's pattern in words, naming its input where there are several."""
    if len(names) == 1:
        return p.pattern
    if p.input is None:
        return "every input special: " + ", ".join(f"{n} {w}" for n, w in zip(names, p.pattern.split(" / ")))
    return f"{names[p.input]}: {p.pattern}"


def _unit_patterns(case: Case, units: _Units, samples: list[_Sample], names):
    """Per unit, the index of its pattern among ``(words, parameter name)``
    pairs, for a default structured grid (None otherwise)."""
    if case.elementwise or case.feature is not None or samples[0].pattern is None:
        return None
    labels: dict[tuple[str, str | None], int] = {}
    # Rows of 1 and 2 entries read as their pattern: the worst points show the shapes.
    group = np.array([labels.setdefault((_pattern_words(samples[u.sample].pattern, names).split(", rows of ")[0],
                                         samples[u.sample].pattern.parameter_name), len(labels)) for u in units],
                     dtype=np.int64)
    return group, list(labels)


def _unit_features(case: Case, units: _Units, samples: list[_Sample] | None = None) -> np.ndarray:
    if case.feature is None and samples is not None and not case.elementwise and samples[0].pattern is not None:
        return np.array([samples[u.sample].pattern.parameter for u in units], dtype=np.float64)
    if case.feature is None and case.elementwise:
        stacked = units.stacked
        if stacked.shape[1] == 1:
            return stacked[:, 0]
        return np.where(np.isfinite(stacked), np.abs(stacked), 0.0).max(axis=1, initial=0.0)
    return np.array([_feature(case, u.point) for u in units], dtype=np.float64)


def _judge(case, report: Report, units, tables: tuple, estimates: dict, samples, dtype, f: Format, names,
           underflow: str = "fail", order: int = 1, forward: bool = False, indeterminate: str = "report") -> None:
    points = units.points()
    features = _unit_features(case, units, samples)
    grouped = _unit_patterns(case, units, samples, names)
    nan_unit = units.nan()
    forward_wrong = np.zeros(len(units), dtype=bool)
    verdicts = []
    quantities = _quantities(case, units, tables, samples, f, names, order, forward)
    _no_nan_truth(case, quantities, tables[0].present & ~nan_unit, points)
    for q in quantities:
        v = _judge_quantity(case, q, dtype, f, nan_unit, forward_wrong, estimates.get(q.family), underflow,
                            indeterminate)
        if q.family == "value":
            np.logical_or.at(forward_wrong, q.unit, v.kind >= 0)
        verdicts.append(v)
    _kinks(report, verdicts, points)
    _indeterminate(report, verdicts, points)
    report.counts = _counts(verdicts, nan_unit, case.reference is None)
    # Entries in the order a unit-by-unit pass meets them: unit, quantity, element.
    order = lambda v, mask: np.flatnonzero(mask)
    failing = [(int(v.q.unit[j]), v.q.position, int(v.q.elem[j]), v, int(j)) for v in verdicts
               for j in order(v, (v.kind >= 0) | (v.fd_kind >= 0))]
    entries = {}
    for _, _, _, v, j in sorted(failing, key=lambda e: e[:3]):
        kinds = tuple(KIND_NAMES[c] for c in (v.kind[j], v.fd_kind[j]) if c >= 0)
        report.failures.append(Failure(points[v.q.unit[j]], v.q.label(j), kinds, float(v.q.claimed[j]),
                                       float(v.q.truth[j]), float(v.fd_value[j]), float(v.ulps[j]),
                                       float(v.bits[j]), float(v.budget_bits[j]), float(features[v.q.unit[j]])))
        entries[id(report.failures[-1])] = (v, j)
    _shown_differences(report, entries, estimates, nan_unit, forward_wrong)
    report.measured = _measured(verdicts, points, features)
    shown = [v.judged | (v.worst_kind >= 0) for v in verdicts]
    report.regions = _regions(case, names, units, features, verdicts, [v.worst_kind for v in verdicts], shown,
                              grouped)
    # Flushes to zero the policy lists without failing: runs among the same judged entries.
    if any(v.reported.any() for v in verdicts):
        report.underflows = _regions(case, names, units, features, verdicts,
                                     [np.where(v.reported, CODE["underflow"], -1) for v in verdicts],
                                     [v.judged | v.reported for v in verdicts], grouped)
    # Quantities in the order a unit-by-unit pass first judges them.
    judged = sorted((v for v in verdicts if v.judged.any()),
                    key=lambda v: (int(v.q.unit[v.judged].min()), v.q.position))
    report.worst_bits = {v.q.name: float(v.bits[v.judged].max()) for v in judged}
    report.mean_bits = {v.q.name: float(np.mean(v.bits[v.judged].tolist())) for v in judged}


def _shown_differences(report: Report, entries: dict, estimates: dict, nan_unit: np.ndarray,
                       forward_wrong: np.ndarray) -> None:
    """The finite-difference column of the printed worst points, filled where
    a stencil can say something (a structured point's differences are taken
    only where no truth confirms an entry); where none can, the report says
    why, once, for the column's blanks."""
    why = set()
    for i, fl in enumerate(report.worst()):
        if not math.isnan(fl.finite_difference) or id(fl) not in entries:
            continue
        v, j = entries[id(fl)]
        u = int(v.q.unit[j])
        est = estimates.get(v.q.family)
        if nan_unit[u]:
            why.add("a NaN input has no stencil")
            continue
        if est is None:   # the value: judged against the truth only, its column reads "-"
            continue
        if forward_wrong[u]:
            why.add("where the value itself fails, differences of the forward judge nothing and are not taken")
            continue
        need = np.zeros(v.q.claimed.shape, dtype=bool)
        need[j] = True
        value, error = est.entries(v.q, need)
        if np.isfinite(value[j]) and np.isfinite(error[j]) and error[j] < abs(value[j]) + 2.0 ** -1022:
            at = report.failures.index(fl)
            report.failures[at] = dataclasses.replace(fl, finite_difference=float(value[j]))
        else:
            why.add("the forward's differences are not informative there (an infinity in the stencil, or "
                    "rounding larger than the difference)")
    if why:
        report.notes.append("fin.diff.: " + "; ".join(sorted(why)))


def _no_nan_truth(case: Case, quantities: list[_Quantity], computed: np.ndarray, points) -> None:
    """A reference that is NaN where every input is a number leaves entries
    that nothing judges, so that anything passes there: a broken case (a
    function undefined on part of its domain narrows its domain)."""
    for q in quantities:
        kink = q.kink if q.kink is not None else False
        unresolved = q.unresolved if q.unresolved is not None else False
        no_limit = q.limit > 0 if q.limit is not None else False
        bad = np.flatnonzero(computed[q.unit] & np.isnan(q.truth) & ~kink & ~unresolved & ~no_limit)
        if bad.size:
            j = int(bad[0])
            raise CaseError(case.name, f"the reference is NaN ({q.label(j)}) at a point inside the domain, with no "
                                       f"NaN input: nothing could judge it (narrow the domain where the function "
                                       f"is undefined{_RELATION_HINT if case.arity > 1 else ''})", points[q.unit[j]])


#: The report's reason for derivatives the difference engine could not resolve, with the remedy.
UNRESOLVED = "derivatives unresolved (no precision up to MAX_BITS resolves them by differences: write the reference with harness.exact)"
#: ... for entries at ±inf inputs without a limit (``harness.truth.limits``).
UNSETTLED_WORDS = "entries at ±inf without a limit (their readings further out do not settle)"
INDETERMINATE_WORDS = "entries at ±inf whose limit depends on the path (indeterminate, listed)"


def _counts(verdicts: list[_Judged], nan_unit: np.ndarray, no_truth: bool) -> dict[str, int]:
    """How many entries were judged, and why the others were not."""
    counts = {"entries": 0, "judged": 0, "gradients at NaN inputs": 0, "kinks": 0,
              UNRESOLVED: 0, UNSETTLED_WORDS: 0, INDETERMINATE_WORDS: 0, "no informative finite difference": 0}
    for v in verdicts:
        left = ~v.judged
        at_nan = left & nan_unit[v.q.unit]
        kink = left & ~at_nan & (v.q.kink if v.q.kink is not None else False)
        counts["entries"] += int(v.judged.size)
        counts["judged"] += int(v.judged.sum())
        counts["gradients at NaN inputs"] += int(at_nan.sum())
        counts["kinks"] += int(kink.sum())
        unresolved = left & ~at_nan & ~kink & (v.q.unresolved if v.q.unresolved is not None else False)
        counts[UNRESOLVED] += int(unresolved.sum())
        limit = v.q.limit if v.q.limit is not None else np.zeros(left.shape, np.int8)
        counts[UNSETTLED_WORDS] += int((left & ~at_nan & ~kink & ~unresolved & (limit == UNSETTLED)).sum())
        counts[INDETERMINATE_WORDS] += int((left & ~at_nan & ~kink & ~unresolved & (limit == INDETERMINATE)).sum())
        counts["no informative finite difference"] += int((left & ~at_nan & ~kink).sum()) if no_truth else 0
    return counts


def _regions(case: Case, names, units, features: np.ndarray, verdicts: list[_Judged], kinds: list, shown: list,
             grouped=None):
    """Runs of entries failing alike (kind codes ``kinds``, among the entries
    ``shown``): by feature, or as boxes in (x, y) for a two-input elementwise
    case without a feature of its own (not runs of max(|x|, |y|)), or by
    pattern and its parameter on a default structured grid (``grouped``)."""
    boxed = case.elementwise and case.feature is None and len(names) == 2
    columns = []
    for v, kind, m in zip(verdicts, kinds, shown):
        where = (units.stacked[v.q.unit][m, 0], units.stacked[v.q.unit][m, 1]) if boxed else (features[v.q.unit][m],)
        columns.append((v.q.name, *where, kind[m], v.q.claimed[m], v.q.truth[m], np.where(v.judged, v.bits, 0.0)[m],
                        v.q.unit[m] * len(verdicts) + v.q.position)
                       + ((grouped[0][v.q.unit][m], v.q.unit[m]) if grouped else ()))
    if boxed:
        return boxes(columns, tuple(names))
    return regions(columns, grouped[1] if grouped else None)


def _indeterminate(report: Report, verdicts: list[_Judged], points: list) -> None:
    """Entries whose limit depends on the path, with what was claimed and the
    range of the path limits, in the order a unit-by-unit pass meets them."""
    found = [(int(v.q.unit[j]), v.q.position, int(v.q.elem[j]), v, int(j)) for v in verdicts
             if v.q.limit is not None for j in np.flatnonzero(v.q.limit == INDETERMINATE)]
    report.indeterminate += [Indeterminate(points[v.q.unit[j]], v.q.label(j), float(v.q.claimed[j]),
                                           float(v.q.limit_range[j, 0]), float(v.q.limit_range[j, 1]))
                             for *_, v, j in sorted(found, key=lambda e: e[:3])]


def _kinks(report: Report, verdicts: list[_Judged], points: list) -> None:
    found = [(int(v.q.unit[j]), v.q.position, int(v.q.elem[j]), v, int(j)) for v in verdicts
             if v.q.kink is not None for j in np.flatnonzero(v.q.kink)]
    report.kinks += [(points[v.q.unit[j]], v.q.label(j)) for *_, v, j in sorted(found, key=lambda e: e[:3])]


def _measured(verdicts: list[_Judged], points: list, features: np.ndarray) -> Measures:
    """Every entry, judged or not, unit by unit (what stability maps plot)."""
    if not verdicts:
        return Measures(points, features, [], *(np.zeros(0, np.int64),) * 2, np.zeros(0))
    unit = np.concatenate([v.q.unit for v in verdicts])
    position = np.concatenate([np.full(v.q.unit.size, v.q.position) for v in verdicts])
    elem = np.concatenate([v.q.elem for v in verdicts])
    bits = np.concatenate([np.where(v.judged, v.bits, np.nan) for v in verdicts])
    kind = np.concatenate([v.worst_kind for v in verdicts])
    quantity = np.repeat(np.arange(len(verdicts)), [v.q.unit.size for v in verdicts])
    order = np.lexsort((elem, position, unit))
    return Measures(points, features, [v.q.name for v in verdicts], unit[order], quantity[order], kind[order],
                    bits[order])
