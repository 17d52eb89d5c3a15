"""The certification report: ``index.md`` and stability maps, written from
the reports of many certified runs (case × dtype × device).

A stability map is a PNG of bits of error (Herbie's ``log2(1 + ULPs)``)
against the input, one per **case family and dtype**: the family is the case
file (``cases/softplus.py`` → ``softplus``; without one, the case name up to
its first dot). Inside a map, one row of panels per feature the family's cases
are located by (``x``, ``max|a|``: cases sharing it are overlaid, one series
each), one row per two-input case (a heat map over both inputs; or, when one
input takes at most ``FEW_VALUES`` values, one curve per value over the other
input, in a row shared with the family's other such cases), and one column
per quantity (value, gradient, ``d/d<input>``).

No pytest here: ``harness.pytest.plugin`` collects the runs and calls ``write``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FixedFormatter, FixedLocator

from ..case import Case
from ..certify import check
from ..judging.expectations import expectation_for
from ..inputs.floats import FORMATS, Format
from ..judging.kinds import SEVERITY
from ..judging.report import Measure, Report

#: Folder of the PNGs inside the report directory (cleared on every write).
MAPS = "maps"
#: Failing regions listed per run in ``index.md``; the rest are counted.
MAX_REGIONS = 24
#: A two-input case one of whose inputs takes at most this many values (hard
#: labels 0 and 1) is drawn as curves over the other input, one per value:
#: a heat map of two rows would hide them.
FEW_VALUES = 4

_PANEL = (5.2, 3.4)  # inches per panel: room for 9 tick labels of the form -10^-38
_DPI = 110
# Series colours without red, which marks failing entries; cycled against
# the markers (9 colours, 7 markers: 63 distinct styles).
_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf")
_MARKERS = ("o", "s", "^", "v", "D", "P", "<")
_FAILING = dict(marker="x", color="red", linestyle="none", markersize=5, markeredgewidth=1.1)
# The dtype's edges on an input axis: overflow, the smallest normal (below it
# digits are lost to gradual underflow) and the smallest subnormal.
_EDGES = (("max", "overflow: ±max", dict(color="black", linestyle="--")),
          ("tiny", "smallest normal: ±tiny", dict(color="dimgray", linestyle="-.")),
          ("subnormal", "smallest subnormal", dict(color="dimgray", linestyle=":")))

READING = (
    "Each map plots the error of every judged entry in bits, `log2(1 + ULPs)` against the truth "
    "rounded to the dtype (a NaN against a number counts as the format's full width), against the "
    "input feature on a symmetric log axis: linear near 0, one decade per tick step beyond. One map "
    "per family and dtype; one series per implementation; red x: a failing entry; dashed: the "
    "dtype's overflow edge (±max), dash-dot: its smallest normal, dotted: its smallest subnormal. "
    "Two-input cases are heat maps over both inputs (colour: bits), or one curve per value of an input "
    "that takes only a few (hard labels). Entries at ±inf or NaN inputs have no place on a log axis: "
    "each panel counts them under its axis label.")


@dataclass(frozen=True)
class Points:
    """The judged entries of one quantity as arrays (what a map draws).

    ``xy`` holds both inputs of a two-scalar-input case (a heat map), else is
    None; ``curve`` says neighbouring entries lie on one curve (one scalar
    input), so a line joins them."""

    feature: np.ndarray
    bits: np.ndarray
    failing: np.ndarray
    xy: np.ndarray | None
    curve: bool


@dataclass
class Run:
    """One certified case × dtype × device, with what the case expected of it.

    ``problem`` is None when the verdict met the expectation (see
    ``harness.certify.check``). ``points`` holds ``report.measured`` as
    arrays per quantity; ``compact()`` drops the list, which is large.

    Example:
        >>> import mpmath
        >>> from harness import Case, certify
        >>> case = Case("exp", torch.exp, mpmath.exp)
        >>> run = Run.of(case, certify(case, torch.float32, grid_size=1))
        >>> run.family, run.expected, run.problem
        ('exp', 'certified', None)
    """

    report: Report
    expected: str = "certified"
    problem: str | None = None
    family: str | None = None
    inputs: tuple[str, ...] = ()
    points: dict[str, Points] | None = field(default=None, repr=False)

    def __post_init__(self):
        if self.family is None:
            self.family = self.report.case.split(".")[0]
        if self.points is None:
            self.points = points_of(self.report.measured)

    @classmethod
    def of(cls, case: Case, report: Report, family: str | None = None) -> Run:
        """The compact run of ``report`` (from ``certify(case, ...)``) judged
        against the case's expectation for the report's dtype."""
        dtype = next(d for d, f in FORMATS.items() if f.name == report.dtype)
        inputs = case.names_for(len(report.measured[0].point)) if report.measured else ()
        return cls(report, str(expectation_for(case.expect, dtype)), check(case, report, dtype), family,
                   tuple(inputs)).compact()

    def compact(self) -> Run:
        """The same run without ``report.measured`` (its arrays stay in ``points``)."""
        return replace(self, report=replace(self.report, measured=[]))

    @property
    def verdict(self) -> str:
        if self.report.ok:
            return "certified"
        return "convicted: " + ", ".join(sorted(self.report.kinds, key=SEVERITY.__getitem__))


def points_of(measured: list[Measure]) -> dict[str, Points]:
    """``Report.measured`` as arrays per quantity, in order of appearance.

    Example:
        >>> p = points_of([Measure((1.0,), 1.0, "value", 0.0, None)])["value"]
        >>> p.feature.tolist(), p.curve
        ([1.0], True)
    """
    by_quantity: dict[str, list[Measure]] = {}
    for m in measured:
        by_quantity.setdefault(m.quantity, []).append(m)
    return {q: _arrays(ms) for q, ms in by_quantity.items()}


def _arrays(measured: list[Measure]) -> Points:
    scalar = all(np.ndim(v) == 0 for v in measured[0].point)
    arity = len(measured[0].point)
    xy = np.array([[float(v) for v in m.point] for m in measured]) if scalar and arity == 2 else None
    return Points(np.array([m.feature for m in measured], dtype=np.float64),
                  np.array([m.bits for m in measured], dtype=np.float64),
                  np.array([m.kind is not None for m in measured], dtype=bool), xy, scalar and arity == 1)


# -- writing ---------------------------------------------------------------------------------
def write(directory: str | Path, runs: list[Run], command: str | None = None) -> Path:
    """Write ``directory/index.md`` and ``directory/maps/<family>.<dtype>.png``.

    Maps of an earlier write are removed first, so a family that is gone
    leaves no stale map. Returns the path of ``index.md``.

    Example:
        >>> import mpmath, tempfile
        >>> from harness import Case, certify
        >>> case = Case("exp", torch.exp, mpmath.exp)
        >>> run = Run.of(case, certify(case, torch.float32, grid_size=1))
        >>> write(tempfile.mkdtemp(), [run]).name
        'index.md'
    """
    directory = Path(directory)
    maps = directory / MAPS
    maps.mkdir(parents=True, exist_ok=True)
    for old in maps.glob("*.png"):
        old.unlink()
    files = {}
    for (family, dtype), group in _group(runs, lambda r: (r.family, r.report.dtype)).items():
        files[family, dtype] = f"{MAPS}/{_slug(family)}.{dtype}.png"
        draw_map(group, directory / files[family, dtype])
    index = directory / "index.md"
    index.write_text(index_markdown(runs, files, command), encoding="utf-8")
    return index


def _group(runs: list[Run], key) -> dict:
    groups: dict = {}
    for run in runs:
        groups.setdefault(key(run), []).append(run)
    return groups


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)


# -- index.md ----------------------------------------------------------------------------------
def index_markdown(runs: list[Run], maps: dict[tuple[str, str], str], command: str | None = None) -> str:
    """The report's front page: totals, the runs not as expected, then one
    section per family with a table of its runs and their failing regions.

    ``maps`` maps (family, dtype) to the map's path relative to the index.

    Example:
        >>> index_markdown([], {}).splitlines()[0]
        '# Certification report'
    """
    lines = ["# Certification report", ""]
    if command:
        lines += [f"Regenerate: `{command}`", ""]
    lines += [_totals(runs), "", READING, ""]
    families = _group(runs, lambda r: r.family)
    lines += _overview(families)
    mismatched = [r for r in runs if r.problem]
    if mismatched:
        lines += ["## Not as expected", ""]
        lines += [f"- {_title(r)} in [{r.family}](#{_anchor(r.family)}): {r.problem}" for r in mismatched]
        lines.append("")
    for family, group in families.items():
        lines += _family_section(family, group, maps)
    return "\n".join(lines).rstrip() + "\n"


def _totals(runs: list[Run]) -> str:
    certified = sum(r.report.ok for r in runs)
    wrong = sum(r.problem is not None for r in runs)
    return (f"{len(runs)} runs (case × dtype × device): {certified} certified, {len(runs) - certified} "
            f"convicted; {len(runs) - wrong} as the case expects, {wrong} not.")


def _overview(families: dict[str, list[Run]]) -> list[str]:
    lines = ["| family | runs | certified | convicted | not as expected |",
             "| --- | ---: | ---: | ---: | ---: |"]
    for family, group in families.items():
        ok = sum(r.report.ok for r in group)
        wrong = sum(r.problem is not None for r in group)
        cells = [f"[{family}](#{_anchor(family)})", len(group), ok, len(group) - ok, wrong]
        lines.append("| " + " | ".join(map(str, cells)) + " |")
    return lines + [""]


def _anchor(heading: str) -> str:
    # GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens.
    return re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")


def _family_section(family: str, runs: list[Run], maps: dict[tuple[str, str], str]) -> list[str]:
    dtypes = list(dict.fromkeys(r.report.dtype for r in runs))
    links = " · ".join(f"[{d}]({maps[family, d]})" for d in dtypes if (family, d) in maps)
    quantities = list(dict.fromkeys(q for r in runs for q in [*r.report.worst_bits, *r.points]))
    lines = [f"## {family}", "", f"Stability maps: {links}", ""]
    lines.append("| case | dtype | device | verdict | expected | met | "
                 + " | ".join(f"{q} bits, worst / mean" for q in quantities) + " | kinks | map |")
    lines.append("| --- " * 6 + "| ---: " * len(quantities) + "| ---: | --- |")
    for r in runs:
        bits = [_bits_cell(r.report, q) for q in quantities]
        link = f"[map]({maps[family, r.report.dtype]})" if (family, r.report.dtype) in maps else "-"
        met = "yes" if r.problem is None else f"**no**: {r.problem}"
        cells = [r.report.case, r.report.dtype, r.report.device, r.verdict, r.expected, met, *bits,
                 str(len(r.report.kinks)), link]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    lines.append("")
    failing = [r for r in runs if r.report.regions]
    if failing:
        lines += ["Failing regions:", ""]
        for r in failing:
            lines += _regions(r)
    return lines


def _bits_cell(report: Report, quantity: str) -> str:
    if quantity not in report.worst_bits:
        return "-"
    return f"{report.worst_bits[quantity]:.1f} / {report.mean_bits.get(quantity, math.nan):.2f}"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _title(run: Run) -> str:
    return f"**{run.report.case} › {run.report.dtype} › {run.report.device}**"


def _regions(run: Run) -> list[str]:
    met = "as expected" if run.problem is None else "NOT as expected"
    lines = [f"{_title(run)} ({run.verdict}; {met}):", ""]
    shown = run.report.regions[:MAX_REGIONS]
    lines += [f"- `{r.words(run.report.feature_name)}`" for r in shown]
    if len(run.report.regions) > len(shown):
        lines.append(f"- … and {len(run.report.regions) - len(shown)} more regions")
    return lines + [""]


# -- stability maps -----------------------------------------------------------------------------
@dataclass
class _Row:
    """One row of panels, one per quantity. ``layout``: "line" (runs sharing
    a feature, overlaid), "split" (two-input runs with an input of few
    values: one curve per value over the other input) or "heat" (one run)."""

    runs: list[Run]
    axis: str
    quantities: list[str]
    layout: str
    split: int | None = None


@dataclass
class _Curve:
    name: str
    x: np.ndarray
    bits: np.ndarray
    failing: np.ndarray
    joined: bool


def draw_map(runs: list[Run], path: str | Path) -> None:
    """Draw the stability map of ``runs`` (one family, one dtype) into ``path``.

    Example:
        >>> import mpmath, tempfile, os
        >>> from harness import Case, certify
        >>> case = Case("exp", torch.exp, mpmath.exp)
        >>> path = os.path.join(tempfile.mkdtemp(), "exp.png")
        >>> draw_map([Run.of(case, certify(case, torch.float32, grid_size=1))], path)
    """
    f = _format(runs[0].report.dtype)
    rows = _rows(runs)
    columns = max([len(row.quantities) for row in rows] + [1])
    fig = Figure(figsize=(_PANEL[0] * columns + 3.4, _PANEL[1] * len(rows) + 1.0), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(rows), columns, squeeze=False)
    styles: dict[str, dict] = {}
    marks: dict[str, Line2D] = {}   # the dtype's edges and the failing marker: one legend for the figure
    for row, ax_row in zip(rows, axes):
        for ax in ax_row[len(row.quantities):]:
            ax.set_axis_off()
        draw = _heat_row if row.layout == "heat" else _curve_row
        marks.update(draw(fig, ax_row, row, f, styles))
    devices = ", ".join(sorted({r.report.device for r in runs}))
    fig.suptitle(f"{runs[0].family} · {f.name} ({devices}): bits of error = log2(1 + ULPs)", fontsize=12)
    if marks:
        fig.legend(list(marks.values()), list(marks), loc="outside lower center", ncol=len(marks),
                   fontsize=8, frameon=False)
    fig.savefig(path, dpi=_DPI)


def _format(dtype_name: str) -> Format:
    return next(f for f in FORMATS.values() if f.name == dtype_name)


def _layout(run: Run) -> tuple[str, int | None]:
    """How a run is drawn: ("line", None), ("heat", None), or ("split", k)
    when input k of a two-input run takes at most ``FEW_VALUES`` values."""
    first = next(iter(run.points.values()), None)
    if first is None or first.xy is None:
        return "line", None
    few = [k for k in (0, 1) if len(np.unique(first.xy[np.isfinite(first.xy[:, k]), k])) <= FEW_VALUES]
    return ("split", few[-1]) if few else ("heat", None)


def _input(run: Run, k: int) -> str:
    return run.inputs[k] if len(run.inputs) > k else ("first input", "second input")[k]


def _rows(runs: list[Run]) -> list[_Row]:
    rows: dict[tuple, _Row] = {}
    for run in runs:
        layout, split = _layout(run)
        if layout == "line":
            key, axis = ("line", run.report.feature_name), run.report.feature_name
        elif layout == "split":
            key, axis = ("split", _input(run, 1 - split), split), _input(run, 1 - split)
        else:
            key, axis = ("heat", id(run)), ""
        row = rows.setdefault(key, _Row([], axis, [], layout, split))
        row.runs.append(run)
        row.quantities += [q for q in run.points if q not in row.quantities]
    return list(rows.values()) or [_Row([], "", [], "line")]


def _series_name(run: Run, runs: list[Run]) -> str:
    several = len({r.report.device for r in runs}) > 1
    return run.report.case + (f" ({run.report.device})" if several else "")


def _curves(run: Run, quantity: str, row: _Row) -> list[_Curve]:
    p = run.points[quantity]
    name = _series_name(run, row.runs)
    if row.layout == "line":
        return [_Curve(name, p.feature, p.bits, p.failing, p.curve)]
    k = row.split
    out = []
    for value in np.unique(p.xy[np.isfinite(p.xy[:, k]), k]):
        m = p.xy[:, k] == value
        label = f"{name}, {_input(run, k)} = {value:g}"
        out.append(_Curve(label, p.xy[m, 1 - k], p.bits[m], p.failing[m], True))
    return out


def _placed(row: _Row, p: Points) -> np.ndarray:
    """Entries with a place on the row's log axes (not at an inf or NaN input)."""
    return np.isfinite(p.feature) if row.layout == "line" else np.isfinite(p.xy).all(axis=1)


def _curve_row(fig, ax_row, row: _Row, f: Format, styles: dict[str, dict]) -> dict[str, Line2D]:
    """Panels of curves, their legend on the right of the row (in the first
    unused panel if there is one): outside the data either way."""
    series, marks = {}, {}
    for ax, quantity in zip(ax_row, row.quantities):
        curves = [c for r in row.runs if quantity in r.points for c in _curves(r, quantity, row)]
        scale, edges = _axis(ax, "x", np.concatenate([c.x for c in curves] or [np.array([])]), f)
        marks.update(edges)
        for c in curves:
            style = styles.setdefault(c.name, _style(len(styles)))
            series[c.name] = _plot_curve(ax, c, style, scale)
        ax.set_ylim(-0.06 * f.width, 1.06 * f.width)
        ax.set_yticks(np.linspace(0, f.width, 5))
        ax.set_ylabel(f"bits of error (of {f.width})")
        points = [r.points[quantity] for r in row.runs if quantity in r.points]
        ax.set_xlabel(row.axis + _not_drawn(row, points))
        ax.set_title(f"{quantity} against {row.axis}", fontsize=10)
        ax.grid(True, alpha=0.25)
        if any(c.failing.any() for c in curves):
            marks["failing entry"] = Line2D([], [], **_FAILING)
    spare = len(ax_row) > len(row.quantities)
    host = ax_row[len(row.quantities)] if spare else ax_row[len(row.quantities) - 1]
    host.legend(list(series.values()), list(series), loc="upper left",
                bbox_to_anchor=(0.0 if spare else 1.02, 1.0), fontsize=7.5, ncol=1 + (len(series) - 1) // 18,
                frameon=False, borderaxespad=0.0)
    return marks


def _style(k: int) -> dict:
    return dict(color=_COLORS[k % len(_COLORS)], marker=_MARKERS[k % len(_MARKERS)])


def _plot_curve(ax, c: _Curve, style: dict, scale: _SymLog):
    keep = np.isfinite(c.x) & ~np.isnan(c.bits)
    order = np.argsort(c.x[keep], kind="stable")
    x, y, bad = scale(c.x[keep][order]), c.bits[keep][order], c.failing[keep][order]
    # Hollow markers let overlaid implementations show through each other at 0 bits.
    (line,) = ax.plot(x, y, linestyle="-" if c.joined else "none", linewidth=0.6, markersize=3.5,
                      markerfacecolor="none", markeredgewidth=0.8, alpha=0.85, **style)
    ax.plot(x[bad], y[bad], zorder=5, **_FAILING)
    return line


def _square(x: np.ndarray, y: np.ndarray) -> float:
    """Marker area (points²) of a heat map's squares: grids are products of
    per-input values spread about evenly on the log axes, so a square as wide
    as a panel over the number of distinct values leaves thin gaps."""
    width, height = 0.75 * _PANEL[0] * 72, 0.7 * _PANEL[1] * 72
    side = 0.8 * min(width / max(len(np.unique(x)), 1), height / max(len(np.unique(y)), 1))
    return float(np.clip(side, 2.0, 30.0) ** 2)


def _not_drawn(row: _Row, points: list[Points]) -> str:
    """An axis-label suffix counting judged entries that have no place on a log axis."""
    hidden = [~_placed(row, p) & ~np.isnan(p.bits) for p in points]
    count = sum(int(m.sum()) for m in hidden)
    failing = sum(int((m & p.failing).sum()) for m, p in zip(hidden, points))
    return f"\n(not drawn: {count} at ±inf/NaN inputs, {failing} failing)" if count else ""


def _heat_row(fig, ax_row, row: _Row, f: Format, styles: dict[str, dict]) -> dict[str, Line2D]:
    (run,) = row.runs
    mappable, marks = None, {}
    for ax, quantity in zip(ax_row, row.quantities):
        p = run.points[quantity]
        keep = _placed(row, p) & ~np.isnan(p.bits)
        x, y, bits, bad = p.xy[keep, 0], p.xy[keep, 1], p.bits[keep], p.failing[keep]
        (sx, x_edges), (sy, y_edges) = _axis(ax, "x", x, f), _axis(ax, "y", y, f)
        marks.update({**x_edges, **y_edges})
        mappable = ax.scatter(sx(x), sy(y), c=bits, cmap="viridis", vmin=0, vmax=f.width, marker="s",
                              s=_square(x, y), linewidths=0)
        ax.plot(sx(x[bad]), sy(y[bad]), zorder=5, **{**_FAILING, "markersize": 3.5, "markeredgewidth": 0.8})
        ax.set_xlabel(_input(run, 0) + _not_drawn(row, [p]))
        ax.set_ylabel(_input(run, 1))
        ax.set_title(f"{run.report.case}: {quantity}", fontsize=10)
        if bad.any():
            marks["failing entry"] = Line2D([], [], **_FAILING)
    if mappable is not None:
        # Inset beside the last panel: a colour bar of the layout would sit
        # beyond the legends of the rows above, far from its panels.
        bar = ax_row[len(row.quantities) - 1].inset_axes([1.03, 0.0, 0.03, 1.0])
        fig.colorbar(mappable, cax=bar, label=f"bits of error (of {f.width})")
    return marks


# -- axes --------------------------------------------------------------------------------------
_LINEAR = 0.4   # the width of the linear part of a symmetric log axis, in decades
_MARGIN = 0.25  # decades of room beyond the outermost points
_STEPS = (1, 2, 3, 5, 10, 15, 20, 30, 50, 100, 150, 200, 300, 500)  # decades between labels


@dataclass(frozen=True)
class _SymLog:
    """A symmetric log axis drawn on a linear one: magnitudes below
    ``threshold`` linearly over ``_LINEAR`` units, one unit per decade beyond.
    Matplotlib's own symlog fails on float64's full range: the width of
    limits at ±1.8e308 overflows to inf in data space."""

    threshold: float

    @classmethod
    def over(cls, values: np.ndarray) -> _SymLog:
        """The linear part ends at the smallest nonzero magnitude drawn (the
        smallest subnormal on an extreme grid), rounded down to a decade."""
        magnitudes = np.abs(values[np.isfinite(values) & (values != 0)])
        if not magnitudes.size:
            return cls(1.0)
        smallest = float(magnitudes.min())
        # Never below the value itself: 10**-324 underflows to 0.
        return cls(min(max(10.0 ** math.floor(math.log10(smallest)), smallest), 1.0))

    def __call__(self, values) -> np.ndarray:
        v = np.asarray(values, dtype=np.float64)
        a = np.abs(v)
        # log10(a) - log10(t), not log10(a / t): the quotient overflows for a near max.
        beyond = _LINEAR + np.log10(np.maximum(a, self.threshold)) - math.log10(self.threshold)
        linear = np.minimum(a, self.threshold) / self.threshold * _LINEAR
        return np.sign(v) * np.where(a < self.threshold, linear, beyond)

    def decade(self, k: int) -> float:
        """Where 10**k lies (computed without forming 10**k, which may overflow)."""
        return _LINEAR + k - math.log10(self.threshold)


def _axis(ax, axis: str, values: np.ndarray, f: Format) -> tuple[_SymLog, dict[str, Line2D]]:
    """Set up a symmetric log ``axis`` for ``values``: limits a little beyond
    them, labels every few decades, a tick at every decade, and the dtype's
    edges marked where they fall. Returns the scale and the edges' lines."""
    scale = _SymLog.over(values)
    finite = values[np.isfinite(values)]
    lo, hi = (float(scale(finite.min())), float(scale(finite.max()))) if finite.size else (0.0, 1.0)
    lo, hi = lo - _MARGIN, hi + _MARGIN
    (ax.set_xlim if axis == "x" else ax.set_ylim)(lo, hi)
    target = ax.xaxis if axis == "x" else ax.yaxis
    negative = bool(finite.size and finite.min() < 0)
    ticks, labels = _ticks(scale, max(-lo, hi), negative)
    target.set_major_locator(FixedLocator(ticks))
    target.set_major_formatter(FixedFormatter(labels))
    target.set_minor_locator(FixedLocator(_decades(scale, max(-lo, hi), negative)))
    return scale, _edges(ax, axis, f, scale, lo, hi)


def _exponents(scale: _SymLog, reach: float) -> tuple[int, int]:
    """The decades from the threshold's to the last one within ``reach``."""
    first = round(math.log10(scale.threshold))
    last = first + max(0, math.floor(reach - scale.decade(first)))
    return first, last


def _ticks(scale: _SymLog, reach: float, negative: bool) -> tuple[list[float], list[str]]:
    first, last = _exponents(scale, reach)
    # About 3 decades labelled per side when both signs show, 6 otherwise, at
    # round exponents (10^-30, 1, 10^30); none within half a step of 0, whose
    # label it would overprint across the narrow linear part.
    per_side = 3 if negative else 6
    step = next((n for n in _STEPS if n * per_side >= last - first), _STEPS[-1])
    exponents = [k for k in range(first, last + 1) if k % step == 0 and scale.decade(k) >= step / 2] or [last]
    ticks, labels = [0.0], ["0"]
    for k in exponents:
        ticks.append(scale.decade(k))
        labels.append("1" if k == 0 else f"$10^{{{k}}}$")
        if negative:
            ticks.insert(0, -scale.decade(k))
            labels.insert(0, "-1" if k == 0 else f"$-10^{{{k}}}$")
    return ticks, labels


def _decades(scale: _SymLog, reach: float, negative: bool) -> list[float]:
    """Unlabelled ticks at every decade (every few, past 100 decades)."""
    first, last = _exponents(scale, reach)
    step = max(1, math.ceil((last - first) / 100))
    positive = [scale.decade(k) for k in range(first, last + 1, step)]
    return [-v for v in positive[::-1]] + positive if negative else positive


def _edges(ax, axis: str, f: Format, scale: _SymLog, lo: float, hi: float) -> dict[str, Line2D]:
    """Mark the dtype's edges that fall on the drawn range, outside the
    linear part (where they would all sit on 0)."""
    line = ax.axvline if axis == "x" else ax.axhline
    marks = {}
    for attribute, label, style in _EDGES:
        edge = getattr(f, attribute)
        at = float(scale(edge))
        for v in (at, -at):
            if lo <= v <= hi and edge >= scale.threshold:
                marks[f"{label} = {edge:.3g}"] = line(v, linewidth=0.9, alpha=0.8, **style)
    return marks
