"""Truth: what the derivatives really are, proven or verified at high precision.

Two engines and their plumbing. ``ball`` proves truths of ``exact`` formulas by
Arb enclosures over a whole grid (the stand-in ``exact_ball``, its rules
``exact_ball_rules``, the jets ``ball_jet``); ``point`` verifies the rest point by
point in mpmath, by differences (``mpmath_engine``) or by forward-mode rules
(``derivative_truth`` over the dual numbers of ``dual``), with the limits at ±inf
and the points holding NaN. ``exact`` makes a
reference written in torch exact (``exact_tensor``, its operations, the numbers
``exact_numbers``; linear algebra in ``exact_linalg`` for balls and
``exact_linalg_ops`` for mpmath). Around them: the flat form of a reference (``flat_reference``),
the units of a certification and their cache keys (``units``), what is missing
and how it is solved (``solve``, over the pool ``pool``), the records
(``table``) and the sqlite cache (``cache``). Entry points: ``solve``, ``exact``,
``cache``. Nothing here runs torch's autograd.

mpmath's ``exp`` of a huge integer is routed through its own argument
reduction at import (``mpmath_exp``): the readings of limits at ±inf.
"""

from .mpmath_exp import install as _install_exp

_install_exp()
