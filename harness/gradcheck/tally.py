"""How each ``harness.gradcheck`` call was judged, for the line a pytest
session ends with: "N gradcheck calls: M against the truth, K by differences
only (reasons)". A call judged by differences alone passes like any other,
so the count is what tells a suite how much of it the truth has seen.

No torch here: the plugin reads the tally in every session.
"""

from __future__ import annotations

from collections import Counter

#: How a call was judged: every certification against a truth; some only by
#: finite differences of the function's own forward (no truth for them); by
#: ``torch.autograd.gradcheck`` (complex or sparse inputs).
TRUTH, DIFFERENCES, TORCH = "truth", "differences", "torch"

_CALLS: list[tuple[str, str | None]] = []


def record(how: str, why: str | None = None) -> None:
    _CALLS.append((how, None if why is None else short(why)))


def take() -> list[tuple[str, str | None]]:
    """The calls recorded since the last ``take``."""
    calls = list(_CALLS)
    _CALLS.clear()
    return calls


def short(why: str) -> str:
    """A reason short enough to count: the error type for ``exact``'s
    exceptions, else the reason's first clause.

    Example:
        >>> short("harness.exact raised TypeError: Input type is not a torch.Tensor")
        'harness.exact raised TypeError'
    """
    first = why.splitlines()[0] if why else ""
    if first.startswith("harness.exact raised "):
        return first.split(":")[0]
    for stop in ("; ", " ("):
        first = first.split(stop)[0]
    return first[:80]


def summary(calls: list) -> str | None:
    """The session's line, None without calls.

    Example:
        >>> summary([("truth", None), ("differences", "no rule for conv2d"), ("truth", None)])
        '3 gradcheck calls: 2 against the truth, 1 by differences only (1 no rule for conv2d)'
    """
    if not calls:
        return None
    hows = Counter(how for how, _ in calls)
    line = f"{len(calls)} gradcheck calls: {hows[TRUTH]} against the truth, {hows[DIFFERENCES]} by differences only"
    line += _reasons(calls, DIFFERENCES)
    if hows[TORCH]:
        line += f", {hows[TORCH]} by torch.autograd.gradcheck" + _reasons(calls, TORCH)
    return line


def _reasons(calls: list, how: str) -> str:
    why = Counter(w for h, w in calls if h == how)
    return f" ({', '.join(f'{n} {w}' for w, n in why.most_common())})" if why else ""
