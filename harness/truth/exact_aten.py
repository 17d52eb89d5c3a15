"""``harness.exact`` below the function level: what the table of torch
functions does not know is taken at the ATen level.

An operation the function-level table knows keeps its mathematical meaning
there (``F.softplus`` is ``log(1 + e^x)``, not torch's thresholded kernel).
Any other torch function runs with the stand-in's torch-function handling
disabled, so torch's C++ code (its CompositeImplicit decompositions: ``einsum``
into ``permute`` and ``bmm``, ``F.pad`` into ``reflection_pad2d``) reaches
``ExactTensor.__torch_dispatch__`` with ATen operations, where each finds, in
order:

1. its exact implementation in ``ATEN`` (the function-level implementations
   where the ATen signature is the same, ``exact_aten_ops`` for the rest);
2. torch's own decomposition (``torch._decomp.decomposition_table``, else the
   operation's CompositeImplicit kernel), run on the stand-ins, unless
   ``REFUSED`` names it: a decomposition that changes the mathematics (a
   threshold, a clamp, a rounded constant) is never used;
3. otherwise the named error, with the torch function that led there, the
   ATen operation and the decompositions between; a random operation and
   what reads a tensor's memory stop by name too.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from . import exact_aten_ops as ops
from .exact_ops import _clamp, _gelu, _log_softmax, _matmul, _max_min, _maximum_op, _minimum_op, _softmax, _softplus
from .exact_ops import _amax, _amin, _argmax, _argmin
from .exact_shapes import _clone, _copy, _fill, _like, _full_like, _new_filled, _new_full, _zero
from .exact_shapes import (
    _cat, _expand, _flip, _gather, _index_select, _permute, _repeat, _reshape, _split, _squeeze, _stack, _t,
    _transpose, _unsqueeze)
from .exact_tensor import _assign, _inplace, _public_name, _TABLE, ExactTensor, ExactUnsupported

aten = torch.ops.aten

#: Decompositions of torch's that are never run on a stand-in, and why: each
#: computes something other than the operation's mathematics. Where the
#: meaning is simple, ``ATEN`` has it exactly (``softplus``, ``binary_cross_entropy``);
#: the refusal keeps the decomposition out even without that entry.
REFUSED = {
    aten.softplus: "thresholded: x itself above threshold / beta",
    aten.binary_cross_entropy: "each log clamped at -100",
    aten.sinc: "pi rounded to a double",
}

#: ATen operation -> exact implementation (filled by ``build``).
ATEN: dict = {}

_VIA: list = []          # the torch functions being run at the ATen level, innermost last
_DECOMPOSING: list = []  # the ATen operations whose decompositions are running


# -- the two levels ------------------------------------------------------------------------------------------------

#: What reads a tensor's memory, not its values: a stand-in has none.
_MEMORY = {getattr(torch.Tensor, name) for name in (
    "numpy", "data_ptr", "storage", "untyped_storage", "__array__", "__dlpack__")}


def beyond_table(cls, func, args, kwargs):
    """``func`` has no entry (or left this form to the ATen level): run it
    with torch functions off for the stand-in, so that torch's C++ code
    reaches ``dispatch`` with ATen operations. A ``RuntimeError`` of torch's
    own code on the stand-in (``.numpy()``, a check of strides) becomes the
    named error, with its cause."""
    if func in _MEMORY:
        raise _no_exact_function(func, "reads memory, and a stand-in has none")
    _VIA.append(func)
    try:
        with torch._C.DisableTorchFunctionSubclass():
            return func(*args, **kwargs)
    except ExactUnsupported:
        raise
    except RuntimeError as exc:
        raise _no_exact_function(func, f"torch's code on the stand-in raised RuntimeError: {exc}") from exc
    finally:
        _VIA.pop()


def dispatch(cls, func, args, kwargs):
    """An ATen operation on stand-ins: its exact implementation, else torch's
    decomposition (unless refused), else the named error."""
    impl = ATEN.get(func)
    if impl is not None:
        return impl(*args, **kwargs)
    if any(a.is_out for a in func._schema.arguments) and _functional(func) is not None:
        return _into_out(func, args, kwargs)
    if torch.Tag.nondeterministic_seeded in func.tags:
        raise _no_exact(func, "is random (a reference is a function of its inputs)")
    refused = REFUSED.get(func.overloadpacket)
    decomposition = None if refused else decomposition_of(func)
    if decomposition is not None:
        if func in _DECOMPOSING:
            raise _no_exact(func, "is reached again by its own decomposition")
        _DECOMPOSING.append(func)
        try:
            out = decomposition(*args, **kwargs)
        finally:
            _DECOMPOSING.pop()
        if out is not NotImplemented:
            return out
    if refused:
        raise _no_exact(func, f"has a decomposition in torch._decomp that is refused ({refused})")
    raise _no_exact(func)


def _functional(func):
    """The overload of ``func``'s packet that takes the same arguments but no ``out``."""
    given = [(a.name, str(a.type)) for a in func._schema.arguments if not a.is_out]
    for op in _tensor_overloads(func.overloadpacket):
        if [(a.name, str(a.type)) for a in op._schema.arguments] == given:
            return op
    return None


def _into_out(func, args, kwargs):
    """``torch.add(a, b, out=c)``: the functional operation, written into the
    ``out`` stand-ins (torch would resize an ``out`` of another shape; a
    stand-in's shape is fixed, so that stops by name)."""
    names = [a.name for a in func._schema.arguments if a.is_out]
    outs = [kwargs.pop(name) for name in names]
    result = _functional(func)(*args, **kwargs)
    results = result if isinstance(result, (tuple, list)) else (result,)
    for out, value in zip(outs, results):
        if tuple(out.shape) != tuple(value.shape):
            raise _no_exact(func, f"writes into an out= of shape {tuple(out.shape)}, not {tuple(value.shape)}")
        _assign(out, value)
    return outs[0] if len(outs) == 1 else tuple(outs)


def decomposition_of(func):
    """torch's decomposition of the ATen operation ``func`` that ``exact`` may
    run on stand-ins (``torch._decomp``'s, else its CompositeImplicit kernel,
    which an operation called from inside another's decomposition reaches
    here with), None where there is none or it is refused."""
    if func.overloadpacket in REFUSED:
        return None
    import torch._decomp   # heavy (torch._refs, the prims): only once a formula reaches here
    decomposition = torch._decomp.decomposition_table.get(func)
    if decomposition is None and torch._C._dispatch_has_kernel_for_dispatch_key(func.name(),
                                                                                "CompositeImplicitAutograd"):
        decomposition = func.decompose
    return decomposition


def _no_exact(func, why="has no exact rule and no decomposition in torch._decomp") -> ExactUnsupported:
    """The error naming the torch function that led to ``func`` (first: that is
    the operation a person wrote), ``func`` and the decompositions between."""
    where = str(func) + (f" (through {' > '.join(str(op) for op in _DECOMPOSING)})" if _DECOMPOSING else "")
    if _VIA:
        first = _VIA[-1]
        head = f"{_public_name(first)} ({getattr(first, '__name__', first)}): at the ATen level, {where} {why}"
    else:
        head = f"{where}: it {why}"
    return ExactUnsupported(f"harness.exact has no exact {head}: write an mpmath reference for this case instead, "
                            "or add the operation to harness/truth/exact_aten.py")


def _no_exact_function(func, why) -> ExactUnsupported:
    return ExactUnsupported(f"harness.exact has no exact {_public_name(func)} ({getattr(func, '__name__', func)}): "
                            f"{why}: write an mpmath reference for this case instead")


# -- the table --------------------------------------------------------------------------------------------------------

def _tensor_overloads(packet):
    """The overloads of an ATen packet that take tensors and write no ``out``."""
    for name in packet.overloads():
        op = getattr(packet, name)
        arguments = op._schema.arguments
        if any(a.is_out for a in arguments) or not any("Tensor" in str(a.type) for a in arguments):
            continue
        yield op


def _set(name, impl, inplace=False):
    """``impl`` for every tensor overload of ``aten.<name>`` (and, with
    ``inplace``, written back for ``aten.<name>_``)."""
    for op in _tensor_overloads(getattr(aten, name)):
        ATEN[op] = impl
    if inplace and hasattr(aten, name + "_"):
        for op in _tensor_overloads(getattr(aten, name + "_")):
            ATEN[op] = _inplace(impl)


def _function(name):
    """The function-level implementation of ``torch.<name>`` (or ``Tensor.<name>``)."""
    for owner in (torch, torch.Tensor, torch.special, F, torch.linalg):
        impl = _TABLE.get(getattr(owner, name, None))
        if impl is not None:
            return impl
    raise KeyError(name)


#: ATen operations whose signature is the torch function's of the same name.
_SAME_SIGNATURE = (
    "abs neg sign exp expm1 exp2 log log1p log2 log10 sqrt rsqrt sigmoid tanh sinh cosh asinh acosh atanh sin cos "
    "tan atan asin acos erf erfc erfinv lgamma digamma reciprocal floor ceil trunc relu silu mish "
    "mul true_divide pow atan2 hypot xlogy logaddexp logaddexp2 maximum minimum fmax fmin "
    "logical_and logical_or logical_xor bitwise_and bitwise_or bitwise_xor bitwise_not logical_not "
    "where masked_fill clamp_min clamp_max").split()

_NO_INPLACE = ("where", "logical_not", "bitwise_not")


def build():
    """Fill ``ATEN`` (after the function-level table) and hand the stand-in its two levels."""
    for name in _SAME_SIGNATURE:
        _set(name, _function(name), inplace=name not in _NO_INPLACE)
    for name in ("eq", "ne", "lt", "le", "gt", "ge", "isnan", "isinf", "isfinite", "isposinf", "isneginf",
                 "special_xlog1py"):
        _set(name, _function(name.removeprefix("special_")))
    _set("add", ops._add_aten, inplace=True)
    _set("sub", ops._sub_aten, inplace=True)
    _set("rsub", ops._rsub_aten)
    _set("div", ops._div_mode, inplace=True)
    _set("clamp", _clamp, inplace=True)
    _set("remainder", ops._remainder, inplace=True)
    _set("fmod", ops._fmod, inplace=True)
    _set("floor_divide", ops._floor_divide, inplace=True)
    _set("round", ops._round, inplace=True)
    _set("softplus", _softplus)
    _set("gelu", _gelu, inplace=True)
    _set("elu", ops._elu_aten, inplace=True)
    _set("hardtanh", ops._hardtanh, inplace=True)
    _set("log_sigmoid_forward", ops._log_sigmoid_forward)
    _set("binary_cross_entropy", ops._bce_aten)

    _set("sum", ops._sum_aten)
    _set("mean", ops._mean_aten)
    _set("prod", _function("prod"))
    _set("var", ops._var_aten)
    _set("std", ops._std_aten)
    _set("amax", ops._amax_aten)
    _set("amin", ops._amin_aten)
    _set("argmax", _argmax)
    _set("argmin", _argmin)
    _set("max", _max_min(_maximum_op, _amax, _argmax))
    _set("min", _max_min(_minimum_op, _amin, _argmin))
    _set("logsumexp", _function("logsumexp"))
    _set("_softmax", ops._softmax_aten(_softmax))
    _set("_log_softmax", ops._softmax_aten(_log_softmax))
    _set("cumsum", _function("cumsum"))
    _set("linalg_vector_norm", _function("vector_norm"))
    _set("all", _function("all"))
    _set("any", _function("any"))
    _set("sort", ops._sort)
    ATEN[aten.sort.stable] = ops._sort_stable
    _set("median", ops._median)

    for name in ("mm", "bmm", "mv", "dot"):
        _set(name, _matmul)
    _set("addmm", ops._addmm)
    _set("convolution", ops._convolution)

    _set("view", _reshape)
    _set("_unsafe_view", _reshape)
    _set("expand", _expand)
    _set("permute", _permute)
    _set("transpose", _transpose)
    _set("t", _t)
    _set("unsqueeze", _unsqueeze)
    _set("squeeze", _squeeze)
    _set("select", ops._select_view)
    _set("slice", ops._slice)
    _set("unbind", ops._unbind_views)
    _set("split", _split)
    _set("split_with_sizes", _split)
    _set("diagonal", ops._diagonal)
    _set("as_strided", ops._as_strided)
    _set("unfold", ops._unfold)
    for name in ("alias", "detach", "lift_fresh", "lift"):
        _set(name, ops._alias)
    _set("cat", _cat)
    _set("stack", _stack)
    _set("flip", _flip)
    _set("repeat", _repeat)
    _set("index_select", _index_select)
    _set("gather", _gather)
    _set("constant_pad_nd", ops._constant_pad_nd)
    _set("index", ops._index)
    _set("_unsafe_index", ops._index)
    _set("index_put", ops._index_put)
    _set("index_put_", ops._index_put_)
    _set("_unsafe_index_put", ops._index_put)
    _set("scatter_add", ops._scatter_add)
    _set("scatter_add_", ops._scatter_add_)
    _set("scatter", ops._scatter)
    _set("scatter_", ops._scatter_)

    _set("clone", _clone)
    _set("_to_copy", ops._to_copy)
    _set("copy_", _copy)
    _set("fill", ops._filled)
    _set("fill_", _fill)
    _set("zero_", _zero)
    _set("empty_like", _like(0))
    _set("zeros_like", _like(0))
    _set("ones_like", _like(1))
    _set("full_like", _full_like)
    _set("new_zeros", _new_filled(0))
    _set("new_empty", _new_filled(0))
    _set("new_ones", _new_filled(1))
    _set("new_full", _new_full)
    _set("new_empty_strided", ops._new_empty_strided)
    _set("_local_scalar_dense", ops._local_scalar_dense)

    ExactTensor.beyond_table = classmethod(beyond_table)
    ExactTensor.aten = classmethod(dispatch)
