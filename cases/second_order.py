"""Second derivatives and forward mode: double backward (Hessian-vector
products) and JVPs of softplus-shaped custom Functions, planted defects
beside correct ones, and torch's own ops.

Sources: torch.autograd's "Double backward with custom functions" and
"Forward-mode AD" tutorials (a backward must be built from differentiable
torch ops to be differentiated again; a Function's forward mode is its
``jvp`` staticmethod, written separately from ``backward``), and the
gradient-penalty threads where a Function's backward computed under
``torch.no_grad()`` silently gave a zero penalty gradient. Every softplus
variant shares ``references.softplus.softplus``: one set of truths.
"""

import mpmath
import torch
from torch.autograd.function import once_differentiable

import harness
from harness import certified, convicted
from references.second_order import logsigmoid as logsigmoid_ref
from cases.softplus import max_log1p
from references.softplus import softplus as softplus_ref

BOTH = ("reverse", "forward")
SMALL = (torch.float32, torch.float16, torch.bfloat16)


def _sigmoid(x):
    # exp(-softplus(-x)): no 1 + exp(-x) to overflow, and the subnormal
    # values of sigmoid below x = -708 survive (1 / (1 + inf) would be 0).
    return torch.exp(-max_log1p(-x))


class StableSigmoid(torch.autograd.Function):
    """sigmoid with sigmoid' = sigmoid(x) sigmoid(-x): a product of two
    values each computed to full relative accuracy, where torch's
    ``y * (1 - y)`` cancels for x > 0 (1 - y loses what y rounds off)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return _sigmoid(x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * _sigmoid(x) * _sigmoid(-x)


class Softplus(torch.autograd.Function):
    """softplus whose backward is itself differentiable (StableSigmoid) and
    whose forward mode is written out: the correct twin of the planted ones."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        ctx.save_for_forward(x)
        return max_log1p(x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * StableSigmoid.apply(x)

    @staticmethod
    def jvp(ctx, t):
        (x,) = ctx.saved_tensors
        return t * _sigmoid(x)


class SoftplusNoGrad(Softplus):
    """Planted: the backward under ``torch.no_grad()`` (a common way to
    "save memory"): the gradient is right, its derivative silently 0."""

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        with torch.no_grad():
            return g * StableSigmoid.apply(x)


class SoftplusDetached(Softplus):
    """Planted: the saved input ``.detach()``-ed in the backward: the
    gradient is right, its derivative along x silently 0."""

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * StableSigmoid.apply(x.detach())


class SoftplusOnce(Softplus):
    """Planted: ``@once_differentiable``: double backward raises."""

    @staticmethod
    @once_differentiable
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * _sigmoid(x)


class SoftplusJvpSign(Softplus):
    """Planted: forward mode written apart from backward, with its sign wrong."""

    @staticmethod
    def jvp(ctx, t):
        (x,) = ctx.saved_tensors
        return -t * _sigmoid(x)


class SoftplusNoJvp(torch.autograd.Function):
    """Planted: no ``jvp`` staticmethod: forward mode cannot run."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return max_log1p(x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * StableSigmoid.apply(x)


def _case(name, forward, reference=softplus_ref, **kw):
    return harness.Case(f"second_order.{name}", forward, reference, order=2, modes=BOTH, **kw)


#: A Hessian cut from the graph is 0 wherever the truth is not; in float16
#: the truth also drops below the smallest normal (|x| > 9.7), where a zero
#: is an underflow that the float16 policy fails.
CUT = {"float16": convicted("silent-zero", "underflow"), "*": convicted("silent-zero")}


CASES = [
    _case("softplus", Softplus.apply),
    _case("softplus.no_grad", SoftplusNoGrad.apply, expect=CUT),
    _case("softplus.detach", SoftplusDetached.apply, expect=CUT),
    # torch 2.13: the gradient of a once_differentiable backward does not
    # require grad (no DelayedError node when grad_output does not), so a
    # second differentiation sees no graph: silently 0, as under no_grad.
    _case("softplus.once_differentiable", SoftplusOnce.apply, expect=CUT),
    _case("softplus.jvp_sign", SoftplusJvpSign.apply, expect=convicted("wrong-sign")),
    _case("softplus.no_jvp", SoftplusNoJvp.apply, expect=convicted("unsupported")),
    # Certified in float64 too (measured: 1.0 and 1.6 bits worst HVP error); run
    # by default in the three smaller dtypes: their float64 truths of J(x) v
    # alone cost 45 s cold.
    _case("torch.exp", torch.exp, mpmath.exp, dtypes=SMALL),
    _case("torch.log1p", torch.log1p, mpmath.log1p, domain=harness.domains.interval(-1.0, None), dtypes=SMALL),
    # derivatives.yaml: log_sigmoid_backward's own derivative is
    # log_sigmoid_double_backward = grad * (z - 1) * z, z = sigmoid(x): z - 1
    # cancels for x > 0 and is 0 once sigmoid rounds to 1. Measured: 0 for
    # x > 37 in float64 (truth down to -2e-308), > 16.6 in float32, > 8.4 in
    # float16, > 6.5 in bfloat16, and up to 51.6 bits lost below (float64 at
    # x = 36.5: -1.4e-16 in mpmath). StableSigmoid above is the fix:
    # sigmoid(x) * sigmoid(-x), each factor to full relative accuracy. Run by
    # default in the three smaller dtypes (float64 as measured: convicted of
    # lost-digits and silent-zero; its truths of J(x) v cost 20 s cold).
    _case("torch.logsigmoid", torch.nn.functional.logsigmoid, logsigmoid_ref, dtypes=SMALL,
          expect={"float16": convicted("lost-digits", "silent-zero", "underflow"),
                  "*": convicted("lost-digits", "silent-zero")}),
]
