"""certify(): grid -> claimed -> truth -> finite differences -> verdict -> report."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import inspect
import math
import time
import warnings
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from .inputs import grids, patterns
from .claims.batched_claims import claim_all, identity_of
from .truth.cache import TruthCache, fingerprint, point_key, point_key_prefix
from .case import Case, check_modes, check_order, required_inputs
from .truth.directional import Directional
from .errors import CaseError, warn_user
from .judging.expectations import expectation_for
from .claims.finite_differences import vjp_estimate
from .inputs.floats import Format, bits_of_error, fmt, ulps_between
from .judging.kinds import CODE, KIND_NAMES
from .judging.report import Failure, Measures, Report, boxes, regions
from .inputs.structure import dense, elementwise
from .judging.tolerance import allowed_at_zero, allowed_ulps, base_ulps, underflow_policy
from .truth.mpmath_engine import ReferenceFailure
from .truth.ball import solve_tasks
from .truth.pool import PointFailure, Task, default_workers, solve_all, unwind_on_sigterm
from .truth.table import TruthTable, encode
from .judging.verdict import against_finite_differences, against_truth, meets

_MEMORY_CACHE = TruthCache(None)


@dataclass
class _Sample:
    """Inputs handed to one forward call (the whole grid, for an elementwise case)."""

    arrays: tuple[np.ndarray, ...]
    output: np.ndarray | None = None
    grads: tuple[np.ndarray, ...] | None = None
    cotangent: np.ndarray | None = None
    unstable: tuple[np.ndarray, ...] | None = None   # gradient entries a second backward call changed
    tangent: tuple[np.ndarray, ...] | None = None    # v of the JVP and the Hessian-vector product
    jvp: np.ndarray | None = None
    hvp: tuple[np.ndarray, ...] | None = None
    unsupported: dict | None = None                  # quantity -> why it could not be computed
    pattern: patterns.Point | None = None            # what made a default structured grid's point


@dataclass(frozen=True)
class _Options:
    """How ``certify`` runs (not what it judges)."""

    grid_size: int | None = None
    cache: TruthCache | None = None
    workers: int | None = None
    executor: Executor | None = None
    progress: Callable[[str], None] | None = None
    exhaustive: bool = False
    underflow: str | None = None     # "fail" or "report" in every case and dtype of the run
    order: int | None = None         # over every case's own
    modes: tuple[str, ...] | None = None

    def __post_init__(self):
        if self.order is not None:
            check_order(self.order, "certify")
        if self.modes is not None:
            check_modes(self.modes, "certify")
            object.__setattr__(self, "modes", tuple(self.modes))

    def order_of(self, case: Case) -> int:
        return self.order or case.order

    def forward_mode(self, case: Case) -> bool:
        return "forward" in (self.modes or case.modes)


def certify(case: Case, dtype: torch.dtype = torch.float32, device: str = "cpu",
            grid_size: int | None = None, cache: TruthCache | None = None,
            workers: int | None = None, *, exhaustive: bool = False, executor: Executor | None = None,
            progress: Callable[[str], None] | None = None, underflow: str | None = None,
            order: int | None = None, modes: tuple[str, ...] | None = None) -> Report:
    """Judge ``case`` in ``dtype`` on ``device`` over its extreme grid.

    Raises ``CaseError`` (naming the case, the point and the cause) when the
    case itself is broken; numerical defects are failures in the report.

    Args:
        grid_size: points per binade (default ``grids.DEFAULT_SIZE``).
        cache: where truths are kept between runs (default: this process's memory).
        workers: processes of the local truth pool (default: the usable cores).
        exhaustive: float16 and bfloat16, elementwise one-input cases: every
            value of the format instead of the grid.
        executor: a ``concurrent.futures.Executor`` (e.g. a Dask client's) that
            computes the truths instead of the local pool.
        progress: called with a line of text as truths arrive on long runs.
        underflow: ``"fail"`` or ``"report"``: whether a flush to zero fails,
            over the case's and the dtype's policy (``harness.judging.tolerance``).
        order, modes: over the case's own (``Case.order``, ``Case.modes``).

    Example:
        >>> import mpmath
        >>> case = Case("softplus", torch.nn.functional.softplus,
        ...             lambda x: mpmath.log1p(mpmath.exp(x)))
        >>> certify(case, torch.float64, grid_size=1).ok
        True
    """
    with one_thread():
        return _certify(case, dtype, device, _Options(grid_size, cache, workers, executor, progress, exhaustive,
                                                          underflow, order, modes))


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


def certify_many(jobs: list[tuple[Case, torch.dtype, str]], **options) -> list[Report | CaseError]:
    """``certify`` of many (case, dtype, device) at once: every missing truth of
    every job in one pool, so both cores stay busy and a point shared by
    several jobs is computed once. A broken job gives its ``CaseError`` in its
    place; the others are judged. ``options`` are ``certify``'s keywords."""
    opts = _Options(**options)
    with one_thread():
        prepared = prepare_all(jobs, opts)
        return [p if isinstance(p, CaseError) else _finish_or_error(p) for p in prepared]


def _finish_or_error(p: Prepared) -> Report | CaseError:
    try:
        return finish(p, {})
    except CaseError as err:
        return err


def prepare_all(jobs: list[tuple[Case, torch.dtype, str]], options: _Options) -> list[Prepared | CaseError]:
    """Each job prepared, and the truths all of them miss computed and cached."""
    prepared: list = []
    for case, dtype, device in jobs:
        try:
            prepared.append(prepare(case, dtype, device, options))
        except CaseError as err:
            prepared.append(err)
    ready = [p for p in prepared if isinstance(p, Prepared)]
    broken = solve_prepared(ready, options)
    position = {id(p): k for k, p in enumerate(ready)}
    return [broken.get(position[id(p)], p) if isinstance(p, Prepared) else p for p in prepared]


def _certify(case, dtype, device, options: _Options) -> Report:
    prepared = prepare(case, dtype, device, options)
    stats = _solve(case, list(prepared.todo.items()), options)
    return finish(prepared, stats)


@dataclass
class Prepared:
    """A certification up to its truths: the grid, the claimed results, the
    units and their cache keys, and the truths still missing (``todo``)."""

    case: Case
    dtype: torch.dtype
    device: str
    options: _Options
    samples: list
    domains: tuple
    names: tuple
    units: list
    keys: list[str] | None
    todo: dict
    keys2: list[str] | None          # the directional truths (JVP, Hessian-vector product), if judged
    started: float
    notes: list[str]
    claims: str = "one by one"       # how the forward and backward were called (``batched_claims``)
    batch_mode: str | None = None    # ... and as which batch, where one stood in for every point


def prepare(case: Case, dtype: torch.dtype, device: str, options: _Options) -> Prepared:
    """Everything before the truths. Raises ``CaseError`` for a broken case."""
    started = time.perf_counter()
    samples, domains, names, notes = _grid(case, dtype, options)
    order, forward = options.order_of(case), options.forward_mode(case)
    cache = options.cache or _MEMORY_CACHE
    one = lambda sample: _claimed(case, sample, dtype, device)   # noqa: E731
    claims, batch_mode = "one by one", None
    if case.elementwise or getattr(case.forward, "harness_compiled", False):
        for sample in samples:
            one(sample)
    else:
        batches = {"broadcast": lambda arrays, rows: _call(case, arrays, dtype, device, rows),
                   "vmap": lambda arrays, rows: _call(_vmapped(case), arrays, dtype, device, rows)}
        claims, batch_mode = claim_all(samples, one, batches, identity_of(case, dtype, device), cache)
    if order == 2 or forward:
        for sample in samples:
            _claimed_further(case, sample, domains, dtype, device, order, forward)
    units = _Units(case, samples)
    keys, todo = _missing(case, units, domains, cache)
    keys2 = None
    if order == 2 or forward:
        keys2, more = _missing(case, units, domains, cache, keys)
        todo.update(more)
    return Prepared(case, dtype, device, options, samples, domains, names, units, keys, todo, keys2, started, notes,
                    claims, batch_mode)


def finish(p: Prepared, truth_stats: dict) -> Report:
    """Judge a prepared certification once its truths are in the cache."""
    case, f = p.case, fmt(p.dtype)
    report = Report(case.name, f.name, str(p.device), feature_name=_feature_name(case, p.names))
    # What an exhaustive sweep covers leads the summary: it makes the verdict a proof.
    report.coverage = next((n for n in p.notes if n.startswith("exhaustive") and "not applicable" not in n), None)
    report.notes += [n for n in p.notes if n != report.coverage]
    cache = p.options.cache or _MEMORY_CACHE
    table = _table(p.keys, p.units, cache)
    further = p.options.order_of(case) == 2 or p.options.forward_mode(case)
    table2 = _table(p.keys2, p.units, cache) if further else None
    estimates = {}
    if not case.gradient_only:
        estimates["gradient"] = _Estimates(case, p.samples, p.dtype, p.device, f, p.domains,
                                           functools.partial(_finite_differences, batched=p.batch_mode))
    if p.options.order_of(case) == 2:
        estimates["hvp"] = _Estimates(case, p.samples, p.dtype, p.device, f, p.domains, _gradient_differences)
    policy = underflow_policy(p.dtype, case.underflow, p.options.underflow, case.budget)
    _judge(case, report, p.units, (table, table2), estimates, p.samples, p.dtype, f, p.names, policy,
           p.options.order_of(case), p.options.forward_mode(case))
    report.notes += list(dict.fromkeys(f"{q}: {why}" for sample in p.samples
                                       for q, why in (sample.unsupported or {}).items()))
    report.stats.update(truth_stats)
    report.stats.update(points=len(p.units), claims=p.claims, fd_forward_calls=sum(e.calls for e in estimates.values()),
                        seconds=time.perf_counter() - p.started)
    return report


def check(case: Case, report: Report, dtype: torch.dtype, compiled: bool = False) -> str | None:
    """None when the report meets the case's expectation for ``dtype`` (compiled or
    not, ``expectations.expectation_for``), else why not."""
    expectation = expectation_for(case.expect, dtype, compiled)
    return meets(expectation, report.ok, report.kinds, [fl.feature for fl in report.failures])


# -- grid ----------------------------------------------------------------------------------
def _grid(case: Case, dtype: torch.dtype, options: _Options):
    size = options.grid_size or grids.DEFAULT_SIZE
    why = _not_exhaustive(case, dtype) if options.exhaustive else None
    notes = [f"exhaustive: not applicable ({why}); judged on the grid"] if why else []
    if case.elementwise:
        domains = case.domains_for(case.arity)
        if options.exhaustive and not why:
            arrays = (grids.every(dtype, domains[0]),)
            notes.insert(0, grids.every_in_words(dtype, domains[0]))
        elif case.arity == 1:
            arrays = (grids.extreme(dtype, domains[0], size),)
        else:
            pts = grids.product(dtype, domains, size)
            if case.relation is not None:
                with np.errstate(invalid="ignore", over="ignore"):
                    pts = pts[np.broadcast_to(np.asarray(case.relation(*pts.T), dtype=bool), len(pts))]
                if not len(pts):
                    raise CaseError(case.name, f"no point of the grid satisfies the relation {_name_of(case.relation)}")
            arrays = tuple(pts[:, k].copy() for k in range(case.arity))
        return [_Sample(arrays)], domains, case.names_for(case.arity), notes
    if case.grid is None:   # the patterns of the case's shapes
        domains = case.domains_for(case.arity)
        points = patterns.structured_grid(case.shape, dtype, domains, case.relation)
        if not points:
            raise CaseError(case.name, f"no point of the default grid satisfies the relation {_name_of(case.relation)}")
        return [_Sample(p.arrays, pattern=p) for p in points], domains, case.names_for(case.arity), notes
    try:
        raw = list(case.grid(dtype))
    except Exception as exc:
        raise CaseError(case.name, f"grid raised {type(exc).__name__}: {exc}") from exc
    if not raw:
        raise CaseError(case.name, "grid is empty")
    samples = []
    arity = None
    for point in raw:
        arrays = tuple(point) if isinstance(point, (tuple, list)) else (point,)
        arrays = tuple(torch.from_numpy(np.array(a, dtype=np.float64)).to(dtype).double().numpy() for a in arrays)
        if arity is None:
            arity = len(arrays)
        elif len(arrays) != arity:
            raise CaseError(case.name, f"grid points have {arity} and {len(arrays)} inputs", point)
        if case.relation is not None and not patterns.holds(case.relation, arrays):
            raise CaseError(case.name, f"grid holds a point where the relation {_name_of(case.relation)} "
                                       f"does not hold", arrays)
        samples.append(_Sample(arrays))
    domains = case.domains_for(arity)
    for sample in samples:
        for a, d in zip(sample.arrays, domains):
            nan_allowed = d.lo is None and d.hi is None and not d.discrete
            values = np.ravel(a)
            bad = values[~(d.contains_many(values) | (np.isnan(values) & nan_allowed))]
            if bad.size:
                cause = "NaN" if math.isnan(bad[0]) else f"{bad[0]:.6g}"
                raise CaseError(case.name, f"grid holds {cause}, which the domain {d} forbids", sample.arrays)
    return samples, domains, case.names_for(arity), notes


def _name_of(relation) -> str:
    """A relation in words for an error: its source line where there is one."""
    try:
        return inspect.getsource(relation).strip().rstrip(",")
    except (OSError, TypeError):
        return getattr(relation, "__name__", repr(relation))


def _not_exhaustive(case: Case, dtype: torch.dtype) -> str | None:
    """Why ``case`` in ``dtype`` cannot be judged on every input (None: it can)."""
    if dtype not in (torch.float16, torch.bfloat16):
        return f"{fmt(dtype).name} has {2 ** fmt(dtype).width:,} inputs; only 16-bit formats are swept"
    if not case.elementwise:
        return "a structured case: its inputs are tensors, not one number"
    if case.arity > 1:
        return f"{case.arity} inputs: {65536 ** case.arity:,} tuples"
    return None


def _feature_name(case: Case, names) -> str:
    if case.feature_name:
        return case.feature_name
    if case.elementwise and len(names) == 1:
        return names[0]
    return "max|" + ",".join(names) + "|"


def _feature(case: Case, point: tuple[np.ndarray, ...]) -> float:
    if case.feature is not None:
        try:
            return float(case.feature(*point))
        except Exception as exc:
            raise CaseError(case.name, f"feature raised {type(exc).__name__}: {exc}", point) from exc
    if len(point) == 1 and np.ndim(point[0]) == 0:
        return float(point[0])
    finite = [np.abs(a[np.isfinite(a)]).max(initial=0.0) for a in map(np.asarray, point)]
    return float(max(finite))


# -- claimed ---------------------------------------------------------------------------------
def _cotangent(shape: tuple[int, ...]) -> np.ndarray:
    """A fixed positive cotangent for vector outputs: multiples of 1/8 in
    [0.5, 2), exact in every dtype, so the VJP mixes outputs without
    cancelling them."""
    if shape == ():
        return np.array(1.0)
    rng = np.random.default_rng([len(shape), *shape])
    return rng.integers(4, 16, size=shape) / 8.0


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


def _tangents(case: Case, shapes, domains) -> tuple[np.ndarray, ...]:
    """The fixed tangent ``v``, one array per input: 1 on an elementwise grid
    (the JVP is then ``f'``, the Hessian-vector product ``f''``), multiples
    of 1/8 in [0.5, 2) for a structured point's arrays (a mix of directions,
    exact in every dtype, another draw than the cotangent's), 0 along a label."""
    out = []
    for shape, d in zip(shapes, domains):
        if d.discrete or case.elementwise or shape == ():
            out.append(np.full(shape, 0.0 if d.discrete else 1.0))
        else:
            out.append(np.random.default_rng([len(shape), *shape, 2]).integers(4, 16, size=shape) / 8.0)
    return tuple(out)


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


# -- truth -------------------------------------------------------------------------------------
@dataclass
class _Unit:
    """One truth computation: a point (tuple of arrays), its cotangent, where its
    outputs and gradients sit in the samples."""

    point: tuple[np.ndarray, ...]
    cotangent: np.ndarray
    out_shape: tuple[int, ...]
    sample: int
    index: int | None  # element of an elementwise sample


class _Units:
    """The truth computations of a certification: one per grid point of an
    elementwise case (kept as the grid's arrays: a 16-bit sweep has 65,536),
    one per point of a structured case. Indexing gives a ``_Unit``."""

    def __init__(self, case: Case, samples: list[_Sample]):
        self.elementwise = case.elementwise
        if self.elementwise:
            (s,) = samples
            self.arrays = s.arrays
            self.stacked = np.stack([np.asarray(a, dtype=np.float64) for a in s.arrays], axis=1)
            self.list = None
        else:
            self.list = [_Unit(s.arrays, s.cotangent, s.output.shape, k, None) for k, s in enumerate(samples)]

    def __len__(self) -> int:
        return self.stacked.shape[0] if self.elementwise else len(self.list)

    def __getitem__(self, j: int) -> _Unit:
        if self.list is not None:
            return self.list[j]
        return _Unit(tuple(np.array(v) for v in self.stacked[j]), np.array(1.0), (), 0, j)

    def __iter__(self):
        return (self[j] for j in range(len(self)))

    def sizes(self) -> list[tuple[int, int]]:
        """(values, VJP entries) of each unit's truth."""
        if self.elementwise:
            return [(1, self.stacked.shape[1])] * len(self)
        return [(int(np.prod(u.out_shape)) if u.out_shape else 1, sum(int(np.size(a)) for a in u.point))
                for u in self.list]

    def nan(self) -> np.ndarray:
        """Units with a NaN input: no truth, a value that must be NaN."""
        if self.elementwise:
            return np.isnan(self.stacked).any(axis=1)
        return np.array([any(np.isnan(a).any() for a in u.point) for u in self.list], dtype=bool)

    def points(self):
        """Each unit's input as reports name it (floats, or a structured point's
        arrays), indexable by unit: an elementwise grid's are made when read."""
        if self.elementwise:
            return _Rows(self.stacked)
        return [u.point for u in self.list]

    def keys(self, ref_print: str) -> list[str]:
        """``point_key`` of every unit; an elementwise grid's share one prefix."""
        if not self.elementwise:
            return [point_key(ref_print, tuple(np.shape(a) for a in u.point), u.cotangent, u.point)
                    for u in self.list]
        arity = self.stacked.shape[1]
        prefix = point_key_prefix(ref_print, ((),) * arity, np.array(1.0))
        rows = np.ascontiguousarray(self.stacked).tobytes()
        width = 8 * arity
        keys = []
        for start in range(0, len(rows), width):
            h = prefix.copy()
            h.update(rows[start:start + width])
            keys.append(h.hexdigest())
        return keys


class _Rows:
    """Row ``u`` of a 2-D float array as a tuple of floats, made when read."""

    def __init__(self, stacked: np.ndarray):
        self.stacked = stacked

    def __getitem__(self, u: int) -> tuple:
        return tuple(self.stacked[u].tolist())


def _nest(flat: list, shape: tuple[int, ...]):
    if not shape:
        return flat[0]
    step = len(flat) // shape[0]
    return [_nest(flat[i * step:(i + 1) * step], shape[1:]) for i in range(shape[0])]


def _flatten(out) -> list:
    if isinstance(out, (list, tuple)):
        return [v for item in out for v in _flatten(item)]
    if isinstance(out, np.ndarray):
        return [v for item in out.tolist() for v in _flatten(item)] if out.ndim else [out.item()]
    return [out]


def _flat_reference(case: Case, shapes: tuple[tuple[int, ...], ...], out_size: int):
    return _FlatReference(case.reference, shapes, out_size)


@dataclass(frozen=True)
class _FlatReference:
    """``case.reference`` as ``list[mpf] -> list[mpf]``. Holds the reference
    alone, not the case (forwards, autograd classes), and is no closure: a
    remote executor pickles it with each chunk of tasks, and pickle sends
    the one reference that a chunk's tasks share once, not once per task."""

    reference: Callable
    shapes: tuple[tuple[int, ...], ...]
    out_size: int

    def _args(self, values: list) -> list:
        args, pos = [], 0
        for shape in self.shapes:
            n = int(np.prod(shape)) if shape else 1
            args.append(_nest(values[pos:pos + n], shape))
            pos += n
        return args

    def __call__(self, values: list) -> list:
        out = _flatten(self.reference(*self._args(values)))
        if len(out) != self.out_size:
            raise ReferenceFailure(f"reference returned {len(out)} values, forward returns {self.out_size}")
        return out

    @property
    def differentiable(self) -> bool:
        """An ``exact`` reference gives its derivatives (``harness.truth.dual``)."""
        return hasattr(self.reference, "jacobian")

    @property
    def ball_formula(self) -> Callable | None:
        """The torch formula of an ``exact`` reference, which the interval engine
        runs over a whole grid of points of these shapes."""
        return getattr(self.reference, "formula", None)

    def derivatives(self, values: list, active) -> tuple[list, list, str | None]:
        """Values, their tangents (dicts by flat input index) and why the
        point is not differentiable by rules (None when it is)."""
        out, tangents, marked = self.reference.jacobian(*self._args(values), active=active)
        out, tangents = _flatten(out), _flatten(tangents)
        if len(out) != self.out_size:
            raise ReferenceFailure(f"reference returned {len(out)} values, forward returns {self.out_size}")
        return out, tangents, marked


#: Appended to a point's key for the truth of ``J(x) v`` there (``v`` is a
#: function of the point's shapes, which the key holds): no second hash of
#: every point (a third of a warm order-2 certification).
DIRECTIONAL = ":Jv"


def _missing(case: Case, units: list[_Unit], domains, cache: TruthCache, keys: list[str] | None = None):
    """The units' cache keys (None without a reference) and a ``Task`` per truth
    the cache lacks (an elementwise point with a NaN input has none). Given the units'
    ``keys``: the truths of ``J(x) v`` (``harness.truth.directional``) instead of ``f``."""
    if case.reference is None:
        return None, {}
    directional = keys is not None
    keys = [k + DIRECTIONAL for k in keys] if directional else units.keys(fingerprint(case.reference))
    known = cache.get_many(keys)
    todo: dict[str, tuple[_Unit, Task]] = {}
    nan = units.nan()
    # A structured point's outputs that its NaN entries do not reach have a truth
    # (``truth._around_nan``); an elementwise point's one output is NaN.
    nan = nan & (case.elementwise or directional)
    for j in [j for j, key in enumerate(keys) if key not in known and not nan[j]]:
        key, u = keys[j], units[j]
        if key in todo:
            continue
        shapes = tuple(np.shape(a) for a in u.point)
        out_size = int(np.prod(u.out_shape)) if u.out_shape else 1
        flat_domains = [d for a, d in zip(u.point, domains) for _ in range(np.size(a))]
        reference = _flat_reference(case, shapes, out_size)
        if directional:
            tangent = tuple(float(v) for t in _tangents(case, shapes, domains) for v in np.ravel(t))
            reference = Directional(reference, tangent, tuple(flat_domains))
        todo[key] = (u, Task(reference, [float(v) for a in u.point for v in np.ravel(a)],
                             [float(v) for v in np.ravel(u.cotangent)], flat_domains))
    return keys, todo


def _solve(case: Case, entries: list, options: _Options) -> dict:
    """Compute and cache the truths of ``entries`` (key, (unit, task)); a
    failing reference is a ``CaseError`` naming its point."""
    started = time.perf_counter()
    if entries:
        try:
            _solve_batch(entries, options, f"case {case.name!r}", case)
        except PointFailure as exc:
            raise _failure(case, entries[exc.index][1][0], exc) from exc
    return {"truth_computed": len(entries), "truth_seconds": time.perf_counter() - started}


def _failure(case: Case, u: _Unit, exc: PointFailure) -> CaseError:
    cause = str(exc)
    if "complex value" in cause and case.arity > 1 and case.relation is None:
        # log(exp(x) - exp(y)) at x <= y: no one input's domain excludes it.
        cause += f" (outside its domain: narrow it{_RELATION_HINT})"
    elif "complex value" in cause and case.relation is not None:
        cause += (" (a stencil of the difference engine crossed the relation between the inputs, which it does "
                  "not see: write the reference with harness.exact, whose forward mode takes no stencils)")
    return CaseError(case.name, cause, u.point if not case.elementwise else tuple(float(a) for a in u.point))


def solve_prepared(prepared: list[Prepared], options: _Options) -> dict[int, CaseError]:
    """The missing truths of many prepared certifications in one pool (both
    cores busy for the whole batch, each shared point computed once). A
    reference that fails breaks every certification holding that point
    (returned by position), and the others still get their truths."""
    owners: dict[str, list[int]] = {}
    entries: dict[str, tuple] = {}
    for k, p in enumerate(prepared):
        for key, entry in p.todo.items():
            owners.setdefault(key, []).append(k)
            entries.setdefault(key, entry)
    broken: dict[int, CaseError] = {}
    cost: dict[int, int] = {}
    for key, (_, task) in entries.items():
        cost[owners[key][0]] = cost.get(owners[key][0], 0) + len(task.x)
    costliest = prepared[max(cost, key=cost.get)].case if cost else None
    while entries:
        # The costliest points first (a structured point costs a stencil per
        # element), so that no worker is left with a slow one at the end.
        batch = sorted(entries.items(), key=lambda e: -len(e[1][1].x))
        try:
            _solve_batch(batch, options, f"{len(prepared)} certifications", costliest)
            break
        except PointFailure as exc:
            key, (u, _) = batch[exc.index]
            for k in owners[key]:
                broken.setdefault(k, _failure(prepared[k].case, u, exc))
            # What arrived before the failure is cached: the next pass computes only the rest.
            done = (options.cache or _MEMORY_CACHE).get_many(list(entries))
            entries = {key: e for key, e in entries.items()
                       if key not in done and any(k not in broken for k in owners[key])}
    return broken


def _solve_batch(batch: list, options: _Options, what: str, case: Case | None = None) -> None:
    """Truths of ``batch`` (key, (unit, task)) into the cache; raises ``PointFailure``.
    ``case``: the one whose definition a warning from the plugin points at."""
    tasks = [task for _, (_, task) in batch]
    # Cached as they arrive: an interrupted run keeps what it computed, also
    # when stopped by SIGTERM (the writer's last batch is written on the way out).
    with unwind_on_sigterm(), (options.cache or _MEMORY_CACHE).writer() as put:
        # Proven by enclosure where it can (elementwise exact formulas, a grid per
        # pass); the rest by the mpmath engine, point by point.
        left = solve_tasks(tasks, keep=lambda k, record: put(batch[k][0], record))
        rest = [tasks[k] for k in left]
        _warn_if_long(what, rest, options, case)
        try:
            solve_all(rest, options.workers, _reporter(options.progress), options.executor, encode,
                      keep=lambda j, record: put(batch[left[j]][0], record))
        except PointFailure as exc:
            raise PointFailure(left[exc.index], str(exc)) from exc


def _table(keys: list[str] | None, units: list, cache: TruthCache) -> TruthTable:
    records = cache.get_many(keys) if keys is not None else {}
    return TruthTable.of([records.get(k) for k in keys] if keys is not None else [None] * len(units),
                         units.sizes())


def _truths(case: Case, units: list, domains, options: _Options) -> tuple[TruthTable, dict]:
    """The truths of ``units``, computed where the cache lacks them."""
    cache = options.cache or _MEMORY_CACHE
    keys, todo = _missing(case, units, domains, cache)
    stats = _solve(case, list(todo.items()), options)
    return _table(keys, units, cache), stats


#: Seconds of one core per input element of a cold truth (measured: the torch
#: ops sweep's 538,246 elements took 658 s on 2 cores, 2.4 ms each; the
#: shipped cases' mix is alike; most points take a millisecond, a few escalate).
TRUTH_SECONDS = 0.0025
#: A truth of J(x) v against a first-order one (docs/second_order.md: 4.7x to 5.9x measured).
DIRECTIONAL_COST = 6
#: Above this many expected seconds a certification warns before it starts.
LONG_SECONDS = 60.0


class LongCertification(UserWarning):
    """A certification that will take minutes: its size and expected cost."""


def _warn_if_long(what: str, tasks: list, options: _Options, case: Case | None = None) -> None:
    elements = sum(len(t.x) for t in tasks)
    cores = options.workers or default_workers()
    weight = sum(len(t.x) * (DIRECTIONAL_COST if isinstance(t.reference, Directional) else 1) for t in tasks)
    expected = weight * TRUTH_SECONDS / cores
    if expected > LONG_SECONDS and options.executor is None:
        # At the user's certify line (or, from the plugin, at the costliest case's definition).
        warn_user(LongCertification(
            f"{what}: {len(tasks)} points ({elements} input elements) need truths; expect about "
            f"{expected / 60:.0f} min on {cores} core(s) (cached afterwards: --truth-cache)"), case)


def _reporter(progress: Callable[[str], None] | None, every: float = 5.0):
    """``(done, total) -> None`` that hands ``progress`` a line every ``every`` seconds."""
    if progress is None:
        return None
    started = last = time.perf_counter()

    def report(done: int, total: int) -> None:
        nonlocal last
        now = time.perf_counter()
        if now - last >= every or (done == total and now - started >= every):
            last = now
            progress(f"truths {done}/{total} ({done / (now - started):.0f} points/s)")
    return report


# -- finite differences ---------------------------------------------------------------------------
class _Estimates:
    """Finite differences of a sample's forward (or, for the Hessian-vector
    product, of its claimed gradient: ``of``), taken when first asked for:
    only entries that no verified truth confirms need them (a structured
    grid of hundreds of points costs four forward calls per input element
    and point, and a certified case needs none of them)."""

    def __init__(self, case, samples, dtype, device, f, domains, of: Callable):
        self.case, self.samples, self.dtype, self.device, self.f, self.domains = case, samples, dtype, device, f, domains
        self.of = of
        self.done: dict[int, tuple] = {}
        self.calls = 0

    def __getitem__(self, s: int):
        return self.get(s, None)

    def get(self, s: int, only: np.ndarray | None):
        """Sample ``s``'s estimates, of the input elements ``only`` (flat over
        every input's elements; None: all) at least: a structured point's
        failing entries are often a few of its elements, and each costs four
        forward calls."""
        est, have = self.done.get(s, (None, None))   # have None: every element's
        if est is not None and (have is None or (only is not None and not (only & ~have).any())):
            return est
        want = None if only is None or est is None else only & ~have
        new = self.of(self.case, self.samples[s], self.dtype, self.device, self.f, self.domains,
                      only if est is None else want)
        self.calls += new.calls
        if est is not None:   # the elements asked for now join those taken before
            new = _merged(est, new, want)
        self.done[s] = (new, None if only is None else (only if have is None else only | have))
        return new

    def entries(self, q, need: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Estimate and error for input ``q.input``'s entries, where ``need``
        asks for them (NaN and inf elsewhere: not informative)."""
        value, error = np.full(q.claimed.shape, np.nan), np.full(q.claimed.shape, np.inf)
        if not need.any():
            return value, error
        if self.case.elementwise:   # one sample, the whole grid, four calls
            est = self[0]
            return np.ravel(est.value[q.input]).copy(), np.ravel(est.error[q.input]).copy()
        for s in np.unique(q.unit[need]):   # unit s is sample s
            here = q.unit == s
            sizes = [int(np.size(a)) for a in self.samples[int(s)].arrays]
            only = np.zeros(sum(sizes), dtype=bool)
            only[sum(sizes[:q.input]) + q.elem[need & here]] = True
            est = self.get(int(s), only)
            value[here], error[here] = np.ravel(est.value[q.input]), np.ravel(est.error[q.input])
        return value, error


def _merged(old, new, taken: np.ndarray | None):
    """Estimates of two calls on one sample: ``new``'s where it took the
    elements ``taken`` (flat over the inputs; None: all), ``old``'s elsewhere."""
    if taken is None:
        return new
    sizes = np.cumsum([0] + [np.size(v) for v in old.value])
    pick = [taken[sizes[k]:sizes[k + 1]].reshape(np.shape(v)) for k, v in enumerate(old.value)]
    return dataclasses.replace(new, value=[np.where(m, n, o) for m, n, o in zip(pick, new.value, old.value)],
                               error=[np.where(m, n, o) for m, n, o in zip(pick, new.error, old.error)],
                               calls=old.calls + new.calls)


def _finite_differences(case: Case, sample: _Sample, dtype, device, f: Format, domains, only=None,
                        batched: str | None = None):
    """``batched``: the batch ("broadcast" or "vmap") that the case's claims
    were proven the same call as (``batched_claims``): the stencil's forward
    calls are one such batch too."""
    def evaluate(arrays):
        with torch.no_grad():
            y = case.forward(*[torch.tensor(a, dtype=dtype, device=device) for a in arrays])
        return y.to("cpu", torch.float64).numpy()

    def evaluate_many(many: list) -> list:
        if len(many) < 2:
            return [evaluate(m) for m in many]
        forward = torch.func.vmap(case.forward) if batched == "vmap" else case.forward
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")   # as for the claims' batch (batched_claims)
            y = forward(*[torch.tensor(np.stack(column), dtype=dtype, device=device) for column in zip(*many)])
        y = y.to("cpu", torch.float64).numpy()
        if y.shape != (len(many), *sample.output.shape):
            return [evaluate(m) for m in many]
        return list(y)
    try:
        return vjp_estimate(evaluate, sample.arrays, sample.cotangent, case.structure_or_default(), dtype, f, domains,
                            case.relation, only, evaluate_many if batched else None)
    except Exception as exc:
        raise CaseError(case.name, f"forward raised {type(exc).__name__} under finite differences: {exc}") from exc


def _gradient_differences(case: Case, sample: _Sample, dtype, device, f: Format, domains, only=None):
    """Finite differences of ``<claimed VJP, v>``: does the Hessian-vector
    product belong to the claimed gradient? One number per grid point of an
    elementwise case (its inputs' terms summed), one per structured point."""
    def evaluate(arrays):
        tensors = [torch.tensor(a, dtype=dtype, device=device, requires_grad=case.backward is None) for a in arrays]
        grads = _claimed_gradient(case, tensors, sample.cotangent, dtype, device, create_graph=False)
        # Inputs the tangent does not move (labels) add nothing, not inf * 0.
        terms = [g.detach().to("cpu", torch.float64).numpy() * v for g, v in zip(grads, sample.tangent)
                 if g is not None and np.any(v)]
        if case.elementwise:
            return sum(terms, np.zeros(np.shape(arrays[0])))
        return np.array(sum((float(t.sum()) for t in terms), 0.0))
    cotangent = np.ones(np.shape(sample.arrays[0])) if case.elementwise else np.array(1.0)
    structure = elementwise() if case.elementwise else dense()
    try:
        return vjp_estimate(evaluate, sample.arrays, cotangent, structure, dtype, f, domains, case.relation, only)
    except Exception as exc:
        raise CaseError(case.name, f"the claimed backward raised {type(exc).__name__} under finite "
                                   f"differences: {exc}") from exc


# -- verdict ----------------------------------------------------------------------------------------
@dataclass
class _Quantity:
    """One judged quantity over every unit, flat: entry ``j`` is element
    ``elem[j]`` of unit ``unit[j]``'s claimed output or VJP."""

    family: str              # "value" or "gradient": selects the budget
    name: str
    position: int            # order of the quantity within a unit (value first)
    claimed: np.ndarray
    truth: np.ndarray        # rounded to the dtype; NaN = not judged against a truth
    kappa: np.ndarray
    scale: np.ndarray        # sum |x_i df/dx_i|: the budget where the truth is 0
    unit: np.ndarray
    elem: np.ndarray
    shapes: list             # per unit: the quantity's shape (for labels of structured entries)
    input: int | None = None         # a gradient's input
    kink: np.ndarray | None = None   # not differentiable there: reported, never judged
    unstable: np.ndarray | None = None   # a second backward call gave another number there
    unsupported: np.ndarray | None = None   # the mode raised at the entry's unit: no number there
    unresolved: np.ndarray | None = None   # no precision up to MAX_BITS resolved the truth: not judged

    def label(self, j: int) -> str:
        shape = self.shapes[self.unit[j]]
        return self.name + (f"{[int(i) for i in np.unravel_index(self.elem[j], shape)]}" if shape else "")


def _layout(units: list[_Unit], sizes) -> tuple[np.ndarray, np.ndarray]:
    """Unit and element index of each of ``sizes[u]`` entries per unit, flat."""
    sizes = np.asarray(sizes, dtype=np.int64)
    unit = np.repeat(np.arange(len(units)), sizes)
    starts = np.repeat(np.cumsum(sizes) - sizes, sizes)
    return unit, np.arange(int(sizes.sum())) - starts


def _quantities(case, units, tables: tuple, samples, f, names, order: int = 1,
                forward: bool = False) -> list[_Quantity]:
    """The value (where a reference claims it) and one gradient per continuous
    input; with ``forward`` the JVP, with ``order`` 2 one Hessian-vector
    product per continuous input."""
    table, table2 = tables
    structured = not case.elementwise
    out = []
    n = len(units)
    if structured:
        pick = lambda arrays: np.concatenate([np.ravel(a) for a in arrays])
    else:
        pick = lambda arrays: np.ravel(arrays[0])   # one sample holds the whole grid, unit j = element j
    if case.reference is not None and not case.gradient_only:
        shapes = [u.out_shape for u in units] if structured else [()] * n
        unit, elem = _layout(units, [int(np.prod(s)) if s else 1 for s in shapes])
        out.append(_Quantity("value", "value", 0, pick([samples[u.sample].output for u in units] if structured
                                                          else [samples[0].output]),
                             table.value_in(f), table.value_kappa, table.value_scale, unit, elem, shapes))
    domains = case.domains_for(len(names))
    grad_truth = table.grad_in(f)
    offset = np.zeros(len(units), dtype=np.int64)   # where input k's entries start in each unit's VJP
    for k, name in enumerate(names):
        counts = [int(np.size(u.point[k])) for u in units] if structured else [1] * n
        if domains[k].discrete:
            offset += counts
            continue
        unit, elem = _layout(units, counts)
        at = table.grad_at[:-1][unit] + offset[unit] + elem
        offset += counts
        qname = "gradient" if len(names) == 1 else f"d/d{name}"
        shapes = [np.shape(u.point[k]) for u in units] if structured else [()] * n
        claimed = pick([samples[u.sample].grads[k] for u in units] if structured else [samples[0].grads[k]])
        unstable = pick([samples[u.sample].unstable[k] for u in units] if structured else [samples[0].unstable[k]])
        out.append(_Quantity("gradient", qname, len(out), claimed, grad_truth[at], table.grad_kappa[at],
                             table.grad_scale[at], unit, elem, shapes, k, table.kink[at], unstable.astype(bool),
                             unresolved=table.unresolved[at]))
    def unsupported(what: str, unit: np.ndarray) -> np.ndarray:
        raised = [what in (samples[u.sample].unsupported or {}) for u in units] if structured \
            else [what in (samples[0].unsupported or {})] * n
        return np.asarray(raised, dtype=bool)[unit]
    if forward:
        shapes = [u.out_shape for u in units] if structured else [()] * n
        unit, elem = _layout(units, [int(np.prod(s)) if s else 1 for s in shapes])
        # Where the gradient has a kink the JVP has no value (its truth reads the average of two sides).
        kinked = np.zeros(n, dtype=bool)
        np.logical_or.at(kinked, np.repeat(np.arange(n), np.diff(table.grad_at)), table.kink)
        claimed = pick([samples[u.sample].jvp for u in units] if structured else [samples[0].jvp])
        out.append(_Quantity("jvp", "jvp", len(out), claimed, table2.value_in(f), table2.value_kappa,
                             table2.value_scale, unit, elem, shapes, kink=kinked[unit],
                             unsupported=unsupported("jvp", unit)))
    if order == 2:
        hvp_truth = table2.grad_in(f)
        for q in [q for q in out if q.family == "gradient"]:
            at = table.grad_at[:-1][q.unit] + _input_offset(units, q.input, structured)[q.unit] + q.elem
            claimed = pick([samples[u.sample].hvp[q.input] for u in units] if structured
                           else [samples[0].hvp[q.input]])
            out.append(_Quantity("hvp", "hvp" if q.name == "gradient" else f"hvp {q.name}", len(out), claimed,
                                 hvp_truth[at], table2.grad_kappa[at], table2.grad_scale[at], q.unit, q.elem,
                                 q.shapes, q.input, table2.kink[at] | q.kink, unsupported=unsupported("hvp", q.unit),
                                 unresolved=table2.unresolved[at]))
    return out


def _input_offset(units, k: int, structured: bool) -> np.ndarray:
    """Where input ``k``'s entries start in each unit's VJP."""
    if not structured:
        return np.full(len(units), k, dtype=np.int64)
    return np.array([sum(int(np.size(a)) for a in u.point[:k]) for u in units], dtype=np.int64)


@dataclass
class _Judged:
    """One quantity's verdict per entry: kind codes (-1: none), errors, what is shown."""

    q: _Quantity
    kind: np.ndarray          # the truth's verdict
    fd_kind: np.ndarray       # finite differences' verdict, where it adds one
    ulps: np.ndarray
    bits: np.ndarray
    judged: np.ndarray
    fd_value: np.ndarray
    budget_bits: np.ndarray
    reported: np.ndarray      # underflow the policy lists but does not fail (``kind`` is -1 there)

    @property
    def worst_kind(self) -> np.ndarray:
        return np.where((self.fd_kind >= 0) & ((self.kind < 0) | (self.fd_kind < self.kind)), self.fd_kind, self.kind)


def _judge_quantity(case, q: _Quantity, dtype, f: Format, nan_unit: np.ndarray,
                    forward_wrong: np.ndarray, estimates: _Estimates | None, underflow: str = "fail") -> _Judged:
    """``estimates``: finite differences this quantity is checked against
    (of the forward for a gradient, of the claimed gradient for a
    Hessian-vector product), or None."""
    base = base_ulps(dtype, q.family, case.budget)
    allowed = allowed_ulps(base, q.kappa)
    at_zero = np.where(q.truth == 0, allowed_at_zero(base, q.scale, f), allowed)
    # A value at a NaN input must be NaN where the NaN reaches it (no truth says
    # otherwise); a gradient there is not judged.
    nan_mask = nan_unit[q.unit] & (q.family == "value") & np.isnan(q.truth)
    kind, ulps, bits = against_truth(q.claimed, q.truth, at_zero, f, nan_mask)
    # A flush to zero the policy only lists: the truth explains the claim to
    # within the format's range, so neither it nor finite differences fail it.
    flushed = kind == CODE["underflow"]
    reported = flushed if underflow == "report" else np.zeros(kind.shape, dtype=bool)
    kind = np.where(reported, -1, kind)
    no_truth = case.reference is None
    fd_kind = np.full(kind.shape, -1)
    fd_value = np.full(q.claimed.shape, np.nan)
    if estimates is not None:
        # Differences of a forward that misses its truth judge nothing.
        judged_fd = ~nan_unit[q.unit] & ~forward_wrong[q.unit]
        # Differences of a forward cannot overrule a verified truth: a claim
        # that meets it disagrees only with a forward rounding more than the
        # noise model assumes, which the value check judges.
        # A flush to zero is named by the truth too: the forward's noise adds nothing to it.
        confirmed = ~np.isnan(q.truth) & ((kind < 0) | flushed)
        # A NaN or inf claim against a finite verified truth is convicted already:
        # differences of the forward could only add that they disagree with it too.
        settled = ~np.isnan(q.truth) & np.isfinite(q.truth) & ~np.isfinite(q.claimed)
        need = judged_fd & ~q.kink & ~confirmed & ~settled
        estimate, error = estimates.entries(q, need)
        bad, informative = against_finite_differences(q.claimed, estimate, error, allowed, f)
        informative &= judged_fd
        bad &= need
        fd_value = np.where(informative, estimate, np.nan)
        named = np.where(no_truth & ~np.isfinite(q.claimed), CODE["non-finite"], CODE["inconsistent"])
        fd_kind = np.where(bad & (named != kind), named, -1)
        if no_truth:
            # Without a reference the estimate stands in for the truth in the error measure.
            ulps = np.where(judged_fd, np.where(informative, ulps_between(q.claimed, fd_value, f), np.nan), ulps)
            bits = np.where(judged_fd, np.where(informative, bits_of_error(ulps, f), np.nan), bits)
    if q.unstable is not None:
        # Whatever the first answer's error, the backward has no one answer there.
        fd_kind = np.where(q.unstable, CODE["non-deterministic"], fd_kind)
    if q.unsupported is not None:
        # No number was computed: that, not its NaN, is the finding, wherever the quantity exists.
        exists = ~nan_unit[q.unit] & ~(q.kink if q.kink is not None else False)
        kind = np.where(q.unsupported, np.where(exists, CODE["unsupported"], -1), kind)
        fd_kind = np.where(q.unsupported, -1, fd_kind)
    judged = ~np.isnan(bits) & (~np.isnan(q.truth) | nan_mask | no_truth)
    return _Judged(q, kind, fd_kind, ulps, bits, judged, fd_value, np.log2(1.0 + at_zero), reported)


def _pattern_words(p: patterns.Point, names) -> str:
    """A structured point's pattern in words, naming its input where there are several."""
    if len(names) == 1:
        return p.pattern
    if p.input is None:
        return "every input special: " + ", ".join(f"{n} {w}" for n, w in zip(names, p.pattern.split(" / ")))
    return f"{names[p.input]}: {p.pattern}"


def _unit_patterns(case: Case, units: _Units, samples: list[_Sample], names):
    """Per unit, the index of its pattern among ``(words, parameter name)``
    pairs, for a default structured grid (None otherwise)."""
    if case.elementwise or case.feature is not None or samples[0].pattern is None:
        return None
    labels: dict[tuple[str, str | None], int] = {}
    # Rows of 1 and 2 entries read as their pattern: the worst points show the shapes.
    group = np.array([labels.setdefault((_pattern_words(samples[u.sample].pattern, names).split(", rows of ")[0],
                                         samples[u.sample].pattern.parameter_name), len(labels)) for u in units],
                     dtype=np.int64)
    return group, list(labels)


def _unit_features(case: Case, units: _Units, samples: list[_Sample] | None = None) -> np.ndarray:
    if case.feature is None and samples is not None and not case.elementwise and samples[0].pattern is not None:
        return np.array([samples[u.sample].pattern.parameter for u in units], dtype=np.float64)
    if case.feature is None and case.elementwise:
        stacked = units.stacked
        if stacked.shape[1] == 1:
            return stacked[:, 0]
        return np.where(np.isfinite(stacked), np.abs(stacked), 0.0).max(axis=1, initial=0.0)
    return np.array([_feature(case, u.point) for u in units], dtype=np.float64)


def _judge(case, report: Report, units, tables: tuple, estimates: dict, samples, dtype, f: Format, names,
           underflow: str = "fail", order: int = 1, forward: bool = False) -> None:
    points = units.points()
    features = _unit_features(case, units, samples)
    grouped = _unit_patterns(case, units, samples, names)
    nan_unit = units.nan()
    forward_wrong = np.zeros(len(units), dtype=bool)
    verdicts = []
    quantities = _quantities(case, units, tables, samples, f, names, order, forward)
    _no_nan_truth(case, quantities, tables[0].present & ~nan_unit, points)
    for q in quantities:
        v = _judge_quantity(case, q, dtype, f, nan_unit, forward_wrong, estimates.get(q.family), underflow)
        if q.family == "value":
            np.logical_or.at(forward_wrong, q.unit, v.kind >= 0)
        verdicts.append(v)
    _kinks(report, verdicts, points)
    report.counts = _counts(verdicts, nan_unit, case.reference is None)
    # Entries in the order a unit-by-unit pass meets them: unit, quantity, element.
    order = lambda v, mask: np.flatnonzero(mask)
    failing = [(int(v.q.unit[j]), v.q.position, int(v.q.elem[j]), v, int(j)) for v in verdicts
               for j in order(v, (v.kind >= 0) | (v.fd_kind >= 0))]
    entries = {}
    for _, _, _, v, j in sorted(failing, key=lambda e: e[:3]):
        kinds = tuple(KIND_NAMES[c] for c in (v.kind[j], v.fd_kind[j]) if c >= 0)
        report.failures.append(Failure(points[v.q.unit[j]], v.q.label(j), kinds, float(v.q.claimed[j]),
                                       float(v.q.truth[j]), float(v.fd_value[j]), float(v.ulps[j]),
                                       float(v.bits[j]), float(v.budget_bits[j]), float(features[v.q.unit[j]])))
        entries[id(report.failures[-1])] = (v, j)
    _shown_differences(report, entries, estimates, nan_unit, forward_wrong)
    report.measured = _measured(verdicts, points, features)
    shown = [v.judged | (v.worst_kind >= 0) for v in verdicts]
    report.regions = _regions(case, names, units, features, verdicts, [v.worst_kind for v in verdicts], shown,
                              grouped)
    # Flushes to zero the policy lists without failing: runs among the same judged entries.
    if any(v.reported.any() for v in verdicts):
        report.underflows = _regions(case, names, units, features, verdicts,
                                     [np.where(v.reported, CODE["underflow"], -1) for v in verdicts],
                                     [v.judged | v.reported for v in verdicts], grouped)
    # Quantities in the order a unit-by-unit pass first judges them.
    judged = sorted((v for v in verdicts if v.judged.any()),
                    key=lambda v: (int(v.q.unit[v.judged].min()), v.q.position))
    report.worst_bits = {v.q.name: float(v.bits[v.judged].max()) for v in judged}
    report.mean_bits = {v.q.name: float(np.mean(v.bits[v.judged].tolist())) for v in judged}


def _shown_differences(report: Report, entries: dict, estimates: dict, nan_unit: np.ndarray,
                       forward_wrong: np.ndarray) -> None:
    """The finite-difference column of the printed worst points, filled where
    a stencil can say something (a structured point's differences are taken
    only where no truth confirms an entry); where none can, the report says
    why, once, for the column's blanks."""
    why = set()
    for i, fl in enumerate(report.worst()):
        if not math.isnan(fl.finite_difference) or id(fl) not in entries:
            continue
        v, j = entries[id(fl)]
        u = int(v.q.unit[j])
        est = estimates.get(v.q.family)
        if nan_unit[u]:
            why.add("a NaN input has no stencil")
            continue
        if est is None:   # the value: judged against the truth only, its column reads "-"
            continue
        if forward_wrong[u]:
            why.add("where the value itself fails, differences of the forward judge nothing and are not taken")
            continue
        need = np.zeros(v.q.claimed.shape, dtype=bool)
        need[j] = True
        value, error = est.entries(v.q, need)
        if np.isfinite(value[j]) and np.isfinite(error[j]) and error[j] < abs(value[j]) + 2.0 ** -1022:
            at = report.failures.index(fl)
            report.failures[at] = dataclasses.replace(fl, finite_difference=float(value[j]))
        else:
            why.add("the forward's differences are not informative there (an infinity in the stencil, or "
                    "rounding larger than the difference)")
    if why:
        report.notes.append("fin.diff.: " + "; ".join(sorted(why)))


def _no_nan_truth(case: Case, quantities: list[_Quantity], computed: np.ndarray, points) -> None:
    """A reference that is NaN where every input is a number leaves entries
    that nothing judges, so that anything passes there: a broken case (a
    function undefined on part of its domain narrows its domain)."""
    for q in quantities:
        kink = q.kink if q.kink is not None else False
        unresolved = q.unresolved if q.unresolved is not None else False
        bad = np.flatnonzero(computed[q.unit] & np.isnan(q.truth) & ~kink & ~unresolved)
        if bad.size:
            j = int(bad[0])
            raise CaseError(case.name, f"the reference is NaN ({q.label(j)}) at a point inside the domain, with no "
                                       f"NaN input: nothing could judge it (narrow the domain where the function "
                                       f"is undefined{_RELATION_HINT if case.arity > 1 else ''})", points[q.unit[j]])


#: Where no domain can be narrowed: the inputs constrain each other.
_RELATION_HINT = ", or, where the inputs constrain each other, declare it: relation=lambda x, y: x > y"


#: The report's reason for derivatives the difference engine could not resolve, with the remedy.
UNRESOLVED = "derivatives unresolved (no precision up to MAX_BITS resolves them by differences: write the reference with harness.exact)"


def _counts(verdicts: list[_Judged], nan_unit: np.ndarray, no_truth: bool) -> dict[str, int]:
    """How many entries were judged, and why the others were not."""
    counts = {"entries": 0, "judged": 0, "gradients at NaN inputs": 0, "kinks": 0,
              UNRESOLVED: 0, "no informative finite difference": 0}
    for v in verdicts:
        left = ~v.judged
        at_nan = left & nan_unit[v.q.unit]
        kink = left & ~at_nan & (v.q.kink if v.q.kink is not None else False)
        counts["entries"] += int(v.judged.size)
        counts["judged"] += int(v.judged.sum())
        counts["gradients at NaN inputs"] += int(at_nan.sum())
        counts["kinks"] += int(kink.sum())
        unresolved = left & ~at_nan & ~kink & (v.q.unresolved if v.q.unresolved is not None else False)
        counts[UNRESOLVED] += int(unresolved.sum())
        counts["no informative finite difference"] += int((left & ~at_nan & ~kink).sum()) if no_truth else 0
    return counts


def _regions(case: Case, names, units, features: np.ndarray, verdicts: list[_Judged], kinds: list, shown: list,
             grouped=None):
    """Runs of entries failing alike (kind codes ``kinds``, among the entries
    ``shown``): by feature, or as boxes in (x, y) for a two-input elementwise
    case without a feature of its own (not runs of max(|x|, |y|)), or by
    pattern and its parameter on a default structured grid (``grouped``)."""
    boxed = case.elementwise and case.feature is None and len(names) == 2
    columns = []
    for v, kind, m in zip(verdicts, kinds, shown):
        where = (units.stacked[v.q.unit][m, 0], units.stacked[v.q.unit][m, 1]) if boxed else (features[v.q.unit][m],)
        columns.append((v.q.name, *where, kind[m], v.q.claimed[m], v.q.truth[m], np.where(v.judged, v.bits, 0.0)[m],
                        v.q.unit[m] * len(verdicts) + v.q.position)
                       + ((grouped[0][v.q.unit][m], v.q.unit[m]) if grouped else ()))
    if boxed:
        return boxes(columns, tuple(names))
    return regions(columns, grouped[1] if grouped else None)


def _kinks(report: Report, verdicts: list[_Judged], points: list) -> None:
    found = [(int(v.q.unit[j]), v.q.position, int(v.q.elem[j]), v, int(j)) for v in verdicts
             if v.q.kink is not None for j in np.flatnonzero(v.q.kink)]
    report.kinks += [(points[v.q.unit[j]], v.q.label(j)) for *_, v, j in sorted(found, key=lambda e: e[:3])]


def _measured(verdicts: list[_Judged], points: list, features: np.ndarray) -> Measures:
    """Every entry, judged or not, unit by unit (what stability maps plot)."""
    if not verdicts:
        return Measures(points, features, [], *(np.zeros(0, np.int64),) * 2, np.zeros(0))
    unit = np.concatenate([v.q.unit for v in verdicts])
    position = np.concatenate([np.full(v.q.unit.size, v.q.position) for v in verdicts])
    elem = np.concatenate([v.q.elem for v in verdicts])
    bits = np.concatenate([np.where(v.judged, v.bits, np.nan) for v in verdicts])
    kind = np.concatenate([v.worst_kind for v in verdicts])
    quantity = np.repeat(np.arange(len(verdicts)), [v.q.unit.size for v in verdicts])
    order = np.lexsort((elem, position, unit))
    return Measures(points, features, [v.q.name for v in verdicts], unit[order], quantity[order], kind[order],
                    bits[order])
