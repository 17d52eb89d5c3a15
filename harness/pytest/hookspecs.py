"""Hooks the harness plugin adds to pytest; implement them in a conftest.py.

Registered by ``harness.pytest.plugin`` through ``pytest_addhooks``, as pytest
plugins (pytest-xdist, pytest-benchmark) register theirs.
"""

import pytest


@pytest.hookspec(firstresult=True)
def pytest_harness_truth_executor(config):
    """A ``concurrent.futures.Executor`` that computes every item's truths,
    or ``None`` for the local forked pool (the default).

    Called once per session (once per xdist worker), at the first certified
    item. ``--truth-scheduler`` takes precedence over any implementation.
    The executor must be able to ship the references to its workers
    (docs/cluster.md); whoever makes it shuts it down, e.g. with
    ``config.add_cleanup(executor.shutdown)``.

    Example (conftest.py):
        >>> from concurrent.futures import ThreadPoolExecutor
        >>> def pytest_harness_truth_executor(config):
        ...     executor = ThreadPoolExecutor(1)
        ...     config.add_cleanup(executor.shutdown)
        ...     return executor
    """
