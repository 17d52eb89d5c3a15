"""What ``harness.gradcheck`` keeps of ``torch.autograd.gradcheck``: its
error type, its keywords (those that mean nothing here are said once to be
ignored), its structural checks (nothing numerical: a backward that ignores
``grad_output``, that fails on undefined output grads, that vmap cannot
batch), its reentrancy tolerance, and the calls it judges alone (complex,
sparse), run through torch's own module.
"""

from __future__ import annotations

import importlib
import inspect
import warnings

import torch

from ..errors import warn_user

_torch_gradcheck = importlib.import_module("torch.autograd.gradcheck")
#: torch's own functions, kept at import: a suite that patches
#: ``torch.autograd.gradcheck = harness.gradcheck`` still reaches torch's for
#: the calls the harness hands over (complex, sparse), not the harness again.
TORCH_CHECKS = {"gradcheck": _torch_gradcheck.gradcheck, "gradgradcheck": _torch_gradcheck.gradgradcheck}
#: torch's error type: ``harness.gradcheck``'s derives from it, and a check that torch runs raises it.
TorchGradcheckError = _torch_gradcheck.GradcheckError


class GradcheckError(TorchGradcheckError):
    """A failed check (a ``RuntimeError``, as torch's): the message holds the
    harness's reports, ``reports`` the ``Report`` of each failing certification."""

    def __init__(self, message: str, reports=()):
        super().__init__(message)
        self.reports = list(reports)


class GradcheckWarning(UserWarning):
    """A keyword ignored, or a check made another way than asked (said once)."""


#: Keywords of torch's gradcheck and gradgradcheck that mean nothing here, and why.
IGNORED = {
    "eps": "the finite differences choose their own step per element (about a third of the significand "
           "bits of |x|, with an error estimate) in the inputs' dtype",
    "fast_mode": "one VJP per output is judged either way, with the harness's fixed positive cotangent",
    "gen_non_contig_grad_outputs": "the cotangents are the harness's own (or the grad_outputs given)",
    "check_fwd_over_rev": "second order is judged by reverse over reverse (double backward) only",
    "check_rev_over_rev": "gradgradcheck judges reverse over reverse (double backward): that is its point",
    "masked": "only sparse inputs have unspecified elements (they go to torch.autograd.gradcheck)",
    "check_sparse_nnz": "only sparse inputs have unspecified elements (they go to torch.autograd.gradcheck)",
}
_SAID: set[str] = set()


def say_once(key: str, message: str) -> None:
    if key not in _SAID:
        _SAID.add(key)
        warn_user(GradcheckWarning(message))


def say_ignored(keywords: dict, who: str) -> None:
    for name in keywords:
        why = IGNORED.get(name, f"not a keyword of torch.autograd.{who}")
        say_once(f"keyword {name}", f"harness.{who}: {name}= is ignored: {why}")


def as_tuple(x) -> tuple:
    return tuple(x) if isinstance(x, (tuple, list)) else (x,)


def judged_outputs(outputs: tuple) -> list[torch.Tensor]:
    """The outputs that require grad, as torch's; where none does, every
    floating output (its gradient must then truly be zero)."""
    tensors = [o for o in outputs if isinstance(o, torch.Tensor) and (o.is_floating_point() or o.is_complex())]
    differentiable = [o for o in tensors if o.requires_grad]
    return differentiable or tensors


def beyond_the_harness(inputs: tuple, grad_outputs: tuple | None) -> str | None:
    """Why torch's own gradcheck judges this call (None: the harness does)."""
    for v in inputs + (grad_outputs or ()):
        if isinstance(v, torch.Tensor) and v.is_complex():
            return "a complex input"
        if isinstance(v, torch.Tensor) and v.layout != torch.strided:
            return f"a {v.layout} input"
        if isinstance(v, (tuple, list)) and any(isinstance(e, torch.Tensor) and e.requires_grad for e in v):
            return "a tensor requiring grad inside a tuple or list"
    return None


def torch_instead(who: str, func, inputs, grad_outputs, why: str, keywords: dict) -> None:
    """torch's own ``gradcheck`` or ``gradgradcheck``, with the keywords it
    takes, said at the call: the harness has no truth for this call."""
    __tracebackhide__ = True
    # Said at each call site: this call passes without a truth.
    warn_user(GradcheckWarning(f"harness.{who}: {why} is judged by torch.autograd.{who} (finite differences "
                               f"in float64 with its tolerances), not against a truth"))
    check = TORCH_CHECKS[who]
    given = {k: v for k, v in keywords.items() if v is not None}
    if "check_sparse_nnz" in given:   # torch's older name of masked
        given["masked"] = given.pop("check_sparse_nnz")
    takes = set(inspect.signature(check).parameters)
    say_ignored({k: v for k, v in given.items() if k not in takes and k not in _HARNESS_ONLY}, who)
    args = (func, inputs) if who == "gradcheck" else (func, inputs, grad_outputs)
    check(*args, **{k: v for k, v in given.items() if k in takes})


#: Keywords of the harness's calls that torch's never takes.
_HARNESS_ONLY = {"check_batched_forward_grad", "check_forward_ad", "check_backward_ad"}


def vjp_function(func, inputs: tuple, outputs: tuple, grad_outputs: tuple | None):
    """torch's gradgradcheck checks ``(inputs, grad_outputs) -> VJP``: its
    structural checks run on that function, as torch's do."""
    if grad_outputs is None:
        grad_outputs = tuple(torch.testing.make_tensor(o.shape, dtype=o.dtype, device=o.device, low=-1, high=1,
                                                       requires_grad=True) for o in judged_outputs(outputs))
    n = len(grad_outputs)
    free = [i for i, x in enumerate(inputs) if isinstance(x, torch.Tensor) and x.requires_grad]

    def vjp(*args):
        xs = [x.requires_grad_() if i in free else x for i, x in enumerate(args[:-n])]
        ys = [o for o in as_tuple(func(*xs)) if isinstance(o, torch.Tensor) and o.requires_grad]
        grads = torch.autograd.grad(ys, [xs[i] for i in free], args[-n:], create_graph=True, allow_unused=True)
        return tuple(g for g in grads if g is not None)
    return vjp, inputs + tuple(grad_outputs)


def structural(func, inputs: tuple, checks: dict) -> None:
    """torch's own structural checks (nothing numerical: a backward that
    ignores ``grad_output``, that fails on undefined output grads, that vmap
    cannot batch), run as ``torch.autograd.gradcheck`` runs them."""
    __tracebackhide__ = True
    outputs = tuple(o for o in as_tuple(func(*inputs)) if isinstance(o, torch.Tensor) and o.requires_grad)
    if checks["check_batched_forward_grad"]:
        _torch_check("_test_batched_grad_forward_ad", func, inputs)
    if checks["check_forward_ad"] and checks["check_undefined_grad"] and outputs:
        _torch_check("_test_undefined_forward_mode", func, outputs, inputs)
    if not checks["check_backward_ad"] or not outputs:
        return
    if checks["check_batched_grad"]:
        for i, o in enumerate(outputs):
            _torch_check("_test_batched_grad", inputs, o, i)
    if checks["check_grad_dtypes"]:
        _grad_dtypes(outputs, inputs)
    _torch_check("_test_backward_mul_by_grad_output", outputs, inputs, False)
    if checks["check_undefined_grad"]:
        _torch_check("_test_undefined_backward_mode", func, outputs, inputs)


def _torch_check(name: str, *args) -> None:
    __tracebackhide__ = True
    check = getattr(_torch_gradcheck, name, None)
    if check is None:
        say_once(f"missing {name}", f"harness.gradcheck: this torch has no {name}; that check is not run")
        return
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="There is a performance drop")
        _quiet_forward_mode()
        check(*args)


def _quiet_forward_mode() -> None:
    # torch 2.13 scripts its forward-mode decompositions on first use, with a
    # DeprecationWarning about torch.jit.script: torch's, not the user's code's.
    warnings.filterwarnings("ignore", message="`torch.jit.script` is deprecated", category=DeprecationWarning)


def _grad_dtypes(outputs: tuple, inputs: tuple) -> None:
    free = [x for x in inputs if isinstance(x, torch.Tensor) and x.requires_grad]
    grads = torch.autograd.grad(outputs, free, [torch.ones_like(o) for o in outputs], retain_graph=True,
                                allow_unused=True)
    for x, g in zip(free, grads):
        if g is not None and g.dtype != x.dtype:
            raise GradcheckError(f"Gradient has dtype mismatch: {g.dtype} for an input of {x.dtype}")


def reentrant(call, outputs: list, tolerance: float) -> None:
    """torch's reentrancy check with ``nondet_tol``: two backward calls on the
    same inputs and cotangent differ by at most ``tolerance``."""
    xs = [call.inputs[i] for i in call.free]
    for k in range(sum(o.requires_grad for o in outputs)):
        # A fresh graph per output: each pair of calls frees the one it ran on.
        y = [o for o in as_tuple(call.func(*call.inputs)) if isinstance(o, torch.Tensor) and o.requires_grad][k]
        g = torch.ones_like(y)
        first = torch.autograd.grad(y, xs, g, retain_graph=True, allow_unused=True)
        second = torch.autograd.grad(y, xs, g, allow_unused=True)
        for a, b in zip(first, second):
            if a is not None and b is not None and a.numel() and float((a - b).abs().max()) > tolerance:
                raise GradcheckError(f"Backward is not reentrant: two backward calls with the same inputs and "
                                     f"grad_output differ by more than nondet_tol={tolerance}")
