"""The samples of a certification: the grid's points as the forward is handed
them (the whole grid, for an elementwise case), and the fixed cotangent and
tangent that the claims and the truths share."""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import CaseError
from . import grids, patterns
from .floats import fmt


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


def _grid(case, dtype: torch.dtype, options):
    dense = getattr(options, "dense", False)
    size = options.grid_size or (grids.DENSE_SIZE if dense else grids.DEFAULT_SIZE)
    why = _not_exhaustive(case, dtype) if options.exhaustive else None
    notes = [f"exhaustive: not applicable ({why}); judged on the grid"] if why else []
    if case.elementwise:
        domains = case.domains_for(case.arity)
        if (options.exhaustive or dense) and not _not_exhaustive(case, dtype):
            arrays = (grids.every(dtype, domains[0]),)
            notes.insert(0, grids.every_in_words(dtype, domains[0]))
        elif case.arity == 1:
            arrays = (grids.extreme(dtype, domains[0], size, whole=dense),)
        else:
            pts = grids.product(dtype, domains, size, whole=dense)
            if case.relation is not None:
                with np.errstate(invalid="ignore", over="ignore"):
                    pts = pts[np.broadcast_to(np.asarray(case.relation(*pts.T), dtype=bool), len(pts))]
                if not len(pts):
                    raise CaseError(case.name, f"no point of the grid satisfies the relation {_name_of(case.relation)}")
            arrays = tuple(pts[:, k].copy() for k in range(case.arity))
            if dense:
                notes.insert(0, f"dense: {len(pts):,} input tuples (each input's {size} or more points in every "
                                f"binade, a seeded sample of {grids.DENSE_PRODUCT_CAP:,} of their product, and "
                                f"every tuple of special values and of one beside typical values)")
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
    # Named points (``patterns.Point``, as matrix_patterns.matrix_grid makes them) keep their
    # pattern, so regions read by it; in a grid that mixes them with plain tuples, those are hand-made.
    named = any(isinstance(p, patterns.Point) for p in raw)
    for point in raw:
        pattern = point if isinstance(point, patterns.Point) else None
        point = pattern.arrays if pattern is not None else point
        if named and pattern is None:
            pattern = patterns.Point(tuple(point) if isinstance(point, (tuple, list)) else (point,), "hand-made point")
        arrays = tuple(point) if isinstance(point, (tuple, list)) else (point,)
        arrays = tuple(torch.from_numpy(np.array(a, dtype=np.float64)).to(dtype).double().numpy() for a in arrays)
        if arity is None:
            arity = len(arrays)
        elif len(arrays) != arity:
            raise CaseError(case.name, f"grid points have {arity} and {len(arrays)} inputs", point)
        if case.relation is not None and not patterns.holds(case.relation, arrays):
            raise CaseError(case.name, f"grid holds a point where the relation {_name_of(case.relation)} "
                                       f"does not hold", arrays)
        samples.append(_Sample(arrays, pattern=pattern))
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


def _not_exhaustive(case, dtype: torch.dtype) -> str | None:
    """Why ``case`` in ``dtype`` cannot be judged on every input (None: it can)."""
    if dtype not in (torch.float16, torch.bfloat16):
        return f"{fmt(dtype).name} has {2 ** fmt(dtype).width:,} inputs; only 16-bit formats are swept"
    if not case.elementwise:
        return "a structured case: its inputs are tensors, not one number"
    if case.arity > 1:
        return f"{case.arity} inputs: {65536 ** case.arity:,} tuples"
    return None


def _cotangent(shape: tuple[int, ...]) -> np.ndarray:
    """A fixed positive cotangent for vector outputs: multiples of 1/8 in
    [0.5, 2), exact in every dtype, so the VJP mixes outputs without
    cancelling them."""
    if shape == ():
        return np.array(1.0)
    rng = np.random.default_rng([len(shape), *shape])
    return rng.integers(4, 16, size=shape) / 8.0


def _tangents(case, shapes, domains) -> tuple[np.ndarray, ...]:
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
