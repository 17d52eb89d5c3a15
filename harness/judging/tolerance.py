"""The error budget: how many ULPs a correct implementation may be off.

A stable implementation's result is the exact result for inputs perturbed by
a few units of roundoff (backward stability), so its error is bounded by the
problem's condition number times a few ULPs. The budget at a point is

    allowed ULPs = BUDGET[dtype][quantity] * max(1, kappa)

where ``kappa`` is the componentwise relative condition number of that
quantity at that point, computed from the reference (for a value
``sum_i |x_i * df/dx_i| / |f|``; for a gradient entry the same measure of the
gradient, read off a perturbation of every input, and at least the condition
of the sum over outputs that forms the entry, ``sum_j |g_j df_j/dx_i| / |VJP_i|``:
``mpmath_engine.with_sum_condition``). Ill-conditioned points
get room; well-conditioned points, where unstable formulas lose their digits,
get none. In bits (Herbie's measure), ``log2(1 + allowed ULPs)``.

Below the smallest normal the budget is not the question: a result flushed to
zero (or to a subnormal) is off by at most the smallest normal, which the
format's range explains and no formula can avoid without subnormal support.
``underflow`` says per dtype whether such an entry fails: in float16 its
subnormals (6e-8 to 6e-5) hold gradients real training produces, so it does;
in the others it is listed in the report and does not fail.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import torch

from ..inputs.floats import Format, ulps_between

#: ULPs allowed at condition number <= 1, per dtype, for the value and the gradient
#: (a backward chains more roundings than its forward), the JVP (forward mode
#: chains as many as the backward) and the Hessian-vector product. 8 and not 4: a stable
#: composite such as ``logsumexp(x) - log(K)`` cancels internally where the
#: result is small, costing ~5 ULPs that no input perturbation explains.
#: ``underflow``: whether a flush to zero fails (``"fail"``) or is only listed
#: (``"report"``); see the module docstring.
BUDGET: dict[torch.dtype, dict[str, float | str]] = {
    torch.float64: {"value": 8.0, "gradient": 16.0, "jvp": 16.0, "hvp": 16.0, "underflow": "report"},
    torch.float32: {"value": 8.0, "gradient": 16.0, "jvp": 16.0, "hvp": 16.0, "underflow": "report"},
    torch.float16: {"value": 8.0, "gradient": 16.0, "jvp": 16.0, "hvp": 16.0, "underflow": "fail"},
    torch.bfloat16: {"value": 8.0, "gradient": 16.0, "jvp": 16.0, "hvp": 16.0, "underflow": "report"},
}
UNDERFLOW_POLICIES = ("fail", "report")

#: A finite-difference estimate is informative where its error is below this
#: fraction of its size; only there can it convict a backward of inconsistency.
FD_INFORMATIVE = 0.25
#: How many estimated errors apart backward and finite differences must be.
FD_SIGMAS = 3.0


def base_ulps(dtype: torch.dtype, quantity: str, override: Mapping | None = None) -> float:
    """The table entry, a case's override merged over it.

    Example:
        >>> base_ulps(torch.float32, "gradient", {"float32": {"gradient": 64}})
        64
    """
    table = dict(BUDGET[dtype])
    if override:
        name = str(dtype).removeprefix("torch.")
        for key, value in override.items():
            if key in (dtype, name, "*"):
                table.update(value)
    return table[quantity]


def underflow_policy(dtype: torch.dtype, case: str | None = None, run: str | None = None,
                     override: Mapping | None = None) -> str:
    """``"fail"`` or ``"report"``: the run's choice, else the case's, else the
    table's (a case's ``budget`` override merged over it).

    Example:
        >>> underflow_policy(torch.float32), underflow_policy(torch.float16)
        ('report', 'fail')
        >>> underflow_policy(torch.float16, case="report", run="fail")
        'fail'
    """
    policy = run or case or base_ulps(dtype, "underflow", override)
    if policy not in UNDERFLOW_POLICIES:
        raise ValueError(f"underflow policy {policy!r}: choose from {', '.join(UNDERFLOW_POLICIES)}")
    return policy


#: Whether a NaN or inf claim where the limit at ±inf depends on the path
#: fails: "report" lists such entries (there is no truth to judge them by),
#: "finite" fails a NaN or inf there (``harness.truth.limits``).
INDETERMINATE_POLICIES = ("report", "finite")


def indeterminate_policy(case: str | None = None, run: str | None = None) -> str:
    """The run's choice, else the case's, else ``"report"``.

    Example:
        >>> indeterminate_policy(), indeterminate_policy(case="finite"), indeterminate_policy("finite", "report")
        ('report', 'finite', 'report')
    """
    policy = run or case or "report"
    if policy not in INDETERMINATE_POLICIES:
        raise ValueError(f"indeterminate policy {policy!r}: choose from {', '.join(INDETERMINATE_POLICIES)}")
    return policy


def allowed_ulps(base: float, kappa: np.ndarray) -> np.ndarray:
    """ULPs allowed at each point for condition numbers ``kappa`` (NaN counts as 1)."""
    kappa = np.nan_to_num(np.asarray(kappa, dtype=np.float64), nan=1.0, posinf=np.inf)
    with np.errstate(over="ignore"):
        return base * np.maximum(1.0, kappa)


def allowed_at_zero(base: float, scale: np.ndarray, f: Format) -> np.ndarray:
    """ULPs allowed where the truth is exactly 0.

    There the relative condition number is infinite, but a backward stable
    result is still within ``base * eps * scale`` of 0, ``scale`` being the
    absolute first-order change ``sum_i |x_i df/dx_i|``: ``log(x)`` at 1 may
    be off by a few ``eps``, ``x**2``'s gradient at 0 not at all. Counted in
    floats from 0, and never below ``base`` of them.

    Example:
        >>> from harness.inputs.floats import fmt
        >>> float(allowed_at_zero(8, np.array(0.0), fmt(torch.float32)))
        8.0
    """
    scale = np.nan_to_num(np.asarray(scale, dtype=np.float64), nan=np.inf, posinf=np.inf)
    with np.errstate(over="ignore", invalid="ignore"):
        bound = base * f.eps * scale
        count = ulps_between(np.zeros_like(bound), np.minimum(bound, f.max), f)
    return np.where(np.isfinite(bound), np.maximum(base, count), np.inf)
