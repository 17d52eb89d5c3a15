"""The numbers of ``harness.exact``: mpmath elements, their exact arithmetic,
and every elementwise function with its derivative rule.

Elements of a real stand-in are mpf; of an integer one Python ints; of a
boolean one Python bools. Real arithmetic works on mpmath's raw tuples (sign,
mantissa, exponent, bitcount) to choose exact or rounded per call: ``+ - *``
are exact while the result fits ``EXACT_BITS`` bits, everything else rounds
once at the working precision, and a number near 1 carries its distance from
1 (``_One``). Each element function is ``lift``-ed with its derivative rule
(``harness.truth.dual``), so a formula of them runs on dual numbers too.
"""

from __future__ import annotations

import flint
import mpmath
from mpmath import libmp

from .dual import ARITHMETIC as dual_arithmetic
from .dual import Dual, identities, lift, mark_where
from .dual import value as _value

#: ``+``, ``-`` and ``*`` are exact while the result fits this many bits
#: (every float64 sum, ``2**1200`` stand-ins for infinities included);
#: beyond, they round at the working precision.
EXACT_BITS = 1 << 13

#: A result below ``2**-UNDERFLOW_BITS`` is returned as 0, as a hand-written
#: reference rounds it: it is 0 in every format (float64 stops at ``2**-1074``),
#: and its derivative could count only for a function steeper than
#: ``2**30000``. Kept, ``-log(sigmoid(1e300)) = exp(-1e300)`` sends the truth
#: engine after a derivative of ``exp(-x)`` at ``x = 1e300`` (1600 bits, 15x the
#: time) to find another 0. Only results are flushed: ``1 - sigmoid(1e300)``
#: inside a formula keeps its ``exp(-1e300)``.
UNDERFLOW_BITS = 1 << 15

_MP = mpmath.mp
_MPF = type(_MP.mpf(0))
_make = _MP.make_mpf
_ONE, _ZERO = libmp.fone, libmp.fzero
_NEAREST = libmp.round_nearest
class _One(_MPF):
    """``1 + d`` where ``d`` (a raw tuple) keeps the digits ``1 + d`` rounds away."""

    __slots__ = ("d",)


def _one_plus(d, value):
    v = object.__new__(_One)
    v._mpf_, v.d = value, d
    return v


def _offset(v, t):
    """``d`` for ``v = 1 + d`` known that way (``1`` itself: 0), else None."""
    if type(v) is _One:
        return v.d
    return _ZERO if t == _ONE else None


def _fits(x, y) -> bool:
    """Whether ``x + y`` is exact in ``EXACT_BITS`` bits."""
    if not (x[1] and y[1]):
        return True
    return max(x[2] + x[3], y[2] + y[3]) - min(x[2], y[2]) <= EXACT_BITS


def _sum2(x, y):
    if _fits(x, y):
        return libmp.mpf_add(x, y, 0)
    return libmp.mpf_add(x, y, _MP._prec_rounding[0], _NEAREST)


def _prod2(x, y):
    if x[3] + y[3] <= EXACT_BITS:
        return libmp.mpf_mul(x, y, 0)
    return libmp.mpf_mul(x, y, _MP._prec_rounding[0], _NEAREST)


def _is_zero(t) -> bool:
    return not t[1] and not t[2]   # inf and nan have a zero mantissa too, not a zero exponent


def _quot2(x, y):
    if _is_zero(y):   # x / 0: the limit (torch's ±inf), not mpmath's ZeroDivisionError
        if _is_zero(x) or x == libmp.fnan:
            return libmp.fnan
        return libmp.fninf if x[0] else libmp.finf
    return libmp.mpf_div(x, y, _MP._prec_rounding[0], _NEAREST)


@lift(lambda out, a, b: (1, 1))
def _add(a, b):
    try:
        x, y = a._mpf_, b._mpf_
    except AttributeError:   # complex
        return a + b
    da, db = _offset(a, x), _offset(b, y)
    if da is not None and db is None:
        return _one_plus(_sum2(da, y), _sum2(x, y))
    if db is not None and da is None:
        return _one_plus(_sum2(db, x), _sum2(x, y))
    return _make(_sum2(x, y))


@lift(lambda out, a, b: (1, -1))
def _sub(a, b):
    try:
        x, y = a._mpf_, libmp.mpf_neg(b._mpf_)
    except AttributeError:
        return a - b
    da, db = _offset(a, x), _offset(b, b._mpf_)
    if da is not None and db is not None:   # (1 + da) - (1 + db): no 1 to cancel
        return _make(_sum2(da, libmp.mpf_neg(db)))
    if da is not None:
        return _one_plus(_sum2(da, y), _sum2(x, y))
    return _make(_sum2(x, y))


@lift(lambda out, a, b: (b, a))
def _mul(a, b):
    try:
        x, y = a._mpf_, b._mpf_
    except AttributeError:
        return a * b
    if x == _ONE and type(a) is not _One:
        return b
    if y == _ONE and type(b) is not _One:
        return a
    if type(a) is _One and type(b) is _One:   # (1 + da)(1 + db) = 1 + da + db + da db
        d = _sum2(_sum2(a.d, b.d), _prod2(a.d, b.d))
        return _one_plus(d, _prod2(x, y))
    return _make(_prod2(x, y))


@lift(lambda out, a, b: (lambda: _div(_ONE_MPF, b), lambda: -_div(out, b)))
def _div(a, b):
    try:
        x, y = a._mpf_, b._mpf_
    except AttributeError:
        return a / b
    if y == _ONE and type(b) is not _One:
        return a
    da, db = _offset(a, x), _offset(b, y)
    if db is not None and da is not None and (type(a) is _One or type(b) is _One):
        # (1 + da) / (1 + db) = 1 + (da - db) / (1 + db): 1 / (1 + exp(-x)) keeps exp(-x)
        return _one_plus(_quot2(_sum2(da, libmp.mpf_neg(db)), y), _quot2(x, y))
    return _make(_quot2(x, y))


# An identity (x - x, x / x, 0 * x) of duals is a constant, not a zero slope.
_sub, _mul, _div = identities(_sub, _mul, _div)


def _log1p_raw(d):
    """``log(1 + d)`` of a raw ``d``. Below ``2**-prec`` it is ``d - d**2/2``
    (a log of ``1 + d`` would work at the bits of ``d``: 14000 at ``d = exp(-1e4)``);
    otherwise ``1 + d`` is exact while it fits, and mpmath's ``log`` is accurate
    next to 1 for an exact argument."""
    prec = _MP._prec_rounding[0]
    if d[1] and d[2] + d[3] < -prec:
        half_square = libmp.mpf_shift(libmp.mpf_mul(d, d, prec, _NEAREST), -1)
        return _make(libmp.mpf_sub(d, half_square, prec, _NEAREST))
    if _fits(_ONE, d):
        return mpmath.log(_make(libmp.mpf_add(_ONE, d, 0)))
    return mpmath.log1p(_make(d))


@lift(lambda out, a: (lambda: _div(_ONE_MPF, a),))
def _log(a):
    if type(a) is _One:
        return _log1p_raw(a.d)
    return mpmath.log(a)


@lift(lambda out, a: (lambda: _div(_ONE_MPF, _add(_ONE_MPF, a)),))
def _log1p(a):
    return _log1p_raw(a._mpf_) if isinstance(a, _MPF) else mpmath.log1p(a)


@lift(lambda out, x: (lambda: _mul(out, _sigmoid(-x)),))
def _sigmoid(x):
    """``1 / (1 + exp(-x))``; above 0 it carries ``1 - sigmoid(x) = sigmoid(-x)``."""
    if x > 0:
        return _div(_ONE_MPF, _add(_ONE_MPF, mpmath.exp(-x)))
    e = mpmath.exp(x)
    return _div(e, _add(_ONE_MPF, e))


@lift(lambda out, x: (lambda: _sigmoid(x),))
def _softplus_raw(x):
    return _log1p_raw(mpmath.exp(x)._mpf_)


@lift(lambda out, a, p: (lambda: _pow_da(out, a, p), lambda: _mul(out, _log(a))))
def _pow(a, p):
    if isinstance(a, int) and isinstance(p, int) and not isinstance(a, _MPF) and p >= 0:
        return a ** p
    a, p = _real_elem(a), _real_elem(p)
    if p == 2 and isinstance(a, _MPF):
        return _mul(a, a)
    if a == 0 and p < 0:
        return _MP.inf
    if type(a) is _One and isinstance(p, _MPF) and a.d[1] and a.d[2] + a.d[3] < -8:
        # (1 + d)**p = 1 + expm1(p log1p(d)), kept as such where d is small
        # enough for it to matter (LRN's k + alpha/n * sum, with k = 1, is not).
        d = mpmath.expm1(_mul(p, _log1p_raw(a.d)))._mpf_
        return _one_plus(d, _sum2(_ONE, d))
    return mpmath.power(a, p)


def _pow_da(out, a, p):
    """d(a**p)/da = p a**(p - 1); ``2 a`` exactly for a square (a rounded
    ``2 out / a`` loses what ``a`` holds beyond the working precision)."""
    p = _real_elem(p)
    if p == 2:
        return _mul(_MP.mpf(2), a)
    return _mul(p, _pow(a, _sub(p, _ONE_MPF)))


def _real_elem(v):
    return v if isinstance(v, (_MPF, _MP.mpc, Dual)) else _MP.mpf(v)


_ONE_MPF = _make(_ONE)
_ZERO_MPF = _make(_ZERO)


def _isnan(v) -> bool:
    v = _value(v)
    return isinstance(v, (_MPF, _MP.mpc)) and mpmath.isnan(v)


def _maximum(a, b):
    if _isnan(a) or _isnan(b):
        return _MP.nan
    return max(a, b)   # the element itself, not a copy: a sigmoid keeps its 1 - sigmoid


def _minimum(a, b):
    if _isnan(a) or _isnan(b):
        return _MP.nan
    return min(a, b)


def _fmax(a, b):
    """torch.fmax: a NaN loses to a number (``maximum`` propagates it)."""
    return a if _isnan(b) else b if _isnan(a) else _maximum(a, b)


def _fmin(a, b):
    return a if _isnan(b) else b if _isnan(a) else _minimum(a, b)


def _pole(f, at_pole):
    """``f`` where mpmath raises at a pole (lgamma at 0, -1, ...): ``at_pole``."""
    def g(x):
        try:
            return f(x)
        except (ValueError, ZeroDivisionError):
            return at_pole
    return g


@lift(lambda out, x: (lambda: mpmath.digamma(x),))
def _lgamma(x):
    """``log |Gamma(x)|`` (torch's lgamma), ``inf`` at the poles."""
    if x <= 0 and mpmath.isint(x):
        return _MP.inf
    return mpmath.re(mpmath.loggamma(x)) if x < 0 else mpmath.loggamma(x)


@lift(lambda out, x: (lambda: mpmath.sqrt(_MP.pi) / 2 * mpmath.exp(_mul(out, out)),))
def _erfinv(x):
    if abs(x) == 1:
        return _MP.inf * x
    return mpmath.erfinv(x) if abs(x) < 1 else _MP.nan


def _gelu_tanh(x):
    # 0.5 x (1 + tanh(u)) = x sigmoid(2u), u = sqrt(2/pi) (x + 0.044715 x**3),
    # with Hendrycks and Gimpel's decimal constant.
    u = mpmath.sqrt(2 / _MP.pi) * _add(x, _mul(_MP.mpf("0.044715"), _mul(x, _mul(x, x))))
    return _mul(x, _sigmoid(2 * u))


def _sech2(x):
    """1 / cosh(x)**2: 1 - tanh(x)**2 cancels for large |x|."""
    c = mpmath.cosh(x)
    return _div(_ONE_MPF, _mul(c, c))


def _one_minus_square(x):
    """(1 - x)(1 + x): exact differences, no 1 - x**2 to cancel near |x| = 1."""
    return _mul(_sub(_ONE_MPF, x), _add(_ONE_MPF, x))


def _integer_valued(out, x):
    """floor, ceil, trunc: flat, with a jump at every integer (marked there)."""
    mark_where(mpmath.isfinite(x) and mpmath.isint(x), "a step function at an integer")
    return (0,)


def _d(rule):
    return lift(lambda out, x: (lambda: rule(out, x),))


_exp = _d(lambda out, x: out)(mpmath.exp)
_expm1 = _d(lambda out, x: mpmath.exp(x))(mpmath.expm1)
_sqrt = _d(lambda out, x: _div(_ONE_MPF, 2 * out))(mpmath.sqrt)
_tanh = _d(lambda out, x: _sech2(x))(mpmath.tanh)
_erfc = _d(lambda out, x: -2 / mpmath.sqrt(_MP.pi) * mpmath.exp(-_mul(x, x)))(mpmath.erfc)


def _in_arb(fn, x):
    """``fn`` of the exact ball of ``x`` in Arb at the working precision and 32
    bits more, its midpoint rounded to the working precision: for what mpmath
    lacks (``erfcinv``). A ball not that accurate is an error, never a number."""
    sign, man, exp, _ = x._mpf_
    with flint.ctx.workprec(_MP.prec + 32):
        out = fn(flint.arb(flint.fmpz(-int(man) if sign else int(man))) * flint.arb(2) ** int(exp))
        if out.rel_accuracy_bits() < _MP.prec:
            raise ArithmeticError(f"Arb's ball {out} is not accurate to {_MP.prec} bits")
        m, e = out.mid().man_exp()
    return +mpmath.ldexp(int(m), int(e))


def _erfcx_value(x):
    # Above 0 Tricomi's U (DLMF 7.11.4 with 13.6.7), erfcx(x) = U(1/2, 1/2, x**2) / sqrt(pi):
    # no exp(x**2) (of 2**2400 at a limit's reading) times an erfc as small. At or
    # below 0 erfc(x) is in [1, 2].
    if x > 0:
        return mpmath.hyperu(0.5, 0.5, _mul(x, x)) / mpmath.sqrt(_MP.pi)
    return mpmath.exp(_mul(x, x)) * mpmath.erfc(x)


def _erfcx_slope(out, x):
    # dU/dz = -a U(a + 1, b + 1, z): no 2 x erfcx(x) - 2/sqrt(pi) to cancel above 0;
    # at or below 0 both of its terms are negative.
    if x > 0:
        return -x * mpmath.hyperu(1.5, 1.5, _mul(x, x)) / mpmath.sqrt(_MP.pi)
    return 2 * x * out - 2 / mpmath.sqrt(_MP.pi)


def _phi(x):
    return mpmath.exp(-_mul(x, x) / 2) / mpmath.sqrt(2 * _MP.pi)


@lift(lambda out, x: (lambda: _phi(x),))
def _ndtr(x):
    """``Phi(x) = erfc(-x/sqrt 2) / 2``: no ``1 + erf`` to cancel below 0; above 0
    it carries ``1 - Phi(x) = Phi(-x)``, as sigmoid carries ``1 - sigmoid``."""
    if x > 0:
        return _sub(_ONE_MPF, mpmath.erfc(x / mpmath.sqrt(2)) / 2)
    return mpmath.erfc(-x / mpmath.sqrt(2)) / 2


def _log_ndtr_value(x):
    # Above 0 log1p(-Phi(-x)): Phi(x) is within Phi(-x) of 1. At or below 0
    # log(erfcx(z) / 2) - z**2, z = -x/sqrt 2: both terms negative (erfcx(z) <= 1),
    # and no erfc(z) whose digits a rounded z spends in exp(-z**2).
    if x > 0:
        return _log1p_raw((-mpmath.erfc(x / mpmath.sqrt(2)) / 2)._mpf_)
    return mpmath.log(_erfcx_value(-x / mpmath.sqrt(2)) / 2) - _mul(x, x) / 2


def _log_ndtr_slope(out, x):
    # phi/Phi: phi(x) / Phi(x) above 0 (Phi >= 1/2), sqrt(2/pi) / erfcx(-x/sqrt 2)
    # at or below 0 (no exp(-x**2/2) over an erfc just as small).
    if x > 0:
        return _phi(x) / (mpmath.erfc(-x / mpmath.sqrt(2)) / 2)
    return mpmath.sqrt(2 / _MP.pi) / _erfcx_value(-x / mpmath.sqrt(2))


@lift(lambda out, p: (lambda: mpmath.sqrt(2 * _MP.pi) * mpmath.exp(_mul(out, out) / 2),))
def _ndtri(p):
    """``-sqrt(2) erfcinv(2p)``, ``2p`` exact; mpmath has no erfcinv, and its
    ``erfinv(2p - 1)`` rounds ``1 - |2p - 1|`` to 0 at a subnormal p: Arb's."""
    if not 0 < p < 1:
        return -_MP.inf if p == 0 else _MP.inf if p == 1 else _MP.nan
    return _in_arb(lambda a: -flint.arb(2).sqrt() * (2 * a).erfcinv(), p)


def _i0e_slope(out, x):
    # -sgn(x) M(3/2, 2, -2|x|), as Kummer's transformation gives i0e(x) = M(1/2, 1, -2|x|)
    # (DLMF 10.39.5): torch's i1e - sgn(x) i0e is a difference of two numbers that agree
    # to 1/(2|x|). exp(-|x|) has its kink at 0.
    mark_where(x == 0, "i0e at 0, the kink of exp(-|x|)")
    return (lambda: -mpmath.sign(x) * mpmath.hyp1f1(1.5, 2, -2 * abs(x)),)


def _i1e_slope(out, x):
    # i1e(x) = (x/2) M(3/2, 3, -2|x|): its derivative's terms are in the ratio 2:3 for large
    # |x|, where torch's i0e - i1e (sgn(x) + 1/x) loses log2(2|x|) bits to i0e - i1e.
    t = abs(x)
    return mpmath.hyp1f1(1.5, 3, -2 * t) / 2 - t / 2 * mpmath.hyp1f1(2.5, 4, -2 * t)


def _sinc_slope(out, x):
    # Below 1 in magnitude -pi j1(pi x), j1(z) = (z/3) 0F1(; 5/2; -z**2/4) (DLMF 10.53.1,
    # 10.16.9), where (cos(pi x) - sinc(x)) / x cancels to -pi**2 x/3; above, that
    # quotient, with cospi of the exact x (no rounded pi x, whose error is radians at 1e300).
    if abs(x) < 1:
        z = _MP.pi * x
        return -_MP.pi * z / 3 * mpmath.hyp0f1(2.5, -z * z / 4)
    return (mpmath.cospi(x) - out) / x


_REAL_UNARY = {
    "exp": _exp, "expm1": _expm1,
    "exp2": _d(lambda out, x: _mul(out, _MP.ln2))(lambda x: mpmath.power(2, x)),
    "log": _log, "log1p": _log1p,
    "log2": _d(lambda out, x: _div(_ONE_MPF, _mul(x, _MP.ln2)))(lambda x: _log(x) / _MP.ln2),
    "log10": _d(lambda out, x: _div(_ONE_MPF, _mul(x, mpmath.ln(10))))(lambda x: _log(x) / mpmath.ln(10)),
    "sqrt": _sqrt,
    "rsqrt": _d(lambda out, x: -_div(out, 2 * x))(lambda x: 1 / mpmath.sqrt(x) if x else _MP.inf),
    "sigmoid": _sigmoid, "expit": _sigmoid,
    "logsigmoid": _d(lambda out, x: _sigmoid(-x))(lambda x: -_softplus_raw(-x)),
    "log_sigmoid": _d(lambda out, x: _sigmoid(-x))(lambda x: -_softplus_raw(-x)),
    "tanh": _tanh, "sinh": _d(lambda out, x: mpmath.cosh(x))(mpmath.sinh),
    "cosh": _d(lambda out, x: mpmath.sinh(x))(mpmath.cosh),
    "asinh": _d(lambda out, x: _div(_ONE_MPF, mpmath.sqrt(_add(_ONE_MPF, _mul(x, x)))))(mpmath.asinh),
    "acosh": _d(lambda out, x: _div(_ONE_MPF, mpmath.sqrt(_mul(_sub(x, _ONE_MPF), _add(x, _ONE_MPF)))))(mpmath.acosh),
    "atanh": _d(lambda out, x: _div(_ONE_MPF, _one_minus_square(x)))(_pole(mpmath.atanh, _MP.nan)),
    "sin": _d(lambda out, x: mpmath.cos(x))(mpmath.sin), "cos": _d(lambda out, x: -mpmath.sin(x))(mpmath.cos),
    "tan": _d(lambda out, x: _div(_ONE_MPF, _mul(mpmath.cos(x), mpmath.cos(x))))(mpmath.tan),
    "atan": _d(lambda out, x: _div(_ONE_MPF, _add(_ONE_MPF, _mul(x, x))))(mpmath.atan),
    "asin": _d(lambda out, x: _div(_ONE_MPF, mpmath.sqrt(_one_minus_square(x))))(mpmath.asin),
    "acos": _d(lambda out, x: -_div(_ONE_MPF, mpmath.sqrt(_one_minus_square(x))))(mpmath.acos),
    "erf": _d(lambda out, x: 2 / mpmath.sqrt(_MP.pi) * mpmath.exp(-_mul(x, x)))(mpmath.erf),
    "erfc": _erfc, "erfinv": _erfinv, "lgamma": _lgamma, "gammaln": _lgamma,
    "erfcx": _d(_erfcx_slope)(_erfcx_value), "ndtr": _ndtr,
    "log_ndtr": _d(_log_ndtr_slope)(_log_ndtr_value), "ndtri": _ndtri,
    "i0": _d(lambda out, x: mpmath.besseli(1, x))(lambda x: mpmath.besseli(0, x)),
    # I1' = (I0 + I2)/2 (DLMF 10.29.1): two positive terms, where I0 - I1/x divides by 0 at 0.
    "i1": _d(lambda out, x: (mpmath.besseli(0, x) + mpmath.besseli(2, x)) / 2)(lambda x: mpmath.besseli(1, x)),
    "i0e": lift(_i0e_slope)(lambda x: mpmath.exp(-abs(x)) * mpmath.besseli(0, x)),
    "i1e": _d(_i1e_slope)(lambda x: mpmath.exp(-abs(x)) * mpmath.besseli(1, x)),
    "sinc": _d(_sinc_slope)(mpmath.sincpi),
    "digamma": _d(lambda out, x: mpmath.psi(1, x))(_pole(mpmath.digamma, _MP.nan)),
    "reciprocal": _d(lambda out, x: -_mul(out, out))(lambda x: _div(_ONE_MPF, x)),
    # x sigmoid(x): sigmoid(x) (1 + x sigmoid(-x)), no 1 - sigmoid to cancel.
    "silu": _d(lambda out, x: _mul(_sigmoid(x), _add(_ONE_MPF, _mul(x, _sigmoid(-x)))))(
        lambda x: _mul(x, _sigmoid(x))),
    "mish": _d(lambda out, x: _add(mpmath.tanh(_softplus_raw(x)),
                                   _mul(_mul(x, _sech2(_softplus_raw(x))), _sigmoid(x))))(
        lambda x: _mul(x, mpmath.tanh(_softplus_raw(x)))),
    "floor": lift(_integer_valued)(mpmath.floor), "ceil": lift(_integer_valued)(mpmath.ceil),
    "trunc": lift(_integer_valued)(lambda x: mpmath.floor(x) if x >= 0 else mpmath.ceil(x)),
}
_REAL_UNARY["psi"] = _REAL_UNARY["digamma"]


@lift(lambda out, x: (-1,))
def _neg(x):
    return -x


@lift(lambda out, x: mark_where(x == 0, "sign at 0") or (0,))
def _sign(x):
    return mpmath.sign(x) if isinstance(x, _MPF) else (x > 0) - (x < 0)


def _is_real(x) -> bool:
    return isinstance(x, (_MPF, Dual))


# Elementwise functions that keep integers integers (and accept every dtype).
# abs and relu are comparisons and selections: a dual at their switching
# point (0) marks it.
_ANY_UNARY = {
    "neg": _neg, "negative": _neg,
    "abs": lambda x: x if x >= 0 else -x, "absolute": lambda x: x if x >= 0 else -x,
    "sign": _sign,
    "square": lambda x: _mul(x, x) if _is_real(x) else x * x,
    "relu": lambda x: x if not x <= 0 else (_ZERO_MPF if _is_real(x) else 0),
}


def _dual_operators():
    """Python's operators on a dual go to the exact ``+ - * /`` and their rules."""
    Dual.__add__ = Dual.__radd__ = lambda s, o: _add(s, o)
    Dual.__sub__ = lambda s, o: _sub(s, o)
    Dual.__rsub__ = lambda s, o: _sub(o, s)
    Dual.__mul__ = Dual.__rmul__ = lambda s, o: _mul(s, o)
    Dual.__truediv__ = lambda s, o: _div(s, o)
    Dual.__rtruediv__ = lambda s, o: _div(o, s)
    Dual.__pow__ = lambda s, o: _pow(s, o)
    Dual.__rpow__ = lambda s, o: _pow(o, s)
    Dual.__neg__ = lambda s: _neg(s)
    Dual.__pos__ = lambda s: s
    Dual.__abs__ = _ANY_UNARY["abs"]


_dual_operators()
# Tangents multiply and add as values do: exactly while the result fits.
dual_arithmetic["mul"] = lambda a, b: _make(_prod2(_real_elem(a)._mpf_, _real_elem(b)._mpf_))
dual_arithmetic["add"] = lambda a, b: _make(_sum2(_real_elem(a)._mpf_, _real_elem(b)._mpf_))
