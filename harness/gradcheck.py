"""``harness.gradcheck`` and ``harness.gradgradcheck``: torch's call and
contract, judged against the truth, in the inputs' own dtype, and at the
extremes of their shapes on request.

A call becomes cases (``harness/gradcheck_cases.py``) that ``certify``
judges; the verdict is ``True`` or a ``GradcheckError`` whose message is the
harness's reports. Inputs the harness does not judge (complex, sparse, tensors
inside containers) go to ``torch.autograd.gradcheck``, said once. What each of
torch's keywords means here: docs/gradcheck.md.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import math
import warnings
from typing import Callable

import torch

from . import gradcheck_cases as cases
from .cache import TruthCache
from .certify import certify
from .errors import CaseError, format_point, warn_user
from .report import Failure, Report

_torch_gradcheck = importlib.import_module("torch.autograd.gradcheck")


class GradcheckError(_torch_gradcheck.GradcheckError):
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


def _say_once(key: str, message: str) -> None:
    if key not in _SAID:
        _SAID.add(key)
        warn_user(GradcheckWarning(message))


def _say_ignored(keywords: dict, who: str) -> None:
    for name in keywords:
        why = IGNORED.get(name, f"not a keyword of torch.autograd.{who}")
        _say_once(f"keyword {name}", f"harness.{who}: {name}= is ignored: {why}")


@dataclasses.dataclass(frozen=True)
class _Allowance:
    """What the verdict excuses on top of the harness's budget: ``atol`` and
    ``rtol`` (when given) for a number that is only a little off, and any
    change between two backward calls when ``nondet_tol`` > 0 (checked at the
    given inputs with that tolerance instead)."""

    atol: float | None = None
    rtol: float | None = None
    nondet_tol: float = 0.0

    def excuses(self, f: Failure) -> bool:
        left = set(f.kinds)
        if self.nondet_tol > 0:
            left.discard("non-deterministic")
        if (self.atol is not None or self.rtol is not None) and left <= {"lost-digits", "inconsistent"}:
            target = f.truth if not math.isnan(f.truth) else f.finite_difference
            if abs(f.claimed - target) <= (self.atol or 0.0) + (self.rtol or 0.0) * abs(target):
                left -= {"lost-digits", "inconsistent"}
        return not left

    def apply(self, report: Report) -> Report:
        kept = [f for f in report.failures if not self.excuses(f)]
        if len(kept) == len(report.failures):
            return report
        shown = {(f.quantity.split("[")[0], kind) for f in kept for kind in f.kinds}
        regions = [r for r in report.regions if (r.quantity, r.kind) in shown]
        note = (f"{len(report.failures) - len(kept)} failing entries excused by "
                f"atol={self.atol}, rtol={self.rtol}, nondet_tol={self.nondet_tol}")
        return dataclasses.replace(report, failures=kept, regions=regions, notes=report.notes + [note])


def gradcheck(func: Callable, inputs, *, atol: float | None = None, rtol: float | None = None,
              raise_exception: bool = True, nondet_tol: float = 0.0, check_undefined_grad: bool = True,
              check_grad_dtypes: bool = False, check_batched_grad: bool = False,
              check_batched_forward_grad: bool = False, check_forward_ad: bool = False,
              check_backward_ad: bool = True, reference: Callable | None = None, extremes: bool | str = False,
              domain=None, grid_size: int | None = None, **ignored) -> bool:
    """``torch.autograd.gradcheck``, judged against the truth.

    The value and the gradient (one VJP per output) of ``func`` at ``inputs``
    are judged by the harness's measure (bits, defect kinds, a budget scaled
    by the condition number) against ``harness.exact(func)``, in the inputs'
    own dtype. Torch's keywords keep their meaning where they have one
    (docs/gradcheck.md); the others are accepted and said once to be ignored.

    Args:
        func: tensors -> tensor or tuple of tensors, as for torch.
        inputs: a tensor or a tuple; the floating tensors that require grad
            are judged, everything else is held at its value.
        atol, rtol: when given, an entry off by at most ``atol + rtol * |truth|``
            passes although it exceeds the budget (a wrong sign, a NaN or a
            silent zero never does). Not given: the budget alone.
        raise_exception: raise ``GradcheckError`` on failure (else return False).
        nondet_tol: 0: two backward calls must give the same numbers; more:
            they may differ by that much at the given inputs.
        check_undefined_grad, check_batched_grad, check_batched_forward_grad,
            check_grad_dtypes: torch's own structural checks, run as torch runs them.
        check_forward_ad: also judge the JVP (forward-mode AD) against the truth.
        check_backward_ad: False: the gradient is taken by forward mode (a
            ``Function`` with a ``jvp`` and no backward).
        reference: the mathematics in mpmath, taking ``func``'s arguments
            (tensors as ``mpf`` or nested lists of them; a tuple for several
            outputs); default ``harness.exact(func)``.
        extremes: also certify ``func`` over the extreme grid of the inputs'
            shapes, the other inputs held: ``True`` detects an elementwise
            ``func``; ``"elementwise"`` or ``"structured"`` says which.
        domain: a ``harness.domains`` domain, or one per input of ``func``
            (where the extreme grid and the finite differences stay).
        grid_size: points per binade of the extreme grid.

    Returns:
        True when every judged quantity passes.

    Raises:
        GradcheckError: a failure, with ``raise_exception=True``; its message
            is the harness's report (regions in words, worst points).
        ValueError: no input requires grad.

    Example:
        >>> x = torch.tensor([0.5, -3.0, 20.0], requires_grad=True)   # float32, as it runs
        >>> gradcheck(torch.nn.functional.softplus, (x,))
        True
    """
    __tracebackhide__ = True
    _torch_flag_checks(check_forward_ad, check_backward_ad, check_batched_grad, check_batched_forward_grad)
    checks = dict(check_undefined_grad=check_undefined_grad, check_grad_dtypes=check_grad_dtypes,
                  check_batched_grad=check_batched_grad, check_batched_forward_grad=check_batched_forward_grad,
                  check_forward_ad=check_forward_ad, check_backward_ad=check_backward_ad)
    judging = cases.Judging(modes=("reverse", "forward") if check_forward_ad else ("reverse",),
                            backward_by_forward_mode=not check_backward_ad, domain=domain)
    allowance = _Allowance(atol, rtol, nondet_tol)
    run = lambda: _gradcheck(func, _as_tuple(inputs), judging, allowance, checks, reference, extremes,
                             grid_size, dict(atol=atol, rtol=rtol, nondet_tol=nondet_tol, **checks), ignored)
    return _verdict(run, raise_exception)


def gradgradcheck(func: Callable, inputs, grad_outputs=None, *, atol: float | None = None,
                  rtol: float | None = None, raise_exception: bool = True, nondet_tol: float = 0.0,
                  check_undefined_grad: bool = True, check_grad_dtypes: bool = False,
                  check_batched_grad: bool = False, check_rev_over_rev: bool = True,
                  reference: Callable | None = None, extremes: bool | str = False, domain=None,
                  grid_size: int | None = None, **ignored) -> bool:
    """``torch.autograd.gradgradcheck``, judged against the truth.

    Besides the value and the gradient, the Hessian-vector product
    ``d/dx <VJP, v>`` (double backward through ``func``'s backward, for a fixed
    exact tangent ``v``) is judged against the truth's second derivatives
    (``Case(order=2)``, docs/second_order.md). With ``grad_outputs`` the VJP
    is the one at those cotangents (the function judged is
    ``sum(func(x) * grad_outputs)``); without, the harness's own. The other
    arguments are ``gradcheck``'s.

    Example:
        >>> x = torch.tensor([0.5, -3.0], dtype=torch.float64, requires_grad=True)
        >>> gradgradcheck(torch.tanh, (x,))
        True
    """
    __tracebackhide__ = True
    if not check_rev_over_rev:
        ignored = dict(ignored, check_rev_over_rev=False)
    checks = dict(check_undefined_grad=check_undefined_grad, check_grad_dtypes=check_grad_dtypes,
                  check_batched_grad=check_batched_grad, check_batched_forward_grad=False,
                  check_forward_ad=False, check_backward_ad=True)
    judging = cases.Judging(order=2, domain=domain)
    allowance = _Allowance(atol, rtol, nondet_tol)
    inputs = _as_tuple(inputs)
    run = lambda: _gradcheck(func, inputs, judging, allowance, checks, reference, extremes, grid_size,
                             dict(atol=atol, rtol=rtol, nondet_tol=nondet_tol, **checks), ignored,
                             grad_outputs=_as_tuple(grad_outputs) if grad_outputs is not None else None)
    return _verdict(run, raise_exception)


gradcheck.GradcheckError = GradcheckError   # ``harness.gradcheck.GradcheckError``, as torch's module has it
gradgradcheck.GradcheckError = GradcheckError


def _verdict(run: Callable[[], None], raise_exception: bool) -> bool:
    __tracebackhide__ = True
    try:
        run()
    except _torch_gradcheck.GradcheckError:   # ours, or torch's own structural checks'
        if raise_exception:
            raise
        return False
    return True


def _torch_flag_checks(forward_ad: bool, backward_ad: bool, batched: bool, batched_forward: bool) -> None:
    """torch's own checks of its flags, with its messages: code that relies on them keeps working."""
    if not (forward_ad or backward_ad):
        raise AssertionError("Expected at least one of check_forward_ad or check_backward_ad to be True")
    if batched and not backward_ad:
        raise AssertionError("Setting check_batched_grad=True requires check_backward_ad to be True")
    if batched_forward and not forward_ad:
        raise AssertionError("Setting check_batched_forward_grad=True requires check_forward_ad to be True")


def _as_tuple(x) -> tuple:
    return tuple(x) if isinstance(x, (tuple, list)) else (x,)


# -- one call ---------------------------------------------------------------------------------------------------
def _gradcheck(func, inputs: tuple, judging: cases.Judging, allowance: _Allowance, checks: dict, reference,
               extremes, grid_size, keywords: dict, ignored: dict, grad_outputs: tuple | None = None) -> None:
    __tracebackhide__ = True
    who = "gradgradcheck" if judging.order == 2 else "gradcheck"
    why_torch = _beyond_the_harness(inputs, grad_outputs)
    if why_torch:
        return _torch_instead(who, func, inputs, grad_outputs, why_torch, dict(keywords, **ignored))
    if not any(isinstance(v, torch.Tensor) and v.requires_grad for v in inputs):
        raise ValueError("gradcheck expects at least one input tensor to require gradient, "
                         "but none of them have requires_grad=True.")
    call = cases.Call.of(func, inputs)
    raw = func(*inputs)
    outputs = _as_tuple(raw)
    judged = _judged_outputs(outputs)
    if not judged:
        raise TypeError(f"harness.gradcheck: {call.name} returned {type(raw).__name__}, not a floating tensor "
                        f"or a tuple holding one: nothing to judge")
    if any(o.is_complex() for o in judged):
        return _torch_instead(who, func, inputs, grad_outputs, "a complex output", dict(keywords, **ignored))
    _say_ignored(ignored, who)
    notes: list[str] = []
    reports = [allowance.apply(r) for r in _reports(call, raw, judged, judging, reference, extremes, grid_size,
                                                    grad_outputs, notes)]
    failed = [r for r in reports if not r.ok]
    if failed:
        raise GradcheckError(_message(call, failed, notes), failed)
    # torch's checks of how the code behaves, after the numbers: a missing jvp
    # is then a finding in a report ("unsupported"), not a bare exception.
    if allowance.nondet_tol > 0:
        _reentrant(call, judged, allowance.nondet_tol)
    if judging.order == 2:
        func, inputs = _vjp_function(func, inputs, outputs, grad_outputs)
    _structural(func, inputs, checks)


def _judged_outputs(outputs: tuple) -> list[torch.Tensor]:
    """The outputs that require grad, as torch's; where none does, every
    floating output (its gradient must then truly be zero)."""
    tensors = [o for o in outputs if isinstance(o, torch.Tensor) and (o.is_floating_point() or o.is_complex())]
    differentiable = [o for o in tensors if o.requires_grad]
    return differentiable or tensors


def _beyond_the_harness(inputs: tuple, grad_outputs: tuple | None) -> str | None:
    """Why torch's own gradcheck judges this call (None: the harness does)."""
    for v in inputs + (grad_outputs or ()):
        if isinstance(v, torch.Tensor) and v.is_complex():
            return "a complex input"
        if isinstance(v, torch.Tensor) and v.layout != torch.strided:
            return f"a {v.layout} input"
        if isinstance(v, (tuple, list)) and any(isinstance(e, torch.Tensor) and e.requires_grad for e in v):
            return "a tensor requiring grad inside a tuple or list"
    return None


def _torch_instead(who: str, func, inputs, grad_outputs, why: str, keywords: dict) -> None:
    """torch's own ``gradcheck`` or ``gradgradcheck``, with the keywords it
    takes, said once per reason: the harness has no truth for this call."""
    __tracebackhide__ = True
    _say_once(f"torch {why}", f"harness.{who}: {why} is judged by torch.autograd.{who} (finite differences "
                              f"in float64 with its tolerances), not against a truth")
    check = getattr(torch.autograd, who)
    given = {k: v for k, v in keywords.items() if v is not None}
    if "check_sparse_nnz" in given:   # torch's older name of masked
        given["masked"] = given.pop("check_sparse_nnz")
    takes = set(inspect.signature(check).parameters)
    _say_ignored({k: v for k, v in given.items() if k not in takes and k not in _HARNESS_ONLY}, who)
    args = (func, inputs) if who == "gradcheck" else (func, inputs, grad_outputs)
    check(*args, **{k: v for k, v in given.items() if k in takes})


#: Keywords of the harness's calls that torch's never takes.
_HARNESS_ONLY = {"check_batched_forward_grad", "check_forward_ad", "check_backward_ad"}


def _vjp_function(func, inputs: tuple, outputs: tuple, grad_outputs: tuple | None):
    """torch's gradgradcheck checks ``(inputs, grad_outputs) -> VJP``: its
    structural checks run on that function, as torch's do."""
    if grad_outputs is None:
        grad_outputs = tuple(torch.testing.make_tensor(o.shape, dtype=o.dtype, device=o.device, low=-1, high=1,
                                                       requires_grad=True) for o in _judged_outputs(outputs))
    n = len(grad_outputs)
    free = [i for i, x in enumerate(inputs) if isinstance(x, torch.Tensor) and x.requires_grad]

    def vjp(*args):
        xs = [x.requires_grad_() if i in free else x for i, x in enumerate(args[:-n])]
        ys = [o for o in _as_tuple(func(*xs)) if isinstance(o, torch.Tensor) and o.requires_grad]
        grads = torch.autograd.grad(ys, [xs[i] for i in free], args[-n:], create_graph=True, allow_unused=True)
        return tuple(g for g in grads if g is not None)
    return vjp, inputs + tuple(grad_outputs)


def _structural(func, inputs: tuple, checks: dict) -> None:
    """torch's own structural checks (nothing numerical: a backward that
    ignores ``grad_output``, that fails on undefined output grads, that vmap
    cannot batch), run as ``torch.autograd.gradcheck`` runs them."""
    __tracebackhide__ = True
    outputs = tuple(o for o in _as_tuple(func(*inputs)) if isinstance(o, torch.Tensor) and o.requires_grad)
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
        _say_once(f"missing {name}", f"harness.gradcheck: this torch has no {name}; that check is not run")
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


def _reentrant(call: cases.Call, outputs: list, tolerance: float) -> None:
    """torch's reentrancy check with ``nondet_tol``: two backward calls on the
    same inputs and cotangent differ by at most ``tolerance``."""
    xs = [call.inputs[i] for i in call.free]
    for k, y in enumerate(o for o in outputs if o.requires_grad):
        ys = [o for o in _as_tuple(call.func(*call.inputs)) if isinstance(o, torch.Tensor) and o.requires_grad]
        y = ys[k]
        g = torch.ones_like(y)
        first = torch.autograd.grad(y, xs, g, retain_graph=True, allow_unused=True)
        second = torch.autograd.grad(y, xs, g, allow_unused=True)
        for a, b in zip(first, second):
            if a is not None and b is not None and a.numel() and float((a - b).abs().max()) > tolerance:
                raise GradcheckError(f"Backward is not reentrant: two backward calls with the same inputs and "
                                     f"grad_output differ by more than nondet_tol={tolerance}")


# -- the certifications ----------------------------------------------------------------------------------------------
def _reports(call: cases.Call, raw, judged: list, judging: cases.Judging, reference, extremes, grid_size,
             grad_outputs, notes: list[str]) -> list[Report]:
    """Certify each judged output in each dtype group: at the given point and,
    with ``extremes``, on the extreme grid."""
    cache = TruthCache(None)   # fn may close over tensors the cache's fingerprint cannot tell apart
    outputs = _as_tuple(raw)
    several = isinstance(raw, (tuple, list))
    cotangents = _cotangents(judged, grad_outputs)
    reports = []
    for dtype, positions in call.groups().items():
        device = str(call.inputs[positions[0]].device)
        for y, cotangent in zip(judged, cotangents):
            if y.numel() == 0:   # nothing to judge, as for torch
                continue
            output = next(k for k, o in enumerate(outputs) if o is y) if several else None
            name = f"gradcheck({call.name})" + (f" output {output}" if output is not None else "")
            target = _Target(call, positions, dtype, output, name)
            found = [target.point_case(cotangent, judging, reference, notes)]
            if extremes:
                found += target.extremes_cases(judging, reference, extremes, notes)
            reports += [_certify(case, dtype, device, cache, grid_size) for case in found]
    return reports


def _cotangents(judged: list, grad_outputs: tuple | None) -> list:
    if grad_outputs is None:
        return [None] * len(judged)
    if len(grad_outputs) != len(judged):
        raise ValueError(f"{len(grad_outputs)} grad_outputs for {len(judged)} differentiable outputs")
    return [None if g is None else g.detach() for g in grad_outputs]


@dataclasses.dataclass(frozen=True)
class _Target:
    """One output of ``func`` as a function of one dtype group's inputs."""

    call: cases.Call
    positions: tuple[int, ...]
    dtype: torch.dtype
    output: int | None
    name: str

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.call.names[i] for i in self.positions)

    def parts(self, cotangent, reference, notes: list[str]):
        """The body, the forward in the group's dtype, and the truth (None
        where ``exact`` cannot evaluate the body: said, and in the notes)."""
        of_free = cases.body(self.call, self.positions, cases.output_picker(self.output, cotangent))
        forward = cases.in_dtype(of_free, self.dtype)
        if reference is not None:
            return of_free, forward, cases.user_truth(reference, self.call, self.positions, self.output, cotangent)
        truth, why = cases.exact_truth(of_free, self.call.point(self.positions))
        if truth is None:
            said = (f"no truth for {self.call.name}: {why}; judged against finite differences of its own "
                    f"forward only (pass reference= an mpmath function for a truth)")
            notes.append(said)
            _say_once(f"fallback {self.call.name} {why}", f"harness.gradcheck: {said}")
        return of_free, forward, truth

    def point_case(self, cotangent, judging, reference, notes: list[str]):
        _, forward, truth = self.parts(cotangent, reference, notes)
        return cases.point_case(self.name, forward, truth, self.call.point(self.positions), self.names,
                                cases.domains_of(judging, self.call, self.positions), judging)

    def extremes_cases(self, judging, reference, extremes, notes: list[str]) -> list:
        """The extreme grid of the inputs' shapes, with the harness's own
        cotangent (a grid has no given ``grad_outputs``)."""
        if extremes not in (True, "elementwise", "structured"):
            raise ValueError(f"extremes={extremes!r}: expected True, 'elementwise' or 'structured'")
        of_free, forward, truth = self.parts(None, reference, notes)
        elementwise = extremes == "elementwise" or (
            extremes is True and cases.is_elementwise(of_free, self.call, self.positions))
        shapes = tuple(tuple(self.call.inputs[i].shape) for i in self.positions)
        case = cases.extremes_case(f"{self.name} extremes", forward, truth, shapes, elementwise, self.names,
                                   cases.domains_of(judging, self.call, self.positions), judging)
        if case is None:
            said = "extremes: this harness's Case has no structured grid (shape=); only the given point was judged"
            notes.append(said)
            _say_once("no structured grid", f"harness.gradcheck: {said}")
            return []
        return [case]


def _certify(case, dtype, device, cache, grid_size) -> Report:
    __tracebackhide__ = True
    try:
        return certify(case, dtype, device, grid_size=grid_size, cache=cache)
    except CaseError as err:
        where = f" at {format_point(err.point)}" if err.point is not None else ""
        hint = (DOMAIN_HINT if case.grid is None or case.name.endswith(" extremes") else " (func is not real at "
                "the given inputs)") if _outside(err.cause) else ""
        raise GradcheckError(f"harness.gradcheck could not judge {case.name}{where}: {err.cause}{hint}") from err


#: What a truth that is not a real number on the extreme grid usually means.
DOMAIN_HINT = ("; func is not real there: pass domain= where it is defined (e.g. harness.domains.positive(), "
               "or one domain per input)")


def _outside(cause: str) -> bool:
    return "complex" in cause or "reference is NaN" in cause


def _message(call: cases.Call, failed: list[Report], notes: list[str]) -> str:
    lines = [f"harness.gradcheck: {call.name} failed ({len(failed)} of its certifications)"]
    for report in failed:
        lines += ["", str(report)]
    lines += [f"note: {n}" for n in dict.fromkeys(notes)]
    return "\n".join(lines)
