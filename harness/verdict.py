"""Per-point verdicts: the kind of defect, the error in ULPs and bits.

Against the truth rounded to the dtype: a non-finite result where the truth
is finite, a finite one where the truth rounds to inf, and a wrong sign
always fail; otherwise the distance in ULPs is held against the budget
(``tolerance``), and an exact zero that misses it is named a silent zero.
Against finite differences of the forward: a backward more than
``FD_SIGMAS`` estimated errors (plus the budget) away from an informative
estimate is inconsistent with its own forward.
"""

from __future__ import annotations

import numpy as np

from .expectations import Expectation
from .floats import Format, bits_of_error, ulps_between
from .tolerance import FD_INFORMATIVE, FD_SIGMAS


def against_truth(claimed: np.ndarray, truth: np.ndarray, allowed: np.ndarray, f: Format,
                  nan_input: np.ndarray) -> tuple[list[list[str]], np.ndarray, np.ndarray]:
    """Kinds per entry, ULPs and bits of error (truth already rounded to ``f``)."""
    claimed = np.asarray(claimed, dtype=np.float64)
    truth = np.asarray(truth, dtype=np.float64)
    ulps = ulps_between(claimed, truth, f)
    bits = bits_of_error(ulps, f)
    kinds: list[list[str]] = [[] for _ in range(claimed.size)]
    c_finite, t_finite = np.isfinite(claimed), np.isfinite(truth)
    for i in range(claimed.size):
        c, t = claimed.flat[i], truth.flat[i]
        if nan_input.flat[i]:
            if np.isnan(c):
                bits.flat[i] = 0.0  # NaN in, NaN out: exact
            else:
                kinds[i].append("nan-swallowed")
            continue
        if np.isnan(t):
            continue  # no truth here (a kink, or a label input)
        if not c_finite.flat[i]:
            if t_finite.flat[i] or np.isnan(c):
                kinds[i].append("non-finite")
            elif c != t:
                kinds[i].append("wrong-sign")
            continue
        if not t_finite.flat[i]:
            # inf counts as one float past max: max itself may be within budget.
            if ulps.flat[i] > allowed.flat[i]:
                kinds[i].append("finite-vs-inf")
        elif c != 0 and t != 0 and (c > 0) != (t > 0):
            kinds[i].append("wrong-sign")
        elif ulps.flat[i] > allowed.flat[i]:
            kinds[i].append("silent-zero" if c == 0 and t != 0 else "lost-digits")
    return kinds, ulps, bits


def against_finite_differences(claimed: np.ndarray, estimate: np.ndarray, error: np.ndarray,
                               allowed: np.ndarray, f: Format) -> tuple[np.ndarray, np.ndarray]:
    """(inconsistent, informative): where the backward disagrees with an
    informative estimate from its forward's finite differences."""
    claimed = np.asarray(claimed, dtype=np.float64)
    # An estimate beyond the format's range is no finite estimate in that format.
    estimate = np.where(np.abs(estimate) > f.max, np.copysign(np.inf, estimate), estimate)
    with np.errstate(invalid="ignore", over="ignore"):
        scale = np.maximum(np.abs(estimate), np.abs(claimed))
        informative = np.isfinite(estimate) & np.isfinite(error) & (error <= FD_INFORMATIVE * scale)
        slack = FD_SIGMAS * error + allowed * np.array([f.ulp(float(v)) for v in np.abs(estimate).ravel()]).reshape(np.shape(estimate))
        far = np.abs(claimed - estimate) > slack
    return informative & (far | ~np.isfinite(claimed)), informative


def meets(expectation: Expectation, ok: bool, kinds: set[str], features: list[float]) -> str | None:
    """None if the report meets the expectation, else why not."""
    if not expectation.convicted:
        return None if ok else "expected certified"
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
