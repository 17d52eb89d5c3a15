"""A case: an implementation under test, its claimed backward and the truth."""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import torch

from .inputs.domains import Domain, real
from .errors import definition_site
from .judging.expectations import ExpectSpec, certified
from .inputs.structure import Structure, dense, elementwise

DTYPES = (torch.float64, torch.float32, torch.float16, torch.bfloat16)


@dataclass(frozen=True)
class Case:
    """One implementation to certify.

    Args:
        name: shown in test ids and reports.
        forward: torch tensors -> tensor. Elementwise cases get one 1-D tensor
            per input holding the whole grid; structured cases get one point.
        reference: the mathematical function in mpmath, no torch. Elementwise:
            one ``mpf`` per input -> ``mpf``. Structured: each input as a nested
            list of ``mpf`` (the tensor's shape) -> ``mpf`` or nested list. ``None``:
            only the finite-difference check runs.
        backward: the claimed VJP ``(inputs..., grad_out) -> grads`` (a tensor or a
            tuple, one per input). ``None``: autograd through ``forward``.
        domain: a ``harness.domains`` domain, or a tuple of them (one per input).
        shape: a structured case's input shape, ``(8,)``, or one per input,
            ``((4, 8), (4,))``: the default structured grid, built from named
            patterns along the last axis (``harness.inputs.patterns``). ``None`` and no
            ``grid``: an elementwise case.
        grid: structured cases: ``dtype -> list of points``, a point being a tuple
            of arrays (one per input), for what the patterns lack. ``None``: the
            patterns of ``shape``, or the elementwise extreme grid.
        relation: a predicate over the inputs, ``lambda x, y: x > y``, where the
            function is defined only where its inputs constrain each other: the
            grid, the finite-difference stencils and the search stay where it
            holds (an array answer must hold at every entry).
        structure: which outputs depend on which inputs, for the cost of finite
            differences (``harness.dense()`` by default for structured cases).
        expect: ``harness.certified()`` (default), ``harness.convicted(kinds...)``,
            or a mapping from dtype (or its name, ``"*"`` for the rest) to either.
        gradient_only: the value is not claimed (a surrogate loss whose gradient
            is claimed to be the function's); neither the value nor the
            finite differences of the forward are judged.
        dtypes: the dtypes this case runs in.
        input_names: names used in reports (default: ``forward``'s parameters).
        feature: ``point -> float`` locating a point in words for regions
            (default: the input, or the largest magnitude of a structured point).
        feature_name: what ``feature`` measures, e.g. ``"max|a|"``.
        budget: ULPs allowed at condition number 1, merged over the table in
            ``harness.judging.tolerance`` (e.g. ``{"float16": {"gradient": 16}}``); say why.
        underflow: ``"fail"`` or ``"report"``: whether a flush to zero below the
            smallest normal fails in every dtype (default: the dtype's policy in
            ``harness.judging.tolerance.BUDGET``, failing only in float16).
        indeterminate: ``"report"`` (default) or ``"finite"``: at ±inf inputs
            where the limit depends on the path there is no truth; "finite"
            fails a NaN or inf claim there (``harness.truth.limits``).
        order: 2 also judges the Hessian-vector product ``d/dx <grad, v>`` for a
            fixed exact tangent ``v``, by autograd through the claimed backward
            (double backward), against the truth's second derivatives and
            finite differences of the claimed gradient.
        modes: ``("reverse",)`` (default) or ``("reverse", "forward")``: forward
            also judges the JVP along ``v`` by forward-mode AD (a custom
            Function's ``jvp``); a Function without one is convicted of
            ``unsupported``, not crashed on.
        compile: also certify ``torch.compile(forward)`` (and a claimed
            backward, compiled), as items of their own (``[float32-cpu-compiled]``,
            ``harness.claims.execution``); a mapping of dtype names says in which dtypes
            (``{"float32": True}``, ``"*"`` for the others). ``--compile`` asks it
            of every case.

    Example:
        >>> import mpmath
        >>> case = Case("softplus", torch.nn.functional.softplus,
        ...             lambda x: mpmath.log1p(mpmath.exp(x)))
        >>> case.arity
        1
    """

    name: str
    forward: Callable[..., torch.Tensor]
    reference: Callable[..., Any] | None = None
    backward: Callable[..., Any] | None = None
    domain: Domain | tuple[Domain, ...] = field(default_factory=real)
    grid: Callable[[torch.dtype], Sequence[Any]] | None = None
    shape: tuple | None = None
    relation: Callable[..., Any] | None = None
    structure: Structure | None = None
    expect: ExpectSpec = field(default_factory=certified)
    gradient_only: bool = False
    dtypes: tuple[torch.dtype, ...] = DTYPES
    input_names: tuple[str, ...] | None = None
    feature: Callable[..., float] | None = None
    feature_name: str | None = None
    budget: Mapping | None = None
    underflow: str | None = None
    indeterminate: str | None = None
    order: int = 1
    modes: tuple[str, ...] = ("reverse",)
    compile: bool | Mapping[str, bool] = False
    #: ``(file, line, module)`` of the line that made this case: where the
    #: plugin's warnings about it point.
    defined_at: tuple[str, int, str] | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise TypeError("Case needs a non-empty name")
        if not callable(self.forward):
            raise TypeError(f"case {self.name!r}: forward must be callable")
        if self.reference is None and self.gradient_only:
            raise TypeError(f"case {self.name!r}: a gradient-only claim needs a reference to be judged against")
        if self.underflow not in (None, "fail", "report"):
            raise TypeError(f"case {self.name!r}: underflow={self.underflow!r}, expected 'fail' or 'report'")
        if self.indeterminate not in (None, "report", "finite"):
            raise TypeError(f"case {self.name!r}: indeterminate={self.indeterminate!r}, expected 'report' or 'finite'")
        if self.shape is not None:
            object.__setattr__(self, "shape", _shapes(self.shape, self.name))
            if self.grid is not None:
                raise TypeError(f"case {self.name!r}: shape= builds the grid; give shape= or grid=, not both")
        if self.relation is not None and not callable(self.relation):
            raise TypeError(f"case {self.name!r}: relation must be a predicate over the inputs")
        check_order(self.order, f"case {self.name!r}")
        check_modes(self.modes, f"case {self.name!r}")
        object.__setattr__(self, "modes", tuple(self.modes))
        object.__setattr__(self, "defined_at", definition_site())

    @property
    def elementwise(self) -> bool:
        return self.grid is None and self.shape is None

    @property
    def arity(self) -> int:
        """Inputs: one per shape or per domain in a tuple, else the number of
        required positional parameters of ``forward`` (or of ``reference``).
        (A hand-written grid's points say it for themselves.)"""
        if self.shape is not None:
            return len(self.shape)
        if isinstance(self.domain, tuple):
            return len(self.domain)
        return required_inputs(self.forward) or required_inputs(self.reference) or 1

    def names_for(self, arity: int) -> tuple[str, ...]:
        if self.input_names is not None:
            return tuple(self.input_names)
        try:
            params = [p.name for p in inspect.signature(self.forward).parameters.values()
                      if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        except (TypeError, ValueError):
            params = []
        if len(params) >= arity and not (arity == 1 and params[0] in ("input", "args")):
            return tuple(params[:arity])
        return ("x",) if arity == 1 else tuple(f"x{i}" for i in range(arity))

    def domains_for(self, arity: int) -> tuple[Domain, ...]:
        if isinstance(self.domain, tuple):
            if len(self.domain) != arity:
                raise ValueError(f"case {self.name!r}: {len(self.domain)} domains for {arity} inputs")
            return self.domain
        return (self.domain,) * arity

    def structure_or_default(self) -> Structure:
        if self.structure is not None:
            return self.structure
        return elementwise() if self.elementwise else dense()


def required_inputs(fn) -> int | None:
    """How many positional arguments ``fn`` needs, where its signature says
    (None for ``*args``, builtins without a signature, or no function).

    Example:
        >>> required_inputs(lambda x, y, scale=2.0: x), required_inputs(max)
        (2, None)
    """
    if fn is None:
        return None
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return None
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        return None
    required = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty]
    return len(required) or None


def _shapes(shape, name: str) -> tuple[tuple[int, ...], ...]:
    """``(8,)`` or ``((4, 8), (8,))`` as one shape per input."""
    def one(s):
        if isinstance(s, int) or not all(isinstance(d, int) and d >= 1 for d in s):
            raise TypeError(f"case {name!r}: shape={shape!r}: a shape is a tuple of positive ints, such as (8,)")
        return tuple(s)
    if isinstance(shape, (tuple, list)) and shape and all(isinstance(s, (tuple, list)) for s in shape):
        return tuple(one(s) for s in shape)
    return (one(shape),)


ORDERS = (1, 2)
MODES = ("reverse", "forward")


def check_order(order, who: str) -> None:
    if order not in ORDERS:
        raise TypeError(f"{who}: order={order!r}, expected 1 or 2")


def check_modes(modes, who: str) -> None:
    """The gradient (reverse mode) is what every certification judges; forward mode adds to it."""
    if isinstance(modes, str) or not set(modes) <= set(MODES) or "reverse" not in modes:
        raise TypeError(f"{who}: modes={modes!r}, expected ('reverse',) or ('reverse', 'forward')")
