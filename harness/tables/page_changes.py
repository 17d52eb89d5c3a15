"""What a regenerated page changed: the rows whose verdict moved since the page
it replaces, each convicted one with its point checked by hand.

A denser sweep, a search or new special pairs can only add failing points, so a
row that moves from certified to convicted is a finding of the new sweep, and
one that moves the other way is a harness change to explain. Both are listed at
the top of the page, read from the previous page's table (the file about to be
overwritten).
"""

from __future__ import annotations

import re
from typing import Callable

#: A row of a page's table: op, dtype, device (", compiled in ..." when compiled), verdict.
_ROW = re.compile(r"^\| `(?P<op>[^`]+)` \| (?P<dtype>[\w]+) \| (?P<device>[^|]+?) \| (?P<verdict>[^|]+?) \|")


def verdicts(page: str) -> dict[tuple[str, str, bool], bool]:
    """(op, dtype, compiled) -> certified, for every judged row of a page's table.

    Example:
        >>> verdicts("| `torch.exp` | float32 | cpu | certified | 1.0 |\\n"
        ...          "| `torch.exp` | float32 | cpu, compiled in 2.0 s | **convicted** | 9.0 |")
        {('torch.exp', 'float32', False): True, ('torch.exp', 'float32', True): False}
    """
    out = {}
    for line in page.splitlines():
        m = _ROW.match(line)
        if m and ("certified" in m["verdict"] or "convicted" in m["verdict"]):
            key = (m["op"], m["dtype"], "compiled" in m["device"])
            out[key] = m["verdict"].startswith("certified")
    return out


def changes(entries: list, previous: str | None, hand_check: Callable[[object], str | None]) -> list[str]:
    """The page's "What changed" section: rows certified on ``previous`` (the old
    page's text) and convicted now, and the reverse, with the hand check of each
    newly convicted row (``hand_check(entry)``: a row of the hand-check table, or
    None where the op has no hand formula)."""
    head = ["## What changed", ""]
    if previous is None:
        return head + ["No previous page to compare with.", ""]
    before = verdicts(previous)
    convicted, certified = [], []
    for e in entries:
        if e.report is None:
            continue
        old = before.get((e.case.name, e.dtype_name, e.compiled))
        if old is True and not e.ok:
            convicted.append(e)
        elif old is False and e.ok:
            certified.append(e)
    lines = head + [f"Against the page this one replaces: {len(convicted)} rows went from certified to convicted, "
                    f"{len(certified)} from convicted to certified.", ""]
    for e in convicted:
        lines.append(f"- `{e.case.name}` {e.dtype_name}{' compiled' if e.compiled else ''}: certified → "
                     f"convicted ({', '.join(sorted(e.real_kinds or e.report.kinds))}). {_where(e)}")
    for e in certified:
        lines.append(f"- `{e.case.name}` {e.dtype_name}{' compiled' if e.compiled else ''}: convicted → certified.")
    checked = [row for row in (hand_check(e) for e in convicted if not e.compiled) if row]
    if checked:
        lines += ["", "The newly convicted rows' points, checked by hand (columns as in the Hand checks section):", "",
                  "| op | dtype | input | quantity | mpmath | torch | harness truth | harness verdict | agrees |",
                  "|---|---|---|---|---|---|---|---|---|"] + checked
    unchecked = [f"`{e.case.name}` {e.dtype_name}" for e in convicted if not e.compiled and not hand_check(e)]
    if unchecked:
        lines += ["", f"Not checked by hand (no hand formula, or failing at infinite inputs only, where a limit "
                      f"is no formula's value): {', '.join(unchecked)}."]
    return lines + [""]


def _where(entry) -> str:
    report = entry.report
    if report.regions:
        region = max(report.regions, key=lambda r: r.count)
        return f"Largest region: {region.words(report.feature_name)}."
    w = entry.witness
    return (f"Found by the search at {', '.join(f'{n} = {v!r}' for n, v in zip(w.names, w.point))}: {w.quantity} "
            f"{w.claimed:.6g}, truth {w.truth:.6g} [{w.kind}].")
