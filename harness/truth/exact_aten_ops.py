"""The operations of ``harness.exact`` at the ATen level that the function-level
table has no entry for: convolution, exact integer parts (``floor_divide``,
``remainder``, ``fmod``, ``round``), sorting, advanced indexing and scattering,
the views torch's C++ code makes (``slice``, ``select``, ``diagonal``,
``as_strided``, ``unfold``, ``alias``), copies and conversions
(``_to_copy``), and adapters where an ATen signature differs from the torch
function's (``add.Scalar``'s positional ``alpha``, a ``sum`` over ``dim=[]``).
Each is the mathematics, exactly, as the function-level table's are.
"""

from __future__ import annotations

import mpmath
import numpy as np
from mpmath import libmp

from .dual import Dual, lift, mark_where, value as _value
from .exact_numbers import _add, _div, _expm1, _MP, _MPF, _mul, _real_elem, _softplus_raw, _sub, _ZERO_MPF
from .exact_ops import (
    _add_op, _amax, _amin, _binary, _clamp, _exact_sum, _matmul, _mean, _mul_op, _std, _sub_op, _sum, _var,
    _ValuesIndices)
from .exact_shapes import _bce, _full, _pad, _shape_args
from .exact_tensor import _as, BOOL, _category, ExactTensor, ExactUnsupported, INT, _map, _new, _operand, REAL

# -- adapters: ATen signatures over the function-level implementations -------------------------------------------

def _add_aten(self, other, alpha=1):
    return _add_op(self, other, alpha=alpha)


def _sub_aten(self, other, alpha=1):
    return _sub_op(self, other, alpha=alpha)


def _rsub_aten(self, other, alpha=1):
    return _sub_op(other, self, alpha=alpha)


def _all_dims(dim):
    """ATen's ``dim=[]`` (and None) is every dimension."""
    return None if dim is None or (isinstance(dim, (list, tuple)) and not dim) else dim


def _sum_aten(self, dim=None, keepdim=False, *, dtype=None):
    return _sum(self, _all_dims(dim), keepdim, dtype=dtype)


def _mean_aten(self, dim=None, keepdim=False, *, dtype=None):
    return _mean(self, _all_dims(dim), keepdim, dtype=dtype)


def _var_aten(self, dim=None, unbiased=True, keepdim=False, *, correction=None):
    if isinstance(dim, bool):   # var(self, unbiased)
        dim, unbiased = None, dim
    return _var(self, _all_dims(dim), unbiased, keepdim, correction=correction)


def _std_aten(self, dim=None, unbiased=True, keepdim=False, *, correction=None):
    if isinstance(dim, bool):
        dim, unbiased = None, dim
    return _std(self, _all_dims(dim), unbiased, keepdim, correction=correction)


def _amax_aten(self, dim=(), keepdim=False):
    dim = _all_dims(dim)
    return _amax(self, () if dim is None else dim, keepdim)


def _amin_aten(self, dim=(), keepdim=False):
    dim = _all_dims(dim)
    return _amin(self, () if dim is None else dim, keepdim)


def _scaled_product(self, product, beta, alpha):
    """``beta * self + alpha * product``; ``self`` is ignored where ``beta`` is 0, as torch does."""
    scaled = product if alpha == 1 else _mul_op(product, alpha)
    if beta == 0:
        return scaled
    return _add_op(scaled, self if beta == 1 else _mul_op(self, beta))


def _addmm(self, mat1, mat2, *, beta=1, alpha=1):
    return _scaled_product(self, _matmul(mat1, mat2), beta, alpha)


def _elu_aten(self, alpha=1, scale=1, input_scale=1):
    alpha, scale, input_scale = _real_elem(alpha), _real_elem(scale), _real_elem(input_scale)

    def elu(x):
        return _mul(scale, x) if x > 0 else _mul(_mul(scale, alpha), _expm1(_mul(input_scale, x)))
    return _new(_map(elu, _as(_operand(self), REAL)), REAL)


def _hardtanh(self, min_val=-1, max_val=1):
    return _clamp(self, min_val, max_val)


def _log_sigmoid_forward(self):
    x = _as(_operand(self), REAL)
    return _new(_map(lambda v: -_softplus_raw(-v), x), REAL), ExactTensor(np.empty((0,), dtype=object), REAL)


_REDUCTIONS = {0: "none", 1: "mean", 2: "sum"}


def _bce_aten(self, target, weight=None, reduction=1):
    return _bce(self, target, weight, reduction=_REDUCTIONS[reduction])


def _softmax_aten(impl):
    return lambda self, dim, half_to_float=False: impl(self, dim)


# -- exact integer parts ----------------------------------------------------------------------------------------

def _floor_quotient(a, b):
    """``(q, r)`` with ``q = floor(a / b)`` and ``a = b q + r`` exactly (``r``
    has the sign of ``b``), for finite ``a`` and nonzero finite ``b``. ``q`` is
    first read at enough bits for its integer part and then corrected by the
    exact remainder, so it is right whatever the working precision."""
    x, y = a._mpf_, b._mpf_
    bits = max(_MP.prec, (int(mpmath.mag(a) - mpmath.mag(b)) if a else 0) + 64)
    q = libmp.mpf_floor(libmp.mpf_div(x, y, bits, libmp.round_floor))
    r = libmp.mpf_sub(x, libmp.mpf_mul(y, q, 0), 0)
    one = libmp.fone
    positive = not y[0]
    while True:
        if (positive and r[0] and r[1]) or (not positive and not r[0] and r[1]):   # the wrong side of 0
            q, r = libmp.mpf_sub(q, one, 0), libmp.mpf_add(r, y, 0)
        elif libmp.mpf_ge(r, y) if positive else libmp.mpf_le(r, y):
            q, r = libmp.mpf_add(q, one, 0), libmp.mpf_sub(r, y, 0)
        else:
            return _MP.make_mpf(q), _MP.make_mpf(r)


def _finite_pair(a, b) -> bool:
    return mpmath.isfinite(a) and mpmath.isfinite(b) and b != 0


def _fmod_value(a, b):
    """C's ``fmod``: ``a - b trunc(a / b)``, the sign of ``a``, exactly."""
    a, b = _real_elem(a), _real_elem(b)
    if not _finite_pair(a, b):
        return a if mpmath.isfinite(a) and mpmath.isinf(b) else _MP.nan
    q, r = _floor_quotient(a, b)
    return _sub(r, b) if r != 0 and q < 0 else r


def _remainder_value(a, b):
    """Python's ``%`` (torch's ``remainder``): the sign of ``b``, exactly."""
    a, b = _real_elem(a), _real_elem(b)
    if not _finite_pair(a, b):
        mod = _fmod_value(a, b)   # torch's rule beyond the finite numbers
        return mod + b if mod != 0 and (b < 0) != (mod < 0) else mod
    return _floor_quotient(a, b)[1]


def _quotient_rule(quotient):
    """d/da = 1, d/db = -quotient(a, b); a jump where the remainder is 0."""
    def rule(out, a, b):
        mark_where(out == 0 and b != 0, "a remainder at a multiple of the divisor (a jump)")
        return (1, lambda: -quotient(a, b))
    return rule


def _floor_div_value(a, b):
    a, b = _real_elem(a), _real_elem(b)
    if not _finite_pair(a, b):
        return mpmath.floor(_div(a, b))
    return _floor_quotient(a, b)[0]


def _trunc_div_value(a, b):
    a, b = _real_elem(a), _real_elem(b)
    if not _finite_pair(a, b):
        q = _div(a, b)
        return q if not mpmath.isfinite(q) else (mpmath.floor(q) if q >= 0 else mpmath.ceil(q))
    q, r = _floor_quotient(a, b)
    return q + 1 if r != 0 and q < 0 else q


_fmod_elem = lift(_quotient_rule(_trunc_div_value))(_fmod_value)
_remainder_elem = lift(_quotient_rule(_floor_div_value))(_remainder_value)


def _step_rule(out, a, b):
    a, b = _real_elem(a), _real_elem(b)
    mark_where(_finite_pair(a, b) and _floor_quotient(a, b)[1] == 0, "an integer quotient (a jump)")
    return (0, 0)


_floor_div_elem = lift(_step_rule)(_floor_div_value)
_trunc_div_elem = lift(_step_rule)(_trunc_div_value)


def _int_fmod(a, b):
    q = abs(a) // abs(b)
    return a - b * (q if (a >= 0) == (b >= 0) else -q)


def _int_floordiv(a, b):
    return a // b


def _int_truncdiv(a, b):
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


def _int_remainder(a, b):
    return a % b


_remainder = _binary(_remainder_elem, _int_remainder)
_fmod = _binary(_fmod_elem, _int_fmod)
_floor_divide = _binary(_floor_div_elem, _int_floordiv)
_trunc_divide = _binary(_trunc_div_elem, _int_truncdiv)


def _div_mode(self, other, *, rounding_mode=None):
    if rounding_mode is None:
        return _binary(_div)(self, other)
    if rounding_mode == "floor":
        return _floor_divide(self, other)
    if rounding_mode == "trunc":
        return _trunc_divide(self, other)
    raise ValueError(f"div expected rounding_mode to be one of None, 'trunc', or 'floor' but found '{rounding_mode}'")


def _round_half_even(x):
    """The nearest integer, ties to even (torch's ``round``), exactly: the
    fraction is an exact difference, compared with 1/2."""
    if not (isinstance(x, _MPF) and mpmath.isfinite(x)):
        return x
    f = libmp.mpf_floor(x._mpf_)
    frac = libmp.mpf_sub(x._mpf_, f, 0)
    half = libmp.mpf_shift(libmp.fone, -1)
    up = libmp.mpf_gt(frac, half) or (frac == half and libmp.to_int(f) % 2 == 1)
    return _MP.make_mpf(libmp.mpf_add(f, libmp.fone, 0) if up else f)


def _half_integer(x) -> bool:
    if not (isinstance(x, _MPF) and mpmath.isfinite(x)):
        return False
    frac = libmp.mpf_sub(x._mpf_, libmp.mpf_floor(x._mpf_), 0)
    return frac == libmp.mpf_shift(libmp.fone, -1)


def _round_rule(out, x):
    mark_where(_half_integer(x), "round at a half-integer (a jump)")
    return (0,)


_round_lifted = lift(_round_rule)(_round_half_even)


def _round_elem(x):
    return _value(_round_lifted(x))   # flat: a constant (its jumps are marked by the rule)


def _round(self, *, decimals=0):
    t = _operand(self)
    if t.dtype is not REAL:
        return ExactTensor(t.a.copy(), t.dtype)
    if decimals == 0:
        return _new(_map(_round_elem, t.a), REAL)
    # The nearest multiple of 10**-decimals: the scaling by an integer power of
    # ten is exact one way (a product), the division the other way rounds once.
    ten = _MP.make_mpf(libmp.from_int(10 ** abs(decimals)))
    if decimals > 0:
        return _new(_map(lambda v: _div(_round_elem(_mul(v, ten)), ten), t.a), REAL)
    return _new(_map(lambda v: _mul(_round_elem(_div(v, ten)), ten), t.a), REAL)


# -- sorting -------------------------------------------------------------------------------------------------------

def _sort_key(v):
    v = _value(v)
    return (1, 0) if isinstance(v, (_MPF, _MP.mpc)) and mpmath.isnan(v) else (0, v)


def _sort(self, dim=-1, descending=False, *, stable=None):
    """Values and indices along ``dim``, stable (equal values keep their
    order, as torch's stable sort); NaN is the largest. A tie between
    differentiated values is a switching point of the sorted values."""
    t = _operand(self)
    a = np.moveaxis(t.a, dim, -1) if t.a.ndim else t.a.reshape(1)
    values, indices = np.empty(a.shape, dtype=object), np.empty(a.shape, dtype=object)
    for index in np.ndindex(a.shape[:-1]):
        row = list(a[index])
        order = sorted(range(len(row)), key=lambda i: _sort_key(row[i]), reverse=bool(descending))
        if any(type(v) is Dual for v in row):
            mark_where(any(_sort_key(row[i]) == _sort_key(row[j]) for i, j in zip(order, order[1:])),
                       "sort: a tie (a switching point)")
        values[index] = [row[i] for i in order]
        indices[index] = order
    if not t.a.ndim:
        return _ValuesIndices((ExactTensor(values.reshape(()), t.dtype), ExactTensor(indices.reshape(()), INT)))
    return _ValuesIndices((ExactTensor(np.moveaxis(values, -1, dim), t.dtype),
                           ExactTensor(np.moveaxis(indices, -1, dim), INT)))


def _sort_stable(self, *, stable=None, dim=-1, descending=False):
    return _sort(self, dim, descending)


def _median(self, dim=None, keepdim=False):
    """torch's median: the lower of the two middle values, with its index (NaN
    is the largest, as in ``sort``); over everything without ``dim``."""
    t = _operand(self)
    if dim is None:
        flat = ExactTensor(t.a.reshape(-1), t.dtype)
        return ExactTensor(_sort(flat, 0).values.a[(flat.a.size - 1) // 2, ...], t.dtype)
    values, indices = _sort(t, dim)
    n = t.a.shape[dim] if t.a.ndim else 1
    key = [slice(None)] * t.a.ndim
    key[dim if t.a.ndim else 0] = slice((n - 1) // 2, (n - 1) // 2 + 1) if keepdim else (n - 1) // 2
    key = tuple(key) + (Ellipsis,)
    return _ValuesIndices((ExactTensor(values.a[key], t.dtype), ExactTensor(indices.a[key], INT)))


# -- convolution -----------------------------------------------------------------------------------------------------

def _spatial_pad(a: np.ndarray, widths) -> np.ndarray:
    """Zeros around the trailing axes, ``widths`` a (before, after) pair per
    axis; a negative width crops."""
    lead = a.ndim - len(widths)
    crop = tuple([slice(None)] * lead + [slice(max(-lo, 0), n - max(-hi, 0)) for n, (lo, hi) in
                                         zip(a.shape[lead:], widths)])
    a = a[crop]
    out = np.empty(a.shape[:lead] + tuple(n + max(lo, 0) + max(hi, 0) for n, (lo, hi) in
                                          zip(a.shape[lead:], widths)), dtype=object)
    out[...] = _ZERO_MPF
    out[tuple([slice(None)] * lead + [slice(max(lo, 0), max(lo, 0) + n) for n, (lo, _) in
                                      zip(a.shape[lead:], widths)])] = a
    return out


_EXACT_ZERO = np.frompyfunc(lambda v: type(v) is _MPF and not v, 1, 1)
_FINITE = np.frompyfunc(lambda v: mpmath.isfinite(_value(v)), 1, 1)


def _correlate(x: np.ndarray, w: np.ndarray, stride, dilation, groups) -> np.ndarray:
    """Cross-correlation of ``x`` (N, C, *S), already padded, with ``w``
    (O, C/groups, *K): every output a sum of products, summed exactly."""
    n, channels = x.shape[:2]
    out_channels, per_group, kernel = w.shape[0], w.shape[1], w.shape[2:]
    out_size = [(s - d * (k - 1) - 1) // st + 1 for s, k, st, d in zip(x.shape[2:], kernel, stride, dilation)]
    columns = []
    for offset in np.ndindex(*kernel):
        window = tuple(slice(o * d, o * d + st * (m - 1) + 1, st)
                       for o, d, st, m in zip(offset, dilation, stride, out_size))
        columns.append(x[(slice(None), slice(None)) + window])
    cols = np.stack(columns, axis=2)   # (N, C, K, *out)
    cols = cols.reshape((n, groups, per_group * len(columns)) + tuple(out_size))
    weights = w.reshape((groups, out_channels // groups, per_group * len(columns)) + (1,) * len(out_size))
    # Only products where neither factor is an exact 0 against a finite other: 0 times
    # a finite number is an exact 0 with no derivative. The padding, mostly (a 33 x 33
    # kernel over a padded 5 x 5 image, as MS-SSIM's, meets the image in 25 of 1,089
    # places), and one-hot kernels (kornia's median_blur unfolds its windows by a
    # convolution with 15 of them, each 1 in one place of 15).
    shape = np.broadcast_shapes(weights[None].shape, cols[:, :, None].shape)   # (N, groups, O/groups, C/groups * K, *out)
    x_zero, x_finite = (np.broadcast_to(f(cols).astype(bool)[:, :, None], shape) for f in (_EXACT_ZERO, _FINITE))
    w_zero, w_finite = (np.broadcast_to(f(weights).astype(bool)[None], shape) for f in (_EXACT_ZERO, _FINITE))
    keep = ~((x_zero & w_finite) | (w_zero & x_finite))
    terms = np.full(shape, _ZERO_MPF, dtype=object)
    terms[keep] = _map(_mul, np.broadcast_to(weights[None], shape)[keep], np.broadcast_to(cols[:, :, None], shape)[keep])
    # Each output the exact sum of its kept products (the term axis last, one row per output).
    rows, kept = (np.moveaxis(a, 3, -1).reshape(-1, shape[3]) for a in (terms, keep))
    sums = np.empty(len(rows), dtype=object)
    for r, (row, k) in enumerate(zip(rows, kept)):
        sums[r] = _exact_sum(list(row[k])) if k.any() else _ZERO_MPF
    return sums.reshape((n, out_channels) + tuple(out_size))


def _convolution(input, weight, bias, stride, padding, dilation, transposed, output_padding, groups):
    """``F.conv1d/2d/3d`` and their transposes: sums of products, exact."""
    x, w = _as(_operand(input), REAL), _as(_operand(weight), REAL)
    spatial = x.ndim - 2
    stride, padding, dilation = (list(v) * (spatial if len(v) == 1 else 1) for v in (stride, padding, dilation))
    if transposed:
        # A transposed convolution is the correlation of the input spread out
        # by the stride (zeros between) with the flipped kernel, its groups'
        # in and out channels swapped; padding p removes d (k - 1) - p zeros.
        output_padding = list(output_padding) * (spatial if len(output_padding) == 1 else 1)
        kernel = w.shape[2:]
        spread = np.empty(x.shape[:2] + tuple((s - 1) * st + 1 for s, st in zip(x.shape[2:], stride)), dtype=object)
        spread[...] = _ZERO_MPF
        spread[(slice(None), slice(None)) + tuple(slice(None, None, st) for st in stride)] = x
        x = _spatial_pad(spread, [(d * (k - 1) - p, d * (k - 1) - p + op) for k, d, p, op in
                                  zip(kernel, dilation, padding, output_padding)])
        per_group = w.shape[0] // groups
        w = w.reshape((groups, per_group, w.shape[1]) + kernel).swapaxes(1, 2)
        w = np.flip(w.reshape((groups * w.shape[1], per_group) + kernel), tuple(range(2, 2 + spatial)))
        stride = [1] * spatial
    else:
        x = _spatial_pad(x, [(p, p) for p in padding])
    out = ExactTensor(_correlate(x, w, stride, dilation, groups), REAL)
    if bias is not None:
        out = _add_op(out, ExactTensor(_as(_operand(bias), REAL).reshape((-1,) + (1,) * spatial), REAL))
    return out


# -- indexing and scattering ------------------------------------------------------------------------------------------

def _index_array(index) -> np.ndarray:
    t = _operand(index)
    if t.dtype is REAL:
        raise IndexError("tensors used as indices must be long, int or bool tensors")
    return np.asarray(t.a.tolist(), dtype=bool if t.dtype is BOOL else np.int64)


def _key(indices) -> tuple:
    """ATen's list of optional index tensors as a numpy key (numpy's advanced
    indexing places the result dimensions as torch's does)."""
    return tuple(slice(None) if i is None else _index_array(i) for i in indices)


def _index(self, indices):
    t = _operand(self)
    return ExactTensor(np.array(t.a[_key(indices)], dtype=object), t.dtype)


def _positions(a: np.ndarray, key) -> tuple:
    """The multi-indices into ``a`` that ``a[key]`` reads, each an array of the result's shape."""
    flat = np.arange(a.size).reshape(a.shape)[key]
    return np.unravel_index(flat, a.shape)


def _accumulate(target: ExactTensor, where: tuple, values: np.ndarray) -> None:
    """``target[where] += values`` one element after another (a position named
    twice gets both), each sum exact."""
    add = _add if target.dtype is REAL else (lambda x, y: x + y)
    for position, v in zip(zip(*(w.reshape(-1) for w in where)), values.reshape(-1)):
        target.a[position] = add(target.a[position], v)


def _target(self) -> ExactTensor:
    """The stand-in an in-place operation writes into (a torch tensor cannot hold exact values)."""
    if not isinstance(self, ExactTensor):
        raise ExactUnsupported("harness.exact: exact values cannot be written into a torch tensor; "
                               "make the target a stand-in (x.new_zeros(...), torch.zeros_like(x))")
    return self


def _index_put_(self, indices, values, accumulate=False):
    self = _target(self)
    where = _positions(self.a, _key(indices))
    values = np.broadcast_to(_as(_operand(values), self.dtype), where[0].shape)
    if accumulate:
        _accumulate(self, where, values)
    else:
        self.a[where] = values
    return self


def _copy_of(self) -> ExactTensor:
    t = _operand(self)
    return ExactTensor(t.a.copy(), t.dtype)


def _index_put(self, indices, values, accumulate=False):
    return _index_put_(_copy_of(self), indices, values, accumulate)


def _scatter_positions(self: ExactTensor, dim, index):
    """Where ``scatter`` along ``dim`` writes each element of ``index``."""
    i = _index_array(index)
    dim = dim % max(self.a.ndim, 1)
    positions = np.arange(self.a.size).reshape(self.a.shape)
    positions = positions[tuple(slice(None) if d == dim else slice(0, n) for d, n in enumerate(i.shape))]
    flat = np.take_along_axis(positions, i, axis=dim) if self.a.ndim else positions
    return np.unravel_index(flat, self.a.shape), i.shape


def _source(src, shape, dtype) -> np.ndarray:
    s = _as(_operand(src), dtype)
    if s.ndim == 0:
        return np.broadcast_to(s, shape)
    return s[tuple(slice(0, n) for n in shape)]


def _scatter_add_(self, dim, index, src):
    self = _target(self)
    where, shape = _scatter_positions(self, dim, index)
    _accumulate(self, where, _source(src, shape, self.dtype))
    return self


def _scatter_(self, dim, index, src, *, reduce=None):
    """``scatter_.src`` and ``scatter_.value`` (a number as ``src``)."""
    if reduce is not None:
        raise ExactUnsupported(f"harness.exact: scatter with reduce={reduce!r}")
    self = _target(self)
    where, shape = _scatter_positions(self, dim, index)
    self.a[where] = _source(src, shape, self.dtype)
    return self


def _scatter_add(self, dim, index, src):
    return _scatter_add_(_copy_of(self), dim, index, src)


def _scatter(self, dim, index, src, *, reduce=None):
    return _scatter_(_copy_of(self), dim, index, src, reduce=reduce)


# -- views, copies, conversions ---------------------------------------------------------------------------------------

def _alias(self):
    t = _operand(self)
    return ExactTensor(t.a, t.dtype)


def _slice(self, dim=0, start=None, end=None, step=1):
    t = _operand(self)
    key = [slice(None)] * t.a.ndim
    key[dim] = slice(start, end, step)
    return ExactTensor(t.a[tuple(key)], t.dtype)


def _select_view(self, dim, index):
    t = _operand(self)
    key = [slice(None)] * t.a.ndim
    key[dim] = int(index)
    return ExactTensor(t.a[tuple(key) + (Ellipsis,)], t.dtype)


def _unbind_views(self, dim=0):
    t = _operand(self)
    return tuple(_select_view(t, dim, i) for i in range(t.a.shape[dim]))


def _writable(view: np.ndarray) -> np.ndarray:
    view.flags.writeable = True   # numpy's diagonal and window views are read-only by default; torch's write through
    return view


def _diagonal(self, offset=0, dim1=0, dim2=1):
    t = _operand(self)
    return ExactTensor(_writable(np.diagonal(t.a, offset, dim1, dim2)), t.dtype)


def _contiguous_base(t: ExactTensor) -> np.ndarray:
    """The elements in the row-major order the wrapper's strides describe (a
    stand-in always reports contiguous strides for its shape)."""
    return (t.a if t.a.flags.c_contiguous else np.ascontiguousarray(t.a)).reshape(-1)


def _as_strided(self, size, stride, storage_offset=None):
    t = _operand(self)
    base = _contiguous_base(t)[int(storage_offset or 0):]
    view = np.lib.stride_tricks.as_strided(base, shape=tuple(size),
                                           strides=tuple(int(s) * base.itemsize for s in stride))
    return ExactTensor(view, t.dtype)


def _unfold(self, dimension, size, step):
    t = _operand(self)
    if not t.a.ndim:
        return ExactTensor(t.a.reshape(1), t.dtype)
    windows = np.lib.stride_tricks.sliding_window_view(t.a, size, axis=dimension, writeable=True)
    key = [slice(None)] * t.a.ndim
    key[dimension] = slice(None, None, step)
    return ExactTensor(windows[tuple(key)], t.dtype)


def _to_copy(self, *, dtype=None, layout=None, device=None, pin_memory=None, non_blocking=False,
             memory_format=None):
    t = _operand(self)
    kind = _category(dtype) or t.dtype
    return ExactTensor(_as(t, kind).copy() if kind is t.dtype else _as(t, kind), kind)


def _constant_pad_nd(self, pad, value=0):
    if all(p >= 0 for p in pad):
        return _pad(self, pad, "constant", value)
    t = _operand(self)
    crop = [slice(None)] * t.a.ndim
    for i in range(len(pad) // 2):
        axis, lo, hi = t.a.ndim - 1 - i, int(pad[2 * i]), int(pad[2 * i + 1])
        crop[axis] = slice(max(-lo, 0), t.a.shape[axis] - max(-hi, 0))
    return _pad(ExactTensor(t.a[tuple(crop)], t.dtype), [max(int(p), 0) for p in pad], "constant", value)


def _filled(self, value):
    t = _operand(self)
    return _full(t.a.shape, value, t.dtype)


def _new_empty_strided(self, size, stride, *, dtype=None, **kwargs):
    return _full(_shape_args((size,)), 0, _category(dtype) or _operand(self).dtype)


def _local_scalar_dense(self):
    """``.item()`` inside torch's C++ code: a count or a flag is exact; a real
    number would be rounded to a double, so it stops."""
    t = _operand(self)
    if t.dtype is REAL:
        raise ExactUnsupported("harness.exact: torch's C++ code reads a real value as a double (.item()), "
                               "which would round it")
    v = t._single()
    return bool(v) if t.dtype is BOOL else int(v)

