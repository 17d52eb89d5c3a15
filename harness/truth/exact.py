"""A formula written in torch, evaluated exactly: a reference for free.

``exact(fn)`` runs ``fn`` on stand-ins for tensors (``ExactTensor``) whose
elements are mpmath numbers. The stand-in defines ``__torch_function__``
(PyTorch's "Extending torch with a Tensor-like type"), so ``torch.log(t)``,
``t.exp()``, ``t * 2`` and ``F.softplus(t)`` all arrive at one table from the
torch function to its implementation in mpmath (``_TABLE``); anything not in
the table raises ``ExactUnsupported`` naming it.

The arithmetic is the formula's mathematics, not its floats':

* ``+``, ``-`` and ``*`` are exact (mpmath's ``prec=0``) while the result fits
  ``EXACT_BITS`` bits, so ``(mu + s * eps) - mu`` gives back ``s * eps`` at any
  working precision; everything else rounds once, at the ambient precision
  (``mpmath.workprec``), so the truth engine's escalation works unchanged.
* A number near 1 carries its distance from 1 (``_One``): ``sigmoid(x)`` knows
  it is ``1 - sigmoid(-x)``, ``1 + exp(x)`` knows it is ``1 + exp(x)``, so
  ``1 - sigmoid(1e30)`` is ``exp(-1e30)``, not the 0 that any finite precision
  rounds it to, and ``log`` of such a number is ``log1p`` of the distance.
* Nothing overflows or rounds to a float: ``exp(1e30)`` is a number,
  ``clamp`` clamps, ``where`` selects. ``x / 0`` is ``±inf`` (``0 / 0`` NaN) and
  ``log(0)`` is ``-inf`` as in mpmath; ``log`` or ``sqrt`` of a negative number
  is complex, which the truth engine reports as an error where it is used.

Python floats and torch tensors inside ``fn`` are constants at their binary
values (``0.1`` is the double nearest 1/10; ``math.pi`` is a double): write a
transcendental constant from a stand-in (``4 * torch.atan(torch.ones_like(x))``)
to have it exact. A custom ``torch.autograd.Function``'s ``apply`` runs its
``forward`` on the stand-ins with a context that saves and marks nothing.
See docs/exact.md for the table of operations and the limits.
"""

from __future__ import annotations

import functools
import hashlib
import math
import types
from pathlib import Path

import mpmath
import numpy as np
import torch
import torch.nn.functional as F

from .dual import STATE as dual_state
from .dual import Dual, lift, lift_row, value as _value, weighted_sum
from .exact_numbers import (
    _sigmoid,     EXACT_BITS, UNDERFLOW_BITS, _ANY_UNARY, _MP, _MPF, _ONE_MPF, _REAL_UNARY, _ZERO, _ZERO_MPF, _add,
    _div, _erfc, _expm1, _gelu_tanh, _isnan, _log, _log1p, _log1p_raw, _make, _maximum, _minimum, _mul, _pow,
    _real_elem, _softplus_raw, _sqrt, _sub, _sum2)

__all__ = ["EXACT_BITS", "UNDERFLOW_BITS", "ExactTensor", "ExactUnsupported", "exact"]

# The fingerprint of an exact reference covers the code that evaluates it.
_SOURCE = hashlib.sha256(b"".join(Path(__file__).with_name(name).read_bytes()
                                  for name in ("exact.py", "exact_numbers.py", "dual.py", "exact_ball.py", "ball_jet.py", "ball.py"))).hexdigest()

REAL, INT, BOOL = torch.float64, torch.int64, torch.bool
_RANK = {BOOL: 0, INT: 1, REAL: 2}


class ExactUnsupported(NotImplementedError):
    """``fn`` used a torch operation ``exact`` does not implement."""


def exact(fn):
    """A reference evaluating the torch formula ``fn`` exactly, in mpmath.

    Args:
        fn: a function of tensors written with torch (or a custom
            ``autograd.Function``'s ``apply``), called with one stand-in per
            input: 0-d for an elementwise case, the input's shape otherwise.

    Returns:
        ``reference(*inputs)``: inputs are ``mpf`` (or nested lists of them),
        the result an ``mpf`` or a nested list, at the ambient mpmath precision.

    Example:
        >>> ref = exact(lambda x: -torch.log(torch.sigmoid(x)))
        >>> mpmath.nstr(ref(mpmath.mpf(40)), 6)   # exp(-40): sigmoid(40) rounds to 1 in float64
        '4.24835e-18'
    """
    fn = _unbound_apply(fn)
    source = _SOURCE   # the fingerprint of the reference covers this module's code

    def reference(*inputs):
        return _evaluate(fn, inputs, source)

    def jacobian(*inputs, active=None):
        return _evaluate_dual(fn, inputs, active)

    name = getattr(fn, "__name__", type(fn).__name__)
    reference.__name__ = reference.__qualname__ = f"exact({name})"
    reference.jacobian = jacobian
    reference.formula = fn   # for the interval engine (harness.truth.ball), which runs it on balls
    return reference


def _evaluate(fn, inputs, source):
    args = [ExactTensor(_input(v), REAL) for v in inputs]
    with _ForwardOnly():
        out = fn(*args)
    return _result(out)


def _evaluate_dual(fn, inputs, active=None):
    """The value and the tangents of ``fn`` at ``inputs`` (forward mode, one
    direction per input element, flat index over all inputs in order;
    ``active``: the indices to differentiate along, default all).

    Returns ``(values, tangents, marked)``: nested like the reference's
    result, each tangent a dict from input index to partial derivative, and
    why the point cannot be differentiated by rules (None when it can).
    An operation without a derivative raises (``TypeError``, or
    ``ExactUnsupported``)."""
    args, start = [], 0
    for v in inputs:
        a = _input(v)
        flat = a.reshape(-1)
        duals = np.empty(flat.shape, dtype=object)
        for i, e in enumerate(flat):
            k = start + i
            duals[i] = Dual(e, {k: _ONE_MPF}) if active is None or k in active else e
        start += flat.size
        args.append(ExactTensor(duals.reshape(a.shape), REAL))
    dual_state.marked = None
    with _ForwardOnly():
        out = fn(*args)
    marked, dual_state.marked = dual_state.marked, None
    values = _result(out, lambda v: _rounded(_value(v)))
    # Tangents as computed, not rounded to the working precision: exact while
    # they fit, so a VJP entry within 2**-700 of a float64 midpoint (d/dx of
    # (x + y)**2/8 + (y - x)**2/4 at x = -0x1.3ffffffffffffp+512, y = 2**-257)
    # still rounds to the right side.
    tangents = _result(out, lambda v: dict(v.d) if type(v) is Dual else {})
    return values, tangents, marked


def _result(out, part=None):
    """The result as mpf (or nested lists), or ``part`` of each element."""
    part = part or _rounded
    if isinstance(out, (tuple, list)):
        return [_result(v, part) for v in out]
    t = _operand(out)
    if t.a.ndim == 0:
        return part(t.a[()])
    return np.frompyfunc(part, 1, 1)(t.a).tolist()


def _rounded(v):
    """To the working precision, as a plain mpf (or mpc: the engine reports it);
    below ``2**-UNDERFLOW_BITS``, 0."""
    if isinstance(v, _MPF):
        t = v._mpf_
        return _ZERO_MPF if t[1] and t[2] + t[3] < -UNDERFLOW_BITS else +v
    return +v if isinstance(v, _MP.mpc) else _MP.mpf(int(v))


# -- the stand-in ----------------------------------------------------------------------------------------------

class ExactTensor:
    """A tensor of mpmath numbers (a numpy object array) that torch functions
    dispatch to; ``dtype`` is ``torch.float64`` (real), ``int64`` or ``bool``.

    Example:
        >>> t = ExactTensor(np.array([mpmath.mpf(1), mpmath.mpf(2)], dtype=object), torch.float64)
        >>> torch.exp(t).shape
        torch.Size([2])
    """

    __slots__ = ("a", "dtype")

    def __init__(self, a: np.ndarray, dtype: torch.dtype):
        self.a, self.dtype = a, dtype

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        impl = _TABLE.get(func)
        if impl is None:
            raise _unsupported(func)
        return impl(*args, **(kwargs or {}))

    def __getattr__(self, name):
        func = getattr(torch.Tensor, name, None)
        if func is None or name.startswith("__"):
            raise AttributeError(f"ExactTensor has no attribute {name!r}")
        impl = _TABLE.get(func)
        if impl is None:
            raise _unsupported(func)
        return functools.partial(impl, self)

    # Attributes a formula reads.
    shape = property(lambda self: torch.Size(self.a.shape))
    ndim = property(lambda self: self.a.ndim)
    device = property(lambda self: torch.device("cpu"))
    T = property(lambda self: ExactTensor(self.a.T, self.dtype))
    mT = property(lambda self: ExactTensor(np.swapaxes(self.a, -1, -2), self.dtype))
    requires_grad = property(lambda self: False)
    grad = property(lambda self: None)
    is_cuda = property(lambda self: False)

    def __repr__(self):
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


def _zero_d_view(a, i):
    return a[i, ...]   # a view, also of one element: x[0].add_(1) writes into x


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


def _unsupported(func) -> ExactUnsupported:
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
    return ExactUnsupported(
        f"harness.exact has no exact {public} ({name}): write an mpmath reference for this case "
        "instead, or add the operation to harness/truth/exact.py")


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


_TO = {REAL: np.frompyfunc(_real_elem, 1, 1), INT: np.frompyfunc(lambda v: int(v), 1, 1),
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


# -- elementwise operations ----------------------------------------------------------------------------------

def _unary_op(name):
    if name in _REAL_UNARY:
        f = _REAL_UNARY[name]
        return lambda input, *, out=None: _new(_map(f, _as(_operand(input), REAL)), REAL)
    f = _ANY_UNARY[name]

    def impl(input, *, out=None):
        t = _operand(input)
        if t.dtype is BOOL and name != "relu":
            t = ExactTensor(_as(t, INT), INT)
        return _new(_map(f, t.a), t.dtype)
    return impl


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
    if rounding_mode is not None:
        raise ExactUnsupported(f"harness.exact: div with rounding_mode={rounding_mode!r} (exact division only)")
    return _div_op(input, other)


def _floordiv(a, b):
    a, b = _operand(a), _operand(b)
    if _promote(a, b) is REAL:
        raise ExactUnsupported("harness.exact: floor division of real tensors")
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
        if better(v, values[best]):
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
    operand broadcast over all the indices, multiplied, summed exactly."""
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    ts = [_operand(t) for t in operands]
    equation = equation.replace(" ", "")
    inputs, arrow, output = equation.partition("->")
    terms = inputs.split(",")
    if "." in equation or any(len(set(t)) != len(t) for t in terms) or len(terms) != len(ts):
        raise ExactUnsupported(f"harness.exact: einsum {equation!r} (simple forms only: no '...', no diagonals)")
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
    # (..., n, k, 1) * (..., 1, k, m) summed over k, exactly.
    product = _map(_mul if dtype is REAL else _int_mul, left[..., :, :, None], right[..., None, :, :])
    result = _reduce(ExactTensor(product, dtype), product.ndim - 2, False, _exact_sum if dtype is REAL else sum, dtype)
    r = result.a
    if a.a.ndim == 1:
        r = r[..., 0, :]
    if b.a.ndim == 1:
        r = r[..., 0]
    return _new(r, dtype)


def _dot(input, other, *, out=None):
    return _matmul(input, other)


def _outer(input, vec2):
    return _einsum("i,j->ij", input, vec2)


def _linear(input, weight, bias=None):
    out = _matmul(input, _operand(weight).T)
    return out if bias is None else _add_op(out, bias)


# -- shapes and indexing --------------------------------------------------------------------------------------

def _shape_args(args) -> tuple:
    if len(args) == 1 and isinstance(args[0], (tuple, list, torch.Size)):
        args = tuple(args[0])
    return tuple(int(s) for s in args)


def _view(a, dtype):
    return ExactTensor(a, dtype)


def _reshape(input, *shape):
    t = _operand(input)
    return _view(t.a.reshape(_shape_args(shape)), t.dtype)


def _view_as(input, other):
    return _reshape(input, tuple(_operand(other).a.shape))


def _flatten(input, start_dim=0, end_dim=-1):
    t = _operand(input)
    if t.a.ndim == 0:
        return _view(t.a.reshape(1), t.dtype)
    s, e = start_dim % t.a.ndim, end_dim % t.a.ndim
    shape = t.a.shape[:s] + (-1,) + t.a.shape[e + 1:]
    return _view(t.a.reshape(shape), t.dtype)


def _transpose(input, dim0, dim1):
    t = _operand(input)
    return _view(np.swapaxes(t.a, dim0, dim1), t.dtype)


def _t(input):
    t = _operand(input)
    return _view(t.a.T, t.dtype)


def _permute(input, *dims):
    t = _operand(input)
    return _view(np.transpose(t.a, _shape_args(dims)), t.dtype)


def _unsqueeze(input, dim):
    t = _operand(input)
    return _view(np.expand_dims(t.a, dim % (t.a.ndim + 1)), t.dtype)


def _squeeze(input, dim=None):
    t = _operand(input)
    dims = _dims(dim, t.a.ndim)
    return _view(t.a.reshape([n for i, n in enumerate(t.a.shape) if not (i in dims and n == 1)]), t.dtype)


def _expand(input, *sizes, implicit=False):
    t = _operand(input)
    sizes = _shape_args(sizes)
    shape = (1,) * (len(sizes) - t.a.ndim) + t.a.shape
    target = tuple(n if s == -1 else s for s, n in zip(sizes, shape))
    return _view(np.broadcast_to(t.a.reshape(shape), target), t.dtype)


def _expand_as(input, other):
    return _expand(input, tuple(_operand(other).a.shape))


def _broadcast_to(input, size):
    return _expand(input, size)


def _tensors(tensors):
    ts = [_operand(t) for t in tensors]
    dtype = _promote(*ts)
    return [_as(t, dtype) for t in ts], dtype


def _cat(tensors, dim=0, *, out=None):
    arrays, dtype = _tensors(tensors)
    arrays = [a for a in arrays if a.shape != (0,)]   # torch skips empty 1-D tensors
    return _new(np.concatenate(arrays, axis=dim), dtype)


def _stack(tensors, dim=0, *, out=None):
    arrays, dtype = _tensors(tensors)
    return _new(np.stack(arrays, axis=dim), dtype)


def _flip(input, dims):
    t = _operand(input)
    axes = (dims,) if isinstance(dims, int) else tuple(dims)
    return _view(np.flip(t.a, axes).copy(), t.dtype)


def _repeat(input, *sizes):
    t = _operand(input)
    return _view(np.tile(t.a, _shape_args(sizes)), t.dtype)


def _narrow(input, dim, start, length):
    t = _operand(input)
    index = [slice(None)] * t.a.ndim
    index[dim] = slice(int(start), int(start) + int(length))
    return _view(t.a[tuple(index)], t.dtype)


def _select(input, dim, index):
    t = _operand(input)
    return _view(np.take(t.a, int(index), axis=dim), t.dtype)


def _unbind(input, dim=0):
    t = _operand(input)
    return tuple(_select(t, dim, i) for i in range(t.a.shape[dim]))


def _split(input, split_size_or_sections, dim=0):
    t = _operand(input)
    n = t.a.shape[dim]
    if isinstance(split_size_or_sections, int):
        sizes = [min(split_size_or_sections, n - s) for s in range(0, n, split_size_or_sections)]
    else:
        sizes = list(split_size_or_sections)
    starts = np.cumsum([0] + sizes[:-1])
    return tuple(_narrow(t, dim, s, k) for s, k in zip(starts, sizes))


def _chunk(input, chunks, dim=0):
    n = _operand(input).a.shape[dim]
    return _split(input, -(-n // chunks), dim)


def _gather(input, dim, index, *, sparse_grad=False, out=None):
    t, i = _operand(input), _operand(index)
    return _view(np.take_along_axis(t.a, np.asarray(i.a.tolist(), dtype=np.int64), axis=dim), t.dtype)


def _index_select(input, dim, index, *, out=None):
    t, i = _operand(input), _operand(index)
    return _view(np.take(t.a, np.asarray(i.a.tolist(), dtype=np.int64).reshape(-1), axis=dim), t.dtype)


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


def _pad(input, pad, mode="constant", value=None):
    if mode != "constant":
        raise ExactUnsupported(f"harness.exact: pad mode {mode!r} (constant only)")
    t = _operand(input)
    widths = [(0, 0)] * t.a.ndim
    for i in range(len(pad) // 2):
        widths[t.a.ndim - 1 - i] = (int(pad[2 * i]), int(pad[2 * i + 1]))
    if any(w < 0 for pair in widths for w in pair):
        raise ExactUnsupported("harness.exact: negative padding")
    fill = _as(_operand(0 if value is None else value), t.dtype)[()]
    out = np.empty([n + lo + hi for n, (lo, hi) in zip(t.a.shape, widths)], dtype=object)
    out[...] = fill
    out[tuple(slice(lo, lo + n) for n, (lo, _) in zip(t.a.shape, widths))] = t.a
    return _new(out, t.dtype)


# -- creation, conversion, metadata -----------------------------------------------------------------------------

def _full(shape, fill, dtype) -> ExactTensor:
    out = np.empty(shape, dtype=object)
    out[...] = _as(_operand(fill), dtype)[()]
    return ExactTensor(out, dtype)


def _like(fill):
    def impl(input, *args, dtype=None, **kwargs):
        t = _operand(input)
        return _full(t.a.shape, fill, _category(dtype) or t.dtype)
    return impl


def _full_like(input, fill_value, *, dtype=None, **kwargs):
    t = _operand(input)
    kind = _category(dtype) or t.dtype
    return _full(t.a.shape, fill_value, kind)


def _new_full(input, size, fill_value, *, dtype=None, **kwargs):
    return _full(_shape_args((size,)), fill_value, _category(dtype) or _operand(input).dtype)


def _new_filled(fill):
    def impl(input, *size, dtype=None, **kwargs):
        return _full(_shape_args(size), fill, _category(dtype) or _operand(input).dtype)
    return impl


def _new_tensor(input, data, *, dtype=None, **kwargs):
    kind = _category(dtype) or _operand(input).dtype
    return ExactTensor(_as(_operand(data), kind), kind)


def _to(input, *args, dtype=None, **kwargs):
    t = _operand(input)
    for a in args:
        if isinstance(a, torch.dtype):
            dtype = a
        elif isinstance(a, (ExactTensor, torch.Tensor)):
            dtype = a.dtype
    kind = _category(dtype) or t.dtype
    return t if kind is t.dtype else ExactTensor(_as(t, kind), kind)


def _converter(dtype):
    return lambda input, *args, **kwargs: _to(input, dtype)


def _type_as(input, other):
    return _to(input, other.dtype)


def _clone(input, *, memory_format=None):
    t = _operand(input)
    return ExactTensor(t.a.copy(), t.dtype)


def _same(input, *args, **kwargs):
    return input


def _detach(input):
    t = _operand(input)
    return ExactTensor(t.a, t.dtype)


def _size(input, dim=None):
    shape = torch.Size(_operand(input).a.shape)
    return shape if dim is None else shape[dim]


def _item(input):
    return _operand(input)._single()


def _tolist(input):
    return _operand(input).a.tolist()


def _fill(input, value):
    return _assign(input, _operand(value))


def _zero(input):
    return _assign(input, _operand(0))


def _copy(input, src, non_blocking=False):
    return _assign(input, src)


# -- torch.nn.functional: the outer calls, exactly -----------------------------------------------------------------

def _reduction(loss: ExactTensor, reduction: str) -> ExactTensor:
    if reduction == "none":
        return loss
    if reduction == "sum":
        return _sum(loss)
    if reduction == "mean":
        return _mean(loss)
    raise ValueError(f"{reduction} is not a valid value for reduction")


def _legacy(size_average, reduce, reduction):
    if size_average is not None or reduce is not None:
        raise ExactUnsupported("harness.exact: size_average and reduce (deprecated): use reduction")
    return reduction


def _weighted_log(weight, log_p):
    """``weight * log_p``, 0 where the weight is 0 (``0 * log 0 = 0``: a certain event costs nothing)."""
    return _ZERO_MPF if weight == 0 else _mul(weight, log_p)


def _bce(input, target, weight=None, size_average=None, reduce=None, reduction="mean"):
    # The mathematics, without torch's clamp of the log at -100.
    reduction = _legacy(size_average, reduce, reduction)
    p, y = _operand(input), _operand(target)
    loss = _new(_map(lambda p, y: -_add(_weighted_log(y, _log(p)), _weighted_log(_sub(_ONE_MPF, y),
                                                                                 _log(_sub(_ONE_MPF, p)))),
                     _as(p, REAL), _as(y, REAL)), REAL)
    if weight is not None:
        loss = _mul_op(loss, weight)
    return _reduction(loss, reduction)


def _bce_with_logits(input, target, weight=None, size_average=None, reduce=None, reduction="mean",
                     pos_weight=None):
    reduction = _legacy(size_average, reduce, reduction)
    x, y = _operand(input), _operand(target)
    w = _operand(1 if pos_weight is None else pos_weight)

    def term(x, y, w):   # -(w y log sigmoid(x) + (1 - y) log sigmoid(-x))
        return _add(_weighted_log(_mul(w, y), -_softplus_raw(-x)), _weighted_log(_sub(_ONE_MPF, y), -_softplus_raw(x)))

    loss = _new(_map(lambda x, y, w: -term(x, y, w), _as(x, REAL), _as(y, REAL), _as(w, REAL)), REAL)
    if weight is not None:
        loss = _mul_op(loss, weight)
    return _reduction(loss, reduction)


def _classes_last(t: ExactTensor) -> np.ndarray:
    """Logits ``(C,)``, ``(N, C)`` or ``(N, C, d...)`` as rows ``(M, C)``."""
    a = t.a
    if a.ndim == 1:
        return a[None, :]
    return np.moveaxis(a, 1, -1).reshape(-1, a.shape[1])


def _nll_rows(log_p: np.ndarray, target: ExactTensor, weight, ignore_index, smoothing):
    """Per-row losses and weights of class-index targets."""
    classes = log_p.shape[1]
    w = [_ONE_MPF] * classes if weight is None else list(_as(_operand(weight), REAL).reshape(-1))
    losses, weights = [], []
    for row, y in zip(log_p, np.asarray(target.a.tolist()).reshape(-1)):
        y = int(y)
        if y == ignore_index:
            losses.append(_ZERO_MPF)
            weights.append(_ZERO_MPF)
            continue
        loss = -_mul(w[y], row[y])
        if smoothing:
            spread = -_exact_sum([_mul(w[c], row[c]) for c in range(classes)]) / classes
            loss = _add(_mul(1 - _real_elem(smoothing), loss), _mul(_real_elem(smoothing), spread))
        losses.append(loss)
        weights.append(w[y])
    return losses, weights


def _cross_entropy(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None,
                   reduction="mean", label_smoothing=0.0):
    reduction = _legacy(size_average, reduce, reduction)
    x = ExactTensor(_as(_operand(input), REAL), REAL)
    log_p = np.array([_log_softmax_row(list(row)) for row in _classes_last(x)], dtype=object)
    return _nll_from_log_p(x, log_p, _operand(target), weight, ignore_index, reduction, label_smoothing)


def _nll_loss(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None, reduction="mean"):
    reduction = _legacy(size_average, reduce, reduction)
    x = ExactTensor(_as(_operand(input), REAL), REAL)
    return _nll_from_log_p(x, _classes_last(x), _operand(target), weight, ignore_index, reduction, 0.0)


def _nll_from_log_p(x, log_p, target, weight, ignore_index, reduction, smoothing):
    out_shape = (() if x.a.ndim == 1 else (x.a.shape[0],) + x.a.shape[2:])
    if target.dtype is REAL:   # class probabilities, the shape of the logits
        probs = _classes_last(target)
        classes = log_p.shape[1]
        w = [_ONE_MPF] * classes if weight is None else list(_as(_operand(weight), REAL).reshape(-1))
        s = _real_elem(smoothing)
        losses = [-_exact_sum([_mul(_mul(w[c], _add(_mul(1 - s, p[c]), s / classes) if smoothing else p[c]), r[c])
                               for c in range(classes)]) for r, p in zip(log_p, probs)]
        loss = _new(np.array(losses, dtype=object).reshape(out_shape), REAL)
        return _reduction(loss, reduction)
    losses, weights = _nll_rows(log_p, target, weight, ignore_index, smoothing)
    loss = _new(np.array(losses, dtype=object).reshape(out_shape), REAL)
    if reduction == "mean":
        return _new(_scalar(_div(_exact_sum(losses), _exact_sum(weights))), REAL)
    return _reduction(loss, reduction)


def _pointwise_loss(f):
    def impl(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
        reduction = _legacy(size_average, reduce, reduction)
        loss = _binary(f)(input, target)
        if weight is not None:
            loss = _mul_op(loss, weight)
        return _reduction(loss, reduction)
    return impl


def _layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5, *args):
    t = ExactTensor(_as(_operand(input), REAL), REAL)
    dims = list(range(t.a.ndim - len(_shape_args((normalized_shape,))), t.a.ndim))
    eps = _real_elem(eps)

    def normalize(values):
        mean = _div(_exact_sum(values), _MP.mpf(len(values)))
        centred = [_sub(v, mean) for v in values]
        scale = _sqrt(_add(_var_elems(values, 0), eps))
        return [_div(c, scale) for c in centred]
    out = _rows_apply(t, dims, normalize)
    if weight is not None:
        out = _mul_op(out, weight)
    if bias is not None:
        out = _add_op(out, bias)
    return out


def _rows_apply(t: ExactTensor, dims: list[int], f) -> ExactTensor:
    """``f(list) -> list`` over the trailing axes ``dims`` together."""
    lead = t.a.shape[:t.a.ndim - len(dims)]
    rows = t.a.reshape(lead + (-1,))
    out = np.empty(rows.shape, dtype=object)
    for index in np.ndindex(lead):
        out[index] = f(list(rows[index]))
    return ExactTensor(out.reshape(t.a.shape), REAL)


def _normalize(input, p=2.0, dim=1, eps=1e-12, out=None):
    t = ExactTensor(_as(_operand(input), REAL), REAL)
    norms = _vector_norm(t, p, dim, keepdim=True)
    return _div_op(t, _clamp(norms, min=eps))


def _local_response_norm(input, size, alpha=1e-4, beta=0.75, k=1.0):
    """torch's definition: channel ``c`` sums the squares of channels
    ``c - size//2 .. c + (size-1)//2`` (zeros outside), then
    ``x / (k + alpha/size * sum)**beta``."""
    t = ExactTensor(_as(_operand(input), REAL), REAL)
    if t.a.ndim < 3:
        raise ValueError(f"Expected 3D or higher dimensionality input (got {t.a.ndim} dimensions)")
    a = np.moveaxis(t.a, 1, -1)
    channels = a.shape[-1]
    alpha, beta, k = _real_elem(alpha), _real_elem(beta), _real_elem(k)
    out = np.empty(a.shape, dtype=object)
    for index in np.ndindex(a.shape[:-1]):
        row = a[index]
        squares = [_mul(v, v) for v in row]
        for c in range(channels):
            window = squares[max(0, c - size // 2):min(channels, c + (size - 1) // 2 + 1)]
            scale = _add(k, _div(_mul(alpha, _exact_sum(window)), _MP.mpf(size)))
            out[index + (c,)] = _div(row[c], _pow(scale, beta))
    return ExactTensor(np.moveaxis(out, -1, 1), REAL)


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


def _build_table():
    for name in list(_REAL_UNARY) + list(_ANY_UNARY):
        if name not in ("relu", "silu", "mish"):
            _register(_unary_op(name), name)
    _register(_functional("relu"), "relu")
    _register(_functional("silu"), "silu")
    _register(_functional("mish"), "mish")
    _register(_softplus, "softplus")
    _register(_elu, "elu")
    _register(_leaky_relu, "leaky_relu")
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
    _register(_maximum_op, "maximum", "fmax")
    _register(_minimum_op, "minimum", "fmin")
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


_build_table()
_operators()
