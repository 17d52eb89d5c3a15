"""Per-point verdicts: the kind of defect, the error in ULPs and bits.

Against the truth rounded to the dtype: a non-finite result where the truth
is finite, a finite one where the truth rounds to inf, and a wrong sign
always fail; otherwise the distance in ULPs is held against the budget
(``tolerance``), and an exact zero that misses it is named a silent zero,
unless the truth lies below the smallest normal and the error within it: a
flush to zero, named ``underflow`` (whether it fails is the dtype's policy).
Against finite differences of the forward: a backward more than
``FD_SIGMAS`` estimated errors (plus the budget) away from an informative
estimate is inconsistent with its own forward.
"""

from __future__ import annotations

import numpy as np

from .expectations import Expectation
from ..inputs.floats import Format, bits_of_error, ulp_of, ulps_between
from .kinds import CODE, KIND_NAMES  # noqa: F401  (KIND_NAMES: the doctest)
from .tolerance import FD_INFORMATIVE, FD_SIGMAS


def against_truth(claimed: np.ndarray, truth: np.ndarray, allowed: np.ndarray, f: Format,
                  nan_input: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per entry: the kind's code (``kinds.CODE``; -1 where it passes or is not
    judged), ULPs and bits of error (truth already rounded to ``f``).

    Example:
        >>> from harness.inputs.floats import fmt
        >>> import torch
        >>> kind, ulps, bits = against_truth(np.array([0.0, 2.0]), np.array([1.0, -2.0]), np.array([8.0, 8.0]),
        ...                                  fmt(torch.float32), np.zeros(2, bool))
        >>> [KIND_NAMES[k] for k in kind]
        ['silent-zero', 'wrong-sign']
        >>> kind, _, _ = against_truth(np.array([0.0]), np.array([1e-40]), np.array([8.0]), fmt(torch.float32),
        ...                            np.zeros(1, bool))
        >>> [KIND_NAMES[k] for k in kind]
        ['underflow']
    """
    c = np.asarray(claimed, dtype=np.float64).ravel()
    t = np.asarray(truth, dtype=np.float64).ravel()
    allowed = np.broadcast_to(np.asarray(allowed, dtype=np.float64), np.shape(claimed)).ravel()
    nan_input = np.broadcast_to(np.asarray(nan_input, dtype=bool), np.shape(claimed)).ravel()
    ulps = ulps_between(c, t, f)
    bits = bits_of_error(ulps, f)
    c_finite, t_finite = np.isfinite(c), np.isfinite(t)
    over = ulps > allowed
    with np.errstate(invalid="ignore", over="ignore"):   # inf - inf, max - -max: decided by other rules
        flushed = ((np.abs(t) < f.tiny) & ((t != 0) | (np.abs(c) < f.tiny)) & (np.abs(c - t) <= f.tiny)
                   & ((c == 0) | (np.signbit(c) == np.signbit(t))))   # a flush keeps the sign, or gives 0
    kind = np.full(c.shape, -1)
    # The first rule that applies names the entry (a NaN input, no truth: nothing more is asked).
    rules = [
        (nan_input & np.isnan(c), -1),
        (nan_input, CODE["nan-swallowed"]),
        (np.isnan(t), -1),   # no truth here (a kink, or a label input)
        (~c_finite & (t_finite | np.isnan(c)), CODE["non-finite"]),
        (~c_finite & (c != t), CODE["wrong-sign"]),
        (~c_finite, -1),
        # inf counts as one float past max: max itself may be within budget.
        (~t_finite & over, CODE["finite-vs-inf"]),
        (~t_finite, -1),
        ((c != 0) & (t != 0) & ((c > 0) != (t > 0)), CODE["wrong-sign"]),
        # A truth the format holds only as a subnormal (or a subnormal or 0
        # claimed for a truth below the smallest normal), missed by no more
        # than the smallest normal: what a flush to zero does.
        (over & flushed, CODE["underflow"]),
        (over & (c == 0) & (t != 0), CODE["silent-zero"]),
        (over, CODE["lost-digits"]),
    ]
    decided = np.zeros(c.shape, dtype=bool)
    for mask, code in rules:
        take = mask & ~decided
        kind[take] = code
        decided |= take
    bits = np.where(nan_input & np.isnan(c), 0.0, bits)   # NaN in, NaN out: exact
    shape = np.shape(claimed)
    return kind.reshape(shape), ulps.reshape(shape), bits.reshape(shape)


def against_finite_differences(claimed: np.ndarray, estimate: np.ndarray, error: np.ndarray,
                               allowed: np.ndarray, f: Format) -> tuple[np.ndarray, np.ndarray]:
    """(inconsistent, informative): where the backward disagrees with an
    informative estimate from its forward's finite differences."""
    claimed = np.asarray(claimed, dtype=np.float64)
    # An estimate beyond the format's range is no finite estimate in that format.
    estimate = np.where(np.abs(estimate) > f.max, np.copysign(np.inf, estimate), estimate)
    with np.errstate(invalid="ignore", over="ignore"):
        # fmax: a NaN claim leaves the estimate's own size (the column shows it where it helps most).
        scale = np.fmax(np.abs(estimate), np.abs(claimed))
        informative = np.isfinite(estimate) & np.isfinite(error) & (error <= FD_INFORMATIVE * scale)
        slack = FD_SIGMAS * error + allowed * ulp_of(np.abs(estimate), f)
        far = np.abs(claimed - estimate) > slack
    return informative & (far | ~np.isfinite(claimed)), informative


def meets(expectation: Expectation, ok: bool, kinds: set[str], features: list[float], dense: bool = False) -> str | None:
    """None if the report meets the expectation, else why not; ``dense``: the
    report judged a dense or exhaustive sweep."""
    if not expectation.convicted:
        return None if ok else "expected certified"
    if ok and expectation.dense_only and not dense:
        return None
    if ok:
        return f"expected {expectation}, but it passed every check: a known-bad implementation must be convicted"
    other = kinds - expectation.kinds
    if other:
        return f"expected {expectation}, but it also fails with {', '.join(sorted(other))}"
    if expectation.within is not None:
        lo, hi = expectation.within
        outside = [v for v in features if not lo <= v <= hi]
        if outside:
            return (f"expected failures only within [{lo:g}, {hi:g}], but {len(outside)} lie outside "
                    f"(e.g. at {outside[0]:.6g})")
    return None
