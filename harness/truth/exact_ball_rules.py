"""The rules of the ball stand-in (``exact_ball``): losses, casts and the odd
operations, then the table that names every torch function the stand-in knows
and Python's operators on it. Registered when imported (``ball`` imports it
before it evaluates anything)."""

from __future__ import annotations

import functools

import numpy as np
import torch
import torch.nn.functional as F

from .ball_jet import (
    _add, _atan2_partials, BallUnsupported, _binary_rule, _hypot_partials, Jet, _log, _log1p, _logaddexp, _mul,
    _neg, _softplus_rule, _sub, _UNARY, _unary_rule)
from .exact_ball import (
    _abs, _alpha, _amax, _amin, arb, BallTensor, _cat, _celu, _clamp, _COMPARE, _constant, _div_op, _elementwise,
    _elu, _expand, _flatten, _gelu, _getitem, _hardsigmoid, _hardswish, _i0e, _layer_norm, _leaky_relu, _log_softmax,
    _logaddexp2, _logsumexp, _map_parts, _masked_fill, _matmul, _max_min, _maximum, _mean, _minimum, _mish,
    _mvlgamma, _norm, _NOW, _operand, _order, _permute, _polygamma, _pow_op, _register, _relu, _reshape, _select,
    _selu, _silu, _softmax, _softplus, _square, _squeeze, _stack, _std, _sum, _TABLE, _transpose, _unary, _unary_op,
    _unsqueeze, _var, _vector_norm, _where, _xlogy_with)


def _reduced(loss: BallTensor, reduction: str) -> BallTensor:
    if reduction == "none":
        return loss
    if reduction == "sum":
        return _sum(loss)
    if reduction == "mean":
        return _mean(loss)
    raise ValueError(f"{reduction} is not a valid value for reduction")


def _pointwise_loss(f):
    def impl(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
        if size_average is not None or reduce is not None:
            raise BallUnsupported("size_average and reduce (deprecated)")
        loss = _elementwise(f)(input, target)
        if weight is not None:
            loss = _elementwise(_mul)(loss, weight)
        return _reduced(loss, reduction)
    return impl


def _weighted_log(w: Jet, log_p: Jet) -> Jet:
    """``w * log_p``, 0 where ``w`` is 0 (``0 * log 0 = 0``, as in harness.exact). A
    label weight that is exactly 0 selects 0; a differentiated one that meets 0 is
    a switching point, as harness.exact's comparison makes it."""
    if any(t is not None for t in w.d):
        return _select(_order(w.v, arb(0)) != 0, _mul(w, log_p), _constant(0, w.n))
    zero = np.asarray(_ZERO(w.v), dtype=bool)
    return _select(~zero, _mul(w, log_p), _constant(0, w.n))


def _bce(input, target, weight=None, size_average=None, reduce=None, reduction="mean"):
    # The mathematics, without torch's clamp of the log at -100 (as harness.exact).
    def f(p, y):
        one = _constant(1, p.n)
        return _neg(_add(_weighted_log(y, _unary_rule(_log)(p)),
                         _weighted_log(_sub(one, y), _unary_rule(_log)(_sub(one, p)))))
    return _pointwise_loss(f)(input, target, size_average, reduce, reduction, weight)


def _bce_with_logits(input, target, weight=None, size_average=None, reduce=None, reduction="mean",
                     pos_weight=None):
    def f(x, y, w):
        # -(w y log sigmoid(x) + (1 - y) log sigmoid(-x)); log sigmoid(x) = -softplus(-x).
        one = _constant(1, x.n)
        softplus = _unary_rule(_softplus_rule(1))
        return _neg(_add(_weighted_log(_mul(w, y), _neg(softplus(_neg(x)))),
                         _weighted_log(_sub(one, y), _neg(softplus(x)))))
    if size_average is not None or reduce is not None:
        raise BallUnsupported("size_average and reduce (deprecated)")
    loss = _elementwise(f)(input, target, 1 if pos_weight is None else pos_weight)
    if weight is not None:
        loss = _elementwise(_mul)(loss, weight)
    return _reduced(loss, reduction)


def _normalize(input, p=2.0, dim=1, eps=1e-12, out=None):
    return _div_op(input, _clamp(_vector_norm(input, p, dim, keepdim=True), min=eps))


def _cumsum(input, dim, *, dtype=None, out=None):
    t = _operand(input)
    axis = dim % len(t.pshape) + 1
    jet = _map_parts(t.jet, lambda a: np.cumsum(a, axis=axis), t.pshape)
    jet.m1 = None
    return BallTensor(jet, t.pshape)


def _prod(input, dim=None, keepdim=False, *, dtype=None, out=None):
    """The product rule, factor by factor along the axis (each a jet)."""
    t = _operand(input)
    if dim is None:
        t, dim = _reshape(t, (-1,)), 0
    d = dim % len(t.pshape)
    factors = [_getitem(t, (slice(None),) * d + (i,)) for i in range(t.pshape[d])]
    out = functools.reduce(lambda a, b: BallTensor(_mul(a.jet, b.jet), a.pshape), factors)
    return _unsqueeze(out, d) if keepdim else out


_INTEGRAL = np.frompyfunc(lambda b: b.is_exact() and b.is_integer(), 1, 1)
_INDEX = np.frompyfunc(lambda b: int(b.unique_fmpz()), 1, 1)
_ZERO = np.frompyfunc(lambda b: b.is_zero(), 1, 1)


def _long(input, *args, **kwargs):
    """Class indices: a label input (no derivative) whose values are exact
    integers, as the same balls (``cross_entropy`` and ``nll_loss`` read them)."""
    t = _operand(input)
    if any(d is not None for d in t.jet.d):
        raise BallUnsupported("an integer cast of a differentiated tensor")
    whole = _INTEGRAL(t.jet.v)
    if not np.all(np.asarray(whole, dtype=bool)):
        raise BallUnsupported("an integer cast of a tensor that is not integral")
    return BallTensor(Jet(t.jet.v, t.jet.d), t.pshape)


def _classes(t: BallTensor) -> np.ndarray:
    """The class index of each entry of a label tensor, points first."""
    return np.asarray(_INDEX(_map_parts(t.jet, lambda a: a, t.pshape).v), dtype=np.int64)


def _weights(weight, classes: int) -> np.ndarray:
    if weight is None:
        return np.full(classes, arb(1), dtype=object)
    values = weight.detach().cpu().double().numpy().reshape(-1)
    return np.array([arb(float(v)) for v in values], dtype=object)


def _nll_from_log_p(log_p: BallTensor, target, weight, ignore_index, reduction, smoothing) -> BallTensor:
    """Class-index or class-probability targets against log-probabilities of
    shape (C,) or (N, C), as harness.exact defines them (torch's definition,
    the weighted mean over the rows not ignored)."""
    target = _operand(target)
    if len(log_p.pshape) not in (1, 2):
        raise BallUnsupported(f"class losses of logits of shape {log_p.pshape}")
    classes = log_p.pshape[-1]
    w = _weights(weight, classes)
    n = _NOW[-1].n
    if any(d is not None for d in target.jet.d) or len(target.pshape) == len(log_p.pshape):
        # Class probabilities (possibly differentiated), the shape of the logits.
        # The constants' arithmetic is exact (1 - 0.1 is not the double 0.9), as in harness.exact.
        p = target if not smoothing else _elementwise(_add)(
            _elementwise(_mul)(target, 1 - arb(smoothing)), arb(smoothing) / classes)
        losses = _neg_op(_sum(_elementwise(_mul)(_elementwise(_mul)(p, _const_tensor(w, (classes,), n)), log_p), -1))
        return _reduced(losses, reduction)
    y = _classes(target)                                    # points by rows (or points)
    y = y.reshape(y.shape[0], -1)
    hot = y[..., None] == np.arange(classes)                # points by rows by classes
    kept = (y != ignore_index)
    picks = np.where(hot, w, arb(0))
    # Each row's class weight (0 where ignored), summed in balls: doubles' sum rounds.
    row_w = np.where(kept, picks.sum(-1), arb(0))
    if len(log_p.pshape) == 1:
        picks = picks[:, 0]
    chosen = _sum(_elementwise(_mul)(log_p, _const_tensor(picks, log_p.pshape, n, batched=True)), -1)
    losses = _neg_op(chosen)
    if smoothing:
        spread = _neg_op(_div_op(_sum(_elementwise(_mul)(log_p, _const_tensor(w, (classes,), n)), -1), classes))
        losses = _elementwise(_add)(_elementwise(_mul)(losses, 1 - arb(smoothing)),
                                    _elementwise(_mul)(spread, smoothing))
    mask = kept if len(log_p.pshape) == 2 else kept[:, 0]
    losses = _elementwise(lambda a, m: _select(mask, a, _constant(0, a.n)))(losses, 0)
    if reduction == "mean":
        total = row_w.sum(-1)
        return _div_op(_sum(losses), _const_tensor(total, (), n, batched=True))
    return _reduced(losses, reduction)


def _const_tensor(values: np.ndarray, pshape, n: int, batched: bool = False) -> BallTensor:
    """Balls as a constant of the point's shape (``batched``: one per point, points first)."""
    v = values if batched else values.reshape((1,) + tuple(pshape))
    return BallTensor(Jet(v, (None,) * n), pshape)


def _neg_op(t: BallTensor) -> BallTensor:
    return BallTensor(_neg(t.jet), t.pshape)


def _cross_entropy(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None,
                   reduction="mean", label_smoothing=0.0):
    if size_average is not None or reduce is not None:
        raise BallUnsupported("size_average and reduce (deprecated)")
    return _nll_from_log_p(_log_softmax(input, -1), target, weight, ignore_index, reduction, label_smoothing)


def _nll_loss(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None, reduction="mean"):
    if size_average is not None or reduce is not None:
        raise BallUnsupported("size_average and reduce (deprecated)")
    return _nll_from_log_p(_operand(input), target, weight, ignore_index, reduction, 0.0)


def _size(input, dim=None):
    t = _operand(input)
    return torch.Size(t.pshape) if dim is None else t.pshape[dim]


def _same(input, *args, **kwargs):
    return input


def _dtype_cast(input, *args, **kwargs):
    if any(isinstance(v, torch.dtype) and not v.is_floating_point for v in list(args) + list(kwargs.values())):
        raise BallUnsupported("a cast to a non-floating dtype")
    return input




def _build_table():
    for name, rule in _UNARY.items():
        _register(_unary_op(rule), name)
    _register(_alpha(_add), "add", "__add__", "__radd__")
    _register(_alpha(_sub), "sub", "subtract", "__sub__")
    _register(lambda a, b, *, alpha=1: _alpha(_sub)(b, a, alpha=alpha), "rsub", "__rsub__")
    _register(_elementwise(_mul), "mul", "multiply", "__mul__", "__rmul__")
    _register(_div_op, "div", "divide", "true_divide", "__truediv__")
    _register(lambda a, b: _div_op(b, a), "__rtruediv__", "__rdiv__")
    _register(_unary_op(lambda x, u: (1 / x, -1 / (x * x), None)), "reciprocal")
    _register(_pow_op, "pow", "float_power", "__pow__")
    _register(lambda a, b: _pow_op(b, a), "__rpow__")
    _register(_square, "square")
    _register(_unary(_neg), "neg", "negative", "__neg__")
    _register(_abs, "abs", "absolute", "__abs__")
    _register(_relu, "relu")
    _register(_softplus, "softplus")
    _register(_silu, "silu")
    _register(_mish, "mish")
    _register(_gelu, "gelu")
    _register(_leaky_relu, "leaky_relu")
    _register(_elu, "elu")
    _register(_celu, "celu")
    _register(_selu, "selu")
    _register(_hardsigmoid, "hardsigmoid")
    _register(_hardswish, "hardswish")
    _register(_i0e, "i0e")
    _TABLE[torch.Tensor.polygamma] = lambda input, n: _polygamma(n, input)
    _register(_polygamma, "polygamma", namespaces=(torch, torch.special))
    _register(_mvlgamma, "mvlgamma", "multigammaln")
    _register(_elementwise(_logaddexp), "logaddexp")
    _register(_elementwise(_logaddexp2), "logaddexp2")
    _register(_elementwise(_binary_rule(_hypot_partials)), "hypot")
    _register(_elementwise(_binary_rule(_atan2_partials)), "atan2", "arctan2")
    _register(_xlogy_with(_log), "xlogy")
    _register(_xlogy_with(_log1p), "xlog1py")
    _register(_maximum, "maximum")   # fmax and fmin let a NaN lose: the mpmath stand-in has them
    _register(_minimum, "minimum")
    _register(_clamp, "clamp", "clip")
    _register(lambda input, min: _clamp(input, min=min), "clamp_min")
    _register(lambda input, max: _clamp(input, max=max), "clamp_max")
    _register(_where, "where", namespaces=(torch,))
    _register(_masked_fill, "masked_fill")
    _TABLE[torch.Tensor.where] = lambda input, condition, other: _where(condition, input, other)
    for name, impl in _COMPARE.items():
        aliases = {"lt": ("less",), "le": ("less_equal",), "gt": ("greater",), "ge": ("greater_equal",),
                   "eq": (), "ne": ("not_equal",)}[name]
        _register(impl, name, f"__{name}__", *aliases)
    _register(_sum, "sum")
    _register(_mean, "mean")
    _register(_var, "var")
    _register(_std, "std")
    _register(_logsumexp, "logsumexp")
    _register(_softmax, "softmax")
    _register(_log_softmax, "log_softmax")
    _register(_vector_norm, "vector_norm")
    _register(_amax, "amax")
    _register(_amin, "amin")
    _register(_max_min(_maximum, _amax), "max")
    _register(_max_min(_minimum, _amin), "min")
    _register(_norm, "norm", namespaces=(torch, torch.Tensor))
    _register(_layer_norm, "layer_norm", namespaces=(F, torch))
    _register(_matmul, "matmul", "mm", "bmm", "__matmul__")
    _register(_reshape, "reshape", "view")
    _register(_flatten, "flatten", "ravel")
    _register(_getitem, "__getitem__")
    _register(_unsqueeze, "unsqueeze")
    _register(_squeeze, "squeeze")
    _register(_permute, "permute")
    _register(_transpose, "transpose", "swapaxes", "swapdims")
    _register(lambda t: _transpose(t, 0, 1) if len(_operand(t).pshape) == 2 else t, "t")
    _register(_expand, "expand", "broadcast_to")
    _register(_cat, "cat", "concat", "concatenate")
    _register(_stack, "stack")
    _register(_pointwise_loss(lambda x, y: _mul(_sub(x, y), _sub(x, y))), "mse_loss", namespaces=(F,))
    _register(_pointwise_loss(lambda x, y: _select(_order(x.v, y.v) >= 0, _sub(x, y), _sub(y, x))), "l1_loss",
              namespaces=(F,))
    _register(_bce, "binary_cross_entropy", namespaces=(F,))
    _register(_bce_with_logits, "binary_cross_entropy_with_logits", namespaces=(F,))
    _register(_normalize, "normalize", namespaces=(F,))
    _register(_cumsum, "cumsum")
    _register(_prod, "prod")
    _register(_size, "size")
    _register(lambda t: len(_operand(t).pshape), "dim", "ndimension")
    _register(lambda t: int(np.prod(_operand(t).pshape)), "numel", "nelement")
    _register(_same, "contiguous", "clone", "detach", "cpu")
    _register(_dtype_cast, "to", "double", "float")
    _register(_long, "long", "int", namespaces=(torch.Tensor,))
    _register(_cross_entropy, "cross_entropy", namespaces=(F,))
    _register(_nll_loss, "nll_loss", namespaces=(F,))


_build_table()

for _name in ("add", "sub", "mul", "truediv", "pow", "matmul"):
    _forward_impl = _TABLE[getattr(torch.Tensor, f"__{_name}__")]
    setattr(BallTensor, f"__{_name}__", (lambda impl: lambda self, other: impl(self, other))(_forward_impl))
    setattr(BallTensor, f"__r{_name}__", (lambda impl: lambda self, other: impl(other, self))(_forward_impl))
for _name in ("lt", "le", "gt", "ge", "eq", "ne"):
    setattr(BallTensor, f"__{_name}__", (lambda impl: lambda self, other: impl(self, other))(_COMPARE[_name]))
BallTensor.__neg__ = lambda self: BallTensor(_neg(self.jet), self.pshape)
BallTensor.__pos__ = lambda self: self
BallTensor.__abs__ = lambda self: _abs(self)
BallTensor.__getitem__ = _getitem

from . import exact_linalg  # noqa: E402,F401  (registers the linear algebra)
