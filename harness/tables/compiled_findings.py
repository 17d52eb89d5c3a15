"""The accuracy table's compiled findings: the ops whose ``torch.compile``d entry is
judged otherwise than the eager one, why (a case file's ``COMPILED_FINDINGS``: the
decomposition or Inductor lowering responsible, checked against the code Inductor
generated in this run), and a hand check of each one's worst point, calling eager
and compiled torch directly.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from . import hand, hand_structured
from ..claims.execution import (compiled as compile_case, contracted, decomposed, decompositions, differences, generated_code,
                        unvectorized)


class CompiledFinding(NamedTuple):
    """Why an op's compiled verdict differs from eager's: the decomposition
    (torch/_decomp, torch/_refs) or Inductor lowering (torch/_inductor/codegen/cpp.py,
    ``CppVecOverrides``) responsible. ``kernel``: text the code Inductor generates for
    the op must contain; the page quotes the line, or says the cause is stale (None:
    the cause names no line). ``lies_in``: ``"decomposition"`` or ``"inductor"``, where
    the cause puts the difference; the page says so in bold where the measurement at a
    dtype's worst entry (``attribution``) puts it in the other (None: not claimed)."""

    cause: str
    kernel: str | None
    lies_in: str | None = None


#: The cause shared by 16-bit entries that Inductor computes in float32.
HALF_IN_FLOAT = ("Inductor computes the fused 16-bit kernel in float32 (`convert<float>` on load, `convert<"
                 "at::Half>` or `<at::BFloat16>` on store): the backward's intermediate no longer overflows or "
                 "flushes in the 16-bit format as eager's kernel does. A gain, not a defect.")

#: The same gain where the decomposition itself computes in float32: run op by op with eager's
#: kernels it already gives the compiled number.
HALF_IN_DECOMPOSITION = ("The decomposition computes in float32 (`@pw_cast_for_opmath` in torch/_decomp/"
                         "decompositions.py upcasts 16-bit inputs and casts the result back): the intermediate no "
                         "longer overflows or flushes in the 16-bit format as eager's kernel does. A gain, not a "
                         "defect.")

#: The longest quoted line of generated code.
QUOTED = 160


def _note(notes: dict, entry):
    return notes.get((entry.case.name, entry.dtype_name)) or notes.get(entry.case.name)


def _pairs(entries) -> list[tuple]:
    """(eager entry, compiled entry, their differences) where they differ."""
    eager = {(e.case.name, e.dtype, e.device): e for e in entries if not e.compiled and e.report is not None}
    out = []
    for e in entries:
        twin = eager.get((e.case.name, e.dtype, e.device))
        if not e.compiled or e.report is None or twin is None:
            continue
        diff = differences(twin.report, e.report)
        if diff or e.report.kinds != twin.report.kinds:
            out.append((twin, e, diff))
    return out


def _worst(diff):
    """The entry judged most differently: the largest gap in bits (an entry that passes
    on one side counts as 0 bits there)."""
    return max(diff, key=_gap) if diff else None


def kernel_line(entry, note) -> str:
    """The generated line the note's ``kernel`` text names, quoted, or why there is none."""
    if note.kernel is None:
        return ""
    code = generated_code(entry.case, entry.dtype, entry.device)
    if not code:
        return "Inductor's code was not captured in this run."
    for line in code.splitlines():
        if note.kernel in line:
            line = line.strip()
            return f"In the generated code: `{line[:QUOTED]}{' …' if len(line) > QUOTED else ''}`."
    return (f"**`{note.kernel}` is not in the code this build generated: the cause above may be stale** "
            "(see `TORCH_LOGS=output_code`).")


def _verdict_words(report) -> str:
    return "certified" if report.ok else "convicted (" + ", ".join(sorted(report.kinds)) + ")"


def compiled_findings(entries, notes: dict | None = None) -> list[str]:
    """One item per op and cause: the cause from ``notes`` (op, or (op, dtype name)
    -> ``CompiledFinding``) with the generated line it names, then a line per dtype:
    both verdicts, how many entries differ, the worst of them."""
    notes = notes or {}
    groups: dict[tuple, list] = {}
    for twin, e, diff in _pairs(entries):
        note = _note(notes, e)
        groups.setdefault((e.case.name, id(note)), []).append((twin, e, diff, note))
    lines = []
    for (name, _), members in groups.items():
        note = members[0][3]
        dtypes = ", ".join(e.dtype_name for _, e, _, _ in members)
        cause = (f"Cause: {note.cause} {kernel_line(members[0][1], note)}".rstrip() if note else
                 "Cause: not named by hand; where it lies is measured below, per dtype.")
        lines.append(f"- **`{name}`** ({dtypes}). {cause} {_decomposed_ops(members[0][1])}")
        for twin, e, diff, _ in members:
            worst = _worst(diff)
            example = "."
            if worst:
                words, where = attribution(e, worst)
                example = f", e.g. {worst.words()}. {words}{_contradiction(note, where)}"
            lines.append(f"  - {e.dtype_name}: eager {_verdict_words(twin.report)}, compiled "
                         f"{_verdict_words(e.report)}; {len(diff)} entries judged differently{example}")
    return lines


def _decomposed_ops(entry) -> str:
    try:
        ops = decompositions(entry.case, entry.dtype, entry.device)
    except Exception as exc:     # the page says so and goes on
        return f"(Its graphs' decompositions could not be listed: {type(exc).__name__}: {exc}.)"
    if not ops:
        return "No op of its graphs is decomposed: Inductor lowers each one itself."
    return "Decomposed in its graphs: " + ", ".join(f"`{op}`" for op in ops) + "."


def _claims(entry, point, quantity: str, subjects) -> list[float]:
    """torch's number for ``quantity`` at ``point`` from each case of ``subjects``, called
    directly as the hand checks call it (64 copies of an elementwise point; a structured
    point's arrays with the harness's cotangent), on the harness's one thread."""
    names = entry.case.names_for(len(point))
    if entry.case.elementwise:
        index = 0 if quantity in ("value", "gradient") else names.index(quantity.removeprefix("d/d"))
        values = [float(np.asarray(v, dtype=np.float64)) for v in point]
        return [hand._torch_at(c, values, entry.dtype, index)[0 if quantity == "value" else 1] for c in subjects]
    return [hand_structured.torch_at(c, point, entry.dtype, quantity, names)[0] for c in subjects]


def _same(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


#: What each outcome of ``attribution`` says.
WHERE = {
    "decomposition": "the decomposition's formula gives the compiled number",
    "inductor": "the decomposition gives eager's number: Inductor's generated code makes the difference",
    "neither": "torch called directly gives one number three ways: the difference is not reproduced outside the run",
    "both": "the decomposition already differs from eager, and Inductor's code again",
}
#: What the unvectorized compile adds where Inductor's code makes the difference.
VECTORIZED = {
    True: "; unvectorized (`cpp.simdlen = 1`) it gives eager's number: the vectorized code makes it (vector math "
          "functions, reductions in lanes and then a tree)",
    False: "; unvectorized (`cpp.simdlen = 1`) it still gives the compiled number: the scalar code makes it too",
}


def attribution(entry, d) -> tuple[str, str | None]:
    """Where the compiled difference at entry ``d`` lies, measured: eager, Inductor's
    decompositions run with eager's kernels (``execution.decomposed``), and compiled torch
    at the point, and on CPU where Inductor's code makes it, that code unvectorized
    (``execution.unvectorized``). The sentence, and a key of ``WHERE`` (None where it
    could not be run)."""
    try:
        compiled_case, _ = compile_case(entry.case, entry.dtype, entry.device)
        subjects = (entry.case, decomposed(entry.case, entry.dtype, entry.device), compiled_case)
        eager, middle, compiled = _claims(entry, d.point, d.quantity, subjects)
    except Exception as exc:     # one op's measurement never takes the page down
        return f"Decomposed run: raised {type(exc).__name__}: {exc}.", None
    if _same(middle, compiled) and not _same(middle, eager):
        where = "decomposition"
    elif _same(middle, eager) and not _same(middle, compiled):
        where = "inductor"
    else:
        where = "neither" if _same(eager, compiled) else "both"
    numbers, detail = f"eager {eager!r}, decomposed {middle!r}, compiled {compiled!r}", ""
    if where == "inductor" and entry.device == "cpu":
        try:
            (scalar,) = _claims(entry, d.point, d.quantity, (unvectorized(entry.case, entry.dtype, entry.device),))
        except Exception as exc:
            detail = f"; unvectorized it raised {type(exc).__name__}: {exc}"
        else:
            numbers += f", unvectorized {scalar!r}"
            if _same(scalar, eager) or _same(scalar, compiled):
                detail = VECTORIZED[_same(scalar, eager)]
            else:
                detail = "; unvectorized it gives a third number"
            if _same(scalar, compiled):
                detail += _contraction(entry, d, eager)
    return f"There, torch gives {numbers}: {WHERE[where]}{detail}.", where


def _contraction(entry, d, eager: float) -> str:
    """Where Inductor's scalar code makes the difference: whether fma contraction, which
    eager's kernels are built with and Inductor's are not, accounts for it."""
    try:
        (fused,) = _claims(entry, d.point, d.quantity, (contracted(entry.case, entry.dtype, entry.device),))
    except Exception as exc:
        return f"; with contraction it raised {type(exc).__name__}: {exc}"
    if _same(fused, eager):
        return ("; with multiply-adds contracted into fma (`-ffp-contract=fast`; Inductor's default is off) it gives "
                "eager's number: the difference is the contraction")
    return f"; with multiply-adds contracted into fma it gives {fused!r}, not eager's number"


def _contradiction(note, where: str | None) -> str:
    """A bold warning where the measurement puts the difference elsewhere than the cause does."""
    if note is None or note.lies_in is None or where not in ("decomposition", "inductor") or where == note.lies_in:
        return ""
    place = {"decomposition": "the decomposition", "inductor": "Inductor's generated code"}
    return (f" **The cause above puts the difference in {place[note.lies_in]}; measured, it lies in "
            f"{place[where]}: the cause does not hold for this dtype.**")


def _recorded(report, point, quantity):
    """The failure a report holds for (point, quantity), or None where it passed."""
    key = tuple(np.asarray(a, dtype=np.float64).tobytes() for a in point)
    for f in report.failures:
        if f.quantity == quantity and tuple(np.asarray(a, dtype=np.float64).tobytes() for a in f.point) == key:
            return f
    return None


def hand_check(twin, entry, diff) -> str | None:
    """A row re-evaluating the worst finite entry the two verdicts judge differently:
    plain mpmath (``hand.HAND``, or ``hand_structured`` for a structured
    op), eager torch and compiled torch called on the point; None without a hand
    formula."""
    name = entry.case.name
    structured = name in hand_structured.HAND
    if name not in hand.HAND and not structured:
        return None
    for d in sorted((d for d in diff if hand_structured.finite(d.point)), key=_gap, reverse=True)[:TRIED]:
        try:
            return _hand_row(twin, entry, d, structured)
        except (ZeroDivisionError, ValueError):     # the hand formula is undefined there (a zero row)
            continue
    return None


#: Differing entries tried, worst first, until the hand formula is defined at one.
TRIED = 8


def _gap(d) -> float:
    return abs(np.nan_to_num(d.compiled_bits) - np.nan_to_num(d.eager_bits))


def _hand_row(twin, entry, d, structured: bool) -> str:
    name = entry.case.name
    names = entry.case.names_for(len(d.point))
    compiled_case, _ = compile_case(entry.case, entry.dtype, entry.device)
    claims = []
    if structured:
        # Torch on the point's arrays with the harness's cotangent, and the VJP derived by hand.
        for case in (entry.case, compiled_case):
            claim, cotangent = hand_structured.torch_at(case, d.point, entry.dtype, d.quantity, names)
            claims.append(claim)
        exact = hand_structured.exact_at(name, d.point, d.quantity, names, cotangent)
        point = ", ".join(hand._array_words(a) for a in d.point)
    else:
        f, derivatives = hand.HAND[name]
        index = 0 if d.quantity in ("value", "gradient") else names.index(d.quantity.removeprefix("d/d"))
        values = [float(v) for v in d.point]
        exact = hand._evaluate(f if d.quantity == "value" else derivatives[index], values)
        for case in (entry.case, compiled_case):
            value, grad = hand._torch_at(case, values, entry.dtype, index)
            claims.append(value if d.quantity == "value" else grad)
        point = ", ".join(repr(v) for v in values)
    records = [_recorded(twin.report, d.point, d.quantity), _recorded(entry.report, d.point, d.quantity)]
    truth = next(r.truth for r in records if r is not None)
    agrees = hand._same(hand._round(exact, entry.dtype), truth) and all(
        r is None or hand._same(claim, r.claimed) for claim, r in zip(claims, records))
    verdict = f"eager {_side(d.eager, d.eager_bits)}, compiled {_side(d.compiled, d.compiled_bits)}"
    return (f"| `{name}` | {entry.dtype_name} | ({point}) | {d.quantity} | {hand._shown(exact)} | {claims[0]!r} | "
            f"{claims[1]!r} | {verdict} | {'yes' if agrees else '**no**'} |")


def _side(kind: str, bits: float) -> str:
    return kind if kind == "ok" or math.isnan(bits) else f"{kind} ({bits:.1f} bits)"


def hand_checks(entries) -> list[str]:
    """A row per (op, dtype) whose compiled entry differs from eager's and whose op has
    a hand formula."""
    rows = []
    for twin, entry, diff in _pairs(entries):
        try:
            row = hand_check(twin, entry, diff)
        except Exception as exc:     # one op's check never takes the page down; the row says why
            row = f"| `{entry.case.name}` | {entry.dtype_name} | | | hand check raised {type(exc).__name__}: {exc} | | | | |"
        if row:
            rows.append(row)
    head = ["| op | dtype | input | quantity | mpmath | torch eager | torch compiled | harness verdict | agrees |",
            "|---|---|---|---|---|---|---|---|---|"]
    return head + rows if rows else ["No compiled entry judged otherwise than eager's has a hand formula."]
