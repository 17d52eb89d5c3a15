"""certify(): grid -> claimed -> truth -> finite differences -> verdict -> report."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import torch

from . import grids
from .cache import TruthCache, fingerprint, point_key
from .case import Case
from .errors import CaseError
from .expectations import expectation_for
from .finite_differences import vjp_estimate
from .floats import Format, bits_of_error, fmt, round_to, ulps_between
from .kinds import SEVERITY
from .report import Failure, Measure, Report, regions
from .tolerance import allowed_at_zero, allowed_ulps, base_ulps
from .truth import ReferenceFailure
from .truth_pool import PointFailure, Task, solve_all
from .verdict import against_finite_differences, against_truth, meets

_MEMORY_CACHE = TruthCache(None)


@dataclass
class _Sample:
    """Inputs handed to one forward call (the whole grid, for an elementwise case)."""

    arrays: tuple[np.ndarray, ...]
    output: np.ndarray | None = None
    grads: tuple[np.ndarray, ...] | None = None
    cotangent: np.ndarray | None = None


def certify(case: Case, dtype: torch.dtype = torch.float32, device: str = "cpu",
            grid_size: int | None = None, cache: TruthCache | None = None,
            workers: int | None = None) -> Report:
    """Judge ``case`` in ``dtype`` on ``device`` over its extreme grid.

    Raises ``CaseError`` (naming the case, the point and the cause) when the
    case itself is broken; numerical defects are failures in the report.

    Example:
        >>> import mpmath
        >>> case = Case("softplus", torch.nn.functional.softplus,
        ...             lambda x: mpmath.log1p(mpmath.exp(x)))
        >>> certify(case, torch.float64, grid_size=1).ok
        True
    """
    threads = torch.get_num_threads()
    # Grids are small tensors: one thread is several times faster than a pool
    # that wakes up for each of thousands of tiny kernels.
    torch.set_num_threads(1)
    try:
        return _certify(case, dtype, device, grid_size, cache, workers)
    finally:
        torch.set_num_threads(threads)


def _certify(case, dtype, device, grid_size, cache, workers) -> Report:
    started = time.perf_counter()
    f = fmt(dtype)
    size = grid_size or grids.DEFAULT_SIZE
    samples, domains, names = _grid(case, dtype, size)
    for sample in samples:
        _claimed(case, sample, dtype, device)
    report = Report(case.name, f.name, str(device), feature_name=_feature_name(case, names))
    units = _units(case, samples)
    truths, truth_stats = _truths(case, units, domains, cache or _MEMORY_CACHE, workers)
    fd_calls = 0
    estimates = {}
    if not case.gradient_only:
        for s, sample in enumerate(samples):
            est = _finite_differences(case, sample, dtype, device, f, domains)
            estimates[s] = est
            fd_calls += est.calls
    _judge(case, report, units, truths, estimates, samples, dtype, f, names)
    report.stats.update(truth_stats)
    report.stats.update(points=len(units), fd_forward_calls=fd_calls, seconds=time.perf_counter() - started)
    return report


def check(case: Case, report: Report, dtype: torch.dtype) -> str | None:
    """None when the report meets the case's expectation for ``dtype``, else why not."""
    expectation = expectation_for(case.expect, dtype)
    return meets(expectation, report.ok, report.kinds, [fl.feature for fl in report.failures])


# -- grid ----------------------------------------------------------------------------------
def _grid(case: Case, dtype: torch.dtype, size: int):
    if case.elementwise:
        domains = case.domains_for(case.arity)
        if case.arity == 1:
            arrays = (grids.extreme(dtype, domains[0], size),)
        else:
            pts = grids.product(dtype, domains, size)
            arrays = tuple(pts[:, k].copy() for k in range(case.arity))
        return [_Sample(arrays)], domains, case.names_for(case.arity)
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
        samples.append(_Sample(arrays))
    domains = case.domains_for(arity)
    for sample in samples:
        for a, d in zip(sample.arrays, domains):
            bad = [v for v in a.ravel() if not (d.contains(v) or (math.isnan(v) and d.lo is None and d.hi is None and not d.discrete))]
            if bad:
                cause = "NaN" if math.isnan(bad[0]) else f"{bad[0]:.6g}"
                raise CaseError(case.name, f"grid holds {cause}, which the domain {d} forbids", sample.arrays)
    return samples, domains, case.names_for(arity)


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


def _claimed(case: Case, sample: _Sample, dtype, device) -> None:
    try:
        _run(case, sample, dtype, device)
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
    tensors = [torch.tensor(a, dtype=dtype, device=device, requires_grad=True) for a in sample.arrays]
    try:
        y = case.forward(*tensors)
    except Exception as exc:
        raise CaseError(case.name, f"forward raised {type(exc).__name__}: {exc}") from exc
    _check_tensor(case, "forward", y, dtype, device, tensors[0].shape if case.elementwise else None)
    sample.cotangent = np.ones(tuple(y.shape)) if case.elementwise else _cotangent(tuple(y.shape))
    grad_out = torch.tensor(sample.cotangent, dtype=dtype, device=device)
    if case.backward is not None:
        try:
            grads = case.backward(*[t.detach() for t in tensors], grad_out)
        except Exception as exc:
            raise CaseError(case.name, f"backward raised {type(exc).__name__}: {exc}") from exc
        grads = (grads,) if isinstance(grads, torch.Tensor) or grads is None else tuple(grads)
        if len(grads) != len(tensors):
            raise CaseError(case.name, f"backward returned {len(grads)} gradients for {len(tensors)} inputs")
        for k, (g, t) in enumerate(zip(grads, tensors)):
            _check_tensor(case, f"backward (gradient {k})", g, dtype, device, t.shape)
    elif y.requires_grad:
        try:
            grads = torch.autograd.grad(y, tensors, grad_out, allow_unused=True)
        except Exception as exc:
            raise CaseError(case.name, f"autograd through forward raised {type(exc).__name__}: {exc}") from exc
        grads = tuple(torch.zeros_like(t) if g is None else g for g, t in zip(grads, tensors))
    else:
        grads = tuple(torch.zeros_like(t) for t in tensors)  # a detached forward claims zero gradients
    sample.output = y.detach().to("cpu", torch.float64).numpy()
    sample.grads = tuple(g.detach().to("cpu", torch.float64).numpy() for g in grads)


def _check_tensor(case, what, t, dtype, device, shape) -> None:
    if t is None:
        raise CaseError(case.name, f"{what} returned None")
    if not isinstance(t, torch.Tensor):
        raise CaseError(case.name, f"{what} returned {type(t).__name__}, not a tensor")
    if t.dtype != dtype:
        raise CaseError(case.name, f"{what} returned dtype {t.dtype}, expected {dtype}")
    if t.device.type != torch.device(device).type:
        raise CaseError(case.name, f"{what} returned a tensor on {t.device}, expected {device}")
    if shape is not None and tuple(t.shape) != tuple(shape):
        raise CaseError(case.name, f"{what} returned shape {tuple(t.shape)}, expected {tuple(shape)}")


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


def _units(case: Case, samples: list[_Sample]) -> list[_Unit]:
    if case.elementwise:
        (s,) = samples
        return [_Unit(tuple(np.array(a[j]) for a in s.arrays), np.array(1.0), (), 0, j)
                for j in range(s.arrays[0].size)]
    return [_Unit(s.arrays, s.cotangent, s.output.shape, k, None) for k, s in enumerate(samples)]


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
    def flat(values: list) -> list:
        args, pos = [], 0
        for shape in shapes:
            n = int(np.prod(shape)) if shape else 1
            args.append(_nest(values[pos:pos + n], shape))
            pos += n
        out = _flatten(case.reference(*args))
        if len(out) != out_size:
            raise ReferenceFailure(f"reference returned {len(out)} values, forward returns {out_size}")
        return out
    return flat


def _truths(case: Case, units: list[_Unit], domains, cache: TruthCache, workers: int | None = None):
    if case.reference is None:
        return [None] * len(units), {"truth_computed": 0, "truth_seconds": 0.0}
    ref_print = fingerprint(case.reference)
    keys = [point_key(ref_print, tuple(np.shape(a) for a in u.point), u.cotangent, u.point) for u in units]
    known = cache.get_many(keys)
    todo: dict[str, tuple[_Unit, Task]] = {}
    for u, key in zip(units, keys):
        if key in known or key in todo or any(np.isnan(a).any() for a in u.point):
            continue
        shapes = tuple(np.shape(a) for a in u.point)
        out_size = int(np.prod(u.out_shape)) if u.out_shape else 1
        todo[key] = (u, Task(_flat_reference(case, shapes, out_size),
                             [float(v) for a in u.point for v in np.ravel(a)],
                             [float(v) for v in np.ravel(u.cotangent)],
                             [d for a, d in zip(u.point, domains) for _ in range(np.size(a))]))
    started = time.perf_counter()
    entries = list(todo.items())
    try:
        solved = solve_all([task for _, (_, task) in entries], workers)
    except PointFailure as exc:
        u = entries[exc.index][1][0]
        raise CaseError(case.name, str(exc), u.point if not case.elementwise else
                        tuple(float(a) for a in u.point)) from exc
    seconds = time.perf_counter() - started
    fresh = {key: truth for (key, _), truth in zip(entries, solved)}
    if fresh:
        cache.put_many(fresh)
    known.update(fresh)
    return [known.get(k) for k in keys], {"truth_computed": len(fresh), "truth_seconds": seconds}


# -- finite differences ---------------------------------------------------------------------------
def _finite_differences(case: Case, sample: _Sample, dtype, device, f: Format, domains):
    def evaluate(arrays):
        with torch.no_grad():
            y = case.forward(*[torch.tensor(a, dtype=dtype, device=device) for a in arrays])
        return y.to("cpu", torch.float64).numpy()
    try:
        return vjp_estimate(evaluate, sample.arrays, sample.cotangent, case.structure_or_default(), dtype, f, domains)
    except Exception as exc:
        raise CaseError(case.name, f"forward raised {type(exc).__name__} under finite differences: {exc}") from exc


# -- verdict ----------------------------------------------------------------------------------------
@dataclass
class _Quantity:
    """One judged quantity of one unit: claimed entries against truth and estimate."""

    family: str              # "value" or "gradient": selects the budget
    name: str
    shape: tuple[int, ...]
    claimed: np.ndarray
    truth: np.ndarray        # rounded to the dtype; NaN = not judged against a truth
    kappa: np.ndarray
    scale: np.ndarray        # sum |x_i df/dx_i|: the budget where the truth is 0
    fd: tuple[np.ndarray, np.ndarray] | None = None
    kink: np.ndarray | None = None   # not differentiable there: reported, never judged


def _quantities(case, u, truth, estimates, s, f, names, report, point, nan_input) -> list[_Quantity]:
    structured = not case.elementwise
    pick = np.ravel if structured else (lambda arr: np.ravel(arr)[u.index:u.index + 1])
    out = []
    if case.reference is not None and not case.gradient_only:
        claimed = pick(s.output)
        if truth is not None:
            t, kappa = np.array([round_to(v, f) for v in truth.value]), np.array(truth.value_kappa)
            scale = np.array(truth.value_scale if truth.value_scale is not None else [np.inf] * t.size)
        else:
            t, kappa, scale = np.full(claimed.shape, np.nan), np.ones(claimed.shape), np.full(claimed.shape, np.inf)
        out.append(_Quantity("value", "value", u.out_shape if structured else (), claimed, t, kappa, scale))
    offset = 0
    domains = case.domains_for(len(names))
    for k, name in enumerate(names):
        claimed = pick(s.grads[k])
        n = claimed.size
        if domains[k].discrete:
            offset += n
            continue
        qname = "gradient" if len(names) == 1 else f"d/d{name}"
        t, kappa, scale, kinks = np.full(n, np.nan), np.ones(n), np.full(n, np.inf), [False] * n
        if truth is not None and not nan_input:
            kinks = truth.kink[offset:offset + n]
            t = np.array([np.nan if (v is None or kink) else round_to(v, f)
                          for v, kink in zip(truth.grad[offset:offset + n], kinks)])
            kappa = np.array(truth.grad_kappa[offset:offset + n], dtype=np.float64)
            if truth.grad_scale is not None:
                scale = np.array(truth.grad_scale[offset:offset + n], dtype=np.float64)
            shape = np.shape(u.point[k])
            report.kinks += [(point, qname + (f"{[int(i) for i in np.unravel_index(j, shape)]}" if shape else ""))
                             for j, kink in enumerate(kinks) if kink]
        est = estimates.get(u.sample)
        fd = (pick(est.value[k]), pick(est.error[k])) if est is not None else None
        out.append(_Quantity("gradient", qname, np.shape(u.point[k]) if structured else (), claimed, t, kappa, scale, fd,
                             np.array(kinks, dtype=bool)))
        offset += n
    return out


def _judge(case, report: Report, units, truths, estimates, samples, dtype, f: Format, names) -> None:
    entries = []          # (feature, quantity, kind, claimed, truth, bits) for regions
    bits_by_q: dict[str, list[float]] = {}
    budget = case.budget
    for u, truth in zip(units, truths):
        point = u.point if not case.elementwise else tuple(float(a) for a in u.point)
        feature = _feature(case, u.point)
        nan_input = any(np.isnan(a).any() for a in u.point)
        forward_wrong = False   # differences of a forward that misses its truth judge nothing
        for q in _quantities(case, u, truth, estimates, samples[u.sample], f, names, report, point, nan_input):
            base = base_ulps(dtype, q.family, budget)
            allowed = allowed_ulps(base, q.kappa)
            at_zero = np.where(q.truth == 0, allowed_at_zero(base, q.scale, f), allowed)
            # A value at a NaN input must be NaN; a gradient there is not judged.
            nan_mask = np.full(q.claimed.shape, nan_input and q.family == "value")
            kinds, ulps, bits = against_truth(q.claimed, q.truth, at_zero, f, nan_mask)
            no_truth = case.reference is None
            fd_value = np.full(q.claimed.shape, np.nan)
            if q.family == "value":
                forward_wrong = any(kinds)
            if q.fd is not None and not nan_input and not forward_wrong:
                bad, informative = against_finite_differences(q.claimed, q.fd[0], q.fd[1], allowed, f)
                # Differences of a forward cannot overrule a verified truth: a
                # claim that meets it disagrees only with a forward rounding
                # more than the noise model assumes, which the value check judges.
                confirmed = ~np.isnan(q.truth) & np.array([not k for k in kinds], dtype=bool)
                bad &= ~q.kink & ~confirmed
                fd_value = np.where(informative, q.fd[0], np.nan)
                for j in np.flatnonzero(bad):
                    kind = "non-finite" if no_truth and not np.isfinite(q.claimed[j]) else "inconsistent"
                    if kind not in kinds[j]:
                        kinds[j].append(kind)
                if no_truth:
                    # Without a reference the estimate stands in for the truth in the error measure.
                    ulps = np.where(informative, ulps_between(q.claimed, fd_value, f), np.nan)
                    bits = np.where(informative, bits_of_error(ulps, f), np.nan)
            budget_bits = np.log2(1.0 + at_zero)
            for j in range(q.claimed.size):
                kind = min(kinds[j], key=SEVERITY.__getitem__) if kinds[j] else None
                judged = not np.isnan(bits[j]) and (not np.isnan(q.truth[j]) or nan_mask[j] or no_truth)
                report.measured.append(Measure(point, feature, q.name, float(bits[j]) if judged else math.nan, kind))
                if not np.isnan(bits[j]) and (not np.isnan(q.truth[j]) or nan_mask[j] or no_truth):
                    bits_by_q.setdefault(q.name, []).append(float(bits[j]))
                    entries.append((feature, q.name, kind, float(q.claimed[j]), float(q.truth[j]), float(bits[j])))
                elif kind:
                    entries.append((feature, q.name, kind, float(q.claimed[j]), float(q.truth[j]), 0.0))
                if kinds[j]:
                    label = q.name + (f"{[int(i) for i in np.unravel_index(j, q.shape)]}" if q.shape else "")
                    report.failures.append(Failure(point, label, tuple(kinds[j]), float(q.claimed[j]),
                                                   float(q.truth[j]), float(fd_value[j]), float(ulps[j]),
                                                   float(bits[j]), float(budget_bits[j]), feature))
    report.regions = regions(entries)
    report.worst_bits = {q: max(b) for q, b in bits_by_q.items()}
    report.mean_bits = {q: float(np.mean(b)) for q, b in bits_by_q.items()}
