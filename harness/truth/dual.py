"""Forward-mode derivatives for ``harness.exact``: dual numbers of mpmath values.

A ``Dual`` is an element of an exact stand-in that depends on the inputs: its
value (an mpmath number, possibly a number near 1 that keeps its distance from
1) and its tangent, a sparse map from input index to the partial derivative
of this element along that input. Every input element gets its own direction,
so one evaluation gives the whole Jacobian: ``exp(x) + log1p(y)`` carries
``{x: exp(x), y: 1/(1 + y)}``, and no precision has to resolve ``log1p(y)``
beside ``exp(32768)`` to know its derivative. A tangent is never a difference
of two values, so no step size is chosen and nothing cancels that the formula
does not itself cancel.

An operation takes part by being ``lift``-ed with its rule: the partial
derivatives of its result at the values of its arguments. Everything else sees
only values: an mpmath function called on a ``Dual`` raises (mpmath cannot
convert it), so a path without a rule fails loudly instead of dropping a
derivative, and the truth engine then takes differences instead.

Non-smooth points are *marked*, never differentiated: a comparison of two
equal values (the switching point of ``abs``, ``clamp``, ``where``, ``max``),
an integer at ``floor``, or a partial derivative that is infinite or NaN where
it is used (``sqrt`` at 0) sets ``STATE.marked`` with the reason. A marked
evaluation is not a truth; the difference engine decides whether the function
is smooth there (the stable softplus ``max(x, 0) + log1p(exp(-|x|))`` is, at 0,
with derivative 1/2, although each of its pieces has a kink).
"""

from __future__ import annotations

import contextlib
import functools

import mpmath

_MPF = type(mpmath.mp.mpf(0))


class _State:
    """Why the current evaluation is not differentiable there (None: it is),
    and the results it has formed from duals (``lift``), each by its
    function and its arguments: the same operation on the same duals is
    the same dual, so ``identities`` sees ``a - a`` where a formula forms
    ``a`` twice (a reflected padding's ``log2`` of one element at two
    places, ``x[k] - min(x)`` beside ``max(x) - min(x)``)."""

    __slots__ = ("marked", "formed", "kept", "absolute")

    def __init__(self):
        self.marked = None
        self.formed = {}
        self.kept = 0
        self.absolute = False

    def start(self) -> None:
        self.marked = None
        self.formed.clear()
        self.kept = 0

    def remember(self, key: tuple, args: tuple, out) -> None:
        """Keep ``out`` as the result of ``key`` (``args`` kept with it, so
        that their ids stay theirs), up to ``FORMED_KEPT`` tangent entries."""
        if self.kept < FORMED_KEPT:
            self.formed[key] = (args, out)
            self.kept += 1 + len(out.d)

    def mark(self, why: str) -> None:
        if self.marked is None and not self.absolute:
            self.marked = why


STATE = _State()


@contextlib.contextmanager
def absolute_paths():
    """Evaluations inside carry, instead of each partial derivative, the sum
    of the absolute values of its terms: every path from an input to an
    output contributes ``|product of the partials along it|``, so nothing
    cancels (``a - a`` has 2 where its derivative has 0). This is the size of
    what a derivative is computed from, in any order of the chain rule
    (autograd's reverse mode sums the same path products), and so the scale of
    its rounding: a true 0 computed from terms of 0.01 may be 1e-18 off.
    Identities are off (they would drop the paths), switching points are
    not marked (a magnitude needs no derivative), and the values are as
    usual."""
    saved = STATE.absolute
    STATE.absolute = True
    try:
        yield
    finally:
        STATE.absolute = saved


def _rounded_mul(a, b):
    return a * b


def _rounded_add(a, b):
    return a + b


#: How tangents are multiplied and summed; ``harness.exact`` sets its exact
#: ``*`` and ``+`` (exact while they fit): a tangent rounded at the working
#: precision loses a term another one dwarfs, as a value would (d/dx of
#: (x + y)**2/8 + (y - x)**2/4 at x = -1.7e154, y = 8.6e-78 keeps -y/4
#: only in exact arithmetic), and two precisions that both lose it agree.
ARITHMETIC = {"mul": _rounded_mul, "add": _rounded_add}


class Dual:
    """``v + sum_k d[k] eps_k``: a value and its partial derivatives by input index.

    Arithmetic operators and comparisons work on duals (the operators are set
    by ``harness.exact`` to its own exact ``+ - * /``); comparisons compare
    values and mark a tie.

    Example:
        >>> from harness.truth.exact_numbers import _exp
        >>> y = _exp(Dual(mpmath.mpf(0), {0: mpmath.mpf(1)}))
        >>> (float(y.v), {k: float(t) for k, t in y.d.items()})
        (1.0, {0: 1.0})
    """

    __slots__ = ("v", "d")

    def __init__(self, v, d: dict):
        self.v, self.d = v, d

    def __repr__(self):
        return f"Dual({mpmath.nstr(self.v, 8)}, {{{', '.join(f'{k}: {mpmath.nstr(t, 8)}' for k, t in self.d.items())}}})"

    __hash__ = object.__hash__

    def __bool__(self):
        return bool(self.v)

    def __float__(self):
        raise TypeError("float() of a value that carries a derivative")


def value(v):
    """The value of a dual, or ``v`` itself."""
    return v.v if type(v) is Dual else v


def _compare(op, reflected):
    def cmp(self, other):
        a, b = self.v, value(other)
        if a == b:
            STATE.mark("a comparison of two equal values (a switching point)")
        return op(a, b)
    cmp.__name__ = reflected
    return cmp


for _name, _op in (("lt", lambda a, b: a < b), ("le", lambda a, b: a <= b), ("gt", lambda a, b: a > b),
                   ("ge", lambda a, b: a >= b), ("eq", lambda a, b: a == b), ("ne", lambda a, b: a != b)):
    setattr(Dual, f"__{_name}__", _compare(_op, _name))


def _combine(terms) -> dict:
    """``sum_k p_k d_k`` over the dual arguments, at the working precision.
    A partial that is infinite or NaN where a derivative flows through it
    marks the point (``sqrt`` at 0, ``log`` at 0)."""
    out: dict = {}
    for p, a in terms:
        if type(a) is not Dual:
            continue
        if callable(p):
            p = p()
        if p == 0:
            continue
        if STATE.absolute:
            p = abs(p)
        if isinstance(p, _MPF) and (mpmath.isnan(p) or (mpmath.isinf(p) and not _carries(a.d))):
            STATE.mark(f"an infinite or NaN partial derivative ({mpmath.nstr(p, 3)}) times 0")
            continue
        mul, add = ARITHMETIC["mul"], ARITHMETIC["add"]
        for k, t in a.d.items():
            pt = mul(p, abs(t) if STATE.absolute else t)
            out[k] = add(out[k], pt) if k in out else pt
    return out


def _carries(d: dict) -> bool:
    """Whether a tangent is nonzero along every direction it holds: an infinite
    partial times it is infinite (exp(1e308)'s derivative is past every
    format); times 0 it is undefined (sqrt at 0 of x**2), and NaN always is."""
    return bool(d) and all(t != 0 and not mpmath.isnan(t) for t in d.values())


def lift(rule):
    """Make an element function take duals: ``rule(out, *values)`` gives the
    partial derivatives of ``out = f(*values)``, one per argument (a callable
    to compute only where that argument carries a derivative). Without a
    dual argument ``f`` runs as before."""
    def wrap(f):
        @functools.wraps(f)
        def g(*args):
            for a in args:
                if type(a) is Dual:
                    key = (g, *map(id, args))
                    seen = STATE.formed.get(key)
                    if seen is not None:
                        return seen[1]
                    values = [value(v) for v in args]
                    out = f(*values)
                    out = Dual(out, _combine(zip(rule(out, *values), args)))
                    STATE.remember(key, args, out)
                    return out
            return f(*args)
        g.rule = rule
        return g
    return wrap


def lift_row(jvp):
    """The same for a function of a list of elements (a reduction or a row
    operation): ``jvp(out, values, tangents)`` gives the tangent of ``out``
    (a dict, or a list of dicts for a list result) from the tangents of the
    elements (dicts; ``{}`` for constants)."""
    def wrap(f):
        @functools.wraps(f)
        def g(values, *rest):
            if not any(type(v) is Dual for v in values):
                return f(values, *rest)
            plain = [value(v) for v in values]
            out = f(plain, *rest)
            tangents = [v.d if type(v) is Dual else {} for v in values]
            d = jvp(out, plain, tangents, *rest)
            if isinstance(out, list):
                return [Dual(o, t) for o, t in zip(out, d)]
            return Dual(out, d)
        return g
    return wrap


#: How many tangent entries the results an evaluation remembers may hold
#: (``_State.formed``: about 150 bytes each); past it, results are formed anew.
FORMED_KEPT = 2_000_000


def identities(sub, mul, div):
    """``sub``, ``mul`` and ``div`` of duals that know when a result is
    identically a constant, not only of zero slope: ``a - a`` is 0 and
    ``a / a`` is 1 for the same dual ``a`` (finite, and nonzero to divide),
    and an exact constant 0 times or over a finite dual is 0. So a min-max
    normalisation (``x[k] - min(x)`` where ``x[k]`` is the minimum's own
    element, over ``max(x) - min(x)``, the same difference formed twice and
    so one dual: ``_State.formed``) gives its extremes exactly 0 and 1 as
    constants, and a kernel that switches at 0 or 1 (``|bin - x|`` against 1, kornia's mutual
    information) then meets no switching point there, where a dual of zero
    slope could still cross it at second order and would mark the point."""
    def finite(a) -> bool:
        return mpmath.isfinite(a.v) if type(a) is Dual else False

    def exact_zero(a) -> bool:
        return type(a) is _MPF and not a

    def sub_(a, b):
        if type(a) is not Dual or type(b) is not Dual or STATE.absolute:
            return sub(a, b)
        if a is b and finite(a):
            return _ZERO
        return sub(a, b)   # formed once per pair of duals (lift)

    def mul_(a, b):
        if not STATE.absolute and ((exact_zero(a) and finite(b)) or (exact_zero(b) and finite(a))):
            return _ZERO
        return mul(a, b)

    def div_(a, b):
        if not STATE.absolute and type(b) is Dual and finite(b) and b.v != 0 and (a is b or exact_zero(a)):
            return _ONE if a is b else _ZERO
        return div(a, b)
    return sub_, mul_, div_


_ZERO, _ONE = mpmath.mpf(0), mpmath.mpf(1)


def mark_where(condition: bool, why: str) -> None:
    """Mark the point when ``condition`` holds (a switching point met exactly)."""
    if condition:
        STATE.mark(why)


def weighted_sum(weights, tangents) -> dict:
    """``sum_i w_i t_i`` of tangent dicts (weights are mpmath numbers)."""
    out: dict = {}
    for w, t in zip(weights, tangents):
        if not t or w == 0:
            continue
        if mpmath.isnan(w) or (mpmath.isinf(w) and not _carries(t)):
            STATE.mark(f"an infinite or NaN partial derivative ({mpmath.nstr(w, 3)}) times 0")
            continue
        mul, add = ARITHMETIC["mul"], ARITHMETIC["add"]
        if STATE.absolute:
            w, t = abs(w), {k: abs(v) for k, v in t.items()}
        for k, v in t.items():
            wv = mul(w, v)
            out[k] = add(out[k], wv) if k in out else wv
    return out
