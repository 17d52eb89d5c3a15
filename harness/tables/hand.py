"""Hand checks of the accuracy tables: analytic formulas of elementwise ops in
plain mpmath (``HAND``), evaluated at a failure's exact float input, and torch
called at that point with no harness between (``_torch_at``). Below both
``accuracy_table`` and ``compiled_findings``, which check their findings with them."""

from __future__ import annotations

import math

import mpmath
import numpy as np
import torch

from . import hand_structured


def _sigmoid(x):
    return 1 / (1 + mpmath.exp(-x))


def _phi(x):
    return mpmath.exp(-x * x / 2) / mpmath.sqrt(2 * mpmath.pi)


def _ndtr(x):
    return mpmath.erfc(-x / mpmath.sqrt(2)) / 2


def _erfcx(x):
    return mpmath.exp(x * x) * mpmath.erfc(x)


def _gelu_u(x):
    return mpmath.sqrt(2 / mpmath.pi) * (x + mpmath.mpf("0.044715") * x ** 3)


def _ndtri(p):
    # 2p - 1 keeps a subnormal p only with 1075 bits more than the answer needs.
    with mpmath.workprec(mpmath.mp.prec + 1100):
        return mpmath.sqrt(2) * mpmath.erfinv(2 * p - 1)


def _softplus(x):
    return mpmath.log1p(mpmath.exp(x))


#: selu's constants (Klambauer et al. 2017, as torch.nn.SELU documents them).
_SELU_ALPHA = mpmath.mpf("1.6732632423543772848170429916717")


_SELU_SCALE = mpmath.mpf("1.0507009873554804934193349852946")


#: Op -> (f, its derivatives), plain mpmath written from the textbook, not from
#: references/ or harness.exact: an independent second opinion.
HAND = {
    "torch.expm1": (mpmath.expm1, (mpmath.exp,)),
    "torch.sigmoid": (_sigmoid, (lambda x: _sigmoid(x) * _sigmoid(-x),)),
    "torch.tanh": (mpmath.tanh, (lambda x: mpmath.sech(x) ** 2,)),
    "torch.nn.functional.softplus": (_softplus, (_sigmoid,)),
    "torch.nn.functional.silu": (lambda x: x * _sigmoid(x), (lambda x: _sigmoid(x) * (1 + x * _sigmoid(-x)),)),
    "torch.nn.functional.gelu": (lambda x: x * _ndtr(x), (lambda x: _ndtr(x) + x * _phi(x),)),
    "torch.nn.functional.mish": (lambda x: x * mpmath.tanh(_softplus(x)),
                                 (lambda x: mpmath.tanh(_softplus(x))
                                  + x * mpmath.sech(_softplus(x)) ** 2 * _sigmoid(x),)),
    "torch.nn.functional.softsign": (lambda x: x / (1 + abs(x)), (lambda x: 1 / (1 + abs(x)) ** 2,)),
    "torch.nn.functional.tanhshrink": (lambda x: x - mpmath.tanh(x), (lambda x: mpmath.tanh(x) ** 2,)),
    "torch.nn.functional.hardsigmoid": (lambda x: min(max(x + 3, 0), 6) / 6,
                                        (lambda x: mpmath.mpf(1) / 6 if -3 < x < 3 else mpmath.mpf(0),)),
    "torch.sinc": (lambda x: mpmath.sinpi(x) / (mpmath.pi * x) if x else mpmath.mpf(1),
                   (lambda x: (mpmath.cospi(x) / x - mpmath.sinpi(x) / (mpmath.pi * x * x)) if x else mpmath.mpf(0),)),
    "torch.asinh": (mpmath.asinh, (lambda x: 1 / mpmath.sqrt(x * x + 1),)),
    "torch.acosh": (mpmath.acosh, (lambda x: 1 / mpmath.sqrt(x * x - 1),)),
    "torch.sinh": (mpmath.sinh, (mpmath.cosh,)),
    "torch.special.i0e": (lambda x: mpmath.besseli(0, x) * mpmath.exp(-abs(x)),
                          (lambda x: (mpmath.besseli(1, x) - mpmath.sign(x) * mpmath.besseli(0, x))
                           * mpmath.exp(-abs(x)),)),
    "torch.special.i1e": (lambda x: mpmath.besseli(1, x) * mpmath.exp(-abs(x)),
                          (lambda x: (mpmath.besseli(0, x) - mpmath.besseli(1, x) / x
                                      - mpmath.sign(x) * mpmath.besseli(1, x)) * mpmath.exp(-abs(x)),)),
    "torch.special.i1": (lambda x: mpmath.besseli(1, x), (lambda x: mpmath.besseli(0, x) - mpmath.besseli(1, x) / x,)),
    "torch.special.erfcx": (_erfcx, (lambda x: 2 * x * _erfcx(x) - 2 / mpmath.sqrt(mpmath.pi),)),
    "torch.special.ndtr": (_ndtr, (_phi,)),
    "torch.special.log_ndtr": (lambda x: mpmath.log(_ndtr(x)), (lambda x: _phi(x) / _ndtr(x),)),
    "torch.special.ndtri": (_ndtri, (lambda p: 1 / _phi(_ndtri(p)),)),
    "torch.digamma": (mpmath.digamma, (lambda x: mpmath.psi(1, x),)),
    "torch.erf": (mpmath.erf, (lambda x: 2 / mpmath.sqrt(mpmath.pi) * mpmath.exp(-x * x),)),
    "torch.pow": (lambda x, y: x ** y, (lambda x, y: y * x ** (y - 1), lambda x, y: x ** y * mpmath.log(x))),
    "torch.atan2": (mpmath.atan2, (lambda y, x: x / (x * x + y * y), lambda y, x: -y / (x * x + y * y))),
    "torch.div": (lambda x, y: x / y, (lambda x, y: 1 / y, lambda x, y: -x / (y * y))),
    "torch.hypot": (mpmath.hypot, (lambda x, y: x / mpmath.hypot(x, y), lambda x, y: y / mpmath.hypot(x, y))),
    "torch.logaddexp": (lambda x, y: mpmath.log(mpmath.exp(x) + mpmath.exp(y)),
                        (lambda x, y: _sigmoid(x - y), lambda x, y: _sigmoid(y - x))),
    "torch.i0": (lambda x: mpmath.besseli(0, x), (lambda x: mpmath.besseli(1, x),)),
    "torch.polygamma(1, x)": (lambda x: mpmath.psi(1, x), (lambda x: mpmath.psi(2, x),)),
    "torch.nn.functional.gelu(approximate=tanh)": (
        lambda x: x / 2 * (1 + mpmath.tanh(_gelu_u(x))),
        (lambda x: (1 + mpmath.tanh(_gelu_u(x))) / 2 + x / 2 * mpmath.sech(_gelu_u(x)) ** 2
         * mpmath.sqrt(2 / mpmath.pi) * (1 + 3 * mpmath.mpf("0.044715") * x * x),)),
    "torch.nn.functional.hardswish": (lambda x: x * min(max(x + 3, 0), 6) / 6,
                                      (lambda x: (2 * x + 3) / 6 if -3 < x < 3 else mpmath.mpf(x >= 3),)),
    "torch.exp2": (lambda x: mpmath.power(2, x), (lambda x: mpmath.power(2, x) * mpmath.ln2,)),
    "torch.rsqrt": (lambda x: 1 / mpmath.sqrt(x), (lambda x: -x ** mpmath.mpf(-1.5) / 2,)),
    "torch.cosh": (mpmath.cosh, (mpmath.sinh,)),
    "torch.atanh": (mpmath.atanh, (lambda x: 1 / (1 - x * x),)),
    "torch.atan": (mpmath.atan, (lambda x: 1 / (1 + x * x),)),
    "torch.log10": (mpmath.log10, (lambda x: 1 / (x * mpmath.ln10),)),
    "torch.log2": (lambda x: mpmath.log(x, 2), (lambda x: 1 / (x * mpmath.ln2),)),
    "torch.pow(x, -1.5)": (lambda x: x ** mpmath.mpf(-1.5), (lambda x: -mpmath.mpf(1.5) * x ** mpmath.mpf(-2.5),)),
    "torch.lgamma": (mpmath.loggamma, (mpmath.digamma,)),
    "torch.special.entr": (lambda x: -x * mpmath.log(x), (lambda x: -(mpmath.log(x) + 1),)),
    "torch.xlogy": (lambda x, y: x * mpmath.log(y), (lambda x, y: mpmath.log(y), lambda x, y: x / y)),
    "torch.erfinv": (mpmath.erfinv, (lambda x: mpmath.sqrt(mpmath.pi) / 2 * mpmath.exp(mpmath.erfinv(x) ** 2),)),
    "torch.nn.functional.elu": (lambda x: x if x > 0 else mpmath.expm1(x), (lambda x: 1 if x > 0 else mpmath.exp(x),)),
    "torch.nn.functional.selu": (lambda x: _SELU_SCALE * (x if x > 0 else _SELU_ALPHA * mpmath.expm1(x)),
                                 (lambda x: _SELU_SCALE * (1 if x > 0 else _SELU_ALPHA * mpmath.exp(x)),)),
    "torch.logaddexp2": (lambda x, y: mpmath.log(mpmath.power(2, x) + mpmath.power(2, y), 2),
                         (lambda x, y: _sigmoid((x - y) * mpmath.ln2), lambda x, y: _sigmoid((y - x) * mpmath.ln2))),
    "torch.special.xlog1py": (lambda x, y: x * mpmath.log1p(y) if x else mpmath.mpf(0),
                              (lambda x, y: mpmath.log1p(y), lambda x, y: x / (1 + y))),
}


#: The precision a hand number is rounded to a float at (the evaluation's own precisions are
#: ``hand_structured.precisions``: ``ndtri`` of a subnormal needs 1075 bits before ``2p - 1`` keeps ``p``).
HAND_BITS = 6400


#: The point is handed to torch as this many copies: CPU kernels take another,
#: vectorized path for tensors of more than a few elements (sinh does), and the
#: harness hands torch the whole grid.
COPIES = 64


def _torch_at(case, point, dtype, index: int):
    """torch's value and the gradient of input ``index`` at ``point``, no harness involved
    but the thread count it certifies in (``claims.claimed.one_thread``)."""
    from ..claims.claimed import one_thread

    xs = [torch.full((COPIES,), v, dtype=dtype, requires_grad=True) for v in point]
    with one_thread():
        y = case.forward(*xs)
        if case.backward is not None:
            grads = case.backward(*[x.detach() for x in xs], torch.ones_like(y))
            grads = (grads,) if isinstance(grads, torch.Tensor) else grads
        else:
            grads = torch.autograd.grad(y, xs, torch.ones_like(y), allow_unused=True)
    g = grads[index]
    return float(y.detach()[0].double()), (float(g[0].double()) if g is not None else 0.0)


def _evaluate(fn, point) -> mpmath.mpf:
    """``fn`` at the exact float ``point``, at rising precision until two agree."""
    previous = None
    for bits in hand_structured.precisions(point):
        with mpmath.workprec(bits):
            value = fn(*[mpmath.mpf(v) for v in point])
            if previous is not None and (value == previous or abs(value - previous) <= abs(value) * 2 ** -64):
                return value
            previous = value
    return previous


def _round(value, dtype) -> float:
    """An mpmath number rounded to ``dtype`` (through float64: a double rounding
    only at ties, which the comparison's tolerance covers)."""
    with mpmath.workprec(HAND_BITS):
        as_double = float(value) if mpmath.isfinite(value) else (math.inf if value > 0 else -math.inf)
    return float(torch.tensor(as_double, dtype=torch.float64).to(dtype).double())


def _array_words(a) -> str:
    """Every entry, 17 digits: the point is to be evaluated again from the page."""
    return "[" + ", ".join(repr(float(v)) for v in np.ravel(a)) + "]" + (f" shape {tuple(np.shape(a))}"
                                                                       if np.ndim(a) > 1 else "")


def _shown(value) -> str:
    """17 digits, or the decimal exponent alone for numbers far outside every format."""
    with mpmath.workprec(HAND_BITS):
        if mpmath.isfinite(value) and value != 0 and abs(mpmath.log10(abs(value))) > 400:
            return f"{'-' if value < 0 else ''}10^({mpmath.nstr(mpmath.log10(abs(value)), 6)})"
        return mpmath.nstr(value, 17)


def _same(a: float, b: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return a == b or abs(a - b) <= 1e-6 * max(abs(a), abs(b))
