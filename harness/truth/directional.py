"""The directional derivative ``J(x) v`` of a flat reference, as a reference of
its own: what forward-mode and second-order truths are computed from.

The truth engine differentiates a reference numerically and verifies the
result by raising the precision (``harness.truth``). Handing it
``psi(x) = J(x) v`` instead of ``f`` gives both new truths in one solve, at
the same cotangent ``g``:

- its value is the JVP along ``v`` (forward mode);
- its VJP is ``d/dx <g, J(x) v> = d/dx <J(x)^T g, v> = H v``, the
  Hessian-vector product of ``<g, f>`` along ``v`` (double backward),

each with the engine's resolution check, escalation, kink detection and
condition numbers, as for first derivatives.

``psi`` is itself a difference quotient along ``v`` (all inputs at once),
taken *inside* the engine's working precision ``b`` so that its error shrinks
as the engine raises ``b``: a central quotient at the step
``scale * 2**-(b/2 + 16)`` (``scale`` = the smallest ``|x_i / v_i|``, 1 for an
input at 0) has a truncation error of order ``step**2 = 2**-(b + 32)`` of
``scale**2 f'''``, and evaluated at ``1.5 b + 64`` bits a rounding error of
``2**-(1.5 b + 64) / step = 2**-(b + 48)``: both below one unit of ``b`` bits,
so the engine's comparison of ``b`` against ``b - 32`` bits measures what is
left, and an unresolved quotient makes it raise ``b`` like any reference.
Next to a domain's endpoint the quotient turns one-sided, with one
Richardson step for the same order of error.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import mpmath

from ..inputs.domains import Domain

#: psi's step is ``scale * 2**-(b // 2 + STEP_MARGIN)`` at working precision ``b``.
STEP_MARGIN = 16
#: ... and its quotient is evaluated at ``b * 3 // 2 + EXTRA_BITS`` bits, or
#: more where its stencil values cancel (``Directional._along``).
EXTRA_BITS = 64
MAX_INNER_BITS = 1 << 16
MAX_RETRIES = 8


@dataclass(frozen=True)
class Directional:
    """``x -> J(x) v`` of ``reference`` (a flat ``list[mpf] -> list[mpf]``), a
    flat reference of the same outputs. Picklable like the references it
    wraps (a remote executor sends it with its tasks).

    Example:
        >>> psi = Directional(lambda v: [mpmath.exp(v[0])], (1.0,), (Domain(),))
        >>> with mpmath.workprec(160):
        ...     print(mpmath.nstr(psi([mpmath.mpf(1)])[0], 20))
        2.7182818284590452354
    """

    reference: Callable
    tangent: tuple[float, ...]
    domains: tuple[Domain, ...]

    def __call__(self, x: list) -> list:
        bits = mpmath.mp.prec
        moving = {i: mpmath.mpf(v) for i, v in enumerate(self.tangent) if v != 0 and not self.domains[i].discrete}
        if not moving:
            return [mpmath.mpf(0) for _ in self.reference(x)]
        # One quotient along v for all inputs at once (two evaluations, not two
        # per input: a point of 50 log weights would cost 100); where the
        # domain lets no common step go either way, one per input.
        column = self._along(x, moving, bits)
        if column is None:
            parts = [self._along(x, {i: v}, bits) for i, v in moving.items()]
            with mpmath.workprec(4 * bits):
                column = [mpmath.fsum(p[k] for p in parts) for k in range(len(parts[0]))]
        return [+c for c in column]   # rounded to the caller's precision

    def _along(self, x: list, direction: dict, bits: int) -> list | None:
        """The quotient along ``direction`` (input -> tangent), None where no
        one-sided step stays inside every domain. Two corrections the
        caller's precision cannot see, since two precisions get them wrong
        alike:

        - cancellation: where ``f`` is far larger than its change
          (``exp`` at 1e-50: 1 beside 1e-50, or inputs of very different
          sizes under one step) the stencil's values share many leading
          bits; those are counted and the quotient taken again with that
          many more, so that ``bits + 48`` of it are left;
        - a step above the function's own scale: the step is relative to the
          smallest ``|x_i / v_i|``, but ``exp`` at 1e300 changes by a factor
          ``e`` over 1, not over 1e300; where ``f(x + h v) / f(x - h v)``
          says so, the step is cut to that scale (as the engine's own steps
          are), and the arguments kept exact at the reference's precision."""
        mags = {i: (int(mpmath.mag(x[i])) if x[i] != 0 else 0) - int(mpmath.mag(v)) for i, v in direction.items()}
        h = mpmath.ldexp(1, min(mags.values()) - (bits // 2 + STEP_MARGIN) - 1)
        up, down = self._inside(x, direction, h), self._inside(x, direction, -h)
        if not (up or down):
            return None
        # x_i +- h v_i must survive the reference's rounding of its argument
        # (exp at 1.8e230 reads it to the working precision only).
        reach = lambda step: max(mags.values()) - int(mpmath.mag(step)) + bits + EXTRA_BITS
        prec = max(bits * 3 // 2 + EXTRA_BITS, reach(h))
        flat_checked = False
        for _ in range(MAX_RETRIES):
            with mpmath.workprec(prec):
                column, lost, growth, size = self._quotient(x, direction, h, up, down)
            if lost is None:
                # Every stencil value equal: a flat function, or a change below
                # the precision (exp at 2**-325 is 1 at 304 bits, beside a step
                # of 2**-421). Once, at the bits a change of |f| h would need.
                need = int(mpmath.mag(size)) - int(mpmath.mag(h)) + bits + EXTRA_BITS if size else 0
                if need <= prec or flat_checked:
                    break
                prec, flat_checked = min(need, MAX_INNER_BITS), True
            elif prec - lost < bits + 48 and prec < MAX_INNER_BITS:
                prec = min(bits + 48 + lost + 16, MAX_INNER_BITS)
            elif growth > -(bits // 2 + STEP_MARGIN) + 4:
                h = mpmath.ldexp(h, -(growth + bits // 2 + STEP_MARGIN))
                prec = min(max(prec, reach(h)), MAX_INNER_BITS)
            else:
                break
        return column

    def _quotient(self, x: list, direction: dict, h, up: bool, down: bool) -> tuple:
        """The quotient, the leading bits its stencil values cancel (None
        where they are all equal), about log2 of how many factors ``e`` ``f``
        changes by over the step (-inf where that cannot be read), and the
        stencil's largest value."""
        if up and down:
            values = [self._at(x, direction, h), self._at(x, direction, -h)]
            diffs = [a - b for a, b in zip(*values)]
            column = [d / (2 * h) for d in diffs]
        else:
            # One-sided, at steps h and h/2: 2 D(h/2) - D(h) cancels the O(h) term.
            s = 1 if up else -1
            values = [self._at(x, direction, 0), self._at(x, direction, s * h / 2), self._at(x, direction, s * h)]
            diffs = [4 * m - 3 * c - p for c, m, p in zip(*values)]
            column = [s * d / h for d in diffs]
        size = max((abs(v) for vs in values for v in vs if mpmath.isfinite(v)), default=0)
        if all(d == 0 for d in diffs):
            return column, None, -math.inf, size
        lost, growth = 0, -math.inf
        for k, d in enumerate(diffs):
            ends = [values[0][k], values[-1][k]]
            size = max(abs(v) for v in ends)
            if d == 0 or not mpmath.isfinite(size) or size == 0:
                continue
            lost = max(lost, int(mpmath.mag(size)) - int(mpmath.mag(d)))
            if all(v != 0 for v in ends) and (ends[0] > 0) == (ends[1] > 0) and ends[0] != ends[1]:
                growth = max(growth, int(mpmath.mag(mpmath.log(ends[0] / ends[1]))))
        return column, lost, growth, size

    def _inside(self, x: list, direction: dict, step) -> bool:
        # Exact comparisons: the step is far below one ulp of x, and a float
        # conversion would round x + step back onto an open endpoint.
        for i, v in direction.items():
            d, y = self.domains[i], mpmath.fadd(x[i], mpmath.fmul(step, v, exact=True), exact=True)
            if not ((d.lo is None or y > d.lo) and (d.hi is None or y < d.hi)):
                return False
        return True

    def _at(self, x: list, direction: dict, step) -> list:
        y = list(x)
        for i, v in direction.items():
            y[i] = mpmath.fadd(x[i], mpmath.fmul(step, v, exact=True), exact=True)
        return self.reference(y)
