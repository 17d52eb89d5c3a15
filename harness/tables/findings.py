"""An op's finding on an accuracy page: why it fails, and what to use instead.

Each case file of the tables (cases/torch_ops.py, torch_structured.py,
torch_linalg.py) keeps a ``FINDINGS`` mapping of case names to these; the
page (``accuracy_table``) prints the cause, the alternative's verdicts and the
fix, and files ``edge`` findings apart from those in ordinary ranges.
"""

from __future__ import annotations

from typing import NamedTuple


class Finding(NamedTuple):
    """Why an op fails (the formula in torch responsible) and what to use
    instead: ``alternative`` names a certified case of the same file, ``fix``
    says it in words where none is certified there. ``edge``: the defect lives
    only at ±inf, the overflow edge or subnormal inputs."""

    cause: str
    alternative: str | None = None
    fix: str | None = None
    edge: bool = False
