"""``harness.exact``'s formula over a whole grid at once, in ball arithmetic.

The stand-in (``BallTensor``) holds every point of an elementwise grid: each
element is an Arb ball (python-flint's ``arb``: a midpoint and a radius that
provably contain the true number), and each torch operation of the formula is
dispatched once for the whole grid. The formula sees a 0-d tensor, as it does
under ``exact``; the points are a hidden batch axis.

Each element is a second-order jet: the value, the partial derivatives along
every input (forward mode) and the second partials, all balls. The first
partials are the VJP; the second give the gradient's condition number with no
moved reading. An operation takes part through its rule: the derivatives of
its result at its arguments (``_UNARY``, ``_binary``).

What a ball cannot carry, it says, never rounds past:

* A number near 1 keeps its distance from 1 (``Jet.m1``), as ``exact`` does:
  ``1 - sigmoid(x)`` is ``-(sigmoid(x) - 1) = sigmoid(-x)`` and ``log(1 +
  exp(x))`` is ``log1p(exp(x))``, where the plain balls would hold ``1 ±
  2**-prec`` and never decide ``exp(-1e30)``.
* A comparison whose balls overlap is not decided. Where both are exact and
  equal (``abs``, ``clamp``, ``where``, ``max``, ``relu`` at their switching
  points) no precision will decide it: the point is ``switching`` and goes to
  the one-sided analysis of the mpmath engine. Where they merely overlap, the
  point is ``undecided`` and a higher precision may separate them.
* An operation outside the table raises ``BallUnsupported``: the grid goes to
  the mpmath stand-in (``harness.exact``), which has more of torch.
"""

from __future__ import annotations

import functools

import flint
import numpy as np
import torch
import torch.nn.functional as F

from .exact import _ForwardOnly

arb = flint.arb

__all__ = ["BallTensor", "BallUnsupported", "Jet", "evaluate"]


class BallUnsupported(NotImplementedError):
    """The formula uses something the ball stand-in does not implement."""


class _Marks:
    """Per point of the grid: a switching point met exactly (no precision
    decides it) and a comparison of overlapping balls (more precision may)."""

    def __init__(self, n_points: int):
        self.switching = np.zeros(n_points, dtype=bool)
        self.undecided = np.zeros(n_points, dtype=bool)


_MARKS: list[_Marks] = []


def _marks() -> _Marks:
    return _MARKS[-1]


# -- elementwise helpers -------------------------------------------------------------------------------------

def _is_array(v) -> bool:
    return isinstance(v, np.ndarray)


@functools.lru_cache(maxsize=None)
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


def _times(a, b):
    """``a * b`` where None is an exact 0."""
    if a is None or b is None:
        return None
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
    """A value with its first and second partial derivatives along ``n``
    inputs, each an array of balls over the grid (or one ball for a
    constant), None where identically 0. ``m1`` is ``v - 1`` where it is
    known better than ``v`` itself (None otherwise)."""

    __slots__ = ("v", "d", "h", "m1")

    def __init__(self, v, d: tuple, h: dict, m1=None):
        self.v, self.d, self.h, self.m1 = v, d, h, m1

    @classmethod
    def constant(cls, c, n: int) -> "Jet":
        v = _const(c)
        return cls(v, (None,) * n, {}, v - 1)

    @property
    def n(self) -> int:
        return len(self.d)


def _chain(a: Jet, f0, f1, f2, m1=None) -> Jet:
    """``f(a)`` from ``f``, ``f'`` and ``f''`` at ``a``'s value."""
    d = tuple(_times(f1, t) for t in a.d)
    h = {kl: f1 * t for kl, t in a.h.items()}
    for (k, l) in _pairs(a.n):
        if a.d[k] is not None and a.d[l] is not None:
            h[k, l] = _plus(h.get((k, l)), f2 * a.d[k] * a.d[l])
    return Jet(f0, d, h, m1)


def _chain2(a: Jet, b: Jet, f0, fa, fb, faa, fab, fbb) -> Jet:
    """``f(a, b)`` from its partials at the values."""
    n = a.n
    d = tuple(_plus(_times(fa, a.d[k]), _times(fb, b.d[k])) for k in range(n))
    h = {}
    for (k, l) in _pairs(n):
        t = _plus(_times(fa, a.h.get((k, l))), _times(fb, b.h.get((k, l))))
        t = _plus(t, _times(faa, _times(a.d[k], a.d[l])))
        t = _plus(t, _times(fbb, _times(b.d[k], b.d[l])))
        t = _plus(t, _times(fab, _plus(_times(a.d[k], b.d[l]), _times(a.d[l], b.d[k]))))
        if t is not None:
            h[k, l] = t
    return Jet(f0, d, h)


@functools.lru_cache(maxsize=None)
def _pairs(n: int) -> tuple:
    return tuple((k, l) for k in range(n) for l in range(k, n))


def _intersect(a, b):
    """Both balls hold the number: their intersection does too, and is the
    tighter (``1 - s`` read as ``(1 - 1) - (s - 1)`` where ``s`` carries its
    distance from 1). Disjoint balls would be a bug in a rule: the wider one stands."""
    return _each(_tighter, a, b)


def _add(a: Jet, b: Jet) -> Jet:
    m1 = None
    if a.m1 is not None and b.m1 is not None:
        m1 = _intersect(a.m1 + b.v, a.v + b.m1)
    elif a.m1 is not None:
        m1 = a.m1 + b.v
    elif b.m1 is not None:
        m1 = a.v + b.m1
    d = tuple(_plus(x, y) for x, y in zip(a.d, b.d))
    h = {kl: _plus(a.h.get(kl), b.h.get(kl)) for kl in set(a.h) | set(b.h)}
    return Jet(a.v + b.v, d, h, m1)


def _neg(a: Jet) -> Jet:
    return Jet(-a.v, tuple(None if t is None else -t for t in a.d), {kl: -t for kl, t in a.h.items()})


def _sub(a: Jet, b: Jet) -> Jet:
    out = _add(a, _neg(b))
    # Two numbers near 1: their difference is the difference of their
    # distances from 1, exact where the distances are (1 - sigmoid(30)).
    if a.m1 is not None and b.m1 is not None:
        out.v = _intersect(out.v, a.m1 - b.m1)
    out.m1 = a.m1 - b.v if a.m1 is not None else None
    return out


def _mul(a: Jet, b: Jet) -> Jet:
    n = a.n
    d = tuple(_plus(_times(a.v, b.d[k]), _times(b.v, a.d[k])) for k in range(n))
    h = {}
    for (k, l) in _pairs(n):
        t = _plus(_times(a.v, b.h.get((k, l))), _times(b.v, a.h.get((k, l))))
        t = _plus(t, _plus(_times(a.d[k], b.d[l]), _times(a.d[l], b.d[k])))
        if t is not None:
            h[k, l] = t
    m1 = None
    if a.m1 is not None and b.m1 is not None:
        m1 = a.m1 * b.m1 + a.m1 + b.m1
    return Jet(a.v * b.v, d, h, m1)


def _reciprocal(a: Jet) -> Jet:
    def rule(x, u):
        r = 1 / x
        return r, -r * r, 2 * r * r * r, (None if u is None else -u * r)
    return _unary_rule(rule)(a)


def _div(a: Jet, b: Jet) -> Jet:
    out = _mul(a, _reciprocal(b))
    if not any(t is not None for t in b.d):   # by a constant: one rounding, not two
        out.v = _intersect(out.v, a.v / b.v)
    if a.m1 is not None and b.m1 is not None:
        out.m1 = (a.m1 - b.m1) / b.v
    return out


def _unary_rule(rule):
    """A jet function from ``rule(x, u) -> (f, f', f'', f - 1 or None)`` of
    one ball ``x`` (``u``: ``x - 1`` where known, else None)."""
    def f(a: Jet) -> Jet:
        u = a.m1
        if _is_array(a.v) or _is_array(u):
            f0, f1, f2, m1 = _vectorized(rule, 2, 4)(a.v, u)
            if any(m is None for m in np.ravel(m1)):
                m1 = None
        else:
            f0, f1, f2, m1 = rule(a.v, u)
        return _chain(a, f0, f1, f2, m1)
    return f


# -- the rules (each says why it is written as it is where another form would lose digits) -------------------

def _sigmoid_pair(x):
    """``(sigmoid(x), sigmoid(-x))``, each from its own exp: ``1 - sigmoid(x)``
    would cancel for large x."""
    return 1 / (1 + (-x).exp()), 1 / (1 + x.exp())


def _exp(x, u):
    e = x.exp()
    return e, e, e, x.expm1()


def _expm1(x, u):
    e = x.exp()
    return x.expm1(), e, e, None


def _exp2(x, u):
    ln2 = arb.const_log2()
    # 2**k is exact at an integer k; exp(k ln 2) is a ball around it, which
    # cannot decide where 2**k is a narrower format's midpoint.
    exact = x.is_exact() and x.is_integer() and abs(x) < 1 << 20
    p = arb(2) ** x if exact else (x * ln2).exp()
    return p, p * ln2, p * ln2 * ln2, (x * ln2).expm1()


def _log2(x, u):
    v, r, rr, _ = _log(x, u)
    ln2 = arb.const_log2()
    if x.is_exact() and x > 0 and x.man_exp()[0] == 1:
        # log2(2**k) = k exactly (-606 is a bfloat16 midpoint: a ball around it never decides).
        return arb(x.man_exp()[1]), r / ln2, rr / ln2, None
    return v / ln2, r / ln2, rr / ln2, None


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
    # holds -1 and the number itself is the better enclosure.
    v = x.log() if u is None else _tighter(x.log(), u.log1p())
    return v, r, -r * r, None


def _log_base(base_log):
    def rule(x, u):
        v, r, rr, _ = _log(x, u)
        c = base_log()
        return v / c, r / c, rr / c, None
    return rule


def _log1p(x, u):
    r = 1 / (1 + x)
    return x.log1p(), r, -r * r, None


def _sqrt(x, u):
    s = x.sqrt()
    r = 1 / (2 * s)
    return s, r, -r / (2 * x), (None if u is None else u / (s + 1))


def _rsqrt(x, u):
    r = x.rsqrt()
    return r, -r / (2 * x), 3 * r / (4 * x * x), None


def _sigmoid(x, u):
    s, t = _sigmoid_pair(x)
    d = s * t
    # 1 - 2s is -tanh(x/2): no cancellation near 0.
    return s, d, -d * (x / 2).tanh(), -t


def _logsigmoid(x, u):
    s, t = _sigmoid_pair(x)
    return -(-x).exp().log1p(), t, -s * t, None


def _tanh(x, u):
    c = x.cosh()
    sech2 = 1 / (c * c)   # 1 - tanh**2 cancels for large |x|
    t = x.tanh()
    _, minus = _sigmoid_pair(2 * x)
    return t, sech2, -2 * t * sech2, -2 * minus   # tanh(x) - 1 = -2 sigmoid(-2x)


def _sinh(x, u):
    s, c = x.sinh(), x.cosh()
    return s, c, s, None


def _cosh(x, u):
    s, c = x.sinh(), x.cosh()
    half = (x / 2).sinh()
    return c, s, c, 2 * half * half   # cosh(x) - 1 = 2 sinh(x/2)**2


def _asinh(x, u):
    r = (1 + x * x).rsqrt()
    return x.asinh(), r, -x * r * r * r, None


def _acosh(x, u):
    r = ((x - 1) * (x + 1)).rsqrt()   # x*x - 1 rounds at x near 1; the factors are exact
    return x.acosh(), r, -x * r * r * r, None


def _atanh(x, u):
    w = (1 - x) * (1 + x)
    return x.atanh(), 1 / w, 2 * x / (w * w), None


def _sin(x, u):
    s, c = x.sin(), x.cos()
    return s, c, -s, None


def _cos(x, u):
    s, c = x.sin(), x.cos()
    half = (x / 2).sin()
    return c, -s, -c, -2 * half * half   # cos(x) - 1 = -2 sin(x/2)**2


def _tan(x, u):
    t = x.tan()
    c = x.cos()
    d = 1 / (c * c)
    return t, d, 2 * t * d, None


def _asin(x, u):
    r = ((1 - x) * (1 + x)).rsqrt()
    return x.asin(), r, x * r * r * r, None


def _acos(x, u):
    r = ((1 - x) * (1 + x)).rsqrt()
    return x.acos(), -r, -x * r * r * r, None


def _atan(x, u):
    w = 1 + x * x
    return x.atan(), 1 / w, -2 * x / (w * w), None


def _erf(x, u):
    g = 2 * arb.pi().rsqrt() * (-x * x).exp()
    return x.erf(), g, -2 * x * g, -x.erfc()


def _erfc(x, u):
    g = 2 * arb.pi().rsqrt() * (-x * x).exp()
    return x.erfc(), -g, 2 * x * g, -x.erf()


def _erfinv(x, u):
    w = x.erfinv()
    d = arb.pi().sqrt() / 2 * (w * w).exp()
    return w, d, 2 * w * d * d, None


def _trigamma(x):
    # psi'(x) = zeta(2, x), Hurwitz's zeta, for x > 0 (the cases' domain; NaN elsewhere).
    return arb(2).zeta(x) if x > 0 else arb("nan")


def _lgamma(x, u):
    if not x > 0:
        return (arb("nan"),) * 3 + (None,)
    return x.lgamma(), x.digamma(), _trigamma(x), None


def _digamma(x, u):
    if not x > 0:
        return (arb("nan"),) * 3 + (None,)
    return x.digamma(), _trigamma(x), -2 * arb(3).zeta(x), None


def _softplus_rule(beta):
    def rule(z, u):   # z = beta * x; the 1/beta and beta factors are the caller's
        s, t = _sigmoid_pair(z)
        return z.exp().log1p(), s, s * t, None
    return rule


_UNARY = {
    "exp": _exp, "expm1": _expm1, "exp2": _exp2, "log": _log, "log1p": _log1p,
    "log2": _log2, "log10": _log_base(arb.const_log10),
    "sqrt": _sqrt, "rsqrt": _rsqrt, "sigmoid": _sigmoid, "expit": _sigmoid,
    "logsigmoid": _logsigmoid, "log_sigmoid": _logsigmoid, "tanh": _tanh,
    "sinh": _sinh, "cosh": _cosh, "asinh": _asinh, "acosh": _acosh, "atanh": _atanh,
    "sin": _sin, "cos": _cos, "tan": _tan, "asin": _asin, "acos": _acos, "atan": _atan,
    "erf": _erf, "erfc": _erfc, "erfinv": _erfinv, "lgamma": _lgamma, "gammaln": _lgamma,
    "digamma": _digamma, "psi": _digamma,
}


# -- comparisons and the non-smooth operations built on them ---------------------------------------------------

def _order(a, b):
    """Per point: -1, 0 or 1 for ``a`` below, equal to or above ``b``;
    equal exact balls count as a switching point, overlapping ones as
    undecided (both marked; their result is then not used)."""
    def one(x, y):
        if x.overlaps(y):
            return 0, bool(x.is_exact() and y.is_exact() and not x.is_nan() and not y.is_nan())
        return (1 if x > y else -1), None
    if not (_is_array(a) or _is_array(b)):
        sign, exact = one(a, b)
        if sign == 0:
            (_marks().switching if exact else _marks().undecided)[:] = True
        return np.int8(sign)
    sign, exact = _vectorized(one, 2, 2)(a, b)
    sign = np.broadcast_to(sign, _marks().switching.shape).astype(np.int8)
    exact = np.broadcast_to(exact, sign.shape)
    tie = sign == 0
    _marks().switching[tie & (exact == True)] = True   # noqa: E712 (an object array)
    _marks().undecided[tie & (exact != True)] = True   # noqa: E712
    return sign


def _select(mask, a: Jet, b: Jet) -> Jet:
    """``a`` where ``mask``, else ``b`` (every part of the jet)."""
    def pick(x, y):
        if x is None and y is None:
            return None
        zero = arb(0)
        return np.where(mask, zero if x is None else x, zero if y is None else y)
    m1 = pick(a.m1, b.m1) if a.m1 is not None and b.m1 is not None else None
    return Jet(pick(a.v, b.v), tuple(pick(x, y) for x, y in zip(a.d, b.d)),
               {kl: pick(a.h.get(kl), b.h.get(kl)) for kl in set(a.h) | set(b.h)}, m1)


# -- the stand-in ----------------------------------------------------------------------------------------------

class BallTensor:
    """A 0-d tensor to the formula, a jet over the whole grid inside."""

    __slots__ = ("jet",)

    def __init__(self, jet: Jet):
        self.jet = jet

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        impl = _TABLE.get(func)
        if impl is None:
            raise BallUnsupported(getattr(func, "__name__", repr(func)))
        return impl(*args, **(kwargs or {}))

    def __getattr__(self, name):
        func = getattr(torch.Tensor, name, None)
        impl = None if func is None or name.startswith("__") else _TABLE.get(func)
        if impl is None:
            raise BallUnsupported(f"Tensor.{name}")
        return functools.partial(impl, self)

    shape = property(lambda self: torch.Size([]))
    ndim = property(lambda self: 0)
    dtype = property(lambda self: torch.float64)
    device = property(lambda self: torch.device("cpu"))
    requires_grad = property(lambda self: False)

    def __bool__(self):
        raise BallUnsupported("a Python branch on a tensor (bool())")

    def __float__(self):
        raise BallUnsupported("float() of a tensor")


class BallBool:
    """A boolean 0-d tensor to the formula: one flag per point."""

    __slots__ = ("mask",)

    def __init__(self, mask: np.ndarray):
        self.mask = mask

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        impl = _TABLE.get(func)
        if impl is None:
            raise BallUnsupported(getattr(func, "__name__", repr(func)))
        return impl(*args, **(kwargs or {}))

    def __bool__(self):
        raise BallUnsupported("a Python branch on a tensor (bool())")

    def __and__(self, other):
        return BallBool(self.mask & _mask(other))

    def __or__(self, other):
        return BallBool(self.mask | _mask(other))

    def __invert__(self):
        return BallBool(~self.mask)

    __rand__, __ror__ = __and__, __or__


def _mask(x) -> np.ndarray:
    if isinstance(x, BallBool):
        return x.mask
    if isinstance(x, bool):
        return np.full(_marks().switching.shape, x)
    raise BallUnsupported(f"a {type(x).__name__} as a mask")


_N = [0]   # directions of the evaluation in progress


def _jet(x) -> Jet:
    if isinstance(x, BallTensor):
        return x.jet
    if isinstance(x, torch.Tensor):
        if x.dim() != 0 or not (x.dtype.is_floating_point or x.dtype in (torch.int64, torch.int32, torch.bool)):
            raise BallUnsupported(f"a tensor constant of shape {tuple(x.shape)}")
        x = x.item()
    return Jet.constant(x, _N[-1])


def _wrap(f):
    """A jet function as a torch function of stand-ins and numbers."""
    return lambda *args: BallTensor(f(*[_jet(a) for a in args]))


def _unary_op(rule):
    f = _unary_rule(rule)

    def impl(input, *, out=None):
        if out is not None:
            raise BallUnsupported("out=")
        return BallTensor(f(_jet(input)))
    return impl


def _alpha(f):
    def impl(input, other, *, alpha=1, out=None):
        b = _jet(other)
        if alpha != 1:
            b = _mul(b, Jet.constant(alpha, _N[-1]))
        return BallTensor(f(_jet(input), b))
    return impl


def _div_op(input, other, *, rounding_mode=None, out=None):
    if rounding_mode is not None:
        raise BallUnsupported(f"div(rounding_mode={rounding_mode!r})")
    return BallTensor(_div(_jet(input), _jet(other)))


def _pow_jets(a: Jet, b: Jet) -> Jet:
    if any(t is not None for t in b.d) or _is_array(b.v):
        # x**y = exp(y log x), x > 0 (the cases' domain; NaN balls elsewhere).
        return _unary_rule(_exp)(_mul(b, _unary_rule(_log)(a)))
    c = b.v
    if c.is_exact() and c.is_integer() and abs(float(c)) <= 64:
        k = int(float(c))
        if k == 2:
            return _mul(a, a)
        rule = lambda x, u: (x ** k, k * x ** (k - 1), k * (k - 1) * x ** (k - 2),   # noqa: E731
                             None if u is None else None)
    else:
        rule = lambda x, u: (x ** c, c * x ** (c - 1), c * (c - 1) * x ** (c - 2),   # noqa: E731
                             None if u is None else (c * u.log1p()).expm1())
    return _unary_rule(rule)(a)


def _pow_op(input, exponent, *, out=None):
    return BallTensor(_pow_jets(_jet(input), _jet(exponent)))


def _square(input, *, out=None):
    a = _jet(input)
    return BallTensor(_mul(a, a))


def _compare(op):
    def impl(a, b):
        sign = _order(_jet(a).v, _jet(b).v)
        return BallBool(np.broadcast_to(op(sign), _marks().switching.shape).copy())
    return impl


_COMPARE = {"lt": _compare(lambda s: s < 0), "le": _compare(lambda s: s <= 0), "gt": _compare(lambda s: s > 0),
            "ge": _compare(lambda s: s >= 0), "eq": _compare(lambda s: s == 0), "ne": _compare(lambda s: s != 0)}


def _where(condition, input=None, other=None):
    if input is None:
        raise BallUnsupported("where(condition) without values")
    return BallTensor(_select(_mask(condition), _jet(input), _jet(other)))


def _maximum(input, other, *, out=None):
    a, b = _jet(input), _jet(other)
    return BallTensor(_select(_order(a.v, b.v) > 0, a, b))


def _minimum(input, other, *, out=None):
    a, b = _jet(input), _jet(other)
    return BallTensor(_select(_order(a.v, b.v) < 0, a, b))


def _clamp(input, min=None, max=None, *, out=None):
    t = input
    if min is not None:
        t = _maximum(t, min)
    if max is not None:
        t = _minimum(t, max)
    return t if isinstance(t, BallTensor) else BallTensor(_jet(t))


def _abs(input, *, out=None):
    a = _jet(input)
    return BallTensor(_select(_order(a.v, arb(0)) >= 0, a, _neg(a)))


def _relu(input, inplace=False):
    a = _jet(input)
    return BallTensor(_select(_order(a.v, arb(0)) > 0, a, Jet.constant(0, a.n)))


def _softplus(input, beta=1, threshold=20):
    # Exact: no threshold (torch returns x above it), as in harness.exact.
    a = _jet(input)
    b = Jet.constant(beta, a.n)
    return BallTensor(_div(_unary_rule(_softplus_rule(beta))(_mul(b, a)), b))


def _silu(input, inplace=False):
    a = _jet(input)
    return BallTensor(_mul(a, _unary_rule(_sigmoid)(a)))


def _mish(input, inplace=False):
    a = _jet(input)
    sp = _unary_rule(_softplus_rule(1))(a)
    return BallTensor(_mul(a, _unary_rule(_tanh)(sp)))


def _gelu(input, approximate="none"):
    a = _jet(input)
    n = a.n
    if approximate == "none":
        # x Phi(x) = x/2 erfc(-x/sqrt 2): no 1 + erf(x) to cancel for x << 0.
        inner = _mul(a, Jet.constant(-arb(2).rsqrt(), n))
        return BallTensor(_mul(_mul(a, Jet.constant(arb(0.5), n)), _unary_rule(_erfc)(inner)))
    if approximate == "tanh":
        # 0.5 x (1 + tanh(u)) = x sigmoid(2u), u = sqrt(2/pi) (x + 0.044715 x**3),
        # with Hendrycks and Gimpel's decimal constant (as harness.exact has it).
        cube = _mul(a, _mul(a, a))
        u = _add(a, _mul(Jet.constant(arb("0.044715"), n), cube))
        two_u = _mul(Jet.constant(2 * (2 / arb.pi()).sqrt(), n), u)
        return BallTensor(_mul(a, _unary_rule(_sigmoid)(two_u)))
    raise BallUnsupported(f"gelu(approximate={approximate!r})")


def _binary_rule(partials):
    """A jet function of two jets from ``partials(a, b) -> (f, fa, fb, faa, fab, fbb)``."""
    def f(a: Jet, b: Jet) -> Jet:
        if _is_array(a.v) or _is_array(b.v):
            parts = _vectorized(partials, 2, 6)(a.v, b.v)
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
    w = sa * sb
    return v, sa, sb, w, -w, w


def _hypot_partials(x, y):
    r = (x * x + y * y).sqrt()
    r3 = r * r * r
    return r, x / r, y / r, y * y / r3, -x * y / r3, x * x / r3


def _atan2_partials(y, x):
    w = x * x + y * y
    w2 = w * w
    return arb.atan2(y, x), x / w, -y / w, -2 * x * y / w2, (y * y - x * x) / w2, 2 * x * y / w2


_logaddexp = _binary_rule(_logaddexp_partials)


def _logaddexp2_op(input, other, *, out=None):
    a, b = _jet(input), _jet(other)
    ln2 = Jet.constant(arb.const_log2(), a.n)
    return BallTensor(_div(_logaddexp(_mul(a, ln2), _mul(b, ln2)), ln2))


def _xlogy_with(log_rule):
    def impl(input, other, *, out=None):
        x, y = _jet(input), _jet(other)
        # x = 0 gives 0 whatever log y is: a switching point, as in harness.exact.
        _order(x.v, arb(0))
        return BallTensor(_mul(x, _unary_rule(log_rule)(y)))
    return impl


def _leaky_relu(input, negative_slope=0.01, inplace=False):
    a = _jet(input)
    return BallTensor(_select(_order(a.v, arb(0)) > 0, a, _mul(a, Jet.constant(negative_slope, a.n))))


def _elu(input, alpha=1.0, inplace=False):
    a = _jet(input)
    return BallTensor(_select(_order(a.v, arb(0)) > 0, a,
                              _mul(Jet.constant(alpha, a.n), _unary_rule(_expm1)(a))))


def _same(input, *args, **kwargs):
    return input


def _dtype_cast(input, *args, **kwargs):
    if any(isinstance(v, torch.dtype) and not v.is_floating_point for v in list(args) + list(kwargs.values())):
        raise BallUnsupported("a cast to a non-floating dtype")
    return input


_NAMESPACES = (torch, torch.Tensor, torch.special, F)
_TABLE: dict = {}


def _register(impl, *names, namespaces=_NAMESPACES):
    for name in names:
        for ns in namespaces:
            func = getattr(ns, name, None)
            if func is not None and func not in _TABLE:
                _TABLE[func] = impl


def _build_table():
    for name, rule in _UNARY.items():
        _register(_unary_op(rule), name)
    _register(_alpha(_add), "add", "__add__", "__radd__")
    _register(_alpha(_sub), "sub", "subtract", "__sub__")
    _register(lambda a, b, *, alpha=1: _alpha(_sub)(b, a, alpha=alpha), "rsub", "__rsub__")
    _register(_wrap(_mul), "mul", "multiply", "__mul__", "__rmul__")
    _register(_div_op, "div", "divide", "true_divide", "__truediv__")
    _register(lambda a, b: _div_op(b, a), "__rtruediv__", "__rdiv__")
    _register(_unary_op(lambda x, u: (1 / x, -1 / (x * x), 2 / (x * x * x), None)), "reciprocal")
    _register(_pow_op, "pow", "float_power", "__pow__")
    _register(lambda a, b: _pow_op(b, a), "__rpow__")
    _register(_square, "square")
    _register(_wrap(_neg), "neg", "negative", "__neg__")
    _register(_abs, "abs", "absolute", "__abs__")
    _register(_relu, "relu")
    _register(_softplus, "softplus")
    _register(_silu, "silu")
    _register(_mish, "mish")
    _register(_gelu, "gelu")
    _register(_leaky_relu, "leaky_relu")
    _register(_elu, "elu")
    _register(_wrap(_logaddexp), "logaddexp")
    _register(_logaddexp2_op, "logaddexp2")
    _register(_wrap(_binary_rule(_hypot_partials)), "hypot")
    _register(_wrap(_binary_rule(_atan2_partials)), "atan2", "arctan2")
    _register(_xlogy_with(_log), "xlogy")
    _register(_xlogy_with(_log1p), "xlog1py")
    _register(_maximum, "maximum", "fmax")
    _register(_minimum, "minimum", "fmin")
    _register(_clamp, "clamp", "clip")
    _register(lambda input, min: _clamp(input, min=min), "clamp_min")
    _register(lambda input, max: _clamp(input, max=max), "clamp_max")
    _register(_where, "where", namespaces=(torch,))
    _TABLE[torch.Tensor.where] = lambda input, condition, other: _where(condition, input, other)
    for name, impl in _COMPARE.items():
        aliases = {"lt": ("less",), "le": ("less_equal",), "gt": ("greater",), "ge": ("greater_equal",),
                   "eq": (), "ne": ("not_equal",)}[name]
        _register(impl, name, f"__{name}__", *aliases)
    _register(_same, "contiguous", "clone", "detach", "cpu")
    _register(_dtype_cast, "to", "double", "float")


_build_table()

for _name in ("add", "sub", "mul", "truediv", "pow"):
    _forward_impl = _TABLE[getattr(torch.Tensor, f"__{_name}__")]
    setattr(BallTensor, f"__{_name}__", (lambda impl: lambda self, other: impl(self, other))(_forward_impl))
    setattr(BallTensor, f"__r{_name}__", (lambda impl: lambda self, other: impl(other, self))(_forward_impl))
for _name in ("lt", "le", "gt", "ge", "eq", "ne"):
    setattr(BallTensor, f"__{_name}__", (lambda impl: lambda self, other: impl(self, other))(_COMPARE[_name]))
BallTensor.__neg__ = lambda self: BallTensor(_neg(self.jet))
BallTensor.__pos__ = lambda self: self
BallTensor.__abs__ = lambda self: _abs(self)
BallTensor.__hash__ = object.__hash__


# -- evaluation -------------------------------------------------------------------------------------------------

def evaluate(formula, inputs: list[np.ndarray], active: list[bool]) -> tuple[Jet, _Marks]:
    """The jet of ``formula`` over the grid at the context's precision.

    Args:
        formula: the torch function ``exact`` wraps, of one 0-d tensor per input.
        inputs: one float64 array per input, the grid's points along it (finite).
        active: per input, whether to differentiate along it (labels are not).

    Returns:
        The output's jet (one ball per point in each part) and the marks.
        Raises ``BallUnsupported`` where the formula leaves the table.
    """
    n = sum(active)
    points = len(inputs[0])
    args, k = [], 0
    for values, on in zip(inputs, active):
        v = np.empty(points, dtype=object)
        v[:] = [arb(float(x)) for x in values]
        d = [None] * n
        if on:
            one = np.empty(points, dtype=object)
            one[:] = [arb(1)] * points
            d[k] = one
            k += 1
        args.append(BallTensor(Jet(v, tuple(d), {}, None)))
    _MARKS.append(_Marks(points))
    _N.append(n)
    try:
        with _ForwardOnly():
            out = formula(*args)
        marks = _marks()
    finally:
        _MARKS.pop()
        _N.pop()
    if isinstance(out, (tuple, list)) and len(out) == 1:
        out = out[0]
    if not isinstance(out, BallTensor):
        raise BallUnsupported(f"a result that is a {type(out).__name__}, not a tensor of the inputs")
    return _full(out.jet, points), marks


def _full(jet: Jet, points: int) -> Jet:
    """Every part as an array over the grid (a constant result broadcast)."""
    def spread(x):
        if x is None or _is_array(x):
            return x
        a = np.empty(points, dtype=object)
        a[:] = [x] * points
        return a
    return Jet(spread(jet.v), tuple(spread(t) for t in jet.d), {kl: spread(t) for kl, t in jet.h.items()},
               spread(jet.m1))
