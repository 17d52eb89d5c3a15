"""Ball jets: a value and its partial derivatives, all Arb balls.

A ``Jet`` holds one part per quantity (the value ``v`` and the partials ``d``
along each input direction), each a numpy object array of python-flint
``arb`` balls over a grid of points (or one ball for a constant). Each operation takes part through its rule: the derivatives
of its result at its arguments (``_UNARY`` for one argument, ``_binary_rule``
for two, ``add``, ``mul`` and ``div`` written out). A number near 1 carries
its distance from 1 (``m1``), intersected with the plain ball wherever both
exist: ``1 - sigmoid(1e30)`` is ``sigmoid(-1e30)``, not ``1 ± 2**-prec``.

The rules say why they are written as they are where another form would lose
digits; the stand-in that applies them to a formula is ``harness.truth.exact_ball``.
"""

from __future__ import annotations

import contextlib

import flint
import numpy as np

arb = flint.arb


class BallUnsupported(NotImplementedError):
    """The formula uses something the ball stand-in does not implement."""

# -- elementwise helpers -------------------------------------------------------------------------------------

def _is_array(v) -> bool:
    return isinstance(v, np.ndarray)


def _vectorized(f, nin: int, nout: int):
    return np.frompyfunc(f, nin, nout)


def _each(f, *args, nout: int = 1):
    """``f`` of the elements (arrays broadcast, scalars as they are)."""
    if not any(_is_array(a) for a in args):
        return f(*args)
    return _vectorized(f, len(args), nout)(*args)


def _plus(a, b):
    if a is None:
        return b
    if b is None:
        return a
    return a + b


#: Whether jets carry the absolute values of their derivatives' terms
#: (``absolute_paths``), not the derivatives.
ABSOLUTE = [False]


@contextlib.contextmanager
def absolute_paths():
    """Jets evaluated inside carry, per direction, the sum over paths of
    ``|product of the partials along it|`` (``harness.truth.dual.absolute_paths``
    in balls): every product of a partial and a derivative part takes both by
    absolute value, and a negation leaves a derivative part as it is."""
    saved = ABSOLUTE[0]
    ABSOLUTE[0] = True
    try:
        yield
    finally:
        ABSOLUTE[0] = saved


def _times(a, b):
    """``a * b`` where None is an exact 0 (of absolute values, ``absolute_paths``)."""
    if a is None or b is None:
        return None
    if ABSOLUTE[0]:
        return abs(a) * abs(b)
    return a * b


def _const(c) -> arb:
    if isinstance(c, arb):
        return c
    if isinstance(c, bool):
        return arb(int(c))
    if isinstance(c, (int, float)):
        return arb(c)
    raise BallUnsupported(f"a {type(c).__name__} as a number")


# -- jets ------------------------------------------------------------------------------------------------------

class Jet:
    """A value with its partial derivatives along ``n`` inputs, each an array
    of balls over the grid (or one ball for a constant), None where
    identically 0. ``m1`` is ``v - 1`` where it is known better than ``v``
    itself (None otherwise)."""

    __slots__ = ("v", "d", "m1")

    def __init__(self, v, d: tuple, m1=None):
        self.v, self.d, self.m1 = v, d, m1

    @classmethod
    def constant(cls, c, n: int) -> "Jet":
        v = _const(c)
        return cls(v, (None,) * n, v - 1)

    @property
    def n(self) -> int:
        return len(self.d)


def _chain(a: Jet, f0, f1, m1=None) -> Jet:
    """``f(a)`` from ``f`` and ``f'`` at ``a``'s value."""
    return Jet(f0, tuple(_times(f1, t) for t in a.d), m1)


def _chain2(a: Jet, b: Jet, f0, fa, fb) -> Jet:
    """``f(a, b)`` from its partials at the values."""
    return Jet(f0, tuple(_plus(_times(fa, x), _times(fb, y)) for x, y in zip(a.d, b.d)))


def _intersect(a, b):
    """Both balls hold the number: their intersection does too, and is the
    tighter (``1 - s`` read as ``(1 - 1) - (s - 1)`` where ``s`` carries its
    distance from 1). Disjoint balls would be a bug in a rule: the wider one stands."""
    return _each(_tighter, a, b)


def _add(a: Jet, b: Jet) -> Jet:
    m1 = None
    if a.m1 is not None and b.m1 is not None:
        # 1 + exp(x): the constant's distance is an exact 0, and exp(x) itself the distance of the sum.
        if not _is_array(a.m1) and a.m1.is_zero():
            m1 = b.v
        elif not _is_array(b.m1) and b.m1.is_zero():
            m1 = a.v
        else:
            m1 = _intersect(a.m1 + b.v, a.v + b.m1)
    elif a.m1 is not None:
        m1 = a.m1 + b.v
    elif b.m1 is not None:
        m1 = a.v + b.m1
    return Jet(a.v + b.v, tuple(_plus(x, y) for x, y in zip(a.d, b.d)), m1)


def _neg(a: Jet) -> Jet:
    return Jet(-a.v, tuple(t if t is None or ABSOLUTE[0] else -t for t in a.d))


def _sub(a: Jet, b: Jet) -> Jet:
    out = _add(a, _neg(b))
    # Two numbers near 1: their difference is the difference of their
    # distances from 1, exact where the distances are (1 - sigmoid(30)).
    if a.m1 is not None and b.m1 is not None:
        out.v = _intersect(out.v, a.m1 - b.m1)
    out.m1 = a.m1 - b.v if a.m1 is not None else None
    return out


def _mul(a: Jet, b: Jet) -> Jet:
    d = tuple(_plus(_times(a.v, y), _times(b.v, x)) for x, y in zip(a.d, b.d))
    m1 = None
    if a.m1 is not None and b.m1 is not None:
        m1 = a.m1 * b.m1 + a.m1 + b.m1
    return Jet(a.v * b.v, d, m1)


def _reciprocal(a: Jet) -> Jet:
    def rule(x, u):
        r = 1 / x
        return r, -r * r, (None if u is None else -u * r)
    return _unary_rule(rule)(a)


def _div(a: Jet, b: Jet) -> Jet:
    out = _mul(a, _reciprocal(b))
    if not any(t is not None for t in b.d):   # by a constant: one rounding, not two
        out.v = _intersect(out.v, a.v / b.v)
    if a.m1 is not None and b.m1 is not None:
        out.m1 = (a.m1 - b.m1) / b.v
    return out


def _unary_rule(rule):
    """A jet function from ``rule(x, u) -> (f, f', f - 1 or None)`` of one
    ball ``x`` (``u``: ``x - 1`` where known, else None)."""
    def f(a: Jet) -> Jet:
        u = a.m1
        if _is_array(a.v) or _is_array(u):
            f0, f1, m1 = _vectorized(rule, 2, 3)(a.v, u)
            if any(m is None for m in np.ravel(m1)):
                m1 = None
        else:
            f0, f1, m1 = rule(a.v, u)
        return _chain(a, f0, f1, m1)
    return f


# -- the rules (each says why it is written as it is where another form would lose digits) -------------------

def _sigmoid_pair(x):
    """``(sigmoid(x), sigmoid(-x))``, each from its own exp: ``1 - sigmoid(x)``
    would cancel for large x."""
    return 1 / (1 + (-x).exp()), 1 / (1 + x.exp())


def _exp(x, u):
    e = x.exp()
    return e, e, x.expm1()


def _expm1(x, u):
    e = x.exp()
    return x.expm1(), e, None


def _exp2(x, u):
    ln2 = arb.const_log2()
    # 2**k is exact at an integer k; exp(k ln 2) is a ball around it, which
    # cannot decide where 2**k is a narrower format's midpoint.
    exact = x.is_exact() and x.is_integer() and abs(x) < 1 << 20
    p = arb(2) ** x if exact else (x * ln2).exp()
    return p, p * ln2, (x * ln2).expm1()


def _log2(x, u):
    v, r, _ = _log(x, u)
    ln2 = arb.const_log2()
    if x.is_exact() and x > 0 and x.man_exp()[0] == 1:
        # log2(2**k) = k exactly (-606 is a bfloat16 midpoint: a ball around it never decides).
        return arb(x.man_exp()[1]), r / ln2, None
    return v / ln2, r / ln2, None


def _tighter(a, b):
    """The intersection of two enclosures of one number, or the one that is finite."""
    if not b.is_finite():
        return a
    if not a.is_finite():
        return b
    try:
        return a.intersection(b)
    except ValueError:
        return a if a.rad() < b.rad() else b


def _log(x, u):
    r = 1 / x
    # log of a number near 1 is log1p of its distance from 1; near 0 the distance
    # holds -1 and the number itself is the better enclosure (both enclose it).
    v = u.log1p() if u is not None and u.is_finite() and abs(u) < 0.5 else x.log()
    return v, r, None


def _log_base(base_log):
    def rule(x, u):
        v, r, _ = _log(x, u)
        c = base_log()
        return v / c, r / c, None
    return rule


def _log1p(x, u):
    r = 1 / (1 + x)
    return x.log1p(), r, None


def _sqrt(x, u):
    s = x.sqrt()
    r = 1 / (2 * s)
    return s, r, (None if u is None else u / (s + 1))


def _rsqrt(x, u):
    r = x.rsqrt()
    return r, -r / (2 * x), None


def _sigmoid(x, u):
    s, t = _sigmoid_pair(x)
    # 1 - 2s is -tanh(x/2): no cancellation near 0.
    return s, s * t, -t


def _logsigmoid(x, u):
    s, t = _sigmoid_pair(x)
    return -(-x).exp().log1p(), t, None


def _tanh(x, u):
    c = x.cosh()
    sech2 = 1 / (c * c)   # 1 - tanh**2 cancels for large |x|
    t = x.tanh()
    _, minus = _sigmoid_pair(2 * x)
    return t, sech2, -2 * minus   # tanh(x) - 1 = -2 sigmoid(-2x)


def _sinh(x, u):
    s, c = x.sinh(), x.cosh()
    return s, c, None


def _cosh(x, u):
    s, c = x.sinh(), x.cosh()
    half = (x / 2).sinh()
    return c, s, 2 * half * half   # cosh(x) - 1 = 2 sinh(x/2)**2


def _asinh(x, u):
    r = (1 + x * x).rsqrt()
    return x.asinh(), r, None


def _acosh(x, u):
    r = ((x - 1) * (x + 1)).rsqrt()   # x*x - 1 rounds at x near 1; the factors are exact
    return x.acosh(), r, None


def _atanh(x, u):
    w = (1 - x) * (1 + x)
    return x.atanh(), 1 / w, None


def _sin(x, u):
    s, c = x.sin(), x.cos()
    return s, c, None


def _cos(x, u):
    s, c = x.sin(), x.cos()
    half = (x / 2).sin()
    return c, -s, -2 * half * half   # cos(x) - 1 = -2 sin(x/2)**2


def _tan(x, u):
    t = x.tan()
    c = x.cos()
    d = 1 / (c * c)
    return t, d, None


def _asin(x, u):
    r = ((1 - x) * (1 + x)).rsqrt()
    return x.asin(), r, None


def _acos(x, u):
    r = ((1 - x) * (1 + x)).rsqrt()
    return x.acos(), -r, None


def _atan(x, u):
    w = 1 + x * x
    return x.atan(), 1 / w, None


def _erf(x, u):
    g = 2 * arb.pi().rsqrt() * (-x * x).exp()
    return x.erf(), g, -x.erfc()


def _erfc(x, u):
    g = 2 * arb.pi().rsqrt() * (-x * x).exp()
    return x.erfc(), -g, -x.erf()


def _erfinv(x, u):
    w = x.erfinv()
    d = arb.pi().sqrt() / 2 * (w * w).exp()
    return w, d, None


def _exp_far(y):
    """``exp(y)`` for ``y >= 0`` of any size. Arb reduces exp's argument by log 2
    at the working precision and gives up (an infinite ball) from ``y = 2**(2 prec)``
    on; erfcx(-1e300) needs exp(1e600), past every format but proven so only by
    its ball: the argument is reduced with the bits of its exponent."""
    man, exp = y.mid().man_exp()
    bits = (int(man).bit_length() + int(exp)) // 2 + 16
    if bits <= flint.ctx.prec:
        return y.exp()
    with flint.ctx.workprec(bits):
        return y.exp()


def _erfcx_pair(x):
    """``(erfcx(x), erfcx'(x))``, ``erfcx(x) = exp(x**2) erfc(x)``.

    Above 0 both are Tricomi's U (DLMF 7.11.4 with 13.6.7: ``erfcx(x) =
    U(1/2, 1/2, x**2) / sqrt(pi)``, and ``dU/dz = -a U(a + 1, b + 1, z)``): no
    exp(x**2) to multiply by an erfc just as small, and no ``2 x erfcx(x) -
    2/sqrt(pi)``, which cancels to ``-1/(sqrt(pi) x**2)``. At or below 0 erfc(x)
    is in [1, 2] and both terms of the derivative are negative: nothing cancels."""
    c = arb.pi().rsqrt()
    if x > 0:
        z = x * x
        return z.hypgeom_u(0.5, 0.5) * c, -x * z.hypgeom_u(1.5, 1.5) * c
    e = _exp_far(x * x) * x.erfc()
    return e, 2 * x * e - 2 * c


def _erfcx(x, u):
    e, d = _erfcx_pair(x)
    return e, d, None


def _normal_density(x):
    return (-(x * x) / 2).exp() / (2 * arb.pi()).sqrt()


def _ndtr(x, u):
    # Phi(x) = erfc(-x/sqrt 2)/2: no 1 + erf(x/sqrt 2) to cancel below 0; and
    # Phi(x) - 1 = -Phi(-x), its own erfc, where Phi(x) rounds to 1.
    r = arb(2).rsqrt()
    return (-x * r).erfc() / 2, _normal_density(x), -(x * r).erfc() / 2


def _log_ndtr(x, u):
    """``log Phi(x)``. Above 0 it is ``log1p(-Phi(-x))``: Phi(x) is within
    Phi(-x) of 1. At or below 0 it is ``log(erfcx(z) / 2) - z**2`` with
    ``z = -x/sqrt 2 >= 0``: erfc(z) itself is exp(-z**2) times erfcx(z), a ball
    about 0 beyond Arb's exp, and both terms are negative (erfcx(z) <= 1). The
    derivative phi/Phi is ``sqrt(2/pi) / erfcx(z)`` there, phi(x) / Phi(x) above
    0 (Phi >= 1/2)."""
    r = arb(2).rsqrt()
    if x > 0:
        return (-(x * r).erfc() / 2).log1p(), _normal_density(x) / ((-x * r).erfc() / 2), None
    e, _ = _erfcx_pair(-x * r)
    return (e / 2).log() - x * x / 2, (2 / arb.pi()).sqrt() / e, None


def _ndtri(p, u):
    # -sqrt(2) erfcinv(2p): 2p is exact, where 2p - 1 for erfinv would need
    # log2(1/p) more bits to keep p (1075 for a subnormal). (ndtri)' = 1/phi(ndtri).
    w = -arb(2).sqrt() * (2 * p).erfcinv()
    return w, (2 * arb.pi()).sqrt() * (w * w / 2).exp(), None


def _bessel_scaled(n, x):
    """``exp(-|x|) I_n(x)``: Arb's ``scaled`` is ``exp(-x) I_n(x)``, so below 0 by parity."""
    v = abs(x).bessel_i(n, scaled=True)
    return -v if n % 2 and x < 0 else v


def _i0(x, u):
    # I0 = i0e(x) exp(|x|), I0' = I1 likewise: Arb's unscaled I0 is NaN from |x| = 2**256
    # on (its exp gives up), and I0(1e300), +inf in every format, is proven so only by a ball.
    e = _exp_far(abs(x))
    return _bessel_scaled(0, x) * e, _bessel_scaled(1, x) * e, None


def _i1(x, u):
    # I1' = (I0 + I2)/2 (DLMF 10.29.1): two positive terms, where I0 - I1/x divides by 0 at 0.
    e = _exp_far(abs(x))
    return _bessel_scaled(1, x) * e, (_bessel_scaled(0, x) + _bessel_scaled(2, x)) / 2 * e, None


def _i0e(x, u):
    """``exp(-|x|) I0(x)`` and, off 0 (its kink), its derivative ``-sgn(x)
    M(3/2, 2, -2|x|)``: Kummer's transformation gives ``i0e(x) = M(1/2, 1, -2|x|)``
    (DLMF 10.39.5), and ``dM/dz = (a/b) M(a + 1, b + 1, z)``. torch's ``i1e(x) -
    sgn(x) i0e(x)`` is a difference of two numbers that agree to 1/(2|x|)."""
    t = abs(x)
    d = -(-2 * t).hypgeom_1f1(1.5, 2)
    return _bessel_scaled(0, x), (-d if x < 0 else d), None


def _i1e(x, u):
    """``exp(-|x|) I1(x) = (x/2) M(3/2, 3, -2|x|)`` (DLMF 10.39.5 and Kummer's
    transformation), with the derivative ``M(3/2, 3, -2t)/2 - (t/2) M(5/2, 4, -2t)``,
    ``t = |x|`` (even): its terms are in the ratio 2:3 for large t, where torch's
    ``i0e - i1e (sgn(x) + 1/x)`` loses log2(2|x|) bits to ``i0e - i1e``."""
    t = abs(x)
    z = -2 * t
    return _bessel_scaled(1, x), z.hypgeom_1f1(1.5, 3) / 2 - t / 2 * z.hypgeom_1f1(2.5, 4), None


def _sinc(x, u):
    """torch's normalized sinc, Arb's ``sinc_pi`` (1 at 0, exactly). Below 1 in
    magnitude its derivative is ``-pi j1(pi x)`` with the spherical Bessel ``j1(z) =
    (z/3) 0F1(; 5/2; -z**2/4)`` (DLMF 10.53.1, 10.16.9), exactly 0 at 0, where
    ``(cos(pi x) - sinc(x)) / x`` cancels to ``-pi**2 x/3``. Above, that quotient,
    from ``sin_pi`` and ``cos_pi`` of the exact x (no rounded ``pi x``, whose error
    is radians at 1e300)."""
    v = x.sinc_pi()
    if abs(x) < 1:
        z = arb.pi() * x
        return v, -arb.pi() * z / 3 * (-(z * z) / 4).hypgeom_0f1(2.5), None
    _, c = x.sin_cos_pi()
    return v, (c - v) / x, None


def _psi(n: int, x):
    """``polygamma(n, x)`` for x > 0 (the cases' domain; NaN elsewhere): digamma,
    and from n = 1 on ``(-1)**(n + 1) n! zeta(n + 1, x)``, Hurwitz's zeta."""
    if not x > 0:
        return arb("nan")
    if n == 0:
        return x.digamma()
    return (-1) ** (n + 1) * arb.fac_ui(n) * arb(n + 1).zeta(x)


def _polygamma_rule(n: int):
    def rule(x, u):
        return _psi(n, x), _psi(n + 1, x), None
    return rule


def _lgamma(x, u):
    if not x > 0:
        return arb("nan"), arb("nan"), None
    return x.lgamma(), x.digamma(), None


_digamma = _polygamma_rule(0)


def _softplus_rule(beta):
    def rule(z, u):   # z = beta * x; the 1/beta and beta factors are the caller's
        s, t = _sigmoid_pair(z)
        return z.exp().log1p(), s, None
    return rule


_UNARY = {
    "exp": _exp, "expm1": _expm1, "exp2": _exp2, "log": _log, "log1p": _log1p,
    "log2": _log2, "log10": _log_base(arb.const_log10),
    "sqrt": _sqrt, "rsqrt": _rsqrt, "sigmoid": _sigmoid, "expit": _sigmoid,
    "logsigmoid": _logsigmoid, "log_sigmoid": _logsigmoid, "tanh": _tanh,
    "sinh": _sinh, "cosh": _cosh, "asinh": _asinh, "acosh": _acosh, "atanh": _atanh,
    "sin": _sin, "cos": _cos, "tan": _tan, "asin": _asin, "acos": _acos, "atan": _atan,
    "erf": _erf, "erfc": _erfc, "erfinv": _erfinv, "lgamma": _lgamma, "gammaln": _lgamma,
    "digamma": _digamma, "psi": _digamma, "erfcx": _erfcx, "ndtr": _ndtr, "log_ndtr": _log_ndtr, "ndtri": _ndtri,
    "i0": _i0, "i1": _i1, "i1e": _i1e, "sinc": _sinc,
}



def _pow_jets(a: Jet, b: Jet) -> Jet:
    if any(t is not None for t in b.d) or _is_array(b.v):
        # x**y = exp(y log x), x > 0 (the cases' domain; NaN balls elsewhere).
        return _unary_rule(_exp)(_mul(b, _unary_rule(_log)(a)))
    c = b.v
    if c.is_exact() and c.is_integer() and abs(float(c)) <= 64:
        k = int(float(c))
        if k == 2:
            return _mul(a, a)
        rule = lambda x, u: (x ** k, k * x ** (k - 1), None)   # noqa: E731
    else:
        rule = lambda x, u: (x ** c, c * x ** (c - 1), None if u is None else (c * u.log1p()).expm1())   # noqa: E731
    return _unary_rule(rule)(a)



def _binary_rule(partials):
    """A jet function of two jets from ``partials(a, b) -> (f, fa, fb)``."""
    def f(a: Jet, b: Jet) -> Jet:
        if _is_array(a.v) or _is_array(b.v):
            parts = _vectorized(partials, 2, 3)(a.v, b.v)
        else:
            parts = partials(a.v, b.v)
        return _chain2(a, b, *parts)
    return f


def _logaddexp_partials(a, b):
    # Its weights are sigmoid(a - b) and sigmoid(b - a), from the exact difference
    # of the inputs: no exp of a huge number to subtract.
    hi, lo = (a, b) if a.mid() >= b.mid() else (b, a)
    v = hi + (lo - hi).exp().log1p()
    sa, sb = _sigmoid_pair(a - b)
    return v, sa, sb


def _hypot_partials(x, y):
    r = (x * x + y * y).sqrt()
    return r, x / r, y / r


def _atan2_partials(y, x):
    w = x * x + y * y
    return arb.atan2(y, x), x / w, -y / w


_logaddexp = _binary_rule(_logaddexp_partials)
