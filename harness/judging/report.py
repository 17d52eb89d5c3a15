"""What a certification found: failures, regions in words, worst errors."""

from __future__ import annotations

import dataclasses
import functools
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ..errors import format_point
from .kinds import KIND_NAMES, SEVERITY

#: Rows of the worst-points table in a printed report.
TABLE_ROWS = 8
#: Region lines in a printed report, worst first (an exhaustive sweep of a
#: naive formula has hundreds).
REGION_LINES = 12


@dataclass(frozen=True, eq=False)
class Failure:
    """One judged quantity at one point that failed.

    ``quantity`` is ``"value"`` or ``"gradient"`` (``"d/d<input>"`` with several
    inputs, with ``[index]`` for structured inputs); ``truth`` is rounded to
    the dtype; ``finite_difference`` is the forward's own estimate (NaN when
    it is not informative); ``bits`` is Herbie's log2(1 + ULPs)."""

    point: tuple
    quantity: str
    kinds: tuple[str, ...]
    claimed: float
    truth: float
    finite_difference: float
    ulps: float
    bits: float
    budget_bits: float
    feature: float

    @functools.cached_property
    def kind(self) -> str:
        # Cached: a report ranks its failures by kind more than once, 120,000 of them warm.
        return min(self.kinds, key=SEVERITY.__getitem__)


@dataclass(frozen=True)
class Indeterminate:
    """An entry at ±inf inputs whose limit depends on the path there
    (``harness.truth.limits``): no truth, so not judged unless the policy
    ``indeterminate="finite"`` asks for a finite claim. ``lo`` and ``hi``
    bound the limits along the paths read."""

    point: tuple
    quantity: str
    claimed: float
    lo: float
    hi: float

    def words(self) -> str:
        """'(-inf, -inf) d/dx = nan, path limits in [0, 1]'."""
        return f"{format_point(self.point)} {self.quantity} = {_num(self.claimed)}, path limits in " \
               f"[{self.lo:.4g}, {self.hi:.4g}]"


@dataclass(frozen=True)
class Measure:
    """One judged entry, failing or not: what stability maps plot.

    ``point`` is the input (floats for an elementwise case, arrays otherwise);
    ``quantity`` has no element index; ``bits`` is NaN where no truth or
    informative estimate judged it; ``kind`` is None when it passed."""

    point: tuple
    feature: float
    quantity: str
    bits: float
    kind: str | None


class Measures(Sequence):
    """``Report.measured``: every judged entry as a ``Measure``, made when first
    read (a 16-bit sweep has 130,000 of them, and most runs read none).
    ``points`` and ``features`` are per unit; the rest per entry, in order."""

    def __init__(self, points: list, features, quantities: list[str], unit, quantity, kind, bits):
        self.points, self.features, self.quantities = points, features, quantities
        self.unit, self.quantity, self.kind, self.bits = unit, quantity, kind, bits
        self._made: list[Measure] | None = None

    def _items(self) -> list[Measure]:
        if self._made is None:
            kinds = [None] + KIND_NAMES   # code -1: passed
            feature = np.asarray(self.features).tolist()
            self._made = [Measure(self.points[u], feature[u], self.quantities[q], b, kinds[k + 1])
                          for u, q, b, k in zip(self.unit.tolist(), self.quantity.tolist(), self.bits.tolist(),
                                                self.kind.tolist())]
        return self._made

    def __len__(self) -> int:
        return len(self.unit)

    def __getitem__(self, i):
        return self._items()[i]

    def __eq__(self, other) -> bool:
        return list(self) == list(other)


@dataclass(frozen=True)
class Region:
    """A run of neighbouring grid points (by feature) failing the same way."""

    quantity: str
    kind: str
    lo: float
    hi: float
    count: int
    from_start: bool
    to_end: bool
    claimed: str
    truth: str
    where: str | None = None   # a box of a two-input case in words ("x >= 88.7, every y"); lo, hi: its x
    spanned: int | None = None   # the points the region spans, where some between its failing ones pass
    also: tuple = ()   # (quantity, claimed, truth) of other quantities failing alike in the same stretch

    def words(self, feature_name: str) -> str:
        return "{}: {}".format(*self._parts(feature_name))

    def _parts(self, feature_name: str) -> tuple[str, str]:
        """Where (with the count of points) and what was found there."""
        where = self.where or _span(feature_name, self.lo, self.hi, self.from_start, self.to_end)
        count = f"{self.count} of {self.spanned}" if self.spanned and self.spanned != self.count else f"{self.count}"
        # A NaN truth is none (judged by differences alone, or no limit at ±inf), but where a NaN input swallowed.
        none = "no truth" if self.kind != "nan-swallowed" else "truth NaN"
        said = "; ".join(f"{q} {c}, " + (none if t == "NaN" else f"truth {t}")
                         for q, c, t in ((self.quantity, self.claimed, self.truth), *self.also))
        return f"{where} ({count} pts)", f"{said} [{self.kind}]"


def merged_words(regions: list[Region], feature_name: str) -> list[str]:
    """One line per place: regions of the same points (a one-point check's
    value and gradient, each of its outputs) say their findings on one line,
    and a finding said twice there is said once."""
    places: dict[str, list[str]] = {}
    for r in regions:
        where, said = r._parts(feature_name)
        found = places.setdefault(where, [])
        if said not in found:
            found.append(said)
    return [f"{where}: {'; '.join(found)}" for where, found in places.items()]


def _bits_and_budget(bits: float, budget: float) -> tuple[str, str]:
    """Both to 0.1 bit, or with as many more digits as it takes to show
    which is larger: "61.9, budget 61.9" would not say why a point failed.

    Example:
        >>> _bits_and_budget(61.93, 61.91)
        ('61.93', '61.91')
    """
    for digits in range(1, 7):
        a, b = f"{bits:.{digits}f}", f"{budget:.{digits}f}"
        if a != b or bits == budget or not (math.isfinite(bits) and math.isfinite(budget)):
            return a, b
    return a, b


def _span(name: str, lo: float, hi: float, from_start: bool, to_end: bool) -> str:
    """One coordinate's stretch in words: 'every x', 'x <= 3', 'x in [1, 2]'."""
    if from_start and to_end:
        return f"every {name}"
    if from_start:
        return f"{name} <= {hi:.6g}"
    if to_end:
        return f"{name} >= {lo:.6g}"
    if lo == hi == 0:
        return f"{name} = ±0"
    if lo == hi:
        return f"{name} = {lo:.6g}"
    return f"{name} in [{lo:.6g}, {hi:.6g}]"


@dataclass
class Report:
    """The result of ``certify``: ``ok`` when nothing failed.

    ``kinks`` lists (point, quantity) where the reference is not
    differentiable: reported, never failed. ``underflows`` are the regions
    flushed to zero that the dtype's policy lists without failing.
    ``indeterminate`` lists the entries at ±inf inputs whose limit depends on
    the path: reported, failed only under ``indeterminate="finite"``.
    ``counts`` says how many entries were judged (``"entries"``, ``"judged"``)
    and, per reason, how many were not. ``measured`` holds every judged
    entry (for plots). ``worst_bits`` maps each quantity
    to its largest error in bits; ``stats`` holds counts and timings."""

    case: str
    dtype: str
    device: str
    feature_name: str
    failures: list[Failure] = field(default_factory=list)
    regions: list[Region] = field(default_factory=list)
    kinks: list[tuple] = field(default_factory=list)
    underflows: list[Region] = field(default_factory=list)
    indeterminate: list[Indeterminate] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    measured: Sequence[Measure] = field(default_factory=list)
    worst_bits: dict[str, float] = field(default_factory=dict)
    mean_bits: dict[str, float] = field(default_factory=dict)
    stats: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    coverage: str | None = None    # "exhaustive: 65,536 inputs ..." where every input was judged

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def kinds(self) -> set[str]:
        return {f.kind for f in self.failures}

    def worst(self, n: int = TABLE_ROWS) -> list[Failure]:
        """The n worst failures: most severe kind first, then most bits."""
        ranked = sorted(self.failures, key=lambda f: (SEVERITY[f.kind], -f.bits))
        picked, seen = [], Counter()
        # One row per region first, so a table shows every way it fails.
        for f in ranked:
            key = (f.quantity.split("[")[0], f.kind)   # gradient[3] and gradient[5] fail alike
            if seen[key] == 0:
                picked.append(f)
            seen[key] += 1
        chosen = {id(f) for f in picked}
        picked += [f for f in ranked if id(f) not in chosen]
        return picked[:n]

    def table(self, n: int = TABLE_ROWS) -> str:
        rows = [("input", "quantity", "claimed", "truth", "fin.diff.", "bits", "budget", "kind")]
        for f in self.worst(n):
            # A value has no finite difference: it is judged against the truth only.
            fd = _num(None) if f.quantity == "value" else _num(f.finite_difference)
            rows.append((format_point(f.point), f.quantity, _num(f.claimed), _num(f.truth),
                         fd, *_bits_and_budget(f.bits, f.budget_bits), f.kind))
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)

    def summary(self) -> str:
        verdict = "certified" if self.ok else f"FAILED ({len(self.failures)} failing quantities)"
        errs = ", ".join(f"{q} worst {b:.1f} / mean {self.mean_bits.get(q, 0):.2f} bits"
                         for q, b in self.worst_bits.items())
        covered = f"{self.coverage}; " if self.coverage else ""
        return f"{self.case} › {self.dtype} › {self.device}: {verdict}; {covered}{errs}"

    def coverage_line(self) -> str | None:
        """'judged 12,430 of 12,504 entries; not judged: 60 gradients at NaN inputs ...'."""
        if not self.counts:
            return None
        c = self.counts
        line = f"judged {c['judged']:,} of {c['entries']:,} entries"
        why = [f"{n:,} {_singular(reason) if n == 1 else reason}"
               + (" (their values: NaN where a NaN input reaches them, checked)" if reason == "gradients at NaN inputs" else "")
               for reason, n in c.items() if reason not in ("entries", "judged") and n]
        return line + (f"; not judged: {', '.join(why)}" if why else "")

    def __str__(self) -> str:
        lines = [self.summary()]
        if self.coverage_line():
            lines.append(self.coverage_line())
        if self.failures:
            lines.append("failing regions:")
            said = merged_words(self.regions, self.feature_name)
            lines += [f"  {line}" for line in said[:REGION_LINES]]
            if len(said) > REGION_LINES:
                lines.append(f"  and {len(said) - REGION_LINES} more regions (every point on a map: --certify-report)")
            lines.append("worst points:")
            lines += ["  " + row for row in self.table().splitlines()]
        if self.underflows:
            lines.append("underflow (reported, not failed):")
            lines += [f"  {r.words(self.feature_name)}" for r in self.underflows[:REGION_LINES]]
            if len(self.underflows) > REGION_LINES:
                lines.append(f"  and {len(self.underflows) - REGION_LINES} more regions")
        if self.indeterminate:
            shown = "; ".join(e.words() for e in self.indeterminate[:4])
            more = f"; and {len(self.indeterminate) - 4} more" if len(self.indeterminate) > 4 else ""
            lines.append(f"indeterminate (the limit depends on the path; no truth): {shown}{more}")
        if self.kinks:
            shown = ", ".join(f"{format_point(p)} ({q})" for p, q in self.kinks[:4])
            more = f" and {len(self.kinks) - 4} more" if len(self.kinks) > 4 else ""
            lines.append(f"not differentiable (reported, not judged): {shown}{more}")
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)


def _singular(reason: str) -> str:
    """'gradient at NaN inputs', 'kink': one of what ``reason`` counts."""
    head, _, rest = reason.partition(" ")
    return (head[:-1] if head.endswith("s") else head) + (f" {rest}" if rest else "")


def _num(v: float) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "nan" if v is not None else "-"
    return f"{v:.6g}"


def describe_values(values: list[float]) -> str:
    """'NaN', '-1', 'in [a, b]': a few characters for a set of numbers."""
    if all(math.isnan(v) for v in values):
        return "NaN"
    finite = [v for v in values if not math.isnan(v)]
    lo, hi = min(finite), max(finite)
    if lo == hi or (math.isfinite(lo) and math.isfinite(hi) and abs(hi - lo) <= 1e-3 * max(abs(lo), abs(hi))):
        text = f"{lo:.4g}"
    else:
        text = f"in [{lo:.4g}, {hi:.4g}]"
    if len(finite) < len(values):
        text += " or NaN"
    return text


def regions(columns: list[tuple], patterns: list[tuple[str, str | None]] | None = None) -> list[Region]:
    """Group judged entries into runs of neighbours, by feature, that fail the
    same way. ``columns``: per quantity, ``(name, feature, kind code (-1:
    passed), claimed, truth, bits, order)`` arrays; ``order`` ranks the
    entries as a unit-by-unit pass meets them (quantities are taken in the
    order of their first entry). With ``patterns`` (``(words, parameter
    name)`` per pattern of a structured grid) each column has an eighth array,
    the entries' pattern, and runs are of one pattern, by its parameter:
    "dominant first entry, value in [16, 88] (7 pts)"."""
    out = []
    for quantity, feature, kind, claimed, truth, bits, _, *grouping in sorted(
            (c for c in columns if np.size(c[1])), key=lambda c: np.min(c[6])):
        group, unit = grouping if grouping else (np.zeros(kind.size, dtype=np.int64), np.arange(kind.size))
        by_feature = np.lexsort((unit, feature, group))   # NaN last in each pattern; a point's entries together
        feature, kind, group, unit = feature[by_feature], kind[by_feature], group[by_feature], unit[by_feature]
        claimed, truth, bits = claimed[by_feature], truth[by_feature], bits[by_feature]
        n = kind.size
        first = np.concatenate([[True], group[1:] != group[:-1]])
        last = np.concatenate([group[1:] != group[:-1], [True]])
        for code in np.unique(kind[kind >= 0]).tolist():
            # A run of one kind goes on across entries failing another way
            # (lost digits beside silent zeros are one problem area, not forty
            # alternating lines); a passing entry or a new pattern ends it.
            # A structured point fails a way if any of its entries does, passes if all do.
            has, passes = np.zeros(unit.max() + 1, dtype=bool), np.ones(unit.max() + 1, dtype=bool)
            np.logical_or.at(has, unit, kind == code)
            np.logical_and.at(passes, unit, kind < 0)
            seen = np.flatnonzero(has[unit] | passes[unit])
            hit = has[unit[seen]]
            breaks = np.flatnonzero((np.diff(hit.astype(np.int8)) != 0) | (np.diff(group[seen]) != 0)) + 1
            runs = [(a, b) for a, b in zip(np.concatenate([[0], breaks]), np.concatenate([breaks, [seen.size]]))
                    if hit[a]]
            for a, b in _bridged(runs, group[seen]):
                span = seen[a:b]
                take = span[kind[span] == code]
                region = _run_region(quantity, KIND_NAMES[code], take, span, feature, claimed, truth, bits,
                                     group, first, last, n, patterns, np.unique(unit[span]).size)
                out.append(dataclasses.replace(region, count=np.unique(unit[take]).size))
    out = sorted(out, key=lambda r: (SEVERITY[r.kind], r.where or "", r.lo))
    return _merged(out) if patterns is not None else out


def _merged(out: list[Region]) -> list[Region]:
    """One line per pattern stretch and kind: the quantities failing there
    (value, gradient) read side by side."""
    merged: dict[tuple, Region] = {}
    for r in out:
        key = (r.where, r.kind)
        if key in merged:
            m = merged[key]
            merged[key] = dataclasses.replace(m, count=max(m.count, r.count),
                                              also=m.also + ((r.quantity, r.claimed, r.truth),))
        else:
            merged[key] = r
    return list(merged.values())


def _bridged(runs: list[tuple[int, int]], group: np.ndarray) -> list[tuple[int, int]]:
    """Runs of one kind joined across short gaps of passing entries (at most a
    quarter of the two runs' length, or 2): one problem area, one line; its
    count then says how many of the points it spans fail."""
    out: list[list[int]] = []
    for a, b in runs:
        if out:
            pa, pb = out[-1]
            gap = a - pb
            if group[a] == group[pa] and gap <= max(2, ((pb - pa) + (b - a)) // 4):
                out[-1][1] = b
                continue
        out.append([a, b])
    return [tuple(r) for r in out]


def _run_region(quantity, name, take, span, feature, claimed, truth, bits, group, first, last, n, patterns,
                spanned: int) -> Region:
    """The region of the failing entries ``take`` of the run ``span`` (sorted by feature)."""
    run_claimed = claimed[take].tolist()
    if name == "lost-digits":
        claimed_text = f"off by up to {float(bits[take].max()):.1f} bits"
    elif name == "non-deterministic":
        claimed_text = f"{describe_values(run_claimed)} changes between two backward calls"
    elif name == "inconsistent":
        claimed_text = f"{describe_values(run_claimed)} disagrees with finite differences"
    else:
        claimed_text = describe_values(run_claimed)
    start, stop = int(span[0]), int(span[-1])
    lo, hi = float(feature[take[0]]), float(feature[take[-1]])
    where = None
    if patterns is not None:
        words, parameter = patterns[int(group[start])]
        where = words
        if parameter is not None and not math.isnan(lo):
            where += ", " + _span(parameter, lo, hi, bool(first[start]), bool(last[stop]))
    return Region(quantity, name, lo, hi, int(take.size), start == 0, stop == n - 1, claimed_text,
                  describe_values(truth[take].tolist()), where, spanned)




def boxes(columns: list[tuple], names: tuple[str, str]) -> list[Region]:
    """``regions`` of a two-input elementwise case as boxes in (x, y):
    ``columns`` as for ``regions`` with the feature replaced by the two
    inputs, ``(name, x, y, kind, claimed, truth, bits, order)``. Along each
    row of equal x the failing runs in y are found at once; neighbouring rows
    whose runs read alike merge into one box (``x >= 88.7, every y``). The
    grid is not a full product, so a row's runs are among the y it holds."""
    out = []
    for quantity, x, y, kind, claimed, truth, bits, _ in sorted(
            (c for c in columns if np.size(c[1])), key=lambda c: np.min(c[7])):
        by_xy = np.lexsort((y, x))   # NaN last in each
        x, y, kind = x[by_xy], y[by_xy], kind[by_xy]
        claimed, truth, bits = claimed[by_xy], truth[by_xy], bits[by_xy]
        new_row = np.concatenate([[True], ~((x[1:] == x[:-1]) | (np.isnan(x[1:]) & np.isnan(x[:-1])))])
        row = np.cumsum(new_row) - 1
        row_end = np.concatenate([new_row[1:], [True]])
        y_first, y_last = new_row, row_end
        for code in np.unique(kind[kind >= 0]).tolist():
            hit = kind == code
            starts = np.flatnonzero(hit & (new_row | ~np.concatenate([[False], hit[:-1]])))
            stops = np.flatnonzero(hit & (row_end | ~np.concatenate([hit[1:], [False]])))
            # Each run's reading in y; a row's reading is the tuple of its runs'.
            readings: dict[int, list] = {}
            for a, b in zip(starts.tolist(), stops.tolist()):
                # "every y": every y the row holds (a sweep's rows hold a few typical ones).
                readings.setdefault(int(row[a]), []).append(
                    (_span(names[1], float(y[a]), float(y[b]), bool(y_first[a]), bool(y_last[b])), a, b))
            rows = sorted(readings)
            group: list[int] = []
            for r in rows + [None]:
                if group and (r is None or r != group[-1] + 1 or
                              [w for w, *_ in readings[r]] != [w for w, *_ in readings[group[0]]]):
                    out += _row_boxes(quantity, code, group, readings, row, x, claimed, truth, bits, names[0])
                    group = []
                if r is not None:
                    group.append(r)
    return sorted(out, key=lambda r: (SEVERITY[r.kind], r.lo))


def _row_boxes(quantity, code, group, readings, row, x, claimed, truth, bits, x_name) -> list[Region]:
    """One box per run of the rows ``group`` (neighbours reading alike)."""
    n_rows = int(row[-1]) + 1
    x_lo, x_hi = float(x[np.flatnonzero(row == group[0])[0]]), float(x[np.flatnonzero(row == group[-1])[0]])
    x_words = _span(x_name, x_lo, x_hi, group[0] == 0, group[-1] == n_rows - 1)
    out = []
    name = KIND_NAMES[code]
    for k, (y_words, _, _) in enumerate(readings[group[0]]):
        take = np.concatenate([np.arange(readings[r][k][1], readings[r][k][2] + 1) for r in group])
        if name == "lost-digits":
            claimed_text = f"off by up to {float(bits[take].max()):.1f} bits"
        else:
            claimed_text = describe_values(claimed[take].tolist())
        where = "everywhere" if x_words.startswith("every ") and y_words.startswith("every ") else f"{x_words}, {y_words}"
        out.append(Region(quantity, name, x_lo, x_hi, int(take.size), group[0] == 0, group[-1] == n_rows - 1,
                          claimed_text, describe_values(truth[take].tolist()), where))
    return out
