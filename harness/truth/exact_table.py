"""The table of ``harness.exact``: every torch function the stand-in knows, by name
and namespace, with its implementation (``exact_ops``, ``exact_shapes``); then the
ATen level's table (``exact_aten``), which reuses these implementations."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .exact_numbers import _ANY_UNARY, _mul, _REAL_UNARY, _sub
from .exact_ops import (
    _add_op, _all, _amax, _amin, _and, _any, _argmax, _argmin, _atan2, _celu, _clamp, _COMPARE, _cumsum, _div_op,
    _div_rounding, _dot, _einsum, _elu, _floordiv, _functional, _gelu, _hypot, _invert, _isfinite, _isinf,
    _isnan_op, _leaky_relu, _linear, _log_softmax, _logaddexp, _logaddexp2, _logical_not, _logsumexp, _masked_fill,
    _fmax_op, _fmin_op, _matmul, _max_min, _maximum_op, _mean, _minimum_op, _mul_op, _mvlgamma, _norm, _or, _outer,
    _polygamma, _pow_op, _predicate, _prod, _rsub, _softmax, _softplus, _std, _sub_op, _sum, _tensor_where, _unary_op,
    _var, _vector_norm, _where, _xlog1py, _xlogy, _xor)
from .exact_shapes import (
    _bce, _bce_with_logits, _broadcast_to, _cat, _chunk, _clone, _converter, _copy, _cross_entropy, _detach,
    _expand, _expand_as, _fill, _flatten, _flip, _full_like, _gather, _index_select, _item, _layer_norm, _like,
    _local_response_norm, _narrow, _new_filled, _new_full, _new_tensor, _nll_loss, _normalize, _pad, _permute,
    _pointwise_loss, _repeat, _reshape, _same, _select, _size, _split, _squeeze, _stack, _t, _to, _tolist,
    _transpose, _type_as, _unbind, _unsqueeze, _view_as, _zero)
from .exact_aten import build as _build_aten
from .exact_tensor import _assign, BOOL, ExactTensor, _getitem, INT, _operand, REAL, _register, _setitem, _TABLE

def _operators():
    """Python's operators on a stand-in go to the same table as torch's."""
    def forward(impl):
        return lambda self, *args: impl(self, *args)

    def reflected(impl):
        return lambda self, other: impl(other, self)

    def inplace(impl):
        return lambda self, other: _assign(self, impl(self, other))

    binary = {"add": _add_op, "sub": _sub_op, "mul": _mul_op, "truediv": _div_op, "pow": _pow_op,
              "matmul": _matmul, "floordiv": _floordiv, "and": _and, "or": _or, "xor": _xor}
    for name, impl in binary.items():
        setattr(ExactTensor, f"__{name}__", forward(impl))
        setattr(ExactTensor, f"__r{name}__", reflected(impl))
        setattr(ExactTensor, f"__i{name}__", inplace(impl))
    for name in ("lt", "le", "gt", "ge", "eq", "ne"):
        setattr(ExactTensor, f"__{name}__", forward(_COMPARE[name]))
    ExactTensor.__neg__ = forward(_unary_op("neg"))
    ExactTensor.__abs__ = forward(_unary_op("abs"))
    ExactTensor.__pos__ = lambda self: self
    ExactTensor.__invert__ = forward(_invert)
    ExactTensor.__getitem__ = forward(_getitem)
    ExactTensor.__setitem__ = lambda self, index, value: _setitem(self, index, value)

def _build_table():
    for name in list(_REAL_UNARY) + list(_ANY_UNARY):
        if name not in ("relu", "silu", "mish"):
            _register(_unary_op(name), name)
    _register(_functional("relu"), "relu")
    _register(_functional("silu"), "silu")
    _register(_functional("mish"), "mish")
    _register(_softplus, "softplus")
    _register(_elu, "elu")
    # F.selu, F.hardsigmoid and F.hardswish go to the ATen level, whose elu (with torch's
    # SELU doubles) and decompositions (clamp(x + 3, 0, 6) / 6) are their mathematics.
    _register(_celu, "celu")
    _register(_leaky_relu, "leaky_relu")
    _register(lambda input, n: _polygamma(n, input), "polygamma", namespaces=(torch.Tensor,))
    _register(_polygamma, "polygamma", namespaces=(torch, torch.special), inplace=False)
    _register(_mvlgamma, "mvlgamma", "multigammaln")
    _register(_gelu, "gelu")
    _register(_isnan_op, "isnan", inplace=False)
    _register(_predicate(_isinf), "isinf", inplace=False)
    _register(_predicate(_isfinite), "isfinite", inplace=False)
    _register(_predicate(lambda v: _isinf(v) and v > 0), "isposinf", inplace=False)
    _register(_predicate(lambda v: _isinf(v) and v < 0), "isneginf", inplace=False)
    _register(_logical_not, "logical_not")

    _register(_add_op, "add", "__add__")
    _register(_sub_op, "sub", "subtract", "__sub__")
    _register(_rsub, "rsub", "__rsub__", inplace=False)
    _register(_mul_op, "mul", "multiply", "__mul__")
    _register(_div_rounding, "div", "divide", "true_divide", "__truediv__")
    _register(_floordiv, "floor_divide", "__floordiv__")
    _register(_pow_op, "pow", "float_power", "__pow__")
    _register(lambda a, b: _pow_op(b, a), "__rpow__", inplace=False)
    _register(lambda a, b: _div_op(b, a), "__rtruediv__", "__rdiv__", inplace=False)
    _register(_atan2, "atan2", "arctan2")
    _register(_hypot, "hypot")
    _register(_xlogy, "xlogy")
    _register(_xlog1py, "xlog1py")
    _register(_logaddexp, "logaddexp")
    _register(_logaddexp2, "logaddexp2")
    _register(_maximum_op, "maximum")
    _register(_minimum_op, "minimum")
    _register(_fmax_op, "fmax")
    _register(_fmin_op, "fmin")
    for name, impl in _COMPARE.items():
        aliases = {"lt": ("less",), "le": ("less_equal",), "gt": ("greater",), "ge": ("greater_equal",),
                   "eq": (), "ne": ("not_equal",)}[name]
        _register(impl, name, f"__{name}__", *aliases)
    _register(_and, "logical_and", "bitwise_and", "__and__")
    _register(_or, "logical_or", "bitwise_or", "__or__")
    _register(_xor, "logical_xor", "bitwise_xor", "__xor__")
    _register(_invert, "bitwise_not", "__invert__")
    _register(_where, "where", namespaces=(torch,), inplace=False)
    _TABLE[torch.Tensor.where] = _tensor_where
    _register(_masked_fill, "masked_fill")
    _register(_clamp, "clamp", "clip")
    _register(lambda input, min: _clamp(input, min=min), "clamp_min")
    _register(lambda input, max: _clamp(input, max=max), "clamp_max")

    _register(_sum, "sum", inplace=False)
    _register(_mean, "mean", inplace=False)
    _register(_prod, "prod", inplace=False)
    _register(_var, "var", inplace=False)
    _register(_std, "std", inplace=False)
    _register(_amax, "amax", inplace=False)
    _register(_amin, "amin", inplace=False)
    _register(_argmax, "argmax", inplace=False)
    _register(_argmin, "argmin", inplace=False)
    _register(_max_min(_maximum_op, _amax, _argmax), "max", inplace=False)
    _register(_max_min(_minimum_op, _amin, _argmin), "min", inplace=False)
    _register(_logsumexp, "logsumexp", inplace=False)
    _register(_softmax, "softmax", inplace=False)
    _register(_log_softmax, "log_softmax", inplace=False)
    _register(_cumsum, "cumsum")
    _register(_vector_norm, "vector_norm", inplace=False)
    _register(_norm, "norm", namespaces=(torch, torch.Tensor), inplace=False)
    _register(_all, "all", inplace=False)
    _register(_any, "any", inplace=False)

    _register(_matmul, "matmul", "mm", "bmm", "mv", "__matmul__", inplace=False)
    _register(lambda a, b: _matmul(b, a), "__rmatmul__", inplace=False)
    _register(_dot, "dot", "inner", "vdot", inplace=False)
    _register(_outer, "outer", "ger", inplace=False)
    _register(_einsum, "einsum", inplace=False)
    _register(_linear, "linear", inplace=False)

    _register(_reshape, "reshape", "view", inplace=False)
    _register(_view_as, "view_as", "reshape_as", inplace=False)
    _register(_flatten, "flatten", "ravel", inplace=False)
    _register(_transpose, "transpose", "swapaxes", "swapdims")
    _register(_t, "t")
    _register(_permute, "permute", inplace=False)
    _register(_unsqueeze, "unsqueeze")
    _register(_squeeze, "squeeze")
    _register(_expand, "expand", inplace=False)
    _register(_expand_as, "expand_as", inplace=False)
    _register(_broadcast_to, "broadcast_to", inplace=False)
    _register(_cat, "cat", "concat", "concatenate", inplace=False)
    _register(_stack, "stack", inplace=False)
    _register(_flip, "flip", inplace=False)
    _register(_repeat, "repeat", inplace=False)
    _register(_narrow, "narrow", inplace=False)
    _register(_select, "select", inplace=False)
    _register(_unbind, "unbind", inplace=False)
    _register(_split, "split", inplace=False)
    _register(_chunk, "chunk", inplace=False)
    _register(_gather, "gather", inplace=False)
    _register(_index_select, "index_select", inplace=False)
    _register(_getitem, "__getitem__", inplace=False)
    _register(_setitem, "__setitem__", inplace=False)
    _register(_pad, "pad", namespaces=(F,), inplace=False)

    _register(_like(0), "zeros_like", "empty_like", inplace=False)
    _register(_like(1), "ones_like", inplace=False)
    _register(_full_like, "full_like", inplace=False)
    _register(_new_full, "new_full", inplace=False)
    _register(_new_filled(0), "new_zeros", "new_empty", inplace=False)
    _register(_new_filled(1), "new_ones", inplace=False)
    _register(_new_tensor, "new_tensor", inplace=False)
    _register(_to, "to", inplace=False)
    for names, dtype in ((("float", "double", "half", "bfloat16"), REAL), (("long", "int", "short"), INT),
                         (("bool",), BOOL)):
        _register(_converter(dtype), *names, namespaces=(torch.Tensor,), inplace=False)
    _register(_type_as, "type_as", inplace=False)
    _register(_clone, "clone", inplace=False)
    _register(_detach, "detach", inplace=False)
    _register(_same, "contiguous", "cpu", "cuda", "requires_grad_", "retain_grad", inplace=False)
    _register(_size, "size", inplace=False)
    _register(lambda input: _operand(input).a.ndim, "dim", "ndimension", inplace=False)
    _register(lambda input: _operand(input).a.size, "numel", "nelement", inplace=False)
    _register(lambda input: _operand(input).dtype is REAL, "is_floating_point", inplace=False)
    _register(_item, "item", inplace=False)
    _register(_tolist, "tolist", inplace=False)
    _TABLE[torch.Tensor.fill_] = _fill
    _TABLE[torch.Tensor.zero_] = _zero
    _TABLE[torch.Tensor.copy_] = _copy

    _register(_cross_entropy, "cross_entropy", namespaces=(F,), inplace=False)
    _register(_nll_loss, "nll_loss", namespaces=(F,), inplace=False)
    _register(_bce, "binary_cross_entropy", namespaces=(F,), inplace=False)
    _register(_bce_with_logits, "binary_cross_entropy_with_logits", namespaces=(F,), inplace=False)
    _register(_pointwise_loss(lambda x, y: _mul(_sub(x, y), _sub(x, y))), "mse_loss", namespaces=(F,), inplace=False)
    _register(_pointwise_loss(lambda x, y: abs(_sub(x, y))), "l1_loss", namespaces=(F,), inplace=False)
    _register(_layer_norm, "layer_norm", namespaces=(F, torch), inplace=False)
    _register(_normalize, "normalize", namespaces=(F,), inplace=False)
    _register(_local_response_norm, "local_response_norm", namespaces=(F,), inplace=False)
    _build_aten()   # the ATen level, which reuses the entries above


from . import exact_linalg_ops  # noqa: E402,F401  (registers the linear algebra)
