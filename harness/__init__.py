"""Gradient certification: a claimed backward judged against mpmath truth and
finite differences of its own forward, over extreme-input grids.

Everything public is here; the submodules are internal.
"""

from .inputs import domains, grids
from .case import Case
from .certify import certify
from .errors import CaseError
from .truth.exact import exact
from .judging.expectations import certified, convicted
from .gradcheck.gradcheck import gradcheck, gradgradcheck
from .judging.kinds import KINDS
from .judging.report import Failure, Report
from .search import Witness, worst_input
from .inputs.structure import banded, dense, elementwise
from .inputs.matrix_patterns import matrix_grid

__all__ = [
    "Case", "certify", "domains", "grids", "certified", "convicted", "Report", "Failure",
    "CaseError", "KINDS", "banded", "dense", "elementwise", "worst_input", "Witness", "exact",
    "gradcheck", "gradgradcheck", "matrix_grid",
]
