"""What the benchmark sections of case files share: the devices to time on
and the timed step (forward, backward, and a wait for CUDA)."""

from __future__ import annotations

from typing import Callable, Sequence

import pytest
import torch

#: cpu, and cuda skipped with a reason where there is none.
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason="CUDA is not available (torch.cuda.is_available() is False)"))]


def forward_backward(loss: Callable[[], torch.Tensor], wrt: torch.Tensor | Sequence[torch.Tensor], device: str):
    """The timed step: ``loss()`` (a scalar) and its gradient in ``wrt``.

    CUDA runs asynchronously, so the step waits for it before the clock is read.

    Example:
        >>> x = torch.ones(3, requires_grad=True)
        >>> forward_backward(lambda: (x * x).sum(), x, "cpu")()
        (tensor([2., 2., 2.]),)
    """
    wrt = (wrt,) if isinstance(wrt, torch.Tensor) else tuple(wrt)

    def step():
        grads = torch.autograd.grad(loss(), wrt)
        if device == "cuda":
            torch.cuda.synchronize()
        return grads
    return step
