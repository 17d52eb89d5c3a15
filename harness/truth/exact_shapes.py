"""The table of operations of ``harness.exact``, part two: shapes and indexing,
creation and conversion, and the outer calls of ``torch.nn.functional``, exactly."""

from __future__ import annotations

import numpy as np
import torch

from .exact_numbers import (
    _add, _div, _log, _MP, _mul, _ONE_MPF, _pow, _real_elem, _softplus_raw, _sqrt, _sub, _ZERO_MPF)
from .exact_ops import (
    _add_op, _binary, _clamp, _dims, _div_op, _exact_sum, _log_softmax_row, _mean, _mul_op, _sum, _var_elems,
    _vector_norm)
from .exact_tensor import (
    _as, _assign, AtenLevel, _category, ExactTensor, ExactUnsupported, _map, _new, _operand, _promote, REAL, _scalar)

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
    key = (slice(None),) * (dim % t.a.ndim) + (int(index), Ellipsis)
    return _view(t.a[key], t.dtype)   # a view: x.select(0, 1).add_(1) writes into x


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



def _pad(input, pad, mode="constant", value=None):
    if mode != "constant":   # reflect, replicate, circular: torch's, at the ATen level
        raise AtenLevel(f"harness.exact: pad mode {mode!r}")
    t = _operand(input)
    widths = [(0, 0)] * t.a.ndim
    for i in range(len(pad) // 2):
        widths[t.a.ndim - 1 - i] = (int(pad[2 * i]), int(pad[2 * i + 1]))
    if any(w < 0 for pair in widths for w in pair):   # cropping: exact_aten_ops' constant_pad_nd
        raise AtenLevel("harness.exact: negative padding")
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
