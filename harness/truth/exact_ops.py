"""The table of operations of ``harness.exact``, part one: elementwise operations,
reductions and products on the stand-in, each the formula's mathematics in mpmath."""

from __future__ import annotations

import functools
import math

import mpmath
import numpy as np
import torch

from .dual import Dual, lift, lift_row, value as _value, weighted_sum
from .exact_numbers import (
    _add, _ANY_UNARY, _div, _erfc, _expm1, _fmax, _fmin, _gelu_tanh, _isnan, _lgamma, _log, _log1p, _log1p_raw, _make,
    _maximum, _minimum, _MP, _MPF, _mul, _ONE_MPF, _pole, _pow, _real_elem, _REAL_UNARY, _sigmoid, _softplus_raw,
    _sqrt, _sub, _sum2, _ZERO, _ZERO_MPF)
from .exact_tensor import (
    _as, _assign, AtenLevel, BOOL, _cast, _category, ExactTensor, ExactUnsupported, INT, _map, _new, _operand,
    _promote, REAL)

# -- elementwise operations ----------------------------------------------------------------------------------

def _unary_op(name):
    if name in _REAL_UNARY:
        f = _REAL_UNARY[name]
        real = lambda v: _nan_if_complex(f(v))
        if name in _STEPS:
            real = lambda v: _value(f(v))   # flat: a constant, which later comparisons do not mark as a tie
        return lambda input, *, out=None: _new(_map(real, _as(_operand(input), REAL)), REAL)
    f = _ANY_UNARY[name]

    def impl(input, *, out=None):
        t = _operand(input)
        if t.dtype is BOOL and name != "relu":
            t = ExactTensor(_as(t, INT), INT)
        return _new(_map(f, t.a), t.dtype)
    return impl


_STEPS = ("floor", "ceil", "trunc")


def _binary(real, integer=None):
    """``real`` on real operands; ``integer`` (if any) when neither is real
    (two booleans give a boolean, as in torch: ``mask * mask`` is a mask)."""
    def impl(a, b):
        a, b = _operand(a), _operand(b)
        dtype = _promote(a, b)
        if dtype is BOOL and integer is not None:
            return _new(_map(lambda x, y: bool(integer(x, y)), a.a, b.a), BOOL)
        if dtype is INT and integer is not None:
            return _new(_map(integer, a.a, b.a), INT)
        return _new(_map(real, _as(a, REAL), _as(b, REAL)), REAL)
    return impl


def _int_add(a, b):
    return a + b


def _int_sub(a, b):
    return a - b


def _int_mul(a, b):
    return a * b


def _and_elem(a, b):
    return a & b


_add_plain = _binary(_add, _int_add)
_sub_plain = _binary(_sub, _int_sub)
_mul_op = _binary(_mul, _int_mul)
_div_op = _binary(_div)
_pow_op = _binary(_pow, _pow)


def _add_op(input, other, *, alpha=1, out=None):
    return _add_plain(input, other if alpha == 1 else _mul_op(other, alpha))


def _sub_op(input, other, *, alpha=1, out=None):
    return _sub_plain(input, other if alpha == 1 else _mul_op(other, alpha))


def _rsub(input, other, *, alpha=1):
    return _sub_op(other, input, alpha=alpha)


def _div_rounding(input, other, *, rounding_mode=None, out=None):
    if rounding_mode is not None:   # floor and trunc: exact_aten_ops
        raise AtenLevel(f"harness.exact: div with rounding_mode={rounding_mode!r}")
    return _div_op(input, other)


def _floordiv(a, b):
    a, b = _operand(a), _operand(b)
    if _promote(a, b) is REAL:   # the exact floor of a real quotient: exact_aten_ops
        raise AtenLevel("harness.exact: floor division of real tensors")
    return _new(_map(lambda x, y: x // y, a.a, b.a), INT)


def _logical(f, name):
    def impl(a, b):
        a, b = _operand(a), _operand(b)
        dtype = _promote(a, b)
        if dtype is REAL:
            raise ExactUnsupported(f"harness.exact: {name} of real tensors")
        return _new(_map(f, a.a, b.a), dtype)
    return impl


_and = _logical(_and_elem, "&")
_or = _logical(lambda a, b: a | b, "|")
_xor = _logical(lambda a, b: a ^ b, "^")


def _invert(input):
    t = _operand(input)
    if t.dtype is REAL:
        raise ExactUnsupported("harness.exact: ~ of a real tensor")
    return _new(_map((lambda v: not v) if t.dtype is BOOL else (lambda v: ~v), t.a), t.dtype)


def _compare(f):
    def impl(a, b):
        a, b = _operand(a), _operand(b)
        return _new(_map(f, a.a, b.a), BOOL)
    return impl


_COMPARE = {"lt": _compare(lambda a, b: bool(a < b)), "le": _compare(lambda a, b: bool(a <= b)),
            "gt": _compare(lambda a, b: bool(a > b)), "ge": _compare(lambda a, b: bool(a >= b)),
            "eq": _compare(lambda a, b: bool(a == b)), "ne": _compare(lambda a, b: bool(a != b))}


def _predicate(f):
    return lambda input: _new(_map(lambda v: bool(f(v)), _operand(input).a), BOOL)


def _logical_not(input):
    return _new(_map(lambda v: not v, _operand(input).a), BOOL)


def _where(condition, input=None, other=None):
    if input is None:
        raise ExactUnsupported("harness.exact: torch.where(condition) without values (nonzero)")
    c, a, b = _operand(condition), _operand(input), _operand(other)
    dtype = _promote(a, b)
    return _new(np.where(_as(c, BOOL).astype(bool), _as(a, dtype), _as(b, dtype)), dtype)


def _tensor_where(input, condition, other):
    return _where(condition, input, other)


def _masked_fill(input, mask, value):
    t = _operand(input)
    return _where(mask, _operand(value) if t.dtype is REAL else ExactTensor(_as(_operand(value), t.dtype), t.dtype),
                  t)


def _at_least(v, bound):
    return max(v, bound)   # v itself where it is inside (NaN stays NaN)


def _at_most(v, bound):
    return min(v, bound)


def _clamp(input, min=None, max=None, *, out=None):
    t = _operand(input)
    lo = None if min is None else _operand(min)
    hi = None if max is None else _operand(max)
    dtype = _promote(t, *[b for b in (lo, hi) if b is not None])
    out = _as(t, dtype)
    # clamp keeps the element itself where it is inside: sigmoid(x) keeps its 1 - sigmoid(x).
    if lo is not None:
        out = _map(_at_least, out, _as(lo, dtype))
    if hi is not None:
        out = _map(_at_most, out, _as(hi, dtype))
    return _new(out, dtype)


def _maximum_op(input, other, *, out=None):
    a, b = _operand(input), _operand(other)
    dtype = _promote(a, b)
    return _new(_map(_maximum, _as(a, dtype), _as(b, dtype)), dtype)


def _minimum_op(input, other, *, out=None):
    a, b = _operand(input), _operand(other)
    dtype = _promote(a, b)
    return _new(_map(_minimum, _as(a, dtype), _as(b, dtype)), dtype)


def _binary_elements(f):
    def impl(input, other, *, out=None):
        a, b = _operand(input), _operand(other)
        dtype = _promote(a, b)
        return _new(_map(f, _as(a, dtype), _as(b, dtype)), dtype)
    return impl


_fmax_op, _fmin_op = _binary_elements(_fmax), _binary_elements(_fmin)


@lift(lambda out, y, x: (lambda: _div(x, _add(_mul(x, x), _mul(y, y))),
                         lambda: -_div(y, _add(_mul(x, x), _mul(y, y)))))
def _atan2_elem(y, x):
    return mpmath.atan2(y, x)


@lift(lambda out, x, y: (lambda: _div(x, out), lambda: _div(y, out)))
def _hypot_elem(x, y):
    return mpmath.hypot(x, y)


def _atan2(input, other, *, out=None):
    return _binary(_atan2_elem)(input, other)


def _hypot(input, other, *, out=None):
    return _binary(_hypot_elem)(input, other)


def _xlogy(input, other, *, out=None):
    return _binary(lambda x, y: y if _isnan(y) else (_ZERO_MPF if x == 0 else _mul(x, _log(y))))(input, other)


def _xlog1py(input, other, *, out=None):
    return _binary(lambda x, y: y if _isnan(y) else (_ZERO_MPF if x == 0 else _mul(x, _log1p(y))))(input, other)


# Its weights are sigmoid(a - b) and sigmoid(b - a): an exact difference of
# the inputs, where exp(a - out) would take out's rounding (2**-160 of 8e195)
# as an absolute error in the exponent (logaddexp2's d/dy at (1.6e-322,
# 1.2e196) read exp(-2**490), not 1).
@lift(lambda out, a, b: (lambda: _sigmoid(_sub(a, b)), lambda: _sigmoid(_sub(b, a))))
def _logaddexp_elem(a, b):
    hi, lo = (a, b) if a >= b else (b, a)
    if not mpmath.isfinite(hi):
        return mpmath.log(mpmath.exp(a) + mpmath.exp(b))
    return _add(hi, _log1p_raw(mpmath.exp(_sub(lo, hi))._mpf_))


def _logaddexp(input, other, *, out=None):
    return _binary(_logaddexp_elem)(input, other)


def _logaddexp2(input, other, *, out=None):
    ln2 = _MP.ln2
    return _binary(lambda a, b: _logaddexp_elem(a * ln2, b * ln2) / ln2)(input, other)


def _softplus(input, beta=1, threshold=20):
    # Exact: no threshold (torch returns x above it).
    beta = _real_elem(beta)
    return _new(_map(lambda x: _softplus_raw(_mul(beta, x)) / beta, _as(_operand(input), REAL)), REAL)


def _elu(input, alpha=1.0, inplace=False):
    alpha = _real_elem(alpha)
    out = _new(_map(lambda x: x if x > 0 else _mul(alpha, _expm1(x)), _as(_operand(input), REAL)), REAL)
    return _assign(input, out) if inplace else out


def _celu(input, alpha=1.0, inplace=False):
    # alpha expm1(x / alpha) below 0 (torch's elu at the ATen level multiplies by a rounded 1/alpha).
    alpha = _real_elem(alpha)
    out = _new(_map(lambda x: x if x > 0 else _mul(alpha, _expm1(_div(x, alpha))), _as(_operand(input), REAL)),
               REAL)
    return _assign(input, out) if inplace else out


def _polygamma(n, input, *, out=None):
    # psi(n, x), its derivative psi(n + 1, x); NaN at the poles 0, -1, ..., as digamma.
    f = lift(lambda out, x: (lambda: mpmath.psi(n + 1, x),))(_pole(lambda x: mpmath.psi(n, x), _MP.nan))
    return _new(_map(f, _as(_operand(input), REAL)), REAL)


def _mvlgamma(input, p):
    """``log(pi) p(p - 1)/4 + sum_j lgamma(x - j/2)`` over ``j < p``, each ``x - j/2``
    exact (torch's decomposition rounds ``log(pi)`` to a double)."""
    c = mpmath.log(_MP.pi) * p * (p - 1) / 4

    def f(x):
        out = c
        for j in range(p):
            out = _add(out, _lgamma(_sub(x, _MP.mpf(j) / 2)))
        return out
    return _new(_map(f, _as(_operand(input), REAL)), REAL)


def _leaky_relu(input, negative_slope=0.01, inplace=False):
    slope = _real_elem(negative_slope)
    out = _new(_map(lambda x: x if x > 0 else _mul(slope, x), _as(_operand(input), REAL)), REAL)
    return _assign(input, out) if inplace else out


def _gelu(input, approximate="none"):
    if approximate == "tanh":
        f = _gelu_tanh
    elif approximate == "none":
        # x Phi(x) = x/2 erfc(-x/sqrt 2): no 1 + erf(x) to cancel for x << 0.
        f = lambda x: _mul(x, _erfc(-x / mpmath.sqrt(2))) / 2
    else:
        raise ExactUnsupported(f"harness.exact: gelu(approximate={approximate!r})")
    return _new(_map(f, _as(_operand(input), REAL)), REAL)


def _functional(name):
    """``F.relu(x, inplace=...)`` and friends: the elementwise op, written back if in place."""
    op = _unary_op(name)

    def impl(input, inplace=False):
        out = op(input)
        return _assign(input, out) if inplace else out
    return impl


def _isnan_op(input):
    return _predicate(_isnan)(input)


def _isinf(v):
    v = _value(v)
    return isinstance(v, (_MPF, _MP.mpc)) and mpmath.isinf(v)


def _isfinite(v):
    v = _value(v)
    return not isinstance(v, (_MPF, _MP.mpc)) or mpmath.isfinite(v)


# -- reductions ------------------------------------------------------------------------------------------------

def _dims(dim, ndim) -> list[int]:
    if dim is None:
        return list(range(ndim))
    dims = [dim] if isinstance(dim, int) else list(dim)
    return sorted({d % ndim for d in dims}) if ndim else []


def _reduce(t: ExactTensor, dim, keepdim, f, dtype) -> ExactTensor:
    """``f(list of elements)`` over the axes ``dim`` (all when None)."""
    a = t.a
    dims = _dims(dim, a.ndim)
    kept = [i for i in range(a.ndim) if i not in dims]
    shape = tuple(a.shape[i] for i in kept)
    rows = np.transpose(a, kept + dims).reshape(shape + (-1,))
    out = np.empty(shape, dtype=object)
    for index in np.ndindex(shape):
        out[index] = f(list(rows[index]))
    if keepdim:
        out = out.reshape(tuple(1 if i in dims else n for i, n in enumerate(a.shape)))
    return ExactTensor(out, dtype)


def _along(t: ExactTensor, dim: int, f, dtype) -> ExactTensor:
    """``f(list) -> list`` along one axis (softmax, cumsum)."""
    a = np.moveaxis(t.a, dim, -1) if t.a.ndim else t.a.reshape(1)
    out = np.empty(a.shape, dtype=object)
    for index in np.ndindex(a.shape[:-1]):
        out[index] = f(list(a[index]))
    return ExactTensor(np.moveaxis(out, -1, dim) if t.a.ndim else out.reshape(()), dtype)


@lift_row(lambda out, values, tangents: weighted_sum([1] * len(values), tangents))
def _exact_sum(values):
    """Exact while it fits ``EXACT_BITS`` (rounded once per term beyond)."""
    if any(not isinstance(v, _MPF) for v in values):
        return mpmath.fsum(values)
    total = _ZERO
    for v in values:
        total = _sum2(total, v._mpf_)
    return _make(total)


def _dim_arg(dim, axis):
    return axis if dim is None else dim


def _sum(input, dim=None, keepdim=False, *, dtype=None, axis=None, out=None):
    t = _operand(input)
    kind = _category(dtype) or (REAL if t.dtype is REAL else INT)
    f = _exact_sum if kind is REAL else sum
    return _reduce(ExactTensor(_as(t, kind), kind), _dim_arg(dim, axis), keepdim, f, kind)


def _mean(input, dim=None, keepdim=False, *, dtype=None, axis=None, out=None):
    t = _operand(input)
    return _reduce(ExactTensor(_as(t, REAL), REAL), _dim_arg(dim, axis), keepdim,
                   lambda v: _div(_exact_sum(v), _MP.mpf(len(v))), REAL)


def _var_elems(values, correction):
    mean = _div(_exact_sum(values), _MP.mpf(len(values)))
    squares = [_mul(d, d) for d in (_sub(v, mean) for v in values)]
    return _div(_exact_sum(squares), _MP.mpf(len(values) - correction))


def _var(input, dim=None, unbiased=None, keepdim=False, *, correction=None, axis=None, out=None):
    c = correction if correction is not None else (0 if unbiased is False else 1)
    t = _operand(input)
    return _reduce(ExactTensor(_as(t, REAL), REAL), _dim_arg(dim, axis), keepdim,
                   lambda v: _var_elems(v, c), REAL)


def _std(input, dim=None, unbiased=None, keepdim=False, *, correction=None, axis=None, out=None):
    return _map_real(_var(input, dim, unbiased, keepdim, correction=correction, axis=axis), _sqrt)


def _nan_if_complex(r):
    """A real function off its real domain is NaN, as torch's is (``sqrt(-1)``,
    ``log(-2)``, ``acos(2)``), not mpmath's complex number: in the branch of a
    ``torch.where`` that is not taken (``where(t > 0, sqrt(t), ...)`` computes
    both) it is dropped like torch's NaN; where it is taken, the truth is NaN
    and the engine reports a point outside the function's domain."""
    return _MP.nan if isinstance(_value(r), _MP.mpc) else r


def _map_real(t, f):
    return _new(_map(f, t.a), REAL)


def _prod(input, dim=None, keepdim=False, *, dtype=None, out=None):
    t = _operand(input)
    kind = _category(dtype) or (REAL if t.dtype is REAL else INT)
    return _reduce(ExactTensor(_as(t, kind), kind), dim, keepdim,
                   lambda v: functools.reduce(_mul if kind is REAL else _int_mul, v, _ONE_MPF if kind is REAL else 1),
                   kind)


def _extreme(values, pick):
    best = values[0]
    for v in values[1:]:
        best = pick(best, v)
    return best


def _amax(input, dim=(), keepdim=False, *, out=None):
    t = _operand(input)
    return _reduce(t, None if dim == () else dim, keepdim, lambda v: _extreme(v, _maximum), t.dtype)


def _amin(input, dim=(), keepdim=False, *, out=None):
    t = _operand(input)
    return _reduce(t, None if dim == () else dim, keepdim, lambda v: _extreme(v, _minimum), t.dtype)


def _arg_extreme(values, better):
    best = 0
    for i, v in enumerate(values):
        if _isnan(v):
            return i
        if i != best and better(v, values[best]):   # an element against itself is no tie
            best = i
    return best


def _argmax(input, dim=None, keepdim=False):
    t = _operand(input)
    return _reduce(t, dim, keepdim and dim is not None, lambda v: _arg_extreme(v, lambda a, b: a > b), INT)


def _argmin(input, dim=None, keepdim=False):
    t = _operand(input)
    return _reduce(t, dim, keepdim and dim is not None, lambda v: _arg_extreme(v, lambda a, b: a < b), INT)


class _ValuesIndices(tuple):
    """What ``torch.max(x, dim)`` returns: ``(values, indices)``, also by name."""

    values = property(lambda self: self[0])
    indices = property(lambda self: self[1])


def _max_min(pairwise, reduce, argreduce):
    def impl(input, dim=None, keepdim=False, *, out=None):
        if isinstance(dim, (ExactTensor, torch.Tensor)):   # torch.max(a, b): elementwise
            return pairwise(input, dim)
        if dim is None:
            return reduce(input)
        return _ValuesIndices((reduce(input, dim, keepdim), argreduce(input, dim, keepdim)))
    return impl


def _lse_jvp(out, values, tangents):
    # The softmax from exact differences v - max, not exp(v - out): out's
    # rounding is an absolute error of the exponent where |v| is huge.
    return weighted_sum(_softmax_row(values), tangents)


def _dominant(s: list):
    """The entry holding more than half the mass, or None."""
    top = max(range(len(s)), key=lambda i: s[i])
    return top if s[top] > 0.5 else None


def _centred(s: list, tangents: list, i: int) -> dict:
    """``d v_i - sum_j s_j d v_j`` of the dominant entry as ``sum_{j != i} s_j (d v_i
    - d v_j)``: written directly, ``1 - s_i`` is the sum of the others' weights,
    which no precision short of the gap's exponent (1000 bits at a gap of 700)
    keeps, and two precisions then agree on a wrong derivative."""
    others = [j for j in range(len(s)) if j != i]
    return weighted_sum([s[j] for j in others] + [-s[j] for j in others],
                        [tangents[i]] * len(others) + [tangents[j] for j in others])


def _softmax_jvp(out, values, tangents):
    # d s_i = s_i (d v_i - sum_j s_j d v_j)
    mean = weighted_sum(out, tangents)
    top = _dominant(out)
    return [weighted_sum([s], [_centred(out, tangents, i) if i == top else weighted_sum([1, -1], [t, mean])])
            for i, (s, t) in enumerate(zip(out, tangents))]


def _log_softmax_jvp(out, values, tangents):
    # d log s_i = d v_i - sum_j s_j d v_j
    s = _softmax_row(values)
    mean = weighted_sum(s, tangents)
    top = _dominant(s)
    return [_centred(s, tangents, i) if i == top else weighted_sum([1, -1], [t, mean])
            for i, t in enumerate(tangents)]


@lift_row(_lse_jvp)
def _logsumexp_row(values):
    hi = _extreme(values, _maximum)
    if not (isinstance(hi, _MPF) and mpmath.isfinite(hi)):
        return mpmath.log(mpmath.fsum(mpmath.exp(v) for v in values))
    # hi + log1p(sum of the others' exp(v - hi)): a tiny remainder is kept, not absorbed by 1.
    top = values.index(hi)
    rest = _exact_sum([mpmath.exp(_sub(v, hi)) for i, v in enumerate(values) if i != top])
    return _add(hi, _log1p_raw(rest._mpf_))


def _logsumexp(input, dim, keepdim=False, *, out=None):
    t = _operand(input)
    return _reduce(ExactTensor(_as(t, REAL), REAL), dim, keepdim, _logsumexp_row, REAL)


@lift_row(_softmax_jvp)
def _softmax_row(values):
    hi = _extreme(values, _maximum)
    if not (isinstance(hi, _MPF) and mpmath.isfinite(hi)):
        e = [mpmath.exp(v) for v in values]
        return [x / mpmath.fsum(e) for x in e]
    e = [mpmath.exp(_sub(v, hi)) for v in values]
    top = values.index(hi)
    total = _add(_ONE_MPF, _exact_sum([x for i, x in enumerate(e) if i != top]))
    return [_div(_ONE_MPF if i == top else x, total) for i, x in enumerate(e)]


@lift_row(_log_softmax_jvp)
def _log_softmax_row(values):
    hi = _extreme(values, _maximum)
    if not (isinstance(hi, _MPF) and mpmath.isfinite(hi)):
        return [v - mpmath.log(mpmath.fsum(mpmath.exp(x) for x in values)) for v in values]
    top = values.index(hi)
    rest = _exact_sum([mpmath.exp(_sub(v, hi)) for i, v in enumerate(values) if i != top])
    log_total = _log1p_raw(rest._mpf_)
    return [_sub(_sub(v, hi), log_total) for v in values]


def _softmax(input, dim=None, _stacklevel=3, dtype=None, *, out=None):
    if dim is None:
        raise ExactUnsupported("harness.exact: softmax needs dim")
    return _along(ExactTensor(_as(_operand(input), REAL), REAL), dim, _softmax_row, REAL)


def _log_softmax(input, dim=None, _stacklevel=3, dtype=None, *, out=None):
    if dim is None:
        raise ExactUnsupported("harness.exact: log_softmax needs dim")
    return _along(ExactTensor(_as(_operand(input), REAL), REAL), dim, _log_softmax_row, REAL)


def _cumsum(input, dim, *, dtype=None, out=None):
    t = _operand(input)
    kind = _category(dtype) or (REAL if t.dtype is REAL else INT)

    def running(values):
        out, total = [], (_ZERO_MPF if kind is REAL else 0)
        for v in values:
            total = _add(total, v) if kind is REAL else total + v
            out.append(total)
        return out
    return _along(ExactTensor(_as(t, kind), kind), dim, running, kind)


def _norm_row(values, p):
    if p == 2:
        return _sqrt(_exact_sum([_mul(v, v) for v in values]))
    if p == 1:
        return _exact_sum([abs(v) for v in values])
    if p == math.inf:
        return _extreme([abs(v) for v in values], _maximum)
    if p == -math.inf:
        return _extreme([abs(v) for v in values], _minimum)
    if p == 0:
        return _MP.mpf(sum(1 for v in values if _value(v) != 0))
    p = _real_elem(p)
    return _pow(_exact_sum([_pow(abs(v), p) for v in values]), 1 / p)


def _vector_norm(input, ord=2, dim=None, keepdim=False, *, dtype=None, out=None):
    return _reduce(ExactTensor(_as(_operand(input), REAL), REAL), dim, keepdim, lambda v: _norm_row(v, ord), REAL)


def _norm(input, p="fro", dim=None, keepdim=False, out=None, dtype=None):
    return _vector_norm(input, 2 if p in ("fro", None) else p, dim, keepdim)


def _all(input, dim=None, keepdim=False, *, out=None):
    return _reduce(ExactTensor(_as(_operand(input), BOOL), BOOL), dim, keepdim, all, BOOL)


def _any(input, dim=None, keepdim=False, *, out=None):
    return _reduce(ExactTensor(_as(_operand(input), BOOL), BOOL), dim, keepdim, any, BOOL)


# -- products ----------------------------------------------------------------------------------------------------

def _einsum(equation, *operands):
    """Einstein sums without ``...`` or repeated indices in one operand: every
    operand broadcast over all the indices, multiplied, summed exactly (the
    other forms are torch's, at the ATen level: permutes, diagonals, ``bmm``)."""
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    ts = [_operand(t) for t in operands]
    equation = equation.replace(" ", "")
    inputs, arrow, output = equation.partition("->")
    terms = inputs.split(",")
    if "." in equation or any(len(set(t)) != len(t) for t in terms) or len(terms) != len(ts):
        raise AtenLevel(f"harness.exact: einsum {equation!r} (simple forms only: no '...', no diagonals)")
    used = inputs.replace(",", "")
    if not arrow:
        output = "".join(sorted(c for c in set(used) if used.count(c) == 1))
    letters = output + "".join(sorted(set(used) - set(output)))
    dtype = _promote(*ts)
    product = None
    for term, t in zip(terms, ts):
        present = [c for c in letters if c in term]
        a = np.transpose(_as(t, dtype), [term.index(c) for c in present])
        a = a.reshape([a.shape[present.index(c)] if c in term else 1 for c in letters])
        product = a if product is None else _map(_mul if dtype is REAL else _int_mul, product, a)
    summed = ExactTensor(product, dtype)
    if len(letters) > len(output):
        summed = _reduce(summed, list(range(len(output), len(letters))), False,
                         _exact_sum if dtype is REAL else sum, dtype)
    return summed


def _matmul(input, other, *, out=None):
    a, b = _operand(input), _operand(other)
    if a.a.ndim == 0 or b.a.ndim == 0:
        raise RuntimeError("both arguments to matmul need to be at least 1D")
    left = a.a[None, :] if a.a.ndim == 1 else a.a
    right = b.a[:, None] if b.a.ndim == 1 else b.a
    dtype = _promote(a, b)
    left, right = _cast(left, dtype), _cast(right, dtype)
    r = _sparse_products(left, right, dtype)
    if r is None:
        # (..., n, k, 1) * (..., 1, k, m) summed over k, exactly.
        product = _map(_mul if dtype is REAL else _int_mul, left[..., :, :, None], right[..., None, :, :])
        r = _reduce(ExactTensor(product, dtype), product.ndim - 2, False, _exact_sum if dtype is REAL else sum,
                    dtype).a
    if a.a.ndim == 1:
        r = r[..., 0, :]
    if b.a.ndim == 1:
        r = r[..., 0]
    return _new(r, dtype)


_exact_zero = np.frompyfunc(lambda v: type(v) is not Dual and v == 0, 1, 1)
_not_finite = np.frompyfunc(lambda v: isinstance(v, (_MPF, Dual)) and not mpmath.isfinite(_value(v)), 1, 1)


def _sparse_products(left, right, dtype):
    """``left @ right`` summing only the products of two nonzero factors, or
    None where that would change the result (an infinite or NaN factor: 0 *
    inf is NaN) or save little. A histogram by kernel density (kornia's mutual
    information: 50 samples, 64 bins, a kernel 1 bin wide) multiplies mostly
    exact zeros; skipped, the sum is the same, exactly."""
    if left.size * right.shape[-1] < 4096:
        return None
    zl, zr = _exact_zero(left).astype(bool), _exact_zero(right).astype(bool)
    if zl.sum() + zr.sum() < (left.size + right.size) // 2:
        return None
    if _not_finite(left).astype(bool).any() or _not_finite(right).astype(bool).any():
        return None
    keep = ~zl[..., :, :, None] & ~zr[..., None, :, :]
    lead = np.broadcast_shapes(left.shape[:-2], right.shape[:-2])
    left, right = np.broadcast_to(left, lead + left.shape[-2:]), np.broadcast_to(right, lead + right.shape[-2:])
    keep = np.broadcast_to(keep, lead + keep.shape[-3:])
    mul, total = (_mul, _exact_sum) if dtype is REAL else (_int_mul, sum)
    zero = _ZERO_MPF if dtype is REAL else 0
    out = np.empty(lead + (left.shape[-2], right.shape[-1]), dtype=object)
    for index in np.ndindex(out.shape):
        *batch, i, j = index
        ks = np.flatnonzero(keep[(*batch, i, slice(None), j)])
        out[index] = total([mul(left[(*batch, i, k)], right[(*batch, k, j)]) for k in ks]) if len(ks) else zero
    return out


def _dot(input, other, *, out=None):
    return _matmul(input, other)


def _outer(input, vec2):
    return _einsum("i,j->ij", input, vec2)


def _linear(input, weight, bias=None):
    out = _matmul(input, _operand(weight).T)
    return out if bias is None else _add_op(out, bias)
