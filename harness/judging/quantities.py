"""The judged quantities of a certification, flat over every unit: the value,
a gradient per continuous input, the JVP and the Hessian-vector products."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..truth.units import _Unit


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
    limit: np.ndarray | None = None        # at ±inf inputs: truth.limits' code (not LIMIT: no truth)
    limit_range: np.ndarray | None = None  # (entries, 2): where indeterminate, the range of the path limits

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
                             table.value_in(f), table.value_kappa, table.value_scale, unit, elem, shapes,
                             limit=table.value_limit, limit_range=table.value_range))
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
                             unresolved=table.unresolved[at], limit=table.grad_limit[at],
                             limit_range=table.grad_range[at]))
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
                             unsupported=unsupported("jvp", unit), limit=table2.value_limit,
                             limit_range=table2.value_range))
    if order == 2:
        hvp_truth = table2.grad_in(f)
        for q in [q for q in out if q.family == "gradient"]:
            at = table.grad_at[:-1][q.unit] + _input_offset(units, q.input, structured)[q.unit] + q.elem
            claimed = pick([samples[u.sample].hvp[q.input] for u in units] if structured
                           else [samples[0].hvp[q.input]])
            out.append(_Quantity("hvp", "hvp" if q.name == "gradient" else f"hvp {q.name}", len(out), claimed,
                                 hvp_truth[at], table2.grad_kappa[at], table2.grad_scale[at], q.unit, q.elem,
                                 q.shapes, q.input, table2.kink[at] | q.kink, unsupported=unsupported("hvp", q.unit),
                                 unresolved=table2.unresolved[at], limit=table2.grad_limit[at],
                                 limit_range=table2.grad_range[at]))
    return out


def _input_offset(units, k: int, structured: bool) -> np.ndarray:
    """Where input ``k``'s entries start in each unit's VJP."""
    if not structured:
        return np.full(len(units), k, dtype=np.int64)
    return np.array([sum(int(np.size(a)) for a in u.point[:k]) for u in units], dtype=np.int64)
