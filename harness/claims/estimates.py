"""Finite differences of a sample's forward (or of its claimed gradient),
taken when judging first asks for them (``_Estimates``)."""

from __future__ import annotations

import dataclasses
import warnings
from typing import Callable

import numpy as np
import torch

from ..case import Case
from ..errors import CaseError
from ..inputs.floats import Format
from ..inputs.samples import _Sample
from ..inputs.structure import dense, elementwise
from .claimed import _claimed_gradient
from .finite_differences import vjp_estimate


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
