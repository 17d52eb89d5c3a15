"""What the benchmark sections of case files share: the devices to time on,
the size to run at (timed or once) and the timed step (forward, backward, and
a wait for CUDA)."""

from __future__ import annotations

from typing import Callable, Sequence, TypeVar

import pytest
import torch

T = TypeVar("T")

#: cpu, and cuda skipped with a reason where there is none.
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason="CUDA is not available (torch.cuda.is_available() is False)"))]


def sized(benchmark, timed: T, once: T) -> T:
    """``timed`` when ``benchmark`` is enabled (timed), ``once`` otherwise.

    A disabled benchmark (a plain ``pytest cases/``) runs its step once as a
    test, so it runs at a size that shows the code runs, not how fast: ``once``
    is a small input valid for every implementation; ``timed`` the realistic
    size that ``--benchmark-only`` or ``--benchmark-enable`` measures.

    Example:
        >>> from types import SimpleNamespace
        >>> sized(SimpleNamespace(enabled=True), (32, 96, 55, 55), (1, 96, 4, 4))
        (32, 96, 55, 55)
        >>> sized(SimpleNamespace(enabled=False), 1_000_000, 1000)
        1000
    """
    return timed if benchmark.enabled else once


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
