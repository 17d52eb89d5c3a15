"""Hand-written mpmath references of a few of PyTorch's elementwise functions,
kept where a test wants a reference independent of ``harness.exact``:
``ndtr`` and ``ndtri`` (Arb's ``erfcinv``, tests/tables/test_accuracy_table.py)
and ``hardsigmoid`` (tests/claims/test_execution.py). The cases of
cases/torch_ops.py use exact formulas, ``harness.exact`` of the op itself.

Each takes ``mpf`` inputs and returns an ``mpf``: the mathematical function torch
documents, written so that mpmath resolves it at the working precision.
"""

from __future__ import annotations

import flint
import mpmath


def _arb(v) -> "flint.arb":
    """``v`` (an ``mpf``) as an exact ball, at the precision ``_in_arb`` set."""
    sign, man, exp, _ = mpmath.mpf(v)._mpf_   # (mpf's man_exp drops the sign)
    return flint.arb(flint.fmpz(-int(man) if sign else int(man))) * flint.arb(2) ** int(exp)


def _in_arb(fn, *args):
    """``fn`` of ``args`` in Arb (python-flint) at the working precision and 32
    bits more, its ball's midpoint rounded to the working precision. A ball
    not that accurate is an error (the truth engine reports it with the
    point), never a number."""
    saved = flint.ctx.prec
    flint.ctx.prec = mpmath.mp.prec + 32
    try:
        out = fn(*map(_arb, args))
        if out.rel_accuracy_bits() < mpmath.mp.prec:
            raise ArithmeticError(f"Arb's ball {out} is not accurate to {mpmath.mp.prec} bits")
        man, exp = out.mid().man_exp()
    finally:
        flint.ctx.prec = saved
    return +mpmath.ldexp(int(man), int(exp))


def ndtr(x):
    """The standard normal CDF ``Phi(x) = erfc(-x / sqrt 2) / 2``: ``erfc``
    has no ``1 + erf(x)`` to cancel for ``x << 0``.

    Example:
        >>> ndtr(mpmath.mpf(0))
        mpf('0.5')
    """
    return mpmath.erfc(-x / mpmath.sqrt(2)) / 2


def ndtri(p):
    """The inverse of ``ndtr`` on ``(0, 1)``: ``-sqrt 2 erfcinv(2p)``.

    ``erfcinv`` keeps ``p`` at any size (``2p`` is exact), where ``sqrt 2
    erfinv(2p - 1)`` would need ``log2(1/p)`` bits to keep it (1075 for a
    subnormal). mpmath has no ``erfcinv``: Arb's (``_in_arb``).

    Example:
        >>> mpmath.nstr(ndtri(mpmath.mpf(0.025)), 6)
        '-1.95996'
    """
    if not 0 < p < 1:
        return -mpmath.inf if p == 0 else mpmath.inf if p == 1 else mpmath.nan
    return _in_arb(lambda a: -flint.arb(2).sqrt() * (2 * a).erfcinv(), p)


def hardsigmoid(x):
    """``relu6(x + 3) / 6``: kinks at -3 and 3."""
    return min(max(x + 3, 0), 6) / mpmath.mpf(6)
