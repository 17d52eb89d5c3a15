"""A broken case is an error with a name, a point and a cause, never a crash;
a warning for the user points at the user's line, never into the harness."""

from __future__ import annotations

import sys
import warnings


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


_PACKAGE = __name__.partition(".")[0]
#: Called from the plugin, the first frame outside the harness is the test
#: runner's: a warning points at the case's definition instead.
_RUNNER = ("_pytest", "pytest", "pluggy")


def _root(frame) -> str:
    # By module, not file name: a dataclass's generated __init__ has the file
    # "<string>" and its class's module.
    return str(frame.f_globals.get("__name__", "")).partition(".")[0]


def _user_frame(frame):
    """The first frame outside the harness, from ``frame`` outward (None if none)."""
    while frame is not None and _root(frame) == _PACKAGE:
        frame = frame.f_back
    return frame


def definition_site() -> tuple[str, int, str] | None:
    """``(file, line, module)`` of the user's line running now: where a Case
    is being defined."""
    frame = _user_frame(sys._getframe(1))
    if frame is None:
        return None
    return frame.f_code.co_filename, frame.f_lineno, str(frame.f_globals.get("__name__", ""))


def warn_user(warning: Warning, case=None) -> None:
    """Issue ``warning`` at the user's line: the first frame outside the
    harness (a script's or a test's ``certify`` call); called from the pytest
    plugin, where that frame is pytest's, the line that defines ``case``.

    Example (in the harness; a script's ``certify(case)`` line gets it):
        >>> warn_user(LongCertification("expect about 3 min"), case)  # doctest: +SKIP
    """
    frame = _user_frame(sys._getframe(1))
    site = getattr(case, "defined_at", None)
    if frame is not None and (_root(frame) not in _RUNNER or site is None):
        filename, lineno, module, where = (frame.f_code.co_filename, frame.f_lineno,
                                           str(frame.f_globals.get("__name__", "")), frame.f_globals)
    elif site is not None:
        filename, lineno, module = site
        where = getattr(sys.modules.get(module), "__dict__", None)
    else:
        warnings.warn(warning, stacklevel=2)
        return
    # What warnings.warn passes: the registry keeps "default" to once per line.
    registry = where.setdefault("__warningregistry__", {}) if where is not None else None
    try:
        warnings.warn_explicit(warning, type(warning), filename, lineno, module, registry, where)
    except ImportError:
        # A module run with ``python -m`` is ``__main__``, which its loader will not
        # fetch the source line of: the warning without it.
        warnings.warn_explicit(warning, type(warning), filename, lineno, module, registry)


#: Where no domain can be narrowed: the inputs constrain each other (a hint that
#: ends the errors of a reference undefined at a point of the grid).
_RELATION_HINT = ", or, where the inputs constrain each other, declare it: relation=lambda x, y: x > y"
