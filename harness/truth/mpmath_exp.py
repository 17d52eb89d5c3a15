"""mpmath's ``exp`` of a huge integer by the argument reduction it uses for every other number.

mpmath 1.3's ``mpf_exp`` takes ``exp(n)`` of an integer ``n`` at more than 600
bits as ``e**n`` by repeated squaring (``mpf_pow_int``): at ``n = ±2**2400``, a
reading of a limit at ±inf (``limits.FAR``), that is 2,400 squarings of
numbers of 4,000 bits, 16 ms a call; one IW-ELBO truth at a weight of -inf made
5,000 of them (15 s a point). Every other argument goes through the reduction
``n = k ln 2 + t``, ``exp(n) = 2**k exp(t)``, with ``mag(n)`` guard bits for the
``ln 2`` that ``k`` multiplies: as accurate, and 0.1 ms. This module sends
integers there too (``install``, once, at the truth engine's import).

Nothing here is a claim: each truth is still accepted only when two readings
at different precisions agree (``mpmath_engine``, ``derivative_truth``); the
reduction changes the time a reading takes, not what is accepted. Where
mpmath's internals are not the ones this was written against, nothing is
replaced.
"""

from __future__ import annotations

import sys

import mpmath
from mpmath import libmp
from mpmath.libmp import libelefun

#: mpmath's own cut: below it, its ``mpf_exp`` already reduces integers.
SQUARING_ABOVE_BITS = 600

_ORIGINAL = libelefun.mpf_exp


def mpf_exp(x, prec, rnd="n"):
    """``libelefun.mpf_exp``, with integers above ``SQUARING_ABOVE_BITS`` reduced as other numbers are."""
    sign, man, exp, bc = x
    if not (man and exp >= 0 and prec > SQUARING_ABOVE_BITS):
        return _ORIGINAL(x, prec, rnd)
    mag = bc + exp
    wp = prec + 14
    # As mpf_exp's own branch for |x| >= 2: exp(2**mag (1 + eps)) needs mag
    # more bits of t for eps, hence of ln 2 for k ln 2.
    wpmod = wp + mag
    t = (-man if sign else man) << (exp + wpmod)
    k, t = divmod(t, libelefun.ln2_fixed(wpmod))
    return libmp.from_man_exp(libelefun.exp_basecase(t >> mag, wp), int(k) - wp, prec, rnd)


def _compatible() -> bool:
    return all(hasattr(libelefun, name) for name in ("ln2_fixed", "exp_basecase")) and \
        hasattr(libmp, "from_man_exp") and getattr(mpmath.mp, "exp", None) is getattr(mpmath, "exp", None)


def install() -> bool:
    """Route mpmath's ``exp`` (and its internal callers) through ``mpf_exp``; True when it did."""
    if libelefun.mpf_exp is mpf_exp:
        return True
    if not _compatible():
        return False
    for name, module in list(sys.modules.items()):
        if name.startswith("mpmath") and getattr(module, "mpf_exp", None) is _ORIGINAL:
            module.mpf_exp = mpf_exp
    mpmath.mp.exp = mpmath.mp._wrap_libmp_function(mpf_exp, libmp.mpc_exp)
    mpmath.exp = mpmath.mp.exp
    return True
