"""A broken case is an error with a name, a point and a cause, never a crash."""

from __future__ import annotations


class CaseError(Exception):
    """The case itself is broken (not a numerical defect): its forward raised,
    returned the wrong shape, dtype or device; its backward returned None or a
    wrong shape; its reference raised, returned complex or never converged;
    its grid holds a point outside the domain."""

    def __init__(self, case: str, cause: str, point=None):
        self.case, self.cause, self.point = case, cause, point
        where = f" at {format_point(point)}" if point is not None else ""
        super().__init__(f"case {case!r}{where}: {cause}")


def _short(v: float) -> str:
    """Six digits when they name the float, else all of them: neighbouring
    grid floats must not print alike."""
    text = f"{v:.6g}"
    return text if float(text) == v or v != v else repr(v)


def format_point(point) -> str:
    """A point in a few characters: a float, a tuple of them, or array summaries."""
    import numpy as np

    if isinstance(point, (tuple, list)) and len(point) == 1:
        point = point[0]
    if isinstance(point, (tuple, list)):
        return "(" + ", ".join(format_point(p) for p in point) + ")"
    arr = np.asarray(point, dtype=np.float64)
    if arr.ndim == 0:
        return _short(float(arr))
    flat = arr.ravel()
    body = ", ".join(f"{v:.3g}" for v in flat[:6]) + (", …" if flat.size > 6 else "")
    return f"[{body}] shape {tuple(arr.shape)}"
