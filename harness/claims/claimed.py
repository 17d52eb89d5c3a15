"""The claims: the forward and the claimed backward called on a sample and
checked (type, shape, dtype, device, a cotangent left as handed), the double
backward's Hessian-vector product and forward mode's JVP."""

from __future__ import annotations

import contextlib
import dataclasses
import warnings

import numpy as np
import torch

from ..case import Case, required_inputs
from ..errors import CaseError
from ..inputs.samples import _cotangent, _Sample, _tangents


@contextlib.contextmanager
def one_thread():
    """Torch on one thread: grids are small tensors, and one thread is several
    times faster than a pool that wakes up for each of thousands of tiny kernels."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


class _Misshapen(CaseError):
    """What a forward or backward returned has the wrong type, shape, dtype or
    device: a property of the code, not of any point."""


class _Mutating(CaseError):
    """The backward wrote into the cotangent it was handed: the code's fault, at no one point."""


def _claimed(case: Case, sample: _Sample, dtype, device) -> None:
    try:
        _run(case, sample, dtype, device)
    except _Mutating as err:
        raise CaseError(case.name, err.cause) from err
    except _Misshapen as err:
        # Named with the shapes the user's code really saw, not a one-point retry's.
        batch = (f" (an elementwise case gets the whole grid, {sample.arrays[0].size} points, as one 1-D "
                 f"tensor per input)" if case.elementwise else "")
        raise CaseError(case.name, err.cause + batch) from err
    except CaseError as err:
        if case.elementwise and err.point is None and sample.arrays[0].size > 1:
            # Find the offending point of a batched call.
            for j in range(sample.arrays[0].size):
                single = _Sample(tuple(a[j:j + 1] for a in sample.arrays))
                try:
                    _run(case, single, dtype, device)
                except CaseError as one:
                    raise CaseError(case.name, one.cause, tuple(float(a[j]) for a in sample.arrays)) from err
        if err.point is None:
            raise CaseError(case.name, err.cause, sample.arrays) from err
        raise


def _run(case: Case, sample: _Sample, dtype, device) -> None:
    sample.output, sample.grads, sample.unstable, sample.cotangent = _call(case, sample.arrays, dtype, device)


def _call(case: Case, arrays: tuple, dtype, device, rows: int | None = None) -> tuple:
    """One forward and backward call on ``arrays``: the output, the gradients,
    the gradient entries a second backward call changed, and the cotangent.
    ``rows``: the arrays are that many structured points stacked along a new
    first dimension (``batched_claims``), and so are the output and cotangent."""
    tensors = [torch.tensor(a, dtype=dtype, device=device, requires_grad=True) for a in arrays]
    try:
        y = case.forward(*tensors)
    except Exception as exc:
        hint = ""
        declared = isinstance(case.domain, tuple) or case.shape is not None or case.grid is not None
        if isinstance(exc, TypeError) and not declared and required_inputs(case.forward) is None:
            hint = (f" (it was called with {len(tensors)} input{'s' * (len(tensors) != 1)}: a signature that "
                    f"does not say how many it takes needs domain=(d1, d2, ...), one per input)")
        raise CaseError(case.name, f"forward raised {type(exc).__name__}: {exc}{hint}") from exc
    _check_tensor(case, "forward", y, dtype, device, tensors[0].shape if case.elementwise else None)
    if case.elementwise:
        cotangent = np.ones(tuple(y.shape))
    elif rows is None:
        cotangent = _cotangent(tuple(y.shape))
    else:
        if y.dim() == 0 or y.shape[0] != rows:
            raise _Misshapen(case.name, f"a batch of {rows} points gave an output of shape {tuple(y.shape)}")
        cotangent = np.broadcast_to(_cotangent(tuple(y.shape[1:])), tuple(y.shape))
    # The backward twice on the same inputs: a claim that changes between
    # calls (atomics, uninitialised memory, a random draw) is judged as such,
    # not by whichever answer came first.
    twice = not _builtin_on_cpu(case, y, device)
    # A torch.compile'd forward (harness.claims.execution) is run again for the second call:
    # its backward may write into the tensors it saved (donated buffers), so one graph
    # serves one backward.
    rerun = getattr(case.forward, "harness_compiled", False)
    first = _backward(case, tensors, y, cotangent, dtype, device, again=twice and not rerun)
    output = y.detach().to("cpu", torch.float64).numpy()
    grads = tuple(g.detach().to("cpu", torch.float64).numpy() for g in first)
    if not twice:
        return output, grads, tuple(np.zeros(g.shape, dtype=bool) for g in grads), cotangent
    if rerun:
        y = case.forward(*tensors)
    second = _backward(case, tensors, y, cotangent, dtype, device, again=False)
    again = tuple(g.detach().to("cpu", torch.float64).numpy() for g in second)
    unstable = tuple((a != b) & ~(np.isnan(a) & np.isnan(b)) for a, b in zip(grads, again))
    return output, grads, unstable, cotangent


def _vmapped(case: Case) -> Case:
    """The case with its forward (and claimed backward) mapped over a leading
    batch dimension by ``torch.func.vmap``: a batch of a forward that does not
    broadcast (a loss that reduces every dimension)."""
    return dataclasses.replace(case, forward=torch.func.vmap(case.forward),
                               backward=None if case.backward is None else torch.func.vmap(case.backward))


def _builtin_on_cpu(case: Case, y, device) -> bool:
    """Whether the claimed backward is torch's own CPU kernels only: autograd
    through a graph with no custom ``Function``. Those run on one thread here
    (``one_thread``) and are deterministic, so a second call would only cost
    time (a third of a warm ``pytest cases/``'s claimed pass)."""
    if case.backward is not None or torch.device(device).type != "cpu" or y.grad_fn is None:
        return case.backward is None and y.grad_fn is None
    seen, stack = set(), [y.grad_fn]
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        if isinstance(node, torch.autograd.function.BackwardCFunction):
            return False
        seen.add(node)
        stack += [child for child, _ in node.next_functions]
    return True


def _backward(case: Case, tensors: list, y, cotangent: np.ndarray, dtype, device, again: bool) -> tuple:
    """One call of the claimed VJP, checked; a backward that writes into its
    ``grad_output`` is a broken case (the caller's cotangent changes under it)."""
    grad_out = torch.tensor(cotangent, dtype=dtype, device=device)
    handed = grad_out.clone()
    own = case.backward is not None
    try:
        grads = _vjp(case, [t.detach() for t in tensors] if own else tensors, y, grad_out, retain_graph=again)
    except Exception as exc:
        what = "backward" if own else "autograd through forward"
        raise CaseError(case.name, f"{what} raised {type(exc).__name__}: {exc}") from exc
    if own:
        if len(grads) != len(tensors):
            raise _Misshapen(case.name, f"backward returned {len(grads)} gradients for {len(tensors)} inputs")
        for k, (g, t) in enumerate(zip(grads, tensors)):
            _check_tensor(case, f"backward (gradient {k})", g, dtype, device, t.shape)
    if not torch.equal(grad_out, handed):
        raise _Mutating(case.name, "the backward changed grad_output in place (e.g. g.mul_(...)): the "
                                    "caller's cotangent is not the backward's to write; compute into a new tensor")
    return grads


def _vjp(case: Case, tensors: list, y, grad_out, retain_graph: bool | None = None, create_graph: bool = False) -> tuple:
    """The claimed VJP, unchecked: ``case.backward``, or autograd through the
    forward's output ``y`` (a detached forward claims zero gradients)."""
    if case.backward is not None:
        grads = case.backward(*tensors, grad_out)
        return (grads,) if isinstance(grads, torch.Tensor) or grads is None else tuple(grads)
    if not y.requires_grad:
        return tuple(torch.zeros_like(t) for t in tensors)
    grads = torch.autograd.grad(y, tensors, grad_out, allow_unused=True, retain_graph=retain_graph,
                                create_graph=create_graph)
    return tuple(torch.zeros_like(t) if g is None else g for g, t in zip(grads, tensors))


def _claimed_further(case: Case, sample: _Sample, domains, dtype, device, order: int, forward: bool) -> None:
    """The claimed Hessian-vector product and JVP along the sample's tangent;
    a mode the code does not support is recorded as such, not raised."""
    sample.tangent = _tangents(case, [np.shape(a) for a in sample.arrays], domains)
    sample.unsupported = {}
    if order == 2:
        try:
            sample.hvp = tuple(h.detach().to("cpu", torch.float64).numpy()
                               for h in _hvp(case, sample.arrays, sample.cotangent, sample.tangent, dtype, device))
        except Exception as exc:   # the user's backward, differentiated: any failure is a finding about it
            sample.unsupported["hvp"] = f"double backward raised {type(exc).__name__}: {_first_line(exc)}"
            sample.hvp = tuple(np.full(np.shape(a), np.nan) for a in sample.arrays)
    if forward:
        try:
            sample.jvp = _jvp(case, sample.arrays, sample.tangent, dtype, device).detach().to("cpu", torch.float64).numpy()
        except Exception as exc:
            sample.unsupported["jvp"] = f"forward mode raised {type(exc).__name__}: {_first_line(exc)}"
            sample.jvp = np.full(np.shape(sample.output), np.nan)


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [""])[0]


def _claimed_gradient(case: Case, tensors: list, cotangent: np.ndarray, dtype, device, create_graph: bool) -> tuple:
    """The claimed VJP at ``tensors``, kept differentiable when ``create_graph``."""
    grad_out = torch.tensor(cotangent, dtype=dtype, device=device)
    y = case.forward(*tensors) if case.backward is None else None
    return _vjp(case, tensors, y, grad_out, create_graph=create_graph)


def _hvp(case: Case, arrays, cotangent, tangent, dtype, device) -> tuple:
    """``d/dx <claimed VJP, v>`` by autograd through the claimed backward.

    A gradient that does not require grad (a backward under ``no_grad``, or
    built from ``.detach()``-ed tensors) contributes nothing, exactly as it
    would to a gradient penalty that sums it with other terms: silently 0,
    which the truth then convicts."""
    tensors = [torch.tensor(a, dtype=dtype, device=device, requires_grad=True) for a in arrays]
    grads = _claimed_gradient(case, tensors, cotangent, dtype, device, create_graph=True)
    live = [(g, torch.tensor(v, dtype=dtype, device=device)) for g, v in zip(grads, tangent)
            if isinstance(g, torch.Tensor) and g.requires_grad]
    if not live:
        return tuple(torch.zeros_like(t) for t in tensors)
    out = torch.autograd.grad([g for g, _ in live], tensors, [v for _, v in live], allow_unused=True)
    return tuple(torch.zeros_like(t) if h is None else h for h, t in zip(out, tensors))


def _jvp(case: Case, arrays, tangent, dtype, device) -> torch.Tensor:
    """The JVP by forward-mode AD. Dual tensors (``torch.autograd.forward_ad``)
    and not ``torch.func.jvp``: both call a custom Function's ``jvp``, but
    ``torch.func`` also refuses every Function written in the classic style
    (``forward(ctx, ...)``), the style most custom backwards are in."""
    import torch.autograd.forward_ad as fwAD

    with warnings.catch_warnings(), fwAD.dual_level():
        # torch 2.13 scripts its forward-mode decompositions on first use, with a
        # DeprecationWarning about torch.jit.script: torch's, not the case's.
        warnings.filterwarnings("ignore", message="`torch.jit.script` is deprecated", category=DeprecationWarning)
        duals = [fwAD.make_dual(torch.tensor(a, dtype=dtype, device=device), torch.tensor(v, dtype=dtype, device=device))
                 for a, v in zip(arrays, tangent)]
        y = case.forward(*duals)
        t = fwAD.unpack_dual(y).tangent
        return torch.zeros_like(y) if t is None else t.clone()


def _check_tensor(case, what, t, dtype, device, shape) -> None:
    if t is None:
        raise _Misshapen(case.name, f"{what} returned None")
    if not isinstance(t, torch.Tensor):
        raise _Misshapen(case.name, f"{what} returned {type(t).__name__}, not a tensor")
    if t.dtype != dtype:
        raise _Misshapen(case.name, f"{what} returned dtype {t.dtype}, expected {dtype}")
    if t.device.type != torch.device(device).type:
        raise _Misshapen(case.name, f"{what} returned a tensor on {t.device}, expected {device}")
    if shape is not None and tuple(t.shape) != tuple(shape):
        raise _Misshapen(case.name, f"{what} returned shape {tuple(t.shape)}, expected {tuple(shape)}")
