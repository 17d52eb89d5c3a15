"""The stand-in of ``harness.exact``: ``ExactTensor``, an array of mpmath numbers that
torch functions reach through ``__torch_function__`` and find in ``_TABLE`` (filled by
``exact_table``; what it lacks is taken at the ATen level, ``exact_aten``), its
conversions, and the forwards of custom ``autograd.Function``s run on it (their
forward only: nothing here differentiates by autograd)."""

from __future__ import annotations

import functools
import types

import numpy as np
import torch
import torch.nn.functional as F

from .dual import value as _value
from .exact_numbers import _MP, _MPF, _real_elem

REAL, INT, BOOL = torch.float64, torch.int64, torch.bool
_RANK = {BOOL: 0, INT: 1, REAL: 2}


class ExactUnsupported(NotImplementedError):
    """``fn`` used a torch operation ``exact`` does not implement."""


class AtenLevel(ExactUnsupported):
    """Raised by a table entry for a form of its operation that it leaves to
    the ATen level (``einsum`` with ``...``, ``F.pad`` by reflection): the
    stand-in then runs the torch function as if it had no entry."""



# -- the stand-in ----------------------------------------------------------------------------------------------

class StandIn(torch.Tensor):
    """What both stand-ins share (``ExactTensor`` here, ``exact_ball.BallTensor``):
    a ``torch.Tensor`` without storage (a wrapper subclass, as torch's fake
    tensors are), so that code that checks ``isinstance(x, torch.Tensor)``,
    ``torch.is_tensor``, a shape or a dtype runs on it as on a tensor. Torch
    functions find their meaning in the subclass's ``table``; the metadata
    (shape, dtype, device, ``dim()``...) is the wrapper's own; anything else
    goes to ``beyond_table``, and what torch's own C++ code then reaches at
    the ATen level (``__torch_dispatch__``) to ``aten``. Both stop with
    ``unsupported(func)`` unless the subclass says otherwise (``ExactTensor``
    does: ``exact_aten``)."""

    table: dict = {}

    @staticmethod
    def unsupported(func) -> Exception:
        """The error that names ``func`` (each stand-in has its own)."""
        return NotImplementedError(getattr(func, "__name__", str(func)))

    @staticmethod
    def _wrap(cls, shape, dtype):
        return torch.Tensor._make_wrapper_subclass(cls, tuple(shape), dtype=dtype, device="cpu")

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        impl = cls.table.get(func)
        if impl is not None and kwargs.get("out") is None:   # out=: torch's own write into it, below
            try:
                return impl(*args, **kwargs)
            except AtenLevel:
                pass
        elif func in _METADATA:
            with torch._C.DisableTorchFunctionSubclass():
                return func(*args, **kwargs)
        return cls.beyond_table(func, args, kwargs)

    @classmethod
    def __torch_dispatch__(cls, func, types, args=(), kwargs=None):
        return cls.aten(func, args, kwargs or {})

    @classmethod
    def beyond_table(cls, func, args, kwargs):
        """A torch function the table does not know."""
        raise cls.unsupported(func)

    @classmethod
    def aten(cls, func, args, kwargs):
        """An ATen operation that torch's C++ code reached."""
        raise cls.unsupported(func)


class ExactTensor(StandIn):
    """A tensor of mpmath numbers (a numpy object array) that torch functions
    dispatch to; ``dtype`` is ``torch.float64`` (real), ``int64`` or ``bool``.
    A ``torch.Tensor`` (``StandIn``): torch functions find their exact meaning
    in ``_TABLE``.

    Example:
        >>> t = ExactTensor(np.array([mpmath.mpf(1), mpmath.mpf(2)], dtype=object), torch.float64)
        >>> torch.exp(t).shape, isinstance(t, torch.Tensor)
        (torch.Size([2]), True)
    """

    @staticmethod
    def __new__(cls, a: np.ndarray, dtype: torch.dtype):
        t = StandIn._wrap(cls, a.shape, dtype)
        t.a = a
        return t

    def __init__(self, a: np.ndarray, dtype: torch.dtype):
        pass

    # Attributes a formula reads (shape, ndim, dtype and device are the wrapper's).
    T = property(lambda self: ExactTensor(self.a.T, self.dtype))
    mT = property(lambda self: ExactTensor(np.swapaxes(self.a, -1, -2), self.dtype))
    requires_grad = property(lambda self: False)
    grad = property(lambda self: None)
    is_cuda = property(lambda self: False)

    def __repr__(self, *, tensor_contents=None):
        return f"ExactTensor({self.a.tolist()!r}, dtype={self.dtype})"

    __hash__ = object.__hash__

    def __len__(self):
        if not self.a.ndim:
            raise TypeError("len() of a 0-d tensor")
        return self.a.shape[0]

    def __iter__(self):
        return (ExactTensor(_zero_d_view(self.a, i), self.dtype) for i in range(len(self)))

    def __bool__(self):
        if self.a.size != 1:
            raise RuntimeError("Boolean value of a tensor with more than one value is ambiguous")
        return bool(self.a.reshape(())[()])

    def __int__(self):
        return int(self._single())

    def __index__(self):
        if self.dtype is REAL:
            raise TypeError("only integer tensors of a single element can be converted to an index")
        return int(self._single())

    def __float__(self):
        raise ExactUnsupported("harness.exact: float() of an exact value would round it to a double; "
                               "keep it a tensor (torch operations) or take .item() for the mpmath number")

    def _single(self):
        if self.a.size != 1:
            raise ValueError("only one element tensors can be converted to Python scalars")
        return self.a.reshape(())[()]


#: Torch functions that read a stand-in's metadata, answered by the wrapper.
_METADATA = {getattr(torch.Tensor, name) for name in (
    "dim", "size", "numel", "nelement", "stride", "is_floating_point", "is_complex", "is_contiguous",
    "element_size", "get_device") if hasattr(torch.Tensor, name)} | {
    getattr(torch.Tensor, name).__get__ for name in (
        "shape", "dtype", "device", "ndim", "layout", "is_sparse", "is_quantized", "is_meta", "is_leaf",
        "is_nested", "is_mps", "is_xpu", "itemsize", "nbytes", "grad_fn", "_base") if hasattr(torch.Tensor, name)}


def _zero_d_view(a, i):
    return a[i, ...]   # a view, also of one element: x[0].add_(1) writes into x


def _public_name(func) -> str:
    """``func`` as a person writes it: ``torch.special.erfcx``, ``torch.Tensor.histc``."""
    if isinstance(func, torch._ops.OpOverload):
        return str(func)
    name = getattr(func, "__name__", repr(func))
    module = getattr(func, "__module__", None) or ""
    qualname = getattr(func, "__qualname__", "") or ""
    public = f"{module}.{name}"
    if qualname.startswith(("TensorBase.", "Tensor.")):
        public = f"torch.Tensor.{name}"
    elif module == "torch._C._nn":
        public = f"torch.nn.functional.{name}"
    elif module.startswith("torch._C._"):   # torch.special.special_erfcx is torch.special.erfcx
        space = module[len("torch._C._"):]
        public = f"torch.{space}.{name.removeprefix(space + '_')}"
    elif module in ("", "torch", "torch._C._VariableFunctions") or qualname.startswith("_VariableFunctionsClass."):
        public = f"torch.{name}"
    return public


def _unsupported(func) -> ExactUnsupported:
    name = getattr(func, "__name__", repr(func))
    return ExactUnsupported(
        f"harness.exact has no exact {_public_name(func)} ({name}): write an mpmath reference for this case "
        "instead, or add the operation to harness/truth/exact_table.py")


# -- conversions ---------------------------------------------------------------------------------------------

def _scalar(v) -> np.ndarray:
    a = np.empty((), dtype=object)
    a[()] = v
    return a


def _array(v, dtype) -> np.ndarray:
    """Nested lists (or one number) as an object array of ``dtype``'s elements."""
    a = np.array(v, dtype=object) if isinstance(v, (list, tuple)) else _scalar(v)
    return _cast(a, dtype)


def _input(v) -> np.ndarray:
    """A reference's input: an mpf, or nested lists of them."""
    return _scalar(v) if isinstance(v, _MPF) else _array(v, REAL)


_TO = {REAL: np.frompyfunc(_real_elem, 1, 1), INT: np.frompyfunc(lambda v: int(_value(v)), 1, 1),
       BOOL: np.frompyfunc(lambda v: bool(v), 1, 1)}


def _cast(a: np.ndarray, dtype) -> np.ndarray:
    if a.ndim == 0:
        return _scalar(_TO[dtype](a[()]))
    return _TO[dtype](a)


def _category(dtype) -> torch.dtype:
    if dtype is None:
        return None
    if dtype == torch.bool:
        return BOOL
    if dtype.is_floating_point:
        return REAL
    if dtype.is_complex:
        raise ExactUnsupported("harness.exact: complex tensors are not supported")
    return INT


def _operand(x) -> ExactTensor:
    """Anything a formula mixes with stand-ins, as a stand-in."""
    if isinstance(x, ExactTensor):
        return x
    if isinstance(x, torch.Tensor):
        dtype = _category(x.dtype)
        values = x.detach().cpu()
        values = values.double() if dtype is REAL else values
        return ExactTensor(_array(values.tolist(), dtype), dtype)
    if isinstance(x, bool):
        return ExactTensor(_scalar(x), BOOL)
    if isinstance(x, int):
        return ExactTensor(_scalar(x), INT)
    if isinstance(x, (float, _MPF, _MP.mpc)):
        return ExactTensor(_scalar(_real_elem(x)), REAL)
    if isinstance(x, (np.ndarray, list, tuple)):
        arr = np.asarray(x)
        dtype = BOOL if arr.dtype == bool else INT if arr.dtype.kind in "iu" else REAL
        return ExactTensor(_array(arr.tolist(), dtype), dtype)
    if isinstance(x, np.generic):
        return _operand(x.item())
    raise ExactUnsupported(f"harness.exact: cannot use a {type(x).__name__} as a tensor")


def _promote(*ts) -> torch.dtype:
    return max((t.dtype for t in ts), key=_RANK.__getitem__)


def _as(t: ExactTensor, dtype) -> np.ndarray:
    return t.a if t.dtype is dtype else _cast(t.a, dtype)


def _map(f, *arrays) -> np.ndarray:
    """``f`` over the broadcast elements."""
    if len(arrays) == 1 and not arrays[0].ndim:   # the elementwise truth's case: one number
        return _scalar(f(arrays[0][()]))
    if len(arrays) == 2 and not (arrays[0].ndim or arrays[1].ndim):
        return _scalar(f(arrays[0][()], arrays[1][()]))
    out = np.frompyfunc(f, len(arrays), 1)(*arrays)
    return out if isinstance(out, np.ndarray) else _scalar(out)


def _new(a, dtype) -> ExactTensor:
    return ExactTensor(a if isinstance(a, np.ndarray) else _scalar(a), dtype)



# -- indexing and in-place writes ------------------------------------------------------------------------------

def _index(index):
    """A torch index as a numpy one: stand-ins and tensors become arrays."""
    if isinstance(index, tuple):
        return tuple(_index(i) for i in index)
    if isinstance(index, (ExactTensor, torch.Tensor)):
        t = _operand(index)
        if t.dtype is REAL:
            raise IndexError("tensors used as indices must be long, int or bool tensors")
        return np.asarray(t.a.tolist(), dtype=bool if t.dtype is BOOL else np.int64)
    return index


def _getitem(input, index):
    t = _operand(input)
    index = _index(index)
    index = index if isinstance(index, tuple) else (index,)
    if not any(i is Ellipsis for i in index):
        index = index + (Ellipsis,)   # an array (a view) even for one element, as torch's
    return _new(t.a[index], t.dtype)


def _setitem(input, index, value):
    if not isinstance(input, ExactTensor):
        raise ExactUnsupported("harness.exact: exact values cannot be written into a torch tensor; "
                               "make the target a stand-in (x.new_zeros(...), torch.zeros_like(x))")
    input.a[_index(index)] = _as(_operand(value), input.dtype)


def _assign(target, value) -> ExactTensor:
    """Write ``value`` into the stand-in ``target`` (in-place operations)."""
    if not isinstance(target, ExactTensor):
        raise ExactUnsupported("harness.exact: an in-place operation on a torch tensor with exact values")
    np.copyto(target.a, _as(_operand(value), target.dtype))
    return target


def _inplace(impl):
    return lambda self, *args, **kwargs: _assign(self, impl(self, *args, **kwargs))


# -- custom autograd.Functions ------------------------------------------------------------------------------------

class _Context:
    """What a custom Function's ``forward`` gets as ``ctx``: it saves and marks nothing."""

    def __init__(self, inputs: int):
        self.needs_input_grad = (False,) * inputs
        self.saved_tensors = ()

    def save_for_backward(self, *tensors):
        self.saved_tensors = tensors

    def save_for_forward(self, *tensors):
        pass

    def mark_dirty(self, *tensors):
        pass

    def mark_non_differentiable(self, *tensors):
        pass

    def set_materialize_grads(self, value):
        pass


def _holds_exact(args) -> bool:
    return any(isinstance(a, ExactTensor) or (isinstance(a, (list, tuple)) and _holds_exact(a)) for a in args)


def _run_forward(cls, forward, args, kwargs):
    """``cls.apply(*args)`` on stand-ins: its ``forward``, with a dummy ctx
    unless the Function defines ``setup_context`` (then forward takes none)."""
    if cls.setup_context is not torch.autograd.Function.setup_context:
        return forward(*args, **kwargs)
    return forward(_Context(len(args)), *args, **kwargs)


#: Where ``Function.apply``'s ``super().apply(...)`` lands (torch's C++ apply
#: comes after it): patched there, ``MyFunction.apply`` bound before the
#: reference ran (``f = MyFunction.apply``) is caught as well.
_BASE = getattr(torch.autograd.function, "_SingleLevelFunction", torch.autograd.Function)


def _apply(cls, *args, **kwargs):
    if _holds_exact(args) or _holds_exact(tuple(kwargs.values())):
        return _run_forward(cls, cls.forward, args, kwargs)
    return super(_BASE, cls).apply(*args, **kwargs)


_APPLY = classmethod(_apply)


class _ForwardOnly:
    """While a reference runs, ``Function.apply`` on stand-ins runs ``forward``
    (torch's own apply would hand it a real ctx, which rejects stand-ins)."""

    def __enter__(self):
        self.saved = _BASE.__dict__.get("apply")
        _BASE.apply = _APPLY

    def __exit__(self, *exc):
        if self.saved is None:
            del _BASE.apply
        else:
            _BASE.apply = self.saved


def _unbound_apply(fn):
    """``MyFunction.apply`` (also inside a partial) as a function of its
    ``forward``: the reference's fingerprint then hashes that forward, not
    torch's ``apply``, which every Function shares."""
    if isinstance(fn, functools.partial):
        return functools.partial(_unbound_apply(fn.func), *fn.args, **fn.keywords)
    if (isinstance(fn, types.MethodType) and isinstance(fn.__self__, type)
            and issubclass(fn.__self__, torch.autograd.Function) and fn.__name__ == "apply"):
        cls, forward = fn.__self__, fn.__self__.forward

        def apply(*args, **kwargs):
            return _run_forward(cls, forward, args, kwargs)
        apply.__name__ = apply.__qualname__ = f"{cls.__name__}.apply"
        return apply
    return fn


# -- the table ------------------------------------------------------------------------------------------------------

_NAMESPACES = (torch, torch.Tensor, torch.special, F, torch.linalg)

_TABLE: dict = {}
ExactTensor.table = _TABLE
ExactTensor.unsupported = staticmethod(_unsupported)


def _register(impl, *names, namespaces=_NAMESPACES, inplace=True):
    """``impl`` for every torch function of these names (``torch.exp``,
    ``Tensor.exp``, ``torch.special.exp``...), and ``Tensor.<name>_`` in place."""
    for name in names:
        for ns in namespaces:
            func = getattr(ns, name, None)
            if func is not None and func not in _TABLE:
                _TABLE[func] = impl
        if inplace and hasattr(torch.Tensor, name + "_"):
            _TABLE.setdefault(getattr(torch.Tensor, name + "_"), _inplace(impl))
