"""How many rounded steps lie between the inputs and a result of the code under test.

The budget of ``judging.tolerance`` (8 ULPs of a value, 16 of a gradient, times
the condition number) is the error of one function evaluated stably. Real
code is a pipeline: ``rgb_to_luv`` is a gamma curve, a matrix, a cube root and
three quotients, and each step rounds once. If every step is no worse
conditioned than the whole, its rounding reaches the result amplified by at
most the whole's condition number, so n steps in a chain cost up to n ULPs
times that condition (Higham, *Accuracy and Stability of Numerical
Algorithms*, 2nd ed., section 3.1: the bound gamma_n = n u / (1 - n u)). A step
that cancels (``sqrt(d**2 + 1) - 1``) amplifies its rounding far beyond the
whole's condition, which the length of the chain does not excuse.

``depths(fn, inputs)`` runs ``fn`` and the backward of its outputs under a
``TorchDispatchMode`` that follows every ATen operation and gives each
result the length of the longest chain of rounding operations behind it:
exact operations (views, copies, selections, ``where``, ``neg``, ``abs``,
comparisons, ``max``) add nothing; a reduction of n terms adds
``1 + ceil(log2 n)``, the depth of pairwise summation, which torch's CPU
reductions use (``cascade_sum``); every other operation adds 1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten
from torch.utils.weak import WeakTensorKeyDictionary

_aten = torch.ops.aten

#: Operations whose floating results are exact: they select, move, copy or
#: compare floats, or change a sign, and never round. (A dtype conversion rounds
#: only when it narrows, ``_rounds``.)
_EXACT = {
    getattr(_aten, name) for name in (
        "clone", "copy", "copy_", "detach", "alias", "lift_fresh", "lift_fresh_copy", "where", "cat", "stack",
        "index", "index_select", "gather", "scatter", "masked_fill", "masked_fill_", "masked_select", "fill",
        "fill_", "zero_", "zeros_like", "ones_like", "full_like", "empty_like", "new_zeros", "new_ones",
        "new_full", "new_empty", "zeros", "ones", "full", "empty", "scalar_tensor", "neg", "abs", "sign", "sgn",
        "maximum", "minimum", "max", "min", "amax", "amin", "clamp", "clamp_min", "clamp_max", "relu",
        "threshold_backward", "constant_pad_nd", "reflection_pad1d", "reflection_pad2d", "reflection_pad3d",
        "replication_pad1d", "replication_pad2d", "replication_pad3d", "flip", "roll", "sort", "topk",
        "floor", "ceil", "trunc", "round", "eq", "ne", "lt", "le", "gt", "ge", "logical_not", "logical_and",
        "logical_or", "isnan", "isinf", "isfinite", "select_backward", "slice_backward", "index_put",
        "index_put_", "expand_copy", "permute_copy", "view_copy", "_unsafe_view", "repeat", "tril", "triu",
        "diag_embed", "diagonal_backward", "as_strided_scatter", "slice_scatter", "select_scatter",
        "max_pool2d_with_indices", "max_pool3d_with_indices", "max_pool2d_with_indices_backward",
        "max_pool3d_with_indices_backward", "argmax", "argmin", "_to_copy", "to", "sum_to_size",
    ) if hasattr(_aten, name)
}
#: Products of matrices and convolutions: their length of sum is read off their arguments.
_PRODUCTS = {getattr(_aten, name) for name in ("mm", "bmm", "addmm", "baddbmm", "dot", "mv", "addmv", "matmul")
             if hasattr(_aten, name)}
_CONVOLUTIONS = {getattr(_aten, name) for name in ("convolution", "convolution_backward") if hasattr(_aten, name)}


@dataclass(frozen=True)
class Depths:
    """The longest chains of rounding operations: to each output of the forward
    (``value``) and to each input's gradient (``gradient``, None where the
    backward was not run)."""

    value: int
    gradient: int | None = None


def depths(fn, inputs, cotangent=None) -> Depths:
    """The rounding depth of ``fn(*inputs)``'s outputs and of the gradient of
    their sum (weighted by ``cotangent`` where given) with respect to the
    floating inputs that require grad.

    Example:
        >>> x = torch.tensor([0.5, 2.0], dtype=torch.float64, requires_grad=True)
        >>> depths(lambda x: torch.log(torch.exp(x) + 1), (x,)).value
        3
    """
    mode = _DepthMode()
    with mode:
        out = fn(*inputs)
        outputs = [t for t in tree_flatten(out)[0] if isinstance(t, torch.Tensor) and t.is_floating_point()]
        value = max((mode.of(t) for t in outputs), default=0)
        wrt = [t for t in inputs if isinstance(t, torch.Tensor) and t.requires_grad]
        differentiable = [t for t in outputs if t.requires_grad]
        if not wrt or not differentiable:
            return Depths(value)
        seeds = [torch.ones_like(t) if cotangent is None else cotangent for t in differentiable]
        grads = torch.autograd.grad(differentiable, wrt, seeds, allow_unused=True)
        gradient = max((mode.of(g) for g in grads if g is not None), default=0)
    return Depths(value, gradient)


class _DepthMode(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self._depth = WeakTensorKeyDictionary()

    def of(self, t: torch.Tensor) -> int:
        return self._depth.get(t, 0)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        tensors = [t for t in tree_flatten((args, kwargs))[0] if isinstance(t, torch.Tensor)]
        before = max((self.of(t) for t in tensors), default=0)
        results = [t for t in tree_flatten(out)[0] if isinstance(t, torch.Tensor)]
        step = _step(func, tensors, results)
        for t in results:
            # An in-place operation's result is its first argument: the chain grows in place.
            self._depth[t] = before + step
        return out


def _step(func, tensors: list, results: list) -> int:
    """The rounding depth ``func`` adds: 0 when exact, else one rounding and
    a pairwise sum's depth for each doubling of the terms summed."""
    packet = func.overloadpacket
    floating = [t for t in results if t.is_floating_point()]
    if not floating or _is_view(func):
        return 0
    if packet in _EXACT:
        return int(packet in (_aten._to_copy, _aten.to) and _narrows(tensors, floating))
    return 1 + math.ceil(math.log2(max(1, _terms(packet, tensors, floating))))


def _is_view(func) -> bool:
    return any(a.alias_info is not None and not a.alias_info.is_write for a in func._schema.returns)


def _narrows(tensors: list, results: list) -> bool:
    bits = [torch.finfo(t.dtype).bits for t in tensors if t.is_floating_point()]
    return bool(bits) and torch.finfo(results[0].dtype).bits < max(bits)


def _terms(packet, tensors: list, results: list) -> int:
    """How many terms each result entry sums."""
    if packet in _PRODUCTS:
        return max(1, tensors[-1].shape[-2] if tensors[-1].dim() >= 2 else tensors[-1].shape[-1])
    if packet in _CONVOLUTIONS:
        # Each output sums over input channels times the kernel (a gradient's sums are
        # longer, over the batch and the positions too, read as for any reduction).
        weight = tensors[1] if packet is _aten.convolution else tensors[2]
        n = weight[0].numel()
        return n if packet is _aten.convolution else max(n, tensors[0].numel() // max(1, weight.numel()))
    largest = max((t.numel() for t in tensors if t.is_floating_point()), default=1)
    return max(1, largest // max(1, results[0].numel()))
