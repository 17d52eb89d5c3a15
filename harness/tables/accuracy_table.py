"""The accuracy table of PyTorch's autograd: ``docs/torch_ops.md``.

    python -m harness.tables.accuracy_table            # every op of cases/torch_ops.py, all dtypes
    python -m harness.tables.accuracy_table --ops torch.expm1,torch.sigmoid --grid-size 1 --out /tmp/t.md

Every case of ``cases/torch_ops.py`` is certified in each dtype it runs in, on
CPU and on CUDA when torch sees a GPU (the truths of all of them computed in
one pool and kept in the truth cache pytest uses), and written as markdown:
the findings first (real defects with the region, the cause in torch's
formula and a certified alternative; underflow-only defects apart), the
coverage (how many of torch's differentiable OpInfo ops the elementwise and
structured tables certify together, ``harness.tables.coverage``), the table (one
row per op, dtype and device: worst bits and kind of the value and of each
gradient, the failing regions in words), then hand checks: the worst
failing point of each of the worst ops evaluated again in plain mpmath, with
analytic derivatives, and in torch, with no part of the harness in between.
"""

from __future__ import annotations

import argparse
import importlib
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import mpmath
import numpy as np
import torch

from . import hand_structured
from .measured_words import PLACEHOLDER, UnmeasuredThreshold, fill
from .page_changes import changes
from .hand import COPIES, HAND, _array_words, _evaluate, _round, _same, _shown, _torch_at
from ..judging.kinds import SEVERITY

DTYPES = (torch.float64, torch.float32, torch.float16, torch.bfloat16)
#: Region lines per row of the table.
REGIONS_SHOWN = 3
#: Ops re-evaluated by hand (the worst by failing entries, among those with a hand formula).
HAND_CHECKED = 12
#: Hypothesis examples of each certified row's search in a dense sweep (``--dense``).
DENSE_SEARCH = 100


@dataclass
class Entry:
    """One op in one dtype on one device: its report, or why there is none."""

    case: object
    dtype: torch.dtype
    device: str
    report: object | None = None
    error: str | None = None     # a CaseError, or "not run: ..." for a dtype the op lacks
    compiled: bool = False       # torch.compile'd (harness.claims.execution)
    compile_seconds: float = 0.0
    witness: object | None = None   # the worst input a search found (harness.search.Witness)
    searched: str | None = None     # why a certified row was not searched, where it was not

    @property
    def dtype_name(self) -> str:
        return str(self.dtype).removeprefix("torch.")

    @property
    def convicted_by_search(self) -> bool:
        """Certified on its sweep, and the search found a failing input."""
        return self.report is not None and self.report.ok and self.witness is not None and self.witness.fails

    @property
    def ok(self) -> bool:
        return self.report is not None and self.report.ok and not self.convicted_by_search

    @property
    def real_kinds(self) -> set[str]:
        if self.report is None:
            return set()
        found = {self.witness.kind} if self.convicted_by_search else set()
        return (self.report.kinds | found) - {"underflow"}

    def per_quantity(self) -> dict[str, tuple[float, str | None]]:
        """quantity -> (worst bits, its most severe failing kind or None)."""
        kinds: dict[str, str] = {}
        for f in self.report.failures:
            q = f.quantity.split("[")[0]
            if q not in kinds or SEVERITY[f.kind] < SEVERITY[kinds[q]]:
                kinds[q] = f.kind
        return {q: (bits, kinds.get(q)) for q, bits in self.report.worst_bits.items()}

    def expected(self) -> bool | None:
        """Whether the verdict is the one the case expects (None without a report)."""
        if self.report is None:
            return None
        from ..certify import check

        return check(self.case, self.report, self.dtype, self.compiled) is None and not self.convicted_by_search


# -- measuring --------------------------------------------------------------------------------

def load(module: str = "cases.torch_ops"):
    """The sweep's cases, findings and notes on the harness (``CASES``, ``FINDINGS``,
    ``HARNESS_NOTES``) from its case file."""
    mod = importlib.import_module(module)
    return mod.CASES, getattr(mod, "FINDINGS", {}), getattr(mod, "HARNESS_NOTES", ())


def default_devices() -> list[str]:
    return ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]


def search(entries: list[Entry], examples: int, cache=None) -> None:
    """Each certified eager row searched for its worst input (``harness.search``,
    Hypothesis seeded with the sweep's worst points) before it says certified: a
    failing witness convicts it. Compiled rows, and cases a search cannot take,
    say why they were not searched (``Entry.searched``)."""
    from ..errors import CaseError
    from ..search import worst_input

    for e in entries:
        if e.report is None or not e.report.ok:
            continue
        if e.compiled:
            e.searched = "compiled rows are judged on the sweep only"
            continue
        try:
            e.witness = worst_input(e.case, e.dtype, e.device, max_examples=examples, cache=cache, report=e.report)
        except (ValueError, CaseError) as err:
            e.searched = str(err)


def dense_sweepable(case) -> bool:
    """Whether a dense sweep of ``case`` fits a page's run: its reference is an exact
    formula (``harness.exact``), whose truths the interval engine proves at tens of
    thousands a second. A hand-written mpmath reference gives 10 to 200 a second, and a
    dense sweep's 150,000 points per op would take hours: those rows keep the grid, and
    their judged column says so."""
    return getattr(case.reference, "formula", None) is not None


def sweep(cases, dtypes=DTYPES, devices=("cpu",), compiled: bool = False, **options) -> list[Entry]:
    """Certify every case in every dtype and device, and ``compiled`` by
    ``torch.compile`` too (``harness.claims.execution``): each case's truths in one
    pool (``harness.certify.certify_many``); ``options`` are ``certify``'s keywords."""
    from ..claims.execution import compiled as compile_case

    certify = importlib.import_module("harness.certify")
    entries = [Entry(c, d, dev, compiled=k) for c in cases for d in dtypes for dev in devices
               for k in ((False, True) if compiled else (False,))]
    jobs = [e for e in entries if e.dtype in e.case.dtypes]
    for e in entries:
        if e.dtype not in e.case.dtypes:
            e.error = f"not run: no {e.dtype_name} kernel or backward on this op"
    subjects = []
    for e in jobs:
        subject = e.case
        if e.compiled:
            subject, e.compile_seconds = compile_case(e.case, e.dtype, e.device)
        subjects.append(subject)
    # One case at a time: a dense sweep's prepared certifications hold every point's claims
    # and units (about 60 MB an entry), which all of them at once would not fit in memory.
    for name in dict.fromkeys(e.case.name for e in jobs):
        mine = [(s, e) for s, e in zip(subjects, jobs) if e.case.name == name]
        progress = options.get("progress")
        if progress:
            progress(f"{name}: {len(mine)} entries")
        results = certify.certify_many([(s, e.dtype, e.device) for s, e in mine],
                                       **{**options, "dense": options.get("dense", False) and dense_sweepable(mine[0][1].case)})
        for (_, e), r in zip(mine, results):
            if isinstance(r, Exception):
                e.error = f"broken case: {r}"
            else:
                e.report = r
    return entries


# -- rendering --------------------------------------------------------------------------------

def _bits(bits: float, kind: str | None) -> str:
    return f"{bits:.1f}" + (f" {kind}" if kind else "")


def _quantity_cells(entry: Entry) -> tuple[str, str]:
    """(value cell, gradient cell); a two-input op lists d/dx and d/dy in one cell."""
    per = entry.per_quantity()
    value = _bits(*per["value"]) if "value" in per else "—"
    grads = [(q, v) for q, v in per.items() if q != "value"]
    if len(grads) == 1 and grads[0][0] == "gradient":
        return value, _bits(*grads[0][1])
    return value, "<br>".join(f"{q}: {_bits(*v)}" for q, v in grads) or "—"


def _regions_cell(entry: Entry) -> str:
    report = entry.report
    words = [r.words(report.feature_name) for r in report.regions[:REGIONS_SHOWN]]
    if len(report.regions) > REGIONS_SHOWN:
        words.append(f"and {len(report.regions) - REGIONS_SHOWN} more")
    if report.underflows:
        words.append(f"underflow listed (not failed): {len(report.underflows)} region(s)")
    return "<br>".join(words)


def _row(entry: Entry) -> str:
    device = f"{entry.device}, compiled in {entry.compile_seconds:.1f} s" if entry.compiled else entry.device
    head = f"| `{entry.case.name}` | {entry.dtype_name} | {device} |"
    if entry.report is None:
        return head + f" {entry.error} | | | | |"
    verdict = "certified" if entry.ok else "**convicted**" + (" by search" if entry.convicted_by_search else "")
    if entry.expected() is False and not entry.compiled:   # a case file's expectations are eager's
        verdict += " (not as its case file expects)"
    value, grad = _quantity_cells(entry)
    regions = _regions_cell(entry)
    if entry.convicted_by_search:
        regions = "<br>".join(w for w in (_witness_words(entry.witness), regions) if w)
    return head + f" {verdict} | {_judged_cell(entry)} | {value} | {grad} | {regions} |"


def _judged_cell(entry: Entry) -> str:
    """Points judged, how (every value, dense with bisected edges, the grid), the
    domain where it is not the whole line, and the search."""
    report = entry.report
    points = f"{int(report.stats.get('points', 0)):,}"
    coverage = report.coverage or ""
    how = ("every value" if coverage.startswith("exhaustive") else
           "dense" + (f", {_edges_of(coverage)} bisected" if "edges" in coverage else "")
           if coverage.startswith("dense") else "grid")
    case = entry.case
    names = case.names_for(case.arity)
    domains = [f"{n} in {d}" for n, d in zip(names, case.domains_for(case.arity)) if str(d) != "(-inf, inf)"]
    cell = f"{points} ({how})" + (f"<br>domain: {', '.join(domains)}" if domains else "")
    if entry.witness is not None:
        cell += f"<br>searched: {entry.witness.evaluations:,} points"
    return cell


def _edges_of(coverage: str) -> str:
    """'3 edges' from a dense coverage note."""
    count = coverage.split(", and ", 1)[-1].split(" edges")[0]
    return f"{count} edge{'s' * (count != '1')}"


def _witness_words(w) -> str:
    where = ", ".join(f"{n} = {v!r}" for n, v in zip(w.names, w.point)) if np.ndim(w.point[0]) == 0 else "a searched point"
    return (f"search: {where}: {w.quantity} {w.claimed:.4g}, truth {w.truth:.4g}, {w.bits:.1f} bits "
            f"(budget {w.budget_bits:.1f}) [{w.kind}]")


def table(entries: list[Entry]) -> str:
    lines = ["| op | dtype | device | verdict | judged | value: worst bits, kind | gradient: worst bits, kind | "
             "failing regions |", "|---|---|---|---|---|---|---|---|"]
    return "\n".join(lines + [_row(e) for e in entries])


def _by_case(entries: list[Entry]) -> dict[str, list[Entry]]:
    grouped: dict[str, list[Entry]] = {}
    for e in entries:
        grouped.setdefault(e.case.name, []).append(e)
    return grouped


def _largest(entries: list[Entry]) -> str:
    """The largest failing region (most points) over the op's dtypes, not underflow, in words."""
    regions = [(r.count, e.dtype_name, r.words(e.report.feature_name)) for e in entries
               for r in e.report.regions if r.kind != "underflow"]
    if not regions:
        searched = [e for e in entries if e.convicted_by_search]
        return f"{searched[0].dtype_name}: {_witness_words(searched[0].witness)}" if searched else ""
    count, dtype, words = max(regions, key=lambda r: r[0])
    return f"{dtype}: {words}"


def _verdicts(entries: list[Entry]) -> str:
    """'certified in float64, float32; convicted in float16 (underflow)'."""
    ok = [e.dtype_name for e in entries if e.ok]
    bad = [f"{e.dtype_name} ({', '.join(sorted(e.real_kinds or e.report.kinds))})" for e in entries
           if e.report is not None and not e.ok]
    parts = ([f"certified in {', '.join(ok)}"] if ok else []) + ([f"convicted in {', '.join(bad)}"] if bad else [])
    return "; ".join(parts) or "not run"


def _alternatives(notes: dict) -> set[str]:
    return {n.alternative for n in notes.values() if getattr(n, "alternative", None)}


def _finding(name: str, bad: list[Entry], note, grouped) -> str:
    """One line: the op, where it fails (dtypes, kinds), its largest failing region, cause, alternative."""
    kinds = sorted(set().union(*(e.real_kinds for e in bad)))
    text = (f"- **`{name}`** ({', '.join(kinds)}; {', '.join(e.dtype_name for e in bad)}). "
            f"Largest region, {_largest(bad)}.")
    if note is None:
        return text + " Cause: not analysed."
    reports = {e.dtype_name: e.report for e in grouped.get(name, bad) if e.report is not None and not e.compiled}
    text += f" Cause: {_measured(note.cause, reports)}"
    if note.alternative:
        alt = grouped.get(note.alternative)
        text += f" Alternative: `{note.alternative}` ({_verdicts(alt) if alt else 'not in this sweep'})."
    elif getattr(note, "fix", None):
        text += f" Fix (not certified here): {_measured(note.fix, reports)}"
    return text


def _measured(text: str, reports: dict) -> str:
    """A finding's words with its thresholds read from the reports (``measured_words``);
    one this sweep does not back says so in place of a number."""
    def one(match):
        try:
            return fill(match[0], reports)
        except UnmeasuredThreshold:
            return f"(not measured in this sweep: {match[0].strip('{}')})"

    return PLACEHOLDER.sub(one, text)


def findings(entries: list[Entry], notes: dict, harness_notes=(), compiled_notes: dict | None = None) -> str:
    """Real defects per op, in ordinary ranges and at the edges of the format, then the
    underflow-only ones, then what the harness itself gets wrong on these cases; with
    compiled entries, the ops whose compiled verdict differs from eager's and why
    (``compiled_notes``, a case file's ``COMPILED_FINDINGS``)."""
    from .compiled_findings import compiled_findings

    compiled = compiled_findings(entries, compiled_notes) if any(e.compiled for e in entries) else None
    entries = [e for e in entries if not e.compiled]
    grouped = _by_case(entries)
    ordinary, edge, underflow = [], [], []
    for name, group in grouped.items():
        if name.endswith(".stable") or name in _alternatives(notes):
            continue
        bad = [e for e in group if e.real_kinds]
        flushed = [e for e in group if e.report is not None and e.report.kinds == {"underflow"}]
        if bad:
            note = notes.get(name)
            (edge if getattr(note, "edge", False) else ordinary).append(_finding(name, bad, note, grouped))
        elif flushed:
            words = [r.words(flushed[0].report.feature_name) for r in flushed[0].report.regions][:1]
            underflow.append(f"- `{name}` ({', '.join(e.dtype_name for e in flushed)}): {'; '.join(words)}")
    return "\n".join(
        ["## Findings", "", "### In ordinary ranges", ""] + (ordinary or ["None."])
        + ["", "### Only at the edges of the format", "",
           "At ±inf, next to the overflow threshold, or at subnormal inputs.", ""] + (edge or ["None."])
        + ["", "### Underflow only", "",
           "Results flushed to zero below the smallest normal, which the format's range explains: they fail "
           "in float16 only (harness.judging.tolerance) and are listed, not failed, in the other dtypes (the table's "
           "last column counts them).", ""] + (underflow or ["None."])
        + (["", "### Compiled against eager", "",
            "`torch.compile` (Inductor, dynamic shapes; the backward AOTAutograd compiles) judged beside the "
            "eager entry: the ops whose compiled verdict, kinds, or any entry's bits (by more than one) differ, "
            "with the decomposition or lowering responsible and the line of Inductor's generated code that shows "
            "it (found in this run's code, or flagged as stale); the hand checks below re-evaluate each worst "
            "point. Each op lists the ops of its graphs that Inductor decomposes (`torch/_decomp`; those that "
            "only create, view or move data left out), and each dtype's worst entry is measured three ways, by "
            "calling torch on the point: eager, *decomposed* (Inductor's decompositions and AOTAutograd's "
            "partition, each remaining op run by eager's kernel: the `aot_eager_decomp_partition` backend) and "
            "compiled. Where the decomposed number is the compiled one, the decomposition's formula makes the "
            "difference; where it is eager's, Inductor's generated code does (fusion, its vectorized math, its "
            "reduction order, float32 intermediates), and on CPU the same compile with vectorization off "
            "(`cpp.simdlen = 1`, a scalar loop per kernel) says whether the vectorized code is the one; where "
            "the scalar code is, the compile with fma contraction (`-ffp-contract=fast`, off in Inductor) says "
            "whether contraction is.", ""]
           + (compiled or ["None."]) if compiled is not None else [])
        + (["", "### Harness notes", ""] + [f"- {n}" for n in harness_notes] if harness_notes else []))


def machine() -> str:
    """The CPU model (and the GPU when CUDA is used)."""
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cores = f"{torch.get_num_threads()} threads available"
    gpu = f"; GPU {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ""
    return f"{model} ({cores}){gpu}"


def render(entries: list[Entry], notes: dict, checks: list[str], meta: dict, harness_notes=(),
           coverage: str | None = None, compiled_notes: dict | None = None, changed: list[str] = ()) -> str:
    """The whole page; ``changed`` is its "What changed" section (``page_changes``);
    ``coverage`` is its coverage section (``coverage_of``), if any;
    ``compiled_notes`` explain the compiled findings (``COMPILED_FINDINGS``);
    ``meta["module"]`` the case module (``cases.torch_ops`` by default), whose
    ``TITLE`` names the page."""
    module = meta.get("module", "cases.torch_ops")
    path = module.replace(".", "/") + ".py"
    title = getattr(sys.modules.get(module), "TITLE", "The accuracy table of PyTorch's autograd")
    command = ("python -m harness.tables.accuracy_table" + ("" if module == "cases.torch_ops" else f" --module {module}")
               + (" --compile" if any(e.compiled for e in entries) else "") + (" --dense" if meta.get("dense") else "")
               + (f" --search {meta['search']}" if meta.get("search") and not meta.get("dense") else ""))
    structured = module != "cases.torch_ops"
    return "\n".join([
        f"# {title}",
        "",
        f"Generated by `{command}` (do not edit by hand): every case of",
        f"[{path}](../{path}), certified as `pytest {path} --torch-ops`",
        "certifies it. Bits are Herbie's `log2(1 + ULPs)` against the mpmath truth rounded to the dtype",
        "(64 in float64, 32 in float32, 16 in the 16-bit formats for NaN or inf against a finite truth);",
        "the kinds and the budget are the README's. Worst bits are over every judged point, failing or not.",
        "",
        f"- torch {meta['torch']}, Python {meta['python']}, mpmath {meta['mpmath']}",
        f"- machine: {meta['machine']}",
        f"- {_sweep_words(meta)}; {meta['summary']}",
        "",
        *changed,
        findings(entries, notes, harness_notes, compiled_notes),
        "",
        *([coverage, ""] if coverage else []),
        "## The table",
        "",
        table(entries),
        "",
        "## Hand checks",
        "",
        f"For the {HAND_CHECKED} ops with the most failing entries (each in its worst dtype), then the issue's",
        "leads and the verdicts that surprise (`ALSO_CHECKED`): the worst point of the op's largest failing",
        "region, among finite inputs, evaluated again without the harness: the op's mathematics in plain mpmath at",
        *(["the exact float input with vector-Jacobian products derived by hand (`harness.tables.hand_structured`),",
           "at 400 bits and more until two precisions agree, rounded to the dtype; torch's forward and autograd",
           "called directly on the point's arrays, with the cotangent the harness hands every structured",
           "backward."] if structured else [
           "the exact float input with an analytic derivative (`harness.tables.hand.HAND`), at 400 bits",
           "and more until two precisions agree, rounded to the dtype; torch's forward and autograd called",
           f"directly on {COPIES} copies of the point (CPU kernels vectorize longer tensors, as the grid is)."]),
        "`agrees` compares the mpmath number with the harness's truth and torch's with the harness's",
        "claimed value.",
        "",
        *checks,
        "",
        *(_compiled_checks(entries) if any(e.compiled for e in entries) else []),
    ])


def _sweep_words(meta: dict) -> str:
    """How the rows were judged, for the page's head."""
    if not meta.get("dense"):
        words = f"grid: `--grid-size {meta['grid_size']}`"
    else:
        words = (f"sweep: `--dense`: every value of float16 and bfloat16 for one-input ops, {meta['grid_size']} "
                 f"points or more in every binade of the whole range otherwise, each edge where a claim changes "
                 f"class bisected to adjacent floats (one-input ops) or along each pattern's parameter (structured "
                 f"ops), every pair of special values (several-input ops)")
        kept = meta.get("kept_on_grid", 0)
        if kept:
            words += (f"; {kept} case(s) whose reference is a hand-written mpmath formula rather than an exact one "
                      f"keep the grid (`dense_sweepable`: 10 to 200 truths a second would take hours)")
        words += "; the judged column gives each row's points and how they were chosen"
    if meta.get("search"):
        words += (f"; each certified eager row then searched for its worst input ({meta['search']} Hypothesis "
                  f"examples, seeded with the row's worst points), and convicted if the search finds a failure")
    return words


def _compiled_checks(entries: list[Entry]) -> list[str]:
    from . import compiled_findings

    return ["### Compiled against eager, by hand", "",
            "Each (op, dtype) of \"Compiled against eager\" with a hand formula: its worst finite differing",
            "entry, in plain mpmath as above, and torch called directly, eager and through the compiled callable",
            f"the sweep certified: on {COPIES} copies of an elementwise point (Inductor's vectorized loop; a",
            "1-element call would run its scalar tail, which can differ), on a structured point's arrays with",
            "the harness's cotangent. `agrees` compares the mpmath number with the harness's truth and each",
            "torch number with the claim the harness recorded where it failed.", "",
            *compiled_findings.hand_checks(entries), ""]


# -- coverage ---------------------------------------------------------------------------------

#: The case modules of the published accuracy tables: elementwise, structured and linear algebra.
TABLE_MODULES = ("cases.torch_ops", "cases.torch_structured", "cases.torch_linalg")


def coverage_modules(module: str, named: str | None = None) -> list[str]:
    """The case modules whose cases the coverage counts: those ``named``
    (comma-separated; ``"none"``: no coverage section), else every table module
    that imports when ``module`` is one of them, else ``module`` alone."""
    if named:
        return [] if named.lower() == "none" else named.split(",")
    if module not in TABLE_MODULES:
        return [module]
    found = []
    for m in TABLE_MODULES:
        try:
            importlib.import_module(m)
        except Exception:   # a table module that does not import yet is left out, not fatal
            continue
        found.append(m)
    return found or [module]


def coverage_of(modules: list[str]) -> str | None:
    """The coverage section for the cases of ``modules`` (``harness.tables.coverage``),
    or one saying why it was not measured: the sweep's page is never lost to it."""
    if not modules:
        return None
    paths = [f"[{m.replace('.', '/')}.py](../{m.replace('.', '/')}.py)" for m in modules]
    try:
        from .coverage import coverage_section

        names = [c.name for m in modules for c in load(m)[0]]
        return coverage_section(names, f"The cases of {' and '.join(paths)}")
    except Exception as e:
        return f"## Coverage\n\nNot measured ({type(e).__name__}: {e})."


# -- hand checks ------------------------------------------------------------------------------


HAND["torch.nn.functional.celu"] = HAND["torch.nn.functional.elu"]     # alpha = 1
#: The certified alternatives of the case file compute the same functions.
HAND.update({"expm1.stable": HAND["torch.expm1"], "acosh.stable": HAND["torch.acosh"],
             "special.log_ndtr.stable": HAND["torch.special.log_ndtr"],
             "special.ndtri.stable": HAND["torch.special.ndtri"], "nn.functional.gelu.stable": HAND["torch.nn.functional.gelu"]})


def _checked_failure(report):
    """The worst point (most bits) of the largest failing region, among finite inputs:
    the op's main defect rather than its most extreme input."""
    finite = [f for f in report.failures if hand_structured.finite(f.point) and f.kind != "underflow"]
    for region in sorted(report.regions, key=lambda r: -r.count):
        inside = [f for f in finite if f.quantity.split("[")[0] == region.quantity and f.kind == region.kind
                  and region.lo <= f.feature <= region.hi]
        if inside:
            return max(inside, key=lambda f: f.bits)
    return max(finite, key=lambda f: (-SEVERITY[f.kind], f.bits)) if finite else None


def hand_check(entry: Entry) -> str | None:
    """One table row re-evaluating ``entry``'s worst finite failure, or None."""
    if entry.case.name not in HAND and entry.case.name not in hand_structured.HAND or entry.report is None:
        return None
    failure = _checked_failure(entry.report)
    if failure is None:
        return None
    if entry.case.name in hand_structured.HAND:
        # A structured point: hand-derived VJPs, torch on the point's arrays with the harness's cotangent.
        names = entry.case.names_for(len(failure.point))
        claimed, cotangent = hand_structured.torch_at(entry.case, failure.point, entry.dtype, failure.quantity,
                                                      names)
        exact = hand_structured.exact_at(entry.case.name, failure.point, failure.quantity, names, cotangent)
        point = ", ".join(_array_words(a) for a in failure.point)
    else:
        f, derivatives = HAND[entry.case.name]
        index = 0 if failure.quantity in ("value", "gradient") else \
            entry.case.names_for(len(failure.point)).index(failure.quantity.removeprefix("d/d"))
        exact = _evaluate(f if failure.quantity == "value" else derivatives[index], failure.point)
        torch_value, torch_grad = _torch_at(entry.case, failure.point, entry.dtype, index)
        claimed = torch_value if failure.quantity == "value" else torch_grad
        point = ", ".join(repr(v) for v in failure.point)
    agrees = _same(_round(exact, entry.dtype), failure.truth) and _same(claimed, failure.claimed)
    return (f"| `{entry.case.name}` | {entry.dtype_name} | ({point}) | {failure.quantity} | {_shown(exact)} | "
            f"{claimed!r} | {failure.truth!r} | {failure.kind}, {failure.bits:.1f} bits | "
            f"{'yes' if agrees else '**no**'} |")


#: Checked besides the worst: the issue's leads and the verdicts that surprise.
ALSO_CHECKED = (("torch.expm1", torch.float32), ("torch.nn.functional.softplus", torch.float64),
                ("torch.sigmoid", torch.float32), ("torch.tanh", torch.float32), ("torch.sinh", torch.float64),
                ("torch.erf", torch.bfloat16), ("torch.polygamma(1, x)", torch.float64),
                ("torch.special.ndtr", torch.float64), ("torch.nn.functional.gelu", torch.float64),
                ("torch.nn.functional.mish", torch.float64), ("torch.div", torch.float64),
                ("torch.hypot", torch.float64), ("torch.logaddexp", torch.float16), ("torch.i0", torch.float64))


def hand_checks(entries: list[Entry], count: int = HAND_CHECKED) -> list[str]:
    """Rows for the ``count`` ops with the most failing entries that have a hand formula,
    each in the dtype where it fails most, then ``ALSO_CHECKED``."""
    worst: dict[str, Entry] = {}
    entries = [e for e in entries if not e.compiled]   # torch's eager call is what a hand check makes
    for e in entries:
        if e.report is None or not e.real_kinds or (e.case.name not in HAND and e.case.name not in hand_structured.HAND):
            continue
        if e.case.name not in worst or len(e.report.failures) > len(worst[e.case.name].report.failures):
            worst[e.case.name] = e
    chosen = sorted(worst.values(), key=lambda e: -len(e.report.failures))[:count]
    also = [e for e in entries if (e.case.name, e.dtype) in ALSO_CHECKED and e.device == "cpu"
            and e.report is not None and e.real_kinds and e not in chosen]
    rows = [r for r in (hand_check(e) for e in chosen + also) if r]
    head = ["| op | dtype | input | quantity | mpmath | torch | harness truth | harness verdict | agrees |",
            "|---|---|---|---|---|---|---|---|---|"]
    return head + rows if rows else ["No convicted op with a hand formula in this sweep."]


# -- the command ------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.tables.accuracy_table", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=None,
                        help="the markdown file to write (default: docs/<the case file's name>.md)")
    parser.add_argument("--module", default="cases.torch_ops", help="the case file's module (CASES, FINDINGS)")
    parser.add_argument("--ops", default=None, help="comma-separated case names (default: all)")
    parser.add_argument("--dtypes", default="float64,float32,float16,bfloat16")
    parser.add_argument("--devices", default=None, help="default: cpu, and cuda when torch sees a GPU")
    parser.add_argument("--grid-size", type=int, default=None)
    parser.add_argument("--compile", action="store_true",
                        help="also certify each op compiled by torch.compile: a compiled row beside each eager one "
                             "and the ops where they differ (harness.claims.execution)")
    parser.add_argument("--dense", action="store_true",
                        help="judge every 16-bit value of one-input ops, 16 points (--grid-size) in every binade of "
                             "the whole range otherwise, and bisect each edge where a claim changes class; implies "
                             f"--search {DENSE_SEARCH} unless given")
    parser.add_argument("--search", type=int, default=None, metavar="N",
                        help="search each certified eager row for its worst input with N Hypothesis examples; a "
                             f"failing witness convicts the row (default: 0, or {DENSE_SEARCH} with --dense)")
    parser.add_argument("--truth-cache", default=".pytest_cache/harness-truth.sqlite",
                        help="sqlite file of cached truths ('none': memory only); pytest's by default")
    parser.add_argument("--coverage-modules", default=None,
                        help="comma-separated case modules the coverage section counts together ('none': no "
                             f"section); default: {', '.join(TABLE_MODULES)} when they import, else --module")
    args = parser.parse_args(argv)
    args.out = args.out or f"docs/{args.module.rsplit('.', 1)[-1]}.md"
    sys.path.insert(0, str(Path.cwd()))
    from ..truth.cache import TruthCache
    from ..inputs.grids import DEFAULT_SIZE, DENSE_SIZE

    cases, notes, harness_notes = load(args.module)
    compiled_notes = getattr(sys.modules[args.module], "COMPILED_FINDINGS", {})
    if args.ops:
        wanted = args.ops.split(",")
        cases = [c for c in cases if c.name in wanted]
    dtypes = [getattr(torch, d) for d in args.dtypes.split(",")]
    devices = args.devices.split(",") if args.devices else default_devices()
    cache = None if args.truth_cache.lower() == "none" else TruthCache(Path(args.truth_cache))
    started = time.perf_counter()
    entries = sweep(cases, dtypes, devices, compiled=args.compile, grid_size=args.grid_size, cache=cache,
                    dense=args.dense, progress=lambda line: print(line, file=sys.stderr, flush=True))
    examples = args.search if args.search is not None else (DENSE_SEARCH if args.dense else 0)
    if examples:
        search(entries, examples, cache)
    certified = sum(1 for e in entries if e.ok)
    convicted = sum(1 for e in entries if e.report is not None and not e.ok)
    meta = {"module": args.module, "torch": torch.__version__, "python": platform.python_version(), "mpmath": mpmath.__version__,
            "machine": machine(), "grid_size": args.grid_size or (DENSE_SIZE if args.dense else DEFAULT_SIZE),
            "dense": args.dense, "search": examples, "kept_on_grid": sum(1 for c in cases if not dense_sweepable(c)),
            "summary": f"{len(cases)} cases, {certified} certified and {convicted} convicted (op, dtype, device) "
                       f"entries, {len(entries) - certified - convicted} not run"}
    coverage = coverage_of(coverage_modules(args.module, args.coverage_modules))
    previous = Path(args.out).read_text() if Path(args.out).exists() else None
    changed = changes(entries, previous, hand_check)
    page = render(entries, notes, hand_checks(entries), meta, harness_notes, coverage, compiled_notes, changed)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(page)
    print(f"{args.out}: {len(entries)} entries in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
