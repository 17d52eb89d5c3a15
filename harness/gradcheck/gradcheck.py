"""``harness.gradcheck`` and ``harness.gradgradcheck``: torch's call and
contract, judged against the truth, in the inputs' own dtype, and at the
extremes of their shapes on request.

A call becomes cases (``harness/gradcheck/cases.py``) that ``certify``
judges; the verdict is ``True`` or a ``GradcheckError`` whose message is the
harness's reports. Inputs the harness does not judge (complex, sparse, tensors
inside containers) go to ``torch.autograd.gradcheck``, said at the call. What each of
torch's keywords means here: docs/gradcheck.md.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable

import torch

from . import cases
from . import tally
from . import torch_compat as torch_side
from ..truth.cache import TruthCache
from ..certify import certify
from ..errors import CaseError, format_point, warn_user
from .torch_compat import GradcheckError, GradcheckWarning
from ..judging.report import Failure, Report

__all__ = ["gradcheck", "gradgradcheck", "GradcheckError", "GradcheckWarning"]


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
              domain=None, grid_size: int | None = None, strict_truth: bool = False, **ignored) -> bool:
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
        strict_truth: raise ``GradcheckError`` where there is no truth to judge
            against, instead of judging by finite differences alone (or by
            ``torch.autograd.gradcheck``, for complex and sparse inputs),
            which is otherwise said in a warning at the call.

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
    inputs = torch_side.as_tuple(inputs)
    try:
        return _verdict(raise_exception, func, inputs, judging, allowance, checks, reference, extremes, grid_size,
                        dict(atol=atol, rtol=rtol, nondet_tol=nondet_tol, **checks), ignored, strict_truth)
    except torch_side.TorchGradcheckError as exc:
        raise exc.with_traceback(None)   # the traceback ends one frame below the user's call


def gradgradcheck(func: Callable, inputs, grad_outputs=None, *, atol: float | None = None,
                  rtol: float | None = None, raise_exception: bool = True, nondet_tol: float = 0.0,
                  check_undefined_grad: bool = True, check_grad_dtypes: bool = False,
                  check_batched_grad: bool = False, check_rev_over_rev: bool = True,
                  reference: Callable | None = None, extremes: bool | str = False, domain=None,
                  grid_size: int | None = None, strict_truth: bool = False, **ignored) -> bool:
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
    inputs = torch_side.as_tuple(inputs)
    try:
        return _verdict(raise_exception, func, inputs, judging, allowance, checks, reference, extremes, grid_size,
                        dict(atol=atol, rtol=rtol, nondet_tol=nondet_tol, **checks), ignored, strict_truth,
                        grad_outputs=None if grad_outputs is None else torch_side.as_tuple(grad_outputs))
    except torch_side.TorchGradcheckError as exc:
        raise exc.with_traceback(None)   # the traceback ends one frame below the user's call


gradcheck.GradcheckError = GradcheckError   # ``harness.gradcheck.GradcheckError``, as torch's module has it
gradgradcheck.GradcheckError = GradcheckError


def _verdict(raise_exception: bool, *args, **kwargs) -> bool:
    __tracebackhide__ = True
    try:
        _gradcheck(*args, **kwargs)
    except torch_side.TorchGradcheckError:   # ours, or torch's own structural checks'
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


def _gradcheck(func, inputs: tuple, judging: cases.Judging, allowance: _Allowance, checks: dict, reference,
               extremes, grid_size, keywords: dict, ignored: dict, strict_truth: bool,
               grad_outputs: tuple | None = None) -> None:
    __tracebackhide__ = True
    who = "gradgradcheck" if judging.order == 2 else "gradcheck"
    why_torch = torch_side.beyond_the_harness(inputs, grad_outputs)
    if why_torch:
        return _by_torch(who, func, inputs, grad_outputs, why_torch, dict(keywords, **ignored), strict_truth)
    if not any(isinstance(v, torch.Tensor) and v.requires_grad for v in inputs):
        raise ValueError("gradcheck expects at least one input tensor to require gradient, "
                         "but none of them have requires_grad=True.")
    call = cases.Call.of(func, inputs)
    raw = func(*inputs)
    outputs = torch_side.as_tuple(raw)
    judged = torch_side.judged_outputs(outputs)
    if not judged:
        raise TypeError(f"harness.gradcheck: {call.name} returned {type(raw).__name__}, not a floating tensor "
                        f"or a tuple holding one: nothing to judge")
    if any(o.is_complex() for o in judged):
        return _by_torch(who, func, inputs, grad_outputs, "a complex output", dict(keywords, **ignored),
                         strict_truth)
    torch_side.say_ignored(ignored, who)
    notes = _Notes(strict_truth)
    try:
        reports = [allowance.apply(r) for r in _reports(call, raw, judged, judging, reference, extremes, grid_size,
                                                        grad_outputs, notes)]
    finally:
        if notes.no_truth:
            tally.record(tally.DIFFERENCES, notes.no_truth[0])
        else:
            tally.record(tally.TRUTH)
    failed = [r for r in reports if not r.ok]
    if failed:
        raise GradcheckError(_message(call, failed, notes), failed)
    # torch's checks of how the code behaves, after the numbers: a missing jvp
    # is then a finding in a report ("unsupported"), not a bare exception.
    if allowance.nondet_tol > 0:
        torch_side.reentrant(call, judged, allowance.nondet_tol)
    if judging.order == 2:
        func, inputs = torch_side.vjp_function(func, inputs, outputs, grad_outputs)
    torch_side.structural(func, inputs, checks)


def _by_torch(who: str, func, inputs, grad_outputs, why: str, keywords: dict, strict_truth: bool) -> None:
    __tracebackhide__ = True
    tally.record(tally.TORCH, why)
    if strict_truth:
        raise GradcheckError(f"harness.{who}: {why} has no truth here (torch.autograd.{who} would judge it by "
                             f"finite differences alone), and strict_truth=True asks for one")
    torch_side.torch_instead(who, func, inputs, grad_outputs, why, keywords)


class _Notes(list):
    """A call's notes (printed under a failure), with the reasons some of
    its outputs have no truth."""

    def __init__(self, strict_truth: bool):
        super().__init__()
        self.strict_truth = strict_truth
        self.no_truth: list[str] = []

    def without_truth(self, name: str, why: str) -> None:
        """Judged by finite differences alone: said at the user's call (each
        call site, not once per process), or an error under ``strict_truth``."""
        __tracebackhide__ = True
        self.no_truth.append(why)
        if self.strict_truth:
            raise GradcheckError(f"harness.gradcheck: no truth for {name}: {why}; strict_truth=True does not "
                                 f"accept a verdict of finite differences alone (pass reference= an mpmath "
                                 f"function for a truth)")
        said = (f"no truth for {name}: {why}; judged against finite differences of its own forward only "
                f"(pass reference= an mpmath function for a truth)")
        self.append(said)
        warn_user(GradcheckWarning(f"harness.gradcheck: {said}"))


# -- the certifications ----------------------------------------------------------------------------------------------
def _reports(call: cases.Call, raw, judged: list, judging: cases.Judging, reference, extremes, grid_size,
             grad_outputs, notes: _Notes) -> list[Report]:
    """Certify each judged output in each dtype group: at the given point and,
    with ``extremes``, on the extreme grid."""
    cache = TruthCache(None)   # fn may close over tensors the cache's fingerprint cannot tell apart
    outputs = torch_side.as_tuple(raw)
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
            found = [(target.point_case(cotangent, judging, reference, notes), [])]
            if extremes:
                found += target.extremes_cases(judging, reference, extremes, notes)
            reports += [_noted(_certify(case, dtype, device, cache, grid_size), said + cases.budget_said(case.budget))
                        for case, said in found]
    return reports


def _noted(report: Report, said: list[str]) -> Report:
    """The report with what its certification alone has to say (what the extreme grid could not vary)."""
    return dataclasses.replace(report, notes=report.notes + said) if said else report


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

    def parts(self, cotangent, reference, notes: _Notes, tied: tuple[int, ...] = ()):
        """The body, the forward in the group's dtype, and the truth (None
        where ``exact`` cannot evaluate the body: said, and in the notes);
        ``tied``: held tensors cut with the judged input's rows (``cases.body``)."""
        of_free = cases.body(self.call, self.positions, cases.output_picker(self.output, cotangent), tied)
        forward = cases.in_dtype(of_free, self.dtype)
        if reference is not None:
            return of_free, forward, cases.user_truth(reference, self.call, self.positions, self.output, cotangent,
                                                      tied)
        truth, why = cases.exact_truth(of_free, self.call.point(self.positions))
        if truth is None:
            notes.without_truth(self.call.name, why)
        return of_free, forward, truth

    def point_case(self, cotangent, judging, reference, notes: _Notes):
        _, forward, truth = self.parts(cotangent, reference, notes)
        point = self.call.point(self.positions)
        return cases.point_case(self.name, forward, truth, point, self.names,
                                cases.domains_of(judging, self.call, self.positions), judging,
                                cases.pipeline_budget(forward, point, self.dtype))

    def extremes_cases(self, judging, reference, extremes, notes: _Notes) -> list:
        """The extreme grid of the inputs' shapes, with the harness's own
        cotangent (a grid has no given ``grad_outputs``), each case with what
        its report says besides (the rows it could not vary)."""
        if extremes not in (True, "elementwise", "structured"):
            raise ValueError(f"extremes={extremes!r}: expected True, 'elementwise' or 'structured'")
        pick = cases.output_picker(self.output)
        elementwise = extremes == "elementwise" or (
            extremes is True and cases.is_elementwise(cases.body(self.call, self.positions, pick), self.call,
                                                      self.positions))
        rows = cases.Rows() if elementwise else cases.rows_taken(self.call, self.positions, pick, self.dtype)
        _, forward, truth = self.parts(None, reference, notes, rows.tied)
        shapes = tuple(tuple(self.call.inputs[i].shape) for i in self.positions)
        budget = cases.pipeline_budget(forward, self.call.point(self.positions), self.dtype)
        case = cases.extremes_case(f"{self.name} extremes", forward, truth, shapes, elementwise, self.names,
                                   cases.domains_of(judging, self.call, self.positions), judging, rows, budget)
        if case is None:
            said = "extremes: this harness's Case has no structured grid (shape=); only the given point was judged"
            notes.append(said)
            torch_side.say_once("no structured grid", f"harness.gradcheck: {said}")
            return []
        return [(case, self.rows_said(rows))]

    def rows_said(self, rows: cases.Rows) -> list[str]:
        """What the extreme grid did with the held inputs tied to the judged
        input's rows; the rows it left out are also said at the call."""
        __tracebackhide__ = True
        if not (rows.tied or rows.refused):
            return []
        name, said = self.names[0], []   # rows are varied for a single judged input only
        held = lambda at: ", ".join(f"{self.call.names[i]} {tuple(self.call.inputs[i].shape)}" for i in at)
        if rows.tied:
            said.append(f"extremes: {held(rows.tied)} held, cut along the last dimension with {name}'s rows of "
                        f"1 and 2 entries")
        if rows.refused:
            others = [i for i, v in enumerate(self.call.inputs) if i not in self.positions
                      and isinstance(v, torch.Tensor) and v.dim() > 0]
            shapes = " and ".join(str(shape) for shape, _ in rows.refused)
            why = rows.refused[0][1]
            text = (f"extremes: {name} not varied to {shapes}: the forward refuses them beside "
                    f"{held(others) or 'the held inputs'} as given ({why}); the other patterns of {name} are judged")
            said.append(text)
            warn_user(GradcheckWarning(f"harness.gradcheck: {self.call.name}: {text}"))
        return said


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
