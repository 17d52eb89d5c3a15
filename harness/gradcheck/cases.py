"""From a ``gradcheck(func, inputs)`` call to the cases that judge it.

The floating tensors that require grad are the case's inputs, grouped by
dtype (each group is judged in its own dtype); everything else is held at its
given value inside the case's forward. One case per output that is judged:
its grid is the one given point, or, for the extremes, the elementwise grid
(``harness.grids``) or the structured patterns of the inputs' shapes. Those
patterns try rows of 1 and 2 entries too; a held input tied to that length
(a target of the logits' shape) is cut alike, or the rows the forward
refuses are left out and said (``rows_taken``).
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import math
import warnings
from dataclasses import dataclass
from typing import Any, Callable

import mpmath
import numpy as np
import torch

from ..case import Case
from ..claims.rounding_depth import depths
from ..inputs.domains import Domain, real
from ..inputs.patterns import lengths
from ..judging.tolerance import BUDGET
from ..truth.exact import exact

#: Positions perturbed one at a time to tell an elementwise function (each
#: output from the same-index inputs alone) from one that mixes its elements.
PROBES = 16
#: The elementwise test runs on at least this many elements, so that a
#: function of a single given element still shows a reduction (``x - x.mean()``).
PROBE_LENGTH = 8


@dataclass(frozen=True)
class Call:
    """``func(*inputs)``, split into the positions judged (``free``: the
    floating tensors that require grad) and what is held at its value.

    Example:
        >>> x = torch.ones(3, dtype=torch.float64, requires_grad=True)
        >>> Call.of(lambda x, k: x * k, (x, 2)).free
        (0,)
    """

    func: Callable
    inputs: tuple
    free: tuple[int, ...]
    names: tuple[str, ...]

    @classmethod
    def of(cls, func: Callable, inputs: tuple) -> Call:
        # An empty tensor has nothing to judge (torch's gradcheck passes it): held.
        free = tuple(i for i, v in enumerate(inputs) if isinstance(v, torch.Tensor) and v.requires_grad
                     and v.is_floating_point() and v.numel() > 0)
        return cls(func, inputs, free, _parameter_names(func, len(inputs)))

    @property
    def name(self) -> str:
        return _function_name(self.func)

    def groups(self) -> dict[torch.dtype, tuple[int, ...]]:
        """The free positions by dtype, in the order of the inputs."""
        out: dict[torch.dtype, tuple[int, ...]] = {}
        for i in self.free:
            out[self.inputs[i].dtype] = out.get(self.inputs[i].dtype, ()) + (i,)
        return out

    def args(self, positions: tuple[int, ...], values) -> list:
        """The inputs with ``values`` at ``positions``; the other tensors
        detached, so that only the case's own inputs collect gradients."""
        args = [v.detach() if isinstance(v, torch.Tensor) else v for v in self.inputs]
        for i, v in zip(positions, values):
            args[i] = v
        return args

    def point(self, positions: tuple[int, ...]) -> tuple[np.ndarray, ...]:
        return tuple(self.inputs[i].detach().to("cpu", torch.float64).numpy() for i in positions)


def _function_name(func) -> str:
    while isinstance(func, functools.partial):   # named after the function it binds
        func = func.func
    owner = getattr(func, "__self__", None)
    if isinstance(owner, type):   # MyFunction.apply
        return f"{owner.__name__}.{func.__name__}"
    return getattr(func, "__name__", None) or type(func).__name__


def _parameter_names(func, count: int) -> tuple[str, ...]:
    """Names of ``func``'s first ``count`` positional parameters (a Function's
    ``forward`` without ``ctx``), else the harness's ``x`` or ``x0``, ``x1``..."""
    owner = getattr(func, "__self__", None)
    target = owner.forward if isinstance(owner, type) and issubclass(owner, torch.autograd.Function) else func
    try:
        params = [p.name for p in inspect.signature(target).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        params = []
    if target is not func and params and params[0] == "ctx":
        params = params[1:]
    if len(params) >= count:
        return tuple(params[:count])
    return ("x",) if count == 1 else tuple(f"x{i}" for i in range(count))


def output_picker(output: int | None, cotangent: torch.Tensor | None = None) -> Callable:
    """``out -> out[output]`` (``None``: a single output), summed against a
    given ``cotangent`` when there is one (gradgradcheck's ``grad_outputs``:
    the VJP of the sum is ``J^T cotangent``)."""
    def pick(out):
        if output is not None:
            out = out[output]
        if cotangent is not None:
            out = (out * cotangent).sum()
        return out
    return pick


def body(call: Call, positions: tuple[int, ...], pick: Callable, tied: tuple[int, ...] = ()) -> Callable:
    """``func`` as a function of the inputs at ``positions`` alone, the
    others held at their values; the held tensors at ``tied`` cut along
    their last dimension to the length of the (one) judged input's rows."""
    given = call.inputs[positions[0]].shape[-1] if tied else None

    def of_free(*values):
        args = call.args(positions, values)
        if tied and values[0].shape[-1] != given:
            for i in tied:
                args[i] = args[i][..., :values[0].shape[-1]]
        return pick(call.func(*args))
    of_free.__name__ = of_free.__qualname__ = call.name
    return of_free


def in_dtype(fn: Callable, dtype: torch.dtype) -> Callable:
    """``fn`` with a floating output rounded to ``dtype``: with inputs of
    several dtypes, each group is judged in its own, and the output of a
    wider computation is what that group's dtype receives."""
    def forward(*values):
        y = fn(*values)
        if isinstance(y, torch.Tensor) and y.is_floating_point() and y.dtype != dtype:
            return y.to(dtype)
        return y
    forward.__name__ = forward.__qualname__ = getattr(fn, "__name__", "forward")
    return forward


# -- the truth -------------------------------------------------------------------------------------------------------
def mp_value(v):
    """A tensor as the reference reads it (an ``mpf`` or nested lists of
    them, exact); anything else as it is."""
    if not isinstance(v, torch.Tensor):
        return v
    a = v.detach().to("cpu", torch.float64).numpy()
    if a.ndim == 0:
        return mpmath.mpf(float(a))
    return np.frompyfunc(mpmath.mpf, 1, 1)(a).tolist()


def exact_truth(of_free: Callable, point: tuple[np.ndarray, ...]) -> tuple[Callable | None, str | None]:
    """``harness.exact`` of the body, or None and why ``exact`` cannot
    evaluate it (the op it lacks), found by evaluating it once at ``point``:
    a reference that raises only inside the truth engine would break the
    certification instead of falling back."""
    reference = exact(of_free)
    try:
        with mpmath.workprec(64):
            reference(*[mp_value(torch.from_numpy(np.asarray(a))) for a in point])
    except Exception as exc:   # anything exact cannot run is a reason to fall back, said with its cause
        text = str(exc).split(": write an mpmath reference")[0]
        return None, text if text.startswith("harness.exact") else f"harness.exact raised {type(exc).__name__}: {text}"
    return reference, None


def user_truth(reference: Callable, call: Call, positions: tuple[int, ...], output: int | None,
               cotangent: torch.Tensor | None = None, tied: tuple[int, ...] = ()) -> Callable:
    """``reference`` (taking ``func``'s arguments, tensors as ``mpf`` or
    nested lists; a tuple with several outputs) as a function of the inputs
    at ``positions``; ``tied``: as for ``body``."""
    held = [mp_value(v) for v in call.inputs]
    weights = None if cotangent is None else _flat(mp_value(cotangent))
    given = call.inputs[positions[0]].shape[-1] if tied else None

    def of_free(*values):
        args = list(held)
        for i, v in zip(positions, values):
            args[i] = v
        if tied and _row_length(values[0]) != given:
            for i in tied:
                args[i] = _cut(args[i], _row_length(values[0]))
        out = reference(*args)
        if output is not None:
            out = out[output]
        if weights is not None:
            out = mpmath.fsum(a * w for a, w in zip(_flat(out), weights))
        return out
    of_free.__name__ = of_free.__qualname__ = getattr(reference, "__name__", "reference")
    return of_free


def _flat(v) -> list:
    return [e for item in v for e in _flat(item)] if isinstance(v, (list, tuple)) else [v]


def _row_length(v) -> int | None:
    """The last dimension of nested lists (None for a number)."""
    n = None
    while isinstance(v, (list, tuple)):
        n, v = len(v), (v[0] if v else None)
    return n


def _cut(v, n: int):
    """Nested lists with their innermost lists cut to ``n`` entries."""
    if isinstance(v, (list, tuple)) and v and isinstance(v[0], (list, tuple)):
        return [_cut(item, n) for item in v]
    return list(v[:n])


# -- the cases -------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Judging:
    """What every case of a call judges, from the keywords."""

    order: int = 1
    modes: tuple[str, ...] = ("reverse",)
    backward_by_forward_mode: bool = False   # check_backward_ad=False: the VJP from JVPs
    domain: Any = None                       # a Domain, or one per input of func


def domains_of(judging: Judging, call: Call, positions: tuple[int, ...]) -> tuple[Domain, ...]:
    d = judging.domain
    if d is None:
        return (real(),) * len(positions)
    if isinstance(d, Domain):
        return (d,) * len(positions)
    d = tuple(d)
    if len(d) != len(call.inputs):
        raise ValueError(f"domain= has {len(d)} entries for {len(call.inputs)} inputs (one per input of func, "
                         f"or one Domain for all)")
    return tuple(d[i] or real() for i in positions)


def pipeline_budget(forward: Callable, point: tuple[np.ndarray, ...], dtype: torch.dtype) -> dict | None:
    """The table's budget, raised to one ULP per rounded step where ``forward``
    (run at ``point``) is a longer pipeline than one function
    (``claims.rounding_depth``); None where it is not, or cannot be run."""
    xs = [torch.tensor(p, dtype=dtype).requires_grad_() for p in point]
    try:
        d = depths(forward, xs)
    except Exception:   # the certification itself runs the forward and says why it fails
        return None
    table = BUDGET[dtype]
    value = max(table["value"], d.value)
    gradient = max(table["gradient"], d.gradient or 0)
    if value == table["value"] and gradient == table["gradient"]:
        return None
    return {"*": {"value": value, "gradient": gradient, "jvp": gradient, "hvp": gradient}}


def budget_said(budget: dict | None) -> list[str]:
    """What a report says of a budget ``pipeline_budget`` raised."""
    if not budget:
        return []
    b = budget["*"]
    return [f"budget: a pipeline, one ULP per rounded step: {b['value']:g} ULPs of a value, {b['gradient']:g} of a "
            f"gradient, times the condition number (docs/tolerance.md)"]


def point_case(name: str, forward: Callable, reference: Callable | None, point: tuple[np.ndarray, ...],
               names: tuple[str, ...], domains: tuple[Domain, ...], judging: Judging,
               budget: dict | None = None) -> Case:
    """The case whose grid is the given point."""
    return Case(name, forward, reference, grid=lambda dtype: [point], domain=domains, input_names=names,
                order=judging.order, modes=judging.modes, budget=budget,
                backward=vjp_by_forward_mode(forward, False) if judging.backward_by_forward_mode else None)


def extremes_case(name: str, forward: Callable, reference: Callable | None, shapes: tuple[tuple[int, ...], ...],
                  elementwise: bool, names: tuple[str, ...], domains: tuple[Domain, ...],
                  judging: Judging, rows: Rows | None = None, budget: dict | None = None) -> Case | None:
    """The case on the extreme grid of the inputs' shapes: elementwise, or
    the structured patterns of ``shapes`` (None where ``Case`` has none),
    without the shapes ``rows`` says the forward refuses."""
    backward = vjp_by_forward_mode(forward, elementwise) if judging.backward_by_forward_mode else None
    common = dict(domain=domains, input_names=names, order=judging.order, modes=judging.modes, backward=backward,
                  budget=budget)
    if elementwise:
        return Case(name, forward, reference, **common)
    if not structured_grids():
        return None
    relation = rows.relation() if rows is not None and rows.refused else None
    return Case(name, forward, reference, shape=shapes, relation=relation, **common)


# -- held inputs tied to a judged input's rows -----------------------------------------------------------------------
@dataclass(frozen=True)
class Rows:
    """How the structured grid's shorter rows (``patterns.lengths``: rows of
    1 and 2 entries of a single judged input) reach the forward: the held
    tensors at ``tied`` cut alike, and the ``refused`` shapes, with the
    forward's error, left out of the grid."""

    tied: tuple[int, ...] = ()
    refused: tuple[tuple[tuple[int, ...], str], ...] = ()

    def relation(self) -> Callable:
        refused = {shape for shape, _ in self.refused}

        def rows_the_forward_takes(*arrays):
            return tuple(np.shape(arrays[0])) not in refused
        return rows_the_forward_takes


def rows_taken(call: Call, positions: tuple[int, ...], pick: Callable, dtype: torch.dtype) -> Rows:
    """Probe the forward once per shorter row length, at the given input cut
    to it: with the held inputs as given; where that raises (a target of the
    logits' shape: ``Expected target size (2, 3, 1), got (2, 3, 2)``), with
    the held tensors whose last dimension is the judged input's cut alike.
    Whichever takes more of the lengths is kept (as given, on a tie); what
    neither takes is refused.

    Example:
        >>> x = torch.ones(2, 3, 4, dtype=torch.float64, requires_grad=True)
        >>> target = torch.zeros(2, 3, 4)
        >>> def loss(x, t):
        ...     if x.shape != t.shape:
        ...         raise ValueError("shapes differ")
        ...     return (x - t).square().mean()
        >>> rows_taken(Call.of(loss, (x, target)), (0,), output_picker(None), torch.float64)
        Rows(tied=(1,), refused=())
    """
    if len(positions) != 1:   # the grid varies the rows of a single judged input only
        return Rows()
    given = call.inputs[positions[0]].detach().to(dtype)
    shorter = lengths(tuple(given.shape))[1:]
    if not shorter:
        return Rows()
    tied = tuple(i for i, v in enumerate(call.inputs) if i != positions[0] and isinstance(v, torch.Tensor)
                 and v.dim() > 0 and v.shape[-1] == given.shape[-1])
    options = [()] + ([tied] if tied else [])
    found = []
    for option in options:
        of_free = body(call, positions, pick, option)
        refused = tuple((shape, why) for shape in shorter
                        if (why := _refusal(of_free, given[..., :shape[-1]])) is not None)
        found.append(Rows(option, refused))
        if not refused:
            break
    return min(found, key=lambda rows: len(rows.refused))


def _refusal(of_free: Callable, x: torch.Tensor) -> str | None:
    """None where the forward takes ``x``, else its error in a line."""
    try:
        with torch.no_grad():
            of_free(x)
    except Exception as exc:   # whatever the forward raises at a shape is its refusal of that shape
        return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}".rstrip(": ")
    return None


def structured_grids() -> bool:
    """Whether ``Case`` builds a structured extreme grid from ``shape=``."""
    return "shape" in {f.name for f in dataclasses.fields(Case)}


def vjp_by_forward_mode(forward: Callable, elementwise: bool) -> Callable:
    """A claimed VJP ``(inputs..., grad_out) -> grads`` made of forward-mode
    JVPs along unit tangents (all ones at once on an elementwise grid): what
    ``check_backward_ad=False`` judges, for code with a ``jvp`` and no backward."""
    def backward(*args):
        *xs, g = args
        grads = []
        for k, x in enumerate(xs):
            if elementwise:
                grads.append(_jvp(forward, xs, k, torch.ones_like(x)) * g)
                continue
            grad = torch.empty_like(x).reshape(-1)
            for i in range(x.numel()):
                unit = torch.zeros_like(x).reshape(-1)
                unit[i] = 1
                grad[i] = (_jvp(forward, xs, k, unit.reshape(x.shape)) * g).sum()
            grads.append(grad.reshape(x.shape))
        return tuple(grads)
    return backward


def _jvp(forward: Callable, xs: list, k: int, tangent: torch.Tensor) -> torch.Tensor:
    import torch.autograd.forward_ad as fwAD

    with warnings.catch_warnings(), fwAD.dual_level():
        # torch 2.13 scripts its forward-mode decompositions on first use, with a
        # DeprecationWarning about torch.jit.script: torch's, not the case's.
        warnings.filterwarnings("ignore", message="`torch.jit.script` is deprecated", category=DeprecationWarning)
        args = [fwAD.make_dual(x, tangent) if j == k else x for j, x in enumerate(xs)]
        y = forward(*args)
        t = fwAD.unpack_dual(y).tangent
        return torch.zeros_like(y) if t is None else t


# -- elementwise or not ----------------------------------------------------------------------------------------------
def is_elementwise(of_free: Callable, call: Call, positions: tuple[int, ...]) -> bool:
    """Whether the body acts element by element on its inputs, which the
    elementwise grid needs (it hands the forward one 1-D batch of grid points
    per input, and the reference one point at a time).

    Tested, not assumed: the inputs share the output's shape, the held
    tensors are single numbers, and on the flattened inputs (at least
    ``PROBE_LENGTH`` elements) moving one element changes no other output,
    bit for bit, at up to ``PROBES`` positions of each input.
    """
    tensors = [call.inputs[i].detach() for i in positions]
    shape = tensors[0].shape
    held = [v for i, v in enumerate(call.inputs) if i not in positions and isinstance(v, torch.Tensor)]
    if any(t.shape != shape for t in tensors) or any(v.numel() > 1 for v in held):
        return False
    try:
        with torch.no_grad():
            if of_free(*tensors).shape != shape:
                return False
            flat = [_long_enough(t.reshape(-1)) for t in tensors]
            base = of_free(*flat)
            if not isinstance(base, torch.Tensor) or base.shape != flat[0].shape:
                return False
            n = flat[0].numel()
            for k in range(len(flat)):
                for p in sorted({int(round(v)) for v in np.linspace(0, n - 1, min(n, PROBES))}):
                    moved = [f.clone() for f in flat]
                    moved[k][p] = 0.25 if float(moved[k][p]) == 0.5 else 0.5
                    out = of_free(*moved)
                    others = torch.ones(n, dtype=torch.bool, device=out.device)
                    others[p] = False
                    a, b = out[others], base[others]
                    if not bool(((a == b) | (torch.isnan(a) & torch.isnan(b))).all()):
                        return False
    except Exception:   # a body that cannot run on 1-D batches is not elementwise
        return False
    return True


def _long_enough(flat: torch.Tensor) -> torch.Tensor:
    if flat.numel() >= PROBE_LENGTH:
        return flat.clone()
    return flat.repeat(math.ceil(PROBE_LENGTH / max(flat.numel(), 1)))[:PROBE_LENGTH].clone()
