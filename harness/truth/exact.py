"""A formula written in torch, evaluated exactly: a reference for free.

``exact(fn)`` runs ``fn`` on stand-ins for tensors (``ExactTensor``) whose
elements are mpmath numbers. The stand-in defines ``__torch_function__``
(PyTorch's "Extending torch with a Tensor-like type"), so ``torch.log(t)``,
``t.exp()``, ``t * 2`` and ``F.softplus(t)`` all arrive at one table from the
torch function to its implementation in mpmath (``_TABLE``). Anything not in
the table is taken at the ATen level (``exact_aten``: an exact rule per ATen
operation, else torch's own decomposition), and what neither knows raises
``ExactUnsupported`` naming it.

The arithmetic is the formula's mathematics, not its floats':

* ``+``, ``-`` and ``*`` are exact (mpmath's ``prec=0``) while the result fits
  ``EXACT_BITS`` bits, so ``(mu + s * eps) - mu`` gives back ``s * eps`` at any
  working precision; everything else rounds once, at the ambient precision
  (``mpmath.workprec``), so the truth engine's escalation works unchanged.
* A number near 1 carries its distance from 1 (``_One``): ``sigmoid(x)`` knows
  it is ``1 - sigmoid(-x)``, ``1 + exp(x)`` knows it is ``1 + exp(x)``, so
  ``1 - sigmoid(1e30)`` is ``exp(-1e30)``, not the 0 that any finite precision
  rounds it to, and ``log`` of such a number is ``log1p`` of the distance.
* Nothing overflows or rounds to a float: ``exp(1e30)`` is a number,
  ``clamp`` clamps, ``where`` selects. ``x / 0`` is ``±inf`` (``0 / 0`` NaN) and
  ``log(0)`` is ``-inf`` as in mpmath; ``log`` or ``sqrt`` of a negative number
  is complex, which the truth engine reports as an error where it is used.

Python floats and torch tensors inside ``fn`` are constants at their binary
values (``0.1`` is the double nearest 1/10; ``math.pi`` is a double): write a
transcendental constant from a stand-in (``4 * torch.atan(torch.ones_like(x))``)
to have it exact. A custom ``torch.autograd.Function``'s ``apply`` runs its
``forward`` on the stand-ins with a context that saves and marks nothing.
See docs/exact.md for the table of operations and the limits.
"""

from __future__ import annotations

import gc
import hashlib
from pathlib import Path

import numpy as np

from .dual import Dual, STATE as dual_state, value as _value
from .exact_numbers import EXACT_BITS, _MP, _MPF, _ONE_MPF, UNDERFLOW_BITS, _ZERO_MPF
from .exact_table import _build_table, _operators
from .exact_tensor import ExactTensor, ExactUnsupported, _ForwardOnly, _input, _operand, REAL, _unbound_apply

__all__ = ["EXACT_BITS", "UNDERFLOW_BITS", "ExactTensor", "ExactUnsupported", "exact"]

# The fingerprint of an exact reference covers the code that evaluates it.
#: Every module whose code decides what an exact reference computes: each
#: ``exact*.py`` (found, not listed, so a new one is never left out) and the
#: jets and balls they use.
_SOURCE_FILES = sorted(Path(__file__).parent.glob("exact*.py")) + \
    [Path(__file__).with_name(name) for name in ("dual.py", "ball_jet.py", "ball.py")]
_SOURCE = hashlib.sha256(b"".join(path.read_bytes() for path in _SOURCE_FILES)).hexdigest()


def exact(fn):
    """A reference evaluating the torch formula ``fn`` exactly, in mpmath.

    Args:
        fn: a function of tensors written with torch (or a custom
            ``autograd.Function``'s ``apply``), called with one stand-in per
            input: 0-d for an elementwise case, the input's shape otherwise.

    Returns:
        ``reference(*inputs)``: inputs are ``mpf`` (or nested lists of them),
        the result an ``mpf`` or a nested list, at the ambient mpmath precision.

    Example:
        >>> ref = exact(lambda x: -torch.log(torch.sigmoid(x)))
        >>> mpmath.nstr(ref(mpmath.mpf(40)), 6)   # exp(-40): sigmoid(40) rounds to 1 in float64
        '4.24835e-18'
    """
    fn = _unbound_apply(fn)
    source = _SOURCE   # the fingerprint of the reference covers this module's code

    def reference(*inputs):
        return _evaluate(fn, inputs, source)

    def jacobian(*inputs, active=None):
        return _evaluate_dual(fn, inputs, active)

    name = getattr(fn, "__name__", type(fn).__name__)
    reference.__name__ = reference.__qualname__ = f"exact({name})"
    reference.jacobian = jacobian
    reference.formula = fn   # for the interval engine (harness.truth.ball), which runs it on balls
    return reference


def _evaluate(fn, inputs, source):
    args = [ExactTensor(_input(v), REAL) for v in inputs]
    with _ForwardOnly():
        out = fn(*args)
    return _result(out)


def _evaluate_dual(fn, inputs, active=None):
    """The value and the tangents of ``fn`` at ``inputs`` (forward mode, one
    direction per input element, flat index over all inputs in order;
    ``active``: the indices to differentiate along, default all).

    Returns ``(values, tangents, marked)``: nested like the reference's
    result, each tangent a dict from input index to partial derivative, and
    why the point cannot be differentiated by rules (None when it can).
    An operation without a derivative raises (``TypeError``, or
    ``ExactUnsupported``)."""
    args, start = [], 0
    for v in inputs:
        a = _input(v)
        flat = a.reshape(-1)
        duals = np.empty(flat.shape, dtype=object)
        for i, e in enumerate(flat):
            k = start + i
            duals[i] = Dual(e, {k: _ONE_MPF}) if active is None or k in active else e
        start += flat.size
        args.append(ExactTensor(duals.reshape(a.shape), REAL))
    dual_state.start()
    # The results it remembers (dual.STATE.formed) are many and live until it ends, and
    # they form no cycles: a cyclic collection would walk them again and again.
    collecting = gc.isenabled()
    gc.disable()
    try:
        with _ForwardOnly():
            out = fn(*args)
    finally:
        if collecting:
            gc.enable()
    marked = dual_state.marked
    dual_state.start()
    values = _result(out, lambda v: _rounded(_value(v)))
    # Tangents as computed, not rounded to the working precision: exact while
    # they fit, so a VJP entry within 2**-700 of a float64 midpoint (d/dx of
    # (x + y)**2/8 + (y - x)**2/4 at x = -0x1.3ffffffffffffp+512, y = 2**-257)
    # still rounds to the right side.
    tangents = _result(out, lambda v: dict(v.d) if type(v) is Dual else {})
    return values, tangents, marked


def _result(out, part=None):
    """The result as mpf (or nested lists), or ``part`` of each element."""
    part = part or _rounded
    if isinstance(out, (tuple, list)):
        return [_result(v, part) for v in out]
    t = _operand(out)
    if t.a.ndim == 0:
        return part(t.a[()])
    return np.frompyfunc(part, 1, 1)(t.a).tolist()


def _rounded(v):
    """To the working precision, as a plain mpf (or mpc: the engine reports it);
    below ``2**-UNDERFLOW_BITS``, 0."""
    if isinstance(v, _MPF):
        t = v._mpf_
        return _ZERO_MPF if t[1] and t[2] + t[3] < -UNDERFLOW_BITS else +v
    return +v if isinstance(v, _MP.mpc) else _MP.mpf(int(v))


_build_table()
_operators()
