"""``harness.exact``'s formula over a whole grid at once, in ball arithmetic.

The stand-in (``BallTensor``) holds every point of a grid: each element is an
Arb ball (python-flint's ``arb``: a midpoint and a radius that provably contain
the true number), and each torch operation of the formula is dispatched once
for the whole grid. The formula sees the point's own shape (0-d for an
elementwise case); the points are a hidden leading batch axis.

Each element is a jet (``harness.ball_jet``): the value and its partial
derivatives along every input element, from which the VJP and the value's
condition number follow (the gradient's is read at moved points, ``truth_ball``).

What a ball cannot carry, it says, never rounds past:

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
import math

import flint
import numpy as np
import torch
import torch.nn.functional as F

from .ball_jet import (
    ABSOLUTE, BallUnsupported, Jet, _add, _div, _erfc, _expm1, _i0e as _i0e_rule,
    _is_array, _lgamma, _logaddexp, _mul, _neg, _polygamma_rule, _pow_jets, _sigmoid, _softplus_rule, _sub, _tanh,
    _unary_rule, _vectorized)
from .exact import _ForwardOnly
from .exact_tensor import StandIn

arb = flint.arb

__all__ = ["BallTensor", "BallUnsupported", "evaluate"]

class _Marks:
    """Per point of the grid: a switching point met exactly (no precision
    decides it) and a comparison of overlapping balls (more precision may)."""

    def __init__(self, n_points: int):
        self.switching = np.zeros(n_points, dtype=bool)
        self.undecided = np.zeros(n_points, dtype=bool)


class _Evaluation:
    """What the evaluation in progress shares: its marks and its directions."""

    def __init__(self, points: int, directions: int):
        self.marks, self.n = _Marks(points), directions


#: Balls one intermediate result may hold per point (its value and every
#: derivative part), about 100 bytes each. Forward mode carries one part per
#: input element, so its cost grows with the input's size: a histogram of a
#: 32 x 32 image against 256 bins is 1025 x 262,144 balls per point, which is
#: handed to the mpmath engine (whose derivatives are sparse) instead.
MAX_BALLS_PER_POINT = 500_000


def _check_size(shape: tuple, jets) -> None:
    directions = sum(1 for k in range(_NOW[-1].n) if any(j.d[k] is not None for j in jets))
    balls = int(np.prod(shape, dtype=np.int64)) * (1 + directions)
    if balls > MAX_BALLS_PER_POINT:
        raise BallUnsupported(f"forward mode over {directions} directions: {balls:,} balls a point in one result")


_NOW: list[_Evaluation] = []


def _marks() -> _Marks:
    return _NOW[-1].marks


def _points(a: np.ndarray) -> np.ndarray:
    """Any of ``a``'s entries per point (its batch axis first), over the grid."""
    if a.ndim == 0:
        return np.full(_marks().switching.shape, bool(a))
    return np.broadcast_to(a.reshape(a.shape[0], -1).any(axis=1), _marks().switching.shape)


# -- comparisons and the non-smooth operations built on them ---------------------------------------------------

def _order(a, b) -> np.ndarray:
    """Elementwise -1, 0 or 1 for ``a`` below, equal to or above ``b``; a
    point with equal exact balls is marked switching, one with overlapping
    balls undecided (the result is then not used)."""
    def one(x, y):
        if x.overlaps(y):
            return 0, bool(x.is_exact() and y.is_exact() and not x.is_nan() and not y.is_nan())
        return (1 if x > y else -1), False
    sign, exact = _vectorized(one, 2, 2)(a, b)
    sign, exact = np.asarray(sign).astype(np.int8), np.asarray(exact).astype(bool)
    tie = sign == 0
    _marks().switching[_points(tie & exact)] = True
    _marks().undecided[_points(tie & ~exact)] = True
    return sign


def _select(mask, a: Jet, b: Jet) -> Jet:
    """``a`` where ``mask``, else ``b`` (every part of the jet)."""
    def pick(x, y):
        if x is None and y is None:
            return None
        zero = arb(0)
        return np.where(mask, zero if x is None else x, zero if y is None else y)
    m1 = pick(a.m1, b.m1) if a.m1 is not None and b.m1 is not None else None
    return Jet(pick(a.v, b.v), tuple(pick(x, y) for x, y in zip(a.d, b.d)), m1)


# -- the stand-in ----------------------------------------------------------------------------------------------

class _Dispatched:
    """What both stand-ins share: torch functions go to the ball table, and a
    Python branch on a tensor of many points has no answer."""

    __slots__ = ()

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        impl = _TABLE.get(func)
        if impl is None:
            raise BallUnsupported(getattr(func, "__name__", repr(func)))
        return impl(*args, **(kwargs or {}))

    def __bool__(self):
        raise BallUnsupported("a Python branch on a tensor (bool())")


class BallTensor(StandIn):
    """A tensor of the point's shape to the formula, a jet over the whole grid
    inside. A ``torch.Tensor`` (``exact_tensor.StandIn``): a formula that checks
    its input's type, shape or dtype runs on it."""

    @staticmethod
    def unsupported(func) -> BallUnsupported:
        return BallUnsupported(getattr(func, "__name__", str(func)))

    @staticmethod
    def __new__(cls, jet: Jet, pshape=()):
        t = StandIn._wrap(cls, pshape, torch.float64)
        t.jet, t.pshape = jet, tuple(pshape)
        return t

    def __init__(self, jet: Jet, pshape=()):
        pass

    def __bool__(self):
        raise BallUnsupported("a Python branch on a tensor (bool())")

    def __repr__(self, *, tensor_contents=None):
        return f"BallTensor(shape={self.pshape})"

    requires_grad = property(lambda self: False)
    T = property(lambda self: _permute(self, *reversed(range(len(self.pshape)))))
    mT = property(lambda self: _transpose(self, -2, -1))

    def __len__(self):
        if not self.pshape:
            raise TypeError("len() of a 0-d tensor")
        return self.pshape[0]

    def __float__(self):
        raise BallUnsupported("float() of a tensor")

    __hash__ = object.__hash__


class BallBool(_Dispatched):
    """A boolean tensor to the formula: one flag per element and point."""

    __slots__ = ("mask",)

    def __init__(self, mask: np.ndarray):
        self.mask = mask

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
        return np.asarray(x)
    if isinstance(x, torch.Tensor) and x.dtype == torch.bool:   # a constant mask (attention's padding)
        return x.detach().cpu().numpy()[None]
    raise BallUnsupported(f"a {type(x).__name__} as a mask")


def _masked_fill(input, mask, value):
    """``value`` where ``mask``: a constant there, no derivative (``-inf`` before a
    softmax is an exact 0 weight: Arb's exp(-inf) is 0)."""
    if isinstance(value, torch.Tensor) and not isinstance(value, BallTensor):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        raise BallUnsupported("masked_fill with NaN")
    t = _operand(input)
    m = _mask(mask)
    extra = len(t.pshape) - (m.ndim - 1)
    if extra > 0:   # a mask of fewer axes broadcasts from the right, after the batch axis
        m = m.reshape(m.shape[:1] + (1,) * extra + m.shape[1:])
    return _elementwise(lambda a, b: _select(m, b, a))(t, value)


def _operand(x) -> BallTensor:
    """Anything a formula mixes with stand-ins, as a stand-in (numbers and
    torch tensors are exact constants at their binary values)."""
    if isinstance(x, BallTensor):
        return x
    n = _NOW[-1].n
    if isinstance(x, torch.Tensor):
        if not (x.dtype.is_floating_point or x.dtype in (torch.int64, torch.int32, torch.bool)):
            raise BallUnsupported(f"a tensor constant of dtype {x.dtype}")
        if x.dim() == 0:
            return BallTensor(Jet.constant(x.item(), n))
        values = x.detach().cpu().double().numpy()
        v = np.empty((1,) + values.shape, dtype=object)
        v.reshape(-1)[:] = [arb(float(e)) for e in values.reshape(-1)]
        return BallTensor(Jet(v, (None,) * n, v - 1), values.shape)
    if isinstance(x, (bool, int, float, arb)):
        return BallTensor(Jet.constant(x, n))
    raise BallUnsupported(f"a {type(x).__name__} as a tensor")


def _map_parts(jet: Jet, fn, pshape) -> Jet:
    """``fn`` (of an array with the batch axis first) applied to every part;
    a constant's single ball is spread over the point's shape first."""
    def one(a):
        if a is None:
            return None
        if not _is_array(a):
            full = np.empty((1,) + tuple(pshape), dtype=object)
            full.fill(a)
            a = full
        # A part that broadcasts along a point axis (a sum's derivative beside an
        # input's) is spread over it first: sum, index and reshape count its elements.
        return fn(np.broadcast_to(a, a.shape[:1] + tuple(pshape)))
    return Jet(one(jet.v), tuple(one(t) for t in jet.d), one(jet.m1))


def _aligned(t: BallTensor, ndim: int) -> Jet:
    """``t``'s jet with its point axes on the right of ``ndim`` (numpy
    broadcasting then matches torch's, the batch axis first)."""
    extra = ndim - len(t.pshape)
    if extra == 0:
        return t.jet

    def lift(a):
        return a if not _is_array(a) else a.reshape(a.shape[:1] + (1,) * extra + a.shape[1:])
    jet = t.jet
    return Jet(lift(jet.v), tuple(None if d is None else lift(d) for d in jet.d),
               None if jet.m1 is None else lift(jet.m1))


def _elementwise(f):
    """A jet function of several jets as a torch function of stand-ins and numbers, broadcasting as torch does."""
    def impl(*args):
        ts = [_operand(a) for a in args]
        shape = tuple(np.broadcast_shapes(*[t.pshape for t in ts]))
        _check_size(shape, [t.jet for t in ts])
        return BallTensor(f(*[_aligned(t, len(shape)) for t in ts]), shape)
    return impl


def _unary(f):
    def impl(input, *args, **kwargs):
        t = _operand(input)
        return BallTensor(f(t.jet, *args, **kwargs), t.pshape)
    return impl


def _unary_op(rule):
    f = _unary_rule(rule)

    def impl(input, *, out=None):
        if out is not None:
            raise BallUnsupported("out=")
        t = _operand(input)
        return BallTensor(f(t.jet), t.pshape)
    return impl


def _constant(c, n):
    return Jet.constant(c, n)


def _alpha(f):
    def impl(input, other, *, alpha=1, out=None):
        if alpha != 1:
            other = _elementwise(_mul)(other, alpha)
        return _elementwise(f)(input, other)
    return impl


def _div_op(input, other, *, rounding_mode=None, out=None):
    if rounding_mode is not None:
        raise BallUnsupported(f"div(rounding_mode={rounding_mode!r})")
    return _elementwise(_div)(input, other)


def _pow_op(input, exponent, *, out=None):
    return _elementwise(_pow_jets)(input, exponent)


def _square(input, *, out=None):
    return _elementwise(lambda a: _mul(a, a))(input)


def _compare(op):
    def impl(a, b):
        a, b = _operand(a), _operand(b)
        ndim = max(len(a.pshape), len(b.pshape))
        return BallBool(op(_order(_aligned(a, ndim).v, _aligned(b, ndim).v)))
    return impl


_COMPARE = {"lt": _compare(lambda s: s < 0), "le": _compare(lambda s: s <= 0), "gt": _compare(lambda s: s > 0),
            "ge": _compare(lambda s: s >= 0), "eq": _compare(lambda s: s == 0), "ne": _compare(lambda s: s != 0)}


def _where(condition, input=None, other=None):
    if input is None:
        raise BallUnsupported("where(condition) without values")
    mask = _mask(condition)
    return _elementwise(lambda a, b: _select(mask, a, b))(input, other)


def _maximum(input, other, *, out=None):
    return _elementwise(lambda a, b: _select(_order(a.v, b.v) > 0, a, b))(input, other)


def _minimum(input, other, *, out=None):
    return _elementwise(lambda a, b: _select(_order(a.v, b.v) < 0, a, b))(input, other)


def _clamp(input, min=None, max=None, *, out=None):
    t = _operand(input)
    if min is not None:
        t = _maximum(t, min)
    if max is not None:
        t = _minimum(t, max)
    return t


def _abs(input, *, out=None):
    return _unary(lambda a: _select(_order(a.v, arb(0)) >= 0, a, _neg(a)))(input)


def _relu(input, inplace=False):
    return _unary(lambda a: _select(_order(a.v, arb(0)) > 0, a, _constant(0, a.n)))(input)


def _softplus(input, beta=1, threshold=20):
    # Exact: no threshold (torch returns x above it), as in harness.exact.
    def f(a):
        b = _constant(beta, a.n)
        return _div(_unary_rule(_softplus_rule(beta))(_mul(b, a)), b)
    return _unary(f)(input)


def _silu(input, inplace=False):
    return _unary(lambda a: _mul(a, _unary_rule(_sigmoid)(a)))(input)


def _mish(input, inplace=False):
    return _unary(lambda a: _mul(a, _unary_rule(_tanh)(_unary_rule(_softplus_rule(1))(a))))(input)


def _gelu(input, approximate="none"):
    def f(a):
        n = a.n
        if approximate == "none":
            # x Phi(x) = x/2 erfc(-x/sqrt 2): no 1 + erf(x) to cancel for x << 0.
            inner = _mul(a, _constant(-arb(2).rsqrt(), n))
            return _mul(_mul(a, _constant(arb(0.5), n)), _unary_rule(_erfc)(inner))
        if approximate == "tanh":
            # 0.5 x (1 + tanh(u)) = x sigmoid(2u), u = sqrt(2/pi) (x + 0.044715 x**3),
            # with Hendrycks and Gimpel's decimal constant (as harness.exact has it).
            cube = _mul(a, _mul(a, a))
            u = _add(a, _mul(_constant(arb("0.044715"), n), cube))
            return _mul(a, _unary_rule(_sigmoid)(_mul(_constant(2 * (2 / arb.pi()).sqrt(), n), u)))
        raise BallUnsupported(f"gelu(approximate={approximate!r})")
    return _unary(f)(input)


def _logaddexp2(a, b):
    ln2 = _constant(arb.const_log2(), a.n)
    return _div(_logaddexp(_mul(a, ln2), _mul(b, ln2)), ln2)


def _xlogy_with(log_rule):
    def f(x, y):
        # x = 0 gives 0 whatever log y is: a switching point, as in harness.exact.
        _order(x.v, arb(0))
        return _mul(x, _unary_rule(log_rule)(y))
    return _elementwise(f)


def _leaky_relu(input, negative_slope=0.01, inplace=False):
    return _unary(lambda a: _select(_order(a.v, arb(0)) > 0, a, _mul(a, _constant(negative_slope, a.n))))(input)


def _elu(input, alpha=1.0, inplace=False):
    return _unary(lambda a: _select(_order(a.v, arb(0)) > 0, a,
                                    _mul(_constant(alpha, a.n), _unary_rule(_expm1)(a))))(input)


def _celu(input, alpha=1.0, inplace=False):
    # alpha expm1(x / alpha) below 0, the quotient in balls (torch's elu multiplies by a rounded 1/alpha).
    def f(a):
        c = _constant(alpha, a.n)
        return _select(_order(a.v, arb(0)) > 0, a, _mul(c, _unary_rule(_expm1)(_div(a, c))))
    return _unary(f)(input)


#: The doubles of ATen's ``SELU_ALPHA`` and ``SELU_SCALE`` (Activation.h), which
#: F.selu passes to elu; the mpmath stand-in takes F.selu at the ATen level, with the same doubles.
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


def _selu(input, inplace=False):
    def f(a):
        scale = _constant(SELU_SCALE, a.n)
        return _select(_order(a.v, arb(0)) > 0, _mul(scale, a),
                       _mul(_constant(arb(SELU_SCALE) * SELU_ALPHA, a.n), _unary_rule(_expm1)(a)))
    return _unary(f)(input)


def _hardsigmoid(input, inplace=False):
    # relu6(x + 3) / 6: x + 3 is exact near the kinks -3 and 3, so a point there is a switching point met exactly.
    return _div_op(_clamp(_elementwise(_add)(input, 3), 0, 6), 6)


def _hardswish(input, inplace=False):
    return _div_op(_elementwise(_mul)(input, _clamp(_elementwise(_add)(input, 3), 0, 6)), 6)


def _i0e(input, *, out=None):
    # exp(-|x|) has its kink at 0: a switching point, for the one-sided analysis.
    def f(a):
        _order(a.v, arb(0))
        return _unary_rule(_i0e_rule)(a)
    return _unary(f)(input)


def _polygamma(n, input, *, out=None):
    if not isinstance(n, int) or n < 0:
        raise BallUnsupported(f"polygamma of order {n!r}")
    return _unary(_unary_rule(_polygamma_rule(n)))(input)


def _mvlgamma(input, p):
    """``log(pi) p(p - 1)/4 + sum_j lgamma(x - j/2)``, ``j < p`` (each ``j/2`` and
    the sum exact in balls; torch's decomposition rounds ``log(pi)`` to a double)."""
    def f(a):
        out = _constant(arb.pi().log() * p * (p - 1) / 4, a.n)
        for j in range(p):
            out = _add(out, _unary_rule(_lgamma)(_sub(a, _constant(arb(j) / 2, a.n))))
        return out
    return _unary(f)(input)


# -- shapes: the same indexing of every part, the batch axis untouched ------------------------------------------

def _dims(dim, ndim) -> list[int]:
    if dim is None:
        return list(range(ndim))
    dims = [dim] if isinstance(dim, int) else list(dim)
    return sorted({d % ndim for d in dims}) if ndim else []


def _restructure(t, fn, pshape) -> BallTensor:
    t = _operand(t)
    return BallTensor(_map_parts(t.jet, fn, t.pshape), pshape)


def _shape_after(pshape, fn) -> tuple:
    return tuple(fn(np.empty(pshape, dtype=np.int8)).shape)


def _reshape(input, *shape):
    shape = tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list, torch.Size)) else shape
    t = _operand(input)
    new = _shape_after(t.pshape, lambda a: a.reshape(shape))
    return _restructure(t, lambda a: a.reshape(a.shape[:1] + new), new)


def _index(index):
    index = index if isinstance(index, tuple) else (index,)
    for i in index:
        if not (i is None or i is Ellipsis or isinstance(i, (int, slice))):
            raise BallUnsupported(f"an index of type {type(i).__name__}")
    return index


def _getitem(input, index):
    t = _operand(input)
    index = _index(index)
    new = _shape_after(t.pshape, lambda a: a[index])
    return _restructure(t, lambda a: a[(slice(None),) + index], new)


def _unsqueeze(input, dim):
    t = _operand(input)
    d = dim % (len(t.pshape) + 1)
    new = t.pshape[:d] + (1,) + t.pshape[d:]
    return _restructure(t, lambda a: np.expand_dims(a, d + 1), new)


def _squeeze(input, dim=None):
    t = _operand(input)
    dims = [i for i, s in enumerate(t.pshape) if s == 1] if dim is None else \
        [d % len(t.pshape) for d in ([dim] if isinstance(dim, int) else dim) if t.pshape[d % len(t.pshape)] == 1]
    new = tuple(s for i, s in enumerate(t.pshape) if i not in dims)
    return _restructure(t, lambda a: a.reshape(a.shape[:1] + new), new)


def _permute(input, *dims):
    dims = tuple(dims[0]) if len(dims) == 1 and isinstance(dims[0], (tuple, list)) else dims
    t = _operand(input)
    dims = tuple(d % len(t.pshape) for d in dims)
    return _restructure(t, lambda a: np.transpose(a, (0,) + tuple(d + 1 for d in dims)),
                        tuple(t.pshape[d] for d in dims))


def _transpose(input, dim0, dim1):
    t = _operand(input)
    order = list(range(len(t.pshape)))
    a, b = dim0 % len(order), dim1 % len(order)
    order[a], order[b] = order[b], order[a]
    return _permute(t, *order)


def _flatten(input, start_dim=0, end_dim=-1):
    t = _operand(input)
    if not t.pshape:
        return _reshape(t, (1,))
    s, e = start_dim % len(t.pshape), end_dim % len(t.pshape)
    return _reshape(t, t.pshape[:s] + (-1,) + t.pshape[e + 1:])


def _expand(input, *sizes):
    sizes = tuple(sizes[0]) if len(sizes) == 1 and isinstance(sizes[0], (tuple, list, torch.Size)) else sizes
    t = _operand(input)
    lead = len(sizes) - len(t.pshape)
    new = tuple(s if s != -1 else t.pshape[i - lead] for i, s in enumerate(sizes))
    jet = _aligned(t, len(new))
    return BallTensor(_map_parts(jet, lambda a: np.broadcast_to(a, a.shape[:1] + new).copy(), (1,) * lead + t.pshape),
                      new)


def _joined(tensors, dim, stack: bool) -> BallTensor:
    ts = [_operand(t) for t in tensors]
    shape = ts[0].pshape
    nd = len(shape) + (1 if stack else 0)
    d = dim % nd
    n = _NOW[-1].n
    parts = [_map_parts(t.jet, lambda a: a, t.pshape) for t in ts]
    points = max(p.v.shape[0] for p in parts)

    def join(get):
        arrays = [get(p) for p in parts]
        if all(a is None for a in arrays):
            return None
        full = []
        for a, t in zip(arrays, ts):
            if a is None:
                a = np.full((1,) + t.pshape, arb(0), dtype=object)
            a = np.broadcast_to(a, (points,) + a.shape[1:])
            full.append(a)
        return np.stack(full, d + 1) if stack else np.concatenate(full, d + 1)
    jet = Jet(join(lambda p: p.v), tuple(join(lambda p, k=k: p.d[k]) for k in range(n)))
    dummies = [np.empty(t.pshape, dtype=np.int8) for t in ts]
    new = (np.stack(dummies, d) if stack else np.concatenate(dummies, d)).shape
    return BallTensor(jet, new)


def _cat(tensors, dim=0, *, out=None):
    return _joined(tensors, dim, stack=False)


def _stack(tensors, dim=0, *, out=None):
    return _joined(tensors, dim, stack=True)


# -- reductions ------------------------------------------------------------------------------------------------

def _sum(input, dim=None, keepdim=False, *, dtype=None, out=None):
    t = _operand(input)
    dims = _dims(dim, len(t.pshape))
    axes = tuple(d + 1 for d in dims)
    new = tuple(1 if i in dims else s for i, s in enumerate(t.pshape)) if keepdim else \
        tuple(s for i, s in enumerate(t.pshape) if i not in dims)
    jet = _map_parts(t.jet, lambda a: a.sum(axis=axes, keepdims=keepdim) if axes else a, t.pshape)
    jet.m1 = None
    return BallTensor(jet, new)


def _count(t: BallTensor, dim) -> int:
    return int(np.prod([t.pshape[d] for d in _dims(dim, len(t.pshape))])) if t.pshape else 1


def _mean(input, dim=None, keepdim=False, *, dtype=None, out=None):
    t = _operand(input)
    return _div_op(_sum(t, dim, keepdim), _count(t, dim))


def _var(input, dim=None, unbiased=None, keepdim=False, *, correction=None, out=None):
    c = correction if correction is not None else (0 if unbiased is False else 1)
    t = _operand(input)
    centred = _elementwise(_sub)(t, _mean(t, dim, keepdim=True))
    return _div_op(_sum(_square(centred), dim, keepdim), _count(t, dim) - c)


def _std(input, dim=None, unbiased=None, keepdim=False, *, correction=None, out=None):
    return _TABLE[torch.sqrt](_var(input, dim, unbiased, keepdim, correction=correction))


def _logsumexp(input, dim, keepdim=False, *, out=None):
    # exp does not overflow in balls: the definition itself, no shift by the maximum.
    return _TABLE[torch.log](_sum(_TABLE[torch.exp](input), dim, keepdim))


def _softmax(input, dim=None, _stacklevel=3, dtype=None, *, out=None):
    if dim is None:
        raise BallUnsupported("softmax without dim")
    e = _TABLE[torch.exp](input)
    return _div_op(e, _sum(e, dim, keepdim=True))


def _log_softmax(input, dim=None, _stacklevel=3, dtype=None, *, out=None):
    if dim is None:
        raise BallUnsupported("log_softmax without dim")
    return _elementwise(_sub)(input, _logsumexp(input, dim, keepdim=True))


def _extreme(pairwise):
    """``amax`` (``amin``) as a fold of ``maximum`` (``minimum``) over the
    reduced entries, as ``harness.exact`` takes it: a tie of exact balls is a
    switching point (handed over: torch splits the gradient among tied
    entries), an overlap undecided. The gradient is the chosen entry's."""
    def impl(input, dim=(), keepdim=False, *, out=None):
        t = _operand(input)
        dims = _dims(None if dim in ((), None) else dim, len(t.pshape))
        if not dims:
            return t
        keep = [d for d in range(len(t.pshape)) if d not in dims]
        rows = _reshape(_permute(t, *keep, *dims), *(t.pshape[d] for d in keep), -1)
        best = _getitem(rows, (Ellipsis, 0))
        for k in range(1, rows.pshape[-1]):
            best = pairwise(best, _getitem(rows, (Ellipsis, k)))
        if keepdim:
            best = _reshape(best, *(1 if d in dims else n for d, n in enumerate(t.pshape)))
        return best
    return impl


_amax, _amin = _extreme(lambda a, b: _maximum(a, b)), _extreme(lambda a, b: _minimum(a, b))


def _max_min(pairwise, reduce):
    def impl(input, dim=None, keepdim=False, *, out=None):
        if dim is None:
            return reduce(input)
        if isinstance(dim, (BallTensor, torch.Tensor)):
            return pairwise(input, dim)   # torch.max(a, b): elementwise
        raise BallUnsupported("max/min along a dim (it returns indices)")
    return impl


def _vector_norm(input, ord=2, dim=None, keepdim=False, *, dtype=None, out=None):
    if ord in (math.inf, -math.inf):
        return (_amax if ord > 0 else _amin)(_abs(input), () if dim is None else dim, keepdim)
    if ord == 2:
        return _TABLE[torch.sqrt](_sum(_square(input), dim, keepdim))
    if ord == 1:
        return _sum(_abs(input), dim, keepdim)
    if isinstance(ord, (int, float)) and 0 < ord < math.inf:
        # (sum |x|**p)**(1/p), 1/p in balls (as harness.exact takes it in mpmath, not as a double).
        p = arb(ord)
        return _pow_op(_sum(_pow_op(_abs(input), p), dim, keepdim), 1 / p)
    raise BallUnsupported(f"vector_norm(ord={ord})")


def _norm(input, p="fro", dim=None, keepdim=False, out=None, dtype=None):
    return _vector_norm(input, 2 if p in ("fro", None) else p, dim, keepdim)


def _layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5):
    t = _operand(input)
    k = len(normalized_shape) if isinstance(normalized_shape, (tuple, list, torch.Size)) else 1
    dims = list(range(len(t.pshape) - k, len(t.pshape)))
    centred = _elementwise(_sub)(t, _mean(t, dims, keepdim=True))
    var = _div_op(_sum(_square(centred), dims, keepdim=True), _count(t, dims))
    out = _div_op(centred, _TABLE[torch.sqrt](_elementwise(_add)(var, eps)))
    if weight is not None:
        out = _elementwise(_mul)(out, weight)
    if bias is not None:
        out = _elementwise(_add)(out, bias)
    return out


def _matmul(input, other, *, out=None):
    a, b = _operand(input), _operand(other)
    if len(a.pshape) < 2 or len(b.pshape) < 2:
        raise BallUnsupported("matmul of a vector")
    shape = tuple(np.broadcast_shapes(a.pshape[:-2], b.pshape[:-2])) + \
        (a.pshape[-2], b.pshape[-1])
    x, y = (_map_parts(_aligned(t, len(shape)), lambda v: v, (1,) * (len(shape) - len(t.pshape)) + t.pshape)
            for t in (a, b))
    n = x.n

    def mm(p, q):
        if p is None or q is None:
            return None
        return np.matmul(abs(p), abs(q)) if ABSOLUTE[0] else np.matmul(p, q)

    def plus(*terms):
        terms = [t for t in terms if t is not None]
        return None if not terms else functools.reduce(lambda s, t: s + t, terms)
    d = tuple(plus(mm(x.d[k], y.v), mm(x.v, y.d[k])) for k in range(n))
    return BallTensor(Jet(np.matmul(x.v, y.v), d), shape)


# -- the table ---------------------------------------------------------------------------------------------------

_NAMESPACES = (torch, torch.Tensor, torch.special, F, torch.linalg)
_TABLE: dict = {}   # filled by exact_ball_rules, which ball imports before it evaluates
BallTensor.table = _TABLE


def _register(impl, *names, namespaces=_NAMESPACES):
    for name in names:
        for ns in namespaces:
            func = getattr(ns, name, None)
            if func is not None and func not in _TABLE:
                _TABLE[func] = impl




# -- evaluation -------------------------------------------------------------------------------------------------

def evaluate(formula, inputs: list[np.ndarray], active: list[np.ndarray]) -> tuple[Jet, _Marks]:
    """The jet of ``formula`` over the grid at the context's precision.

    Args:
        formula: the torch function ``exact`` wraps, of one tensor per input
            of the point's shape.
        inputs: per input, the grid's points (points first; float64, finite,
            or already balls).
        active: per input, a boolean array of its point's shape: the elements
            to differentiate along (labels are not). The directions are the
            active elements in order, input after input.

    Returns:
        The output's jet, every part of shape (points, output elements), and
        the marks. Raises ``BallUnsupported`` where the formula leaves the table.
    """
    points = len(inputs[0])
    n = int(sum(np.count_nonzero(a) for a in active))
    if sum(int(np.prod(v.shape[1:])) for v in inputs) * (1 + n) > MAX_BALLS_PER_POINT:
        raise BallUnsupported(f"forward mode over {n} directions: the inputs alone exceed {MAX_BALLS_PER_POINT:,} "
                              f"balls a point")
    zero, one = arb(0), arb(1)
    args, k = [], 0
    for values, on in zip(inputs, active):
        shape = values.shape[1:]
        if values.dtype == object:
            v = values
        else:
            v = np.empty(values.shape, dtype=object)
            v.reshape(-1)[:] = [arb(x) for x in values.reshape(-1).tolist()]
        d = [None] * n
        for e in np.flatnonzero(np.ravel(on)):
            t = np.full(values.shape, zero, dtype=object)
            t.reshape(points, -1)[:, e] = one
            d[k] = t
            k += 1
        args.append(BallTensor(Jet(v, tuple(d)), shape))
    _NOW.append(_Evaluation(points, n))
    try:
        with _ForwardOnly():
            out = formula(*args)
        marks = _marks()
    finally:
        _NOW.pop()
    if isinstance(out, (tuple, list)) and len(out) == 1:
        out = out[0]
    if not isinstance(out, BallTensor):
        raise BallUnsupported(f"a result that is a {type(out).__name__}, not a tensor of the inputs")
    return _flat(out, points), marks


def _flat(out: BallTensor, points: int) -> Jet:
    """Every part as an array (points, output elements)."""
    size = int(np.prod(out.pshape)) if out.pshape else 1

    def spread(x):
        if x is None:
            return None
        if not _is_array(x):
            a = np.empty((points, size), dtype=object)
            a.fill(x)
            return a
        return np.broadcast_to(x, (points,) + tuple(out.pshape)).reshape(points, size)
    jet = out.jet
    return Jet(spread(jet.v), tuple(spread(t) for t in jet.d),
               spread(jet.m1))
