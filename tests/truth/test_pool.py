"""Truths computed in worker processes, on a thread pool or on a Dask
cluster equal the serial ones, and a failing reference stops the batch with
the point named.

The Dask tests share one ``LocalCluster`` of two single-threaded worker
processes (a few seconds to start): what travels to them is pickled, as on a
real cluster.
"""

import textwrap
from concurrent.futures import ThreadPoolExecutor

import mpmath
import pytest
import torch

import harness
import harness.pytest.plugin
from harness.truth.cache import TruthCache
from harness.inputs.domains import real
from harness.truth.mpmath_engine import ReferenceFailure
from harness.truth.pool import CHUNK_ELEMENTS, MIN_PARALLEL, PointFailure, Task, solve_all
from references.softplus import softplus

pytest_plugins = ["pytester"]


def tasks(reference, xs):
    # A lambda: workers are forked, so nothing is pickled but the results.
    return [Task(lambda v: [reference(v[0])], [x], [1.0], [real()]) for x in xs]


def test_parallel_truths_equal_serial_ones():
    xs = [k / 7 - 3 for k in range(MIN_PARALLEL + 5)]
    serial = solve_all(tasks(lambda x: mpmath.log1p(mpmath.exp(x)), xs), workers=1)
    parallel = solve_all(tasks(lambda x: mpmath.log1p(mpmath.exp(x)), xs), workers=2)
    assert [(t.value, t.grad, t.grad_kappa) for t in serial] == [(t.value, t.grad, t.grad_kappa) for t in parallel]


@pytest.mark.parametrize("workers", [1, 2])
def test_a_failing_reference_names_its_point(workers):
    def reference(x):
        if x == 5:
            raise ZeroDivisionError("at five")
        return x
    xs = [float(k) for k in range(MIN_PARALLEL + 5)]
    with pytest.raises(PointFailure, match="at five") as err:
        solve_all(tasks(reference, xs), workers=workers)
    assert err.value.index == 5 and isinstance(err.value, ReferenceFailure)


def same(truths, others) -> bool:
    return [(t.value, t.grad, t.grad_kappa, t.bits) for t in truths] == \
        [(t.value, t.grad, t.grad_kappa, t.bits) for t in others]


def failing(x):
    if x == 5:
        raise ZeroDivisionError("at five")
    return x


XS = [k / 7 - 3 for k in range(3 * CHUNK_ELEMENTS + 5)]  # several chunks, the last one short


@pytest.fixture(scope="module")
def dask_client():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        yield client


# -- any executor ---------------------------------------------------------------------------
def test_thread_pool_truths_equal_serial_ones_in_order():
    # Four threads: mpmath's one global precision would be raced for without the pool's lock.
    seen = []
    with ThreadPoolExecutor(4) as pool:
        pooled = solve_all(tasks(lambda x: mpmath.log1p(mpmath.exp(x)), XS), executor=pool,
                           progress=lambda done, total: seen.append((done, total)))
    assert same(pooled, solve_all(tasks(lambda x: mpmath.log1p(mpmath.exp(x)), XS), workers=1))
    assert seen == [(k, len(XS)) for k in range(1, len(XS) + 1)]


def test_a_failing_reference_on_a_thread_pool_names_its_point():
    with ThreadPoolExecutor(2) as pool, pytest.raises(PointFailure, match="at five") as err:
        solve_all(tasks(failing, [float(k) for k in range(2 * CHUNK_ELEMENTS)]), executor=pool)
    assert err.value.index == 5


# -- Dask ---------------------------------------------------------------------------------------
def test_dask_truths_equal_serial_ones(dask_client):
    # Lambdas of this file travel by value (cloudpickle); serial truths for comparison.
    remote = solve_all(tasks(lambda x: mpmath.log1p(mpmath.exp(x)), XS), executor=dask_client.get_executor())
    assert same(remote, solve_all(tasks(lambda x: mpmath.log1p(mpmath.exp(x)), XS), workers=1))


def test_a_failing_reference_on_dask_names_its_point(dask_client):
    with pytest.raises(PointFailure, match="at five") as err:
        solve_all(tasks(failing, [float(k) for k in range(2 * CHUNK_ELEMENTS)]), executor=dask_client.get_executor())
    assert err.value.index == 5


def test_truths_from_dask_land_in_the_same_cache(dask_client, tmp_path):
    case = harness.Case("softplus", torch.nn.functional.softplus, softplus)
    remote = harness.certify(case, torch.float16, cache=TruthCache(tmp_path / "c.sqlite"),
                             executor=dask_client.get_executor())
    local = harness.certify(case, torch.float16, cache=TruthCache(tmp_path / "c.sqlite"))
    assert remote.stats["truth_computed"] > 700 and local.stats["truth_computed"] == 0
    assert str(local) == str(remote) and local.ok


# -- the plugin's executor: --truth-scheduler and the conftest hook ------------------------------
CASE_FILE = """
    import harness

    neg = harness.Case("neg", lambda x: -x, lambda x: -x, domain=harness.domains.interval(1, 4))
"""


def run_case(pytester, monkeypatch, *args, conftest=None):
    monkeypatch.setattr(harness.pytest.plugin, "_SUMMARY", [])  # this run's rows, not the session's
    pytester.makeini("[pytest]\naddopts = -p no:hypothesispytest\n")
    pytester.mkdir("cases").joinpath("neg.py").write_text(textwrap.dedent(CASE_FILE))
    if conftest:
        pytester.makeconftest(textwrap.dedent(conftest))
    return pytester.inline_run("cases", "--dtypes", "float32", "--devices", "cpu", "--grid-size", "1",
                               "--truth-cache", "none", *args)


def test_a_conftest_supplies_the_executor(pytester, monkeypatch):
    reprec = run_case(pytester, monkeypatch, conftest="""
        from concurrent.futures import ThreadPoolExecutor
        from pathlib import Path


        class Marking(ThreadPoolExecutor):
            def submit(self, fn, *args, **kwargs):
                Path("submitted").touch()
                return super().submit(fn, *args, **kwargs)


        def pytest_harness_truth_executor(config):
            executor = Marking(1)
            config.add_cleanup(executor.shutdown)
            return executor
    """)
    reprec.assertoutcome(passed=1)
    assert (pytester.path / "submitted").exists()
    assert len(reprec.getcalls("pytest_harness_truth_executor")) == 1  # asked once per session


def test_truth_scheduler_computes_on_the_cluster(pytester, monkeypatch, dask_client):
    from distributed import get_task_stream

    with get_task_stream(client=dask_client) as stream:  # every client's tasks, as the scheduler saw them
        reprec = run_case(pytester, monkeypatch, "--truth-scheduler", dask_client.scheduler.address)
    reprec.assertoutcome(passed=1)
    assert sum(v["stats"]["truth_computed"] for v, _ in harness.pytest.plugin._SUMMARY) > 0
    assert any(task["key"].startswith("_solve_chunk") for task in stream.data)


def test_truth_scheduler_without_distributed_is_a_usage_error(pytester, monkeypatch):
    real_import = __import__

    def no_distributed(name, *args, **kwargs):
        if name == "distributed" or name.startswith("distributed."):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)
    monkeypatch.setattr("builtins.__import__", no_distributed)
    result = pytester.runpytest_inprocess("--truth-scheduler", "tcp://nowhere:8786")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "--truth-scheduler needs Dask's distributed" in result.stderr.str()
