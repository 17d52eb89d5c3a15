"""Truths of many points as numpy columns: what the cache stores and what
``certify`` judges.

The engine's truths are mpmath numbers; judging needs them rounded to a
format, thousands at a time. Each exact value is kept as its float64
``split`` (the nearest float64 and the side the value lies on), which
``round_split`` rounds to every format exactly, in one vectorised pass. A
point's record is a few dozen bytes; the records of a grid decode with one
``np.frombuffer`` per shape.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ..inputs.floats import Format, round_split, split
from .mpmath_engine import PointTruth

_HEADER = np.dtype([("values", "<i4"), ("grads", "<i4"), ("bits", "<i4")])


@lru_cache(maxsize=None)
def _record(values: int, grads: int) -> np.dtype:
    return np.dtype([
        ("header", _HEADER),
        ("value", "<f8", (values,)), ("value_side", "i1", (values,)),
        ("value_kappa", "<f8", (values,)), ("value_scale", "<f8", (values,)),
        ("grad", "<f8", (grads,)), ("grad_side", "i1", (grads,)),
        ("grad_kappa", "<f8", (grads,)), ("grad_scale", "<f8", (grads,)), ("kink", "?", (grads,)),
        ("unresolved", "?", (grads,)),
        ("value_limit", "i1", (values,)), ("value_range", "<f8", (values, 2)),
        ("grad_limit", "i1", (grads,)), ("grad_range", "<f8", (grads, 2)),
    ])


def encode(truth: PointTruth) -> bytes:
    """One point's truth as a record (see the module docstring).

    Example:
        >>> import mpmath
        >>> t = PointTruth([mpmath.mpf(1) / 3], [1.0], [mpmath.mpf(2)], [1.0], [False], 160)
        >>> len(encode(t))
        98
    """
    nv, ng = len(truth.value), len(truth.grad)
    rec = np.zeros((), dtype=_record(nv, ng))
    rec["header"] = (nv, ng, truth.bits)
    rec["value"], rec["value_side"] = _split_all(truth.value)
    rec["value_kappa"] = np.asarray(truth.value_kappa, dtype=np.float64)
    rec["value_scale"] = np.inf if truth.value_scale is None else np.asarray(truth.value_scale, dtype=np.float64)
    rec["grad"], rec["grad_side"] = _split_all(truth.grad)
    rec["grad_kappa"] = np.asarray(truth.grad_kappa, dtype=np.float64)
    rec["grad_scale"] = np.inf if truth.grad_scale is None else np.asarray(truth.grad_scale, dtype=np.float64)
    rec["kink"] = truth.kink
    rec["unresolved"] = truth.unresolved or False
    for name, n in (("value", nv), ("grad", ng)):
        codes, ranges = getattr(truth, f"{name}_limit"), getattr(truth, f"{name}_range")
        rec[f"{name}_limit"] = codes or 0
        rec[f"{name}_range"] = np.nan if ranges is None else np.asarray(ranges, dtype=np.float64).reshape(n, 2)
    return rec.tobytes()


def _split_all(values: list) -> tuple[list[float], list[int]]:
    pairs = [split(v) for v in values]
    return [p[0] for p in pairs], [p[1] for p in pairs]


@dataclass
class TruthTable:
    """Truths of ``n`` points, flat: point ``u``'s values are
    ``value[value_at[u]:value_at[u + 1]]`` and its VJP entries (input after
    input) ``grad[grad_at[u]:grad_at[u + 1]]``. ``present[u]`` is False where
    no truth was computed (no reference, a NaN input): its entries are NaN,
    kappa 1, scale inf, no kink. ``grad`` is NaN for label inputs."""

    value: np.ndarray
    value_side: np.ndarray
    value_kappa: np.ndarray
    value_scale: np.ndarray
    grad: np.ndarray
    grad_side: np.ndarray
    grad_kappa: np.ndarray
    grad_scale: np.ndarray
    kink: np.ndarray
    unresolved: np.ndarray
    value_limit: np.ndarray   # at ±inf inputs: limits.LIMIT, UNSETTLED or INDETERMINATE (the truth is NaN)
    value_range: np.ndarray   # (entries, 2): where indeterminate, the range of the path limits
    grad_limit: np.ndarray
    grad_range: np.ndarray
    value_at: np.ndarray
    grad_at: np.ndarray
    present: np.ndarray
    bits: np.ndarray

    def value_in(self, f: Format) -> np.ndarray:
        """Every value truth rounded to ``f``."""
        return round_split(self.value, self.value_side, f)

    def grad_in(self, f: Format) -> np.ndarray:
        """Every VJP truth rounded to ``f`` (NaN at kinks, where unresolved and
        where no limit: not judged there)."""
        return np.where(self.kink | self.unresolved | (self.grad_limit > 0), np.nan,
                        round_split(self.grad, self.grad_side, f))

    @classmethod
    def of(cls, records: list[bytes | None], sizes: list[tuple[int, int]]) -> "TruthTable":
        """Columns of ``records`` (None: no truth), ``sizes[u]`` = (values, VJP
        entries) of point ``u``."""
        nv = np.array([s[0] for s in sizes], dtype=np.int64)
        ng = np.array([s[1] for s in sizes], dtype=np.int64)
        value_at = np.concatenate([[0], np.cumsum(nv)])
        grad_at = np.concatenate([[0], np.cumsum(ng)])
        table = cls(*_empty(int(value_at[-1]), int(grad_at[-1])), value_at, grad_at,
                    np.array([r is not None for r in records], dtype=bool), np.zeros(len(records), dtype=np.int64))
        for (v, g), points in _by_shape(records).items():
            recs = np.frombuffer(b"".join([records[u] for u in points]), dtype=_record(v, g))
            table.bits[points] = recs["header"]["bits"]
            vi = (value_at[points][:, None] + np.arange(v)).ravel()
            gi = (grad_at[points][:, None] + np.arange(g)).ravel()
            for name in ("value", "value_side", "value_kappa", "value_scale", "value_limit"):
                getattr(table, name)[vi] = recs[name].ravel()
            for name in ("grad", "grad_side", "grad_kappa", "grad_scale", "kink", "unresolved", "grad_limit"):
                getattr(table, name)[gi] = recs[name].ravel()
            table.value_range[vi] = recs["value_range"].reshape(-1, 2)
            table.grad_range[gi] = recs["grad_range"].reshape(-1, 2)
        return table


def _by_shape(records: list) -> dict[tuple[int, int], np.ndarray]:
    """Positions of the records of each (values, VJP entries) shape: grouped by
    length first (one shape in a grid), then by their headers, read at once."""
    by_length: dict[int, list[int]] = {}
    for u, r in enumerate(records):
        if r is not None:
            by_length.setdefault(len(r), []).append(u)
    out: dict[tuple[int, int], list] = {}
    for points in by_length.values():
        heads = np.frombuffer(b"".join([records[u][:_HEADER.itemsize] for u in points]), dtype=_HEADER)
        points = np.array(points)
        for v, g in set(zip(heads["values"].tolist(), heads["grads"].tolist())):
            out.setdefault((v, g), []).append(points[(heads["values"] == v) & (heads["grads"] == g)])
    return {shape: np.concatenate(parts) for shape, parts in out.items()}


def _empty(nv: int, ng: int) -> tuple:
    return (np.full(nv, np.nan), np.zeros(nv, np.int8), np.ones(nv), np.full(nv, np.inf),
            np.full(ng, np.nan), np.zeros(ng, np.int8), np.ones(ng), np.full(ng, np.inf), np.zeros(ng, bool),
            np.zeros(ng, bool), np.zeros(nv, np.int8), np.full((nv, 2), np.nan), np.zeros(ng, np.int8),
            np.full((ng, 2), np.nan))


def decode(record: bytes) -> TruthTable:
    """One record as a table of one point.

    Example:
        >>> import mpmath
        >>> t = PointTruth([mpmath.mpf(1) / 3], [1.0], [None], [float("nan")], [False], 160)
        >>> decode(encode(t)).grad.tolist()
        [nan]
    """
    v, g, _ = tuple(np.frombuffer(record, _HEADER, 1)[0])
    return TruthTable.of([record], [(int(v), int(g))])


def encode_columns(value, value_side, value_kappa, value_scale, grad, grad_side, grad_kappa, grad_scale,
                   bits: int) -> list[bytes]:
    """The records of many points of one shape at once, from columns (points by
    entries): what ``encode`` gives for each, with no kinks, nothing unresolved
    and no infinite input.

    Example:
        >>> import mpmath
        >>> one, exact = np.ones((1, 1)), np.zeros((1, 1), np.int8)
        >>> m = mpmath.mpf(1)
        >>> encode_columns(one, exact, one, one, one, exact, one, one, 160)[0] == \\
        ...     encode(PointTruth([m], [1.0], [m], [1.0], [False], 160, [1.0], [1.0]))
        True
    """
    points, nv = np.shape(value)
    ng = np.shape(grad)[1]
    recs = np.zeros(points, dtype=_record(nv, ng))
    recs["header"] = (nv, ng, bits)
    recs["value_range"] = recs["grad_range"] = np.nan
    for name, column in (("value", value), ("value_side", value_side), ("value_kappa", value_kappa),
                         ("value_scale", value_scale), ("grad", grad), ("grad_side", grad_side),
                         ("grad_kappa", grad_kappa), ("grad_scale", grad_scale)):
        recs[name] = column
    return [r.tobytes() for r in recs]
