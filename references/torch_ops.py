"""PyTorch's elementwise functions as plain mathematics, for the ops that
``harness.exact`` has no table entry for (or where the formula reads better
written out).

Each takes ``mpf`` inputs and returns an ``mpf``. They are the mathematical
functions torch documents, not torch's formulas: ``sinc`` is the normalized
``sin(pi x) / (pi x)``, ``gelu`` is ``x Phi(x)``, ``selu`` uses torch's own
constants. Where a textbook form would need thousands of bits to resolve
(``log(ndtr(x))`` for large ``x`` is ``log`` of a number within ``1e-350``
of 1), the form below is the same function written so that mpmath resolves it
at the working precision; the truth engine would get there by raising the
precision, only slower.
"""

from __future__ import annotations

import flint
import mpmath

#: ``torch.nn.functional.selu``'s constants, the float64 literals of ATen's
#: ``SELU_ALPHA`` and ``SELU_SCALE`` (Klambauer et al., "Self-Normalizing
#: Neural Networks", 2017, give them to more digits; torch uses these doubles).
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


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


def log_ndtr(x):
    """``log Phi(x)``; above 0 as ``log1p(-Phi(-x))``, since ``Phi(x)`` is
    then within ``Phi(-x)`` of 1 and its ``log`` is that small.

    Example:
        >>> mpmath.nstr(log_ndtr(mpmath.mpf(40)), 5)
        '-3.6559e-350'
    """
    if x > 0:
        return mpmath.log1p(-ndtr(-x))
    return mpmath.log(ndtr(x))


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


def erfcx(x):
    """The scaled complementary error function ``exp(x**2) erfc(x)``.

    Example:
        >>> erfcx(mpmath.mpf(0))
        mpf('1.0')
    """
    return mpmath.exp(x * x) * mpmath.erfc(x)


def i0(x):
    """The modified Bessel function of the first kind, order 0."""
    return mpmath.besseli(0, x)


def i1(x):
    """The modified Bessel function of the first kind, order 1."""
    return mpmath.besseli(1, x)


def i0e(x):
    """``exp(-|x|) I0(x)``.

    Example:
        >>> i0e(mpmath.mpf(0))
        mpf('1.0')
    """
    return mpmath.exp(-abs(x)) * mpmath.besseli(0, x)


def i1e(x):
    """``exp(-|x|) I1(x)``."""
    return mpmath.exp(-abs(x)) * mpmath.besseli(1, x)


def sinc(x):
    """torch's (normalized) sinc, ``sin(pi x) / (pi x)``, 1 at 0.

    Example:
        >>> sinc(mpmath.mpf(0)), sinc(mpmath.mpf(3))
        (mpf('1.0'), mpf('0.0'))
    """
    return mpmath.sincpi(x)


def trigamma(x):
    """``polygamma(1, x)``, the derivative of ``digamma``."""
    return mpmath.psi(1, x)


def mvlgamma2(x):
    """The multivariate log-gamma of dimension 2, ``log(pi)/2 + lgamma(x) + lgamma(x - 1/2)``
    (defined for ``x > 1/2``)."""
    return mpmath.log(mpmath.pi) / 2 + mpmath.loggamma(x) + mpmath.loggamma(x - mpmath.mpf(0.5))


def gelu(x):
    """``x Phi(x)``, the exact GELU (Hendrycks and Gimpel, 2016)."""
    return x * ndtr(x)


def elu(x):
    """ELU and CELU with ``alpha = 1``: ``x`` above 0, ``expm1(x)`` below."""
    return x if x > 0 else mpmath.expm1(x)


def selu(x):
    """``SELU_SCALE * (x if x > 0 else SELU_ALPHA * expm1(x))``; a kink at 0
    (slope ``SELU_SCALE`` on the right, ``SELU_SCALE * SELU_ALPHA`` on the left)."""
    scale, alpha = mpmath.mpf(SELU_SCALE), mpmath.mpf(SELU_ALPHA)
    return scale * (x if x > 0 else alpha * mpmath.expm1(x))


def softsign(x):
    """``x / (1 + |x|)``."""
    return x / (1 + abs(x))


def logit(p):
    """``log(p / (1 - p))`` on ``(0, 1)``, as ``log(p) - log1p(-p)``."""
    return mpmath.log(p) - mpmath.log1p(-p)


def entr(x):
    """The entropy term ``-x log x`` (``x > 0``)."""
    return -x * mpmath.log(x)


def hardsigmoid(x):
    """``relu6(x + 3) / 6``: kinks at -3 and 3."""
    return min(max(x + 3, 0), 6) / mpmath.mpf(6)


def hardswish(x):
    """``x relu6(x + 3) / 6`` (Howard et al., "Searching for MobileNetV3"): kinks at -3 and 3."""
    return x * hardsigmoid(x)


def tanhshrink(x):
    """``x - tanh(x)``."""
    return x - mpmath.tanh(x)
