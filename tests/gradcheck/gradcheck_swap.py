"""Run another project's test suite with its ``gradcheck`` calls judged by
``harness.gradcheck`` (or timed under torch's own, for comparison): the
measurement of docs/gradcheck.md's "On a real suite".

    export PYTHONPATH=/path/to/this/checkout/tests/gradcheck    # the suite may have a ``tests`` package of its own
    pytest -p gradcheck_swap --gradcheck-swap harness  TESTS...
    pytest -p gradcheck_swap --gradcheck-swap torch    TESTS...

``torch.autograd.gradcheck`` and ``gradgradcheck`` are replaced, and so is every
module attribute that holds torch's function (a suite's ``from torch.autograd
import gradcheck``). The session ends with the time spent inside the calls;
with the harness, also with how they were judged (the plugin's own line).
"""

from __future__ import annotations

import sys
import time

import pytest
import torch

import harness
from harness.gradcheck.torch_compat import TORCH_CHECKS

_SPENT = {"seconds": 0.0, "calls": 0}


def pytest_addoption(parser):
    parser.addoption("--gradcheck-swap", choices=("harness", "torch"), default="harness",
                     help="whose gradcheck the suite's calls reach (timed either way)")


def _timed(check):
    def timed(*args, **kwargs):
        __tracebackhide__ = True
        start = time.perf_counter()
        try:
            return check(*args, **kwargs)
        finally:
            _SPENT["seconds"] += time.perf_counter() - start
            _SPENT["calls"] += 1
    timed.__wrapped__ = check
    return timed


def _swap(config) -> None:
    ours = config.getoption("--gradcheck-swap") == "harness"
    by_torch = {id(f): name for name, f in TORCH_CHECKS.items()}
    new = {name: _timed(getattr(harness, name) if ours else f) for name, f in TORCH_CHECKS.items()}
    for name, module in list(sys.modules.items()):
        if name.split(".")[0] in ("torch", "harness"):   # torch's gradgradcheck calls its own gradcheck
            continue
        for attr in ("gradcheck", "gradgradcheck"):
            held = getattr(module, attr, None) if module is not None else None
            if held is not None and id(held) in by_torch:
                setattr(module, attr, new[by_torch[id(held)]])
    torch.autograd.gradcheck, torch.autograd.gradgradcheck = new["gradcheck"], new["gradgradcheck"]


def pytest_configure(config):
    _swap(config)


def pytest_collection_finish(session):
    _swap(session.config)   # test modules imported during collection hold their own references


def pytest_terminal_summary(terminalreporter, config):
    terminalreporter.write_line(f"gradcheck swap ({config.getoption('--gradcheck-swap')}): {_SPENT['calls']} calls, "
                                f"{_SPENT['seconds']:.1f} s inside them")
