"""A stopped run leaves nothing running and keeps what it computed; the
harness's warnings point at the user's line (docs/interruption.md).

The stopped runs are a script certifying softplus in float32 (~1,500 points:
the truth pool's two workers) with a cold cache of its own, in a subprocess.
``HARNESS_TEST_STALL`` names a file: while it exists, every truth takes a
minute, so the test can stop the run while both workers are inside one (where
a worker left orphaned would keep running); before, each reference call
sleeps a millisecond, so that some truths, not all, arrive first.
"""

import contextlib
import importlib
import inspect
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

import harness
import harness.pytest.plugin
from harness.truth import pool as truth_pool
from harness.truth.cache import TABLE, TruthCache

pytest_plugins = ["pytester"]

certify_module = importlib.import_module("harness.certify")   # harness.certify is the function
solve_module = importlib.import_module("harness.truth.solve")   # where a certification's truths are solved

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = """
    import os
    import sys
    import time

    import mpmath
    import torch

    import harness
    from harness.truth.cache import TruthCache


    def softplus(x):
        stall = os.environ.get("HARNESS_TEST_STALL")
        if stall:
            time.sleep(60 if os.path.exists(stall) else 0.001)
        return mpmath.log1p(mpmath.exp(x))


    case = harness.Case("softplus", torch.nn.functional.softplus, softplus)
    report = harness.certify(case, torch.float32, grid_size=1, workers=2, cache=TruthCache(sys.argv[1]))
    print(report)
    print(f"computed {report.stats['truth_computed']}")
"""

needs_proc = pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="finds a process's children in /proc")


@pytest.fixture(scope="module")
def script(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("interruption") / "certify_softplus.py"
    path.write_text(textwrap.dedent(SCRIPT))
    return path


def certify_in_subprocess(script: Path, cache: Path) -> tuple[str, int]:
    """The report's text and how many truths the run computed."""
    env = {k: v for k, v in os.environ.items() if k != "HARNESS_TEST_STALL"}
    done = subprocess.run([sys.executable, str(script), str(cache)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    text, _, computed = done.stdout.rstrip("\n").rpartition("\n")
    return text, int(computed.removeprefix("computed "))


@pytest.fixture(scope="module")
def clean_run(script, tmp_path_factory) -> tuple[str, int]:
    return certify_in_subprocess(script, tmp_path_factory.mktemp("clean") / "truth.sqlite")


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:   # the task ended
            pass
    return found


def tree(pid: int) -> list[int]:
    """Every descendant of ``pid``."""
    out, todo = [], [pid]
    while todo:
        kids = children(todo.pop())
        out += kids
        todo += kids
    return out


def running(pid: int) -> bool:
    """Alive and not a zombie waiting to be reaped."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] not in ("Z", "X")


def wait_until(condition, seconds: float, every: float = 0.05) -> bool:
    end = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > end:
            return False
        time.sleep(every)
    return True


# SIGINT to the parent alone: its interpreter exits by an exception (KeyboardInterrupt).
@needs_proc
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL, signal.SIGINT],
                         ids=["SIGTERM", "SIGKILL", "SIGINT"])
def test_a_stopped_run_leaves_no_worker_and_keeps_its_truths(script, clean_run, tmp_path, signum):
    cache, stall = tmp_path / "truth.sqlite", tmp_path / "stall"
    # SIG_DFL for SIGINT in the child: a shell's background job (`.ci/run &`) starts with
    # SIGINT ignored, and Python then installs no KeyboardInterrupt handler at all.
    run = subprocess.Popen([sys.executable, str(script), str(cache)], cwd=ROOT,
                           env={**os.environ, "HARNESS_TEST_STALL": str(stall)},
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                           preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    descendants: list[int] = []
    try:
        assert wait_until(lambda: len(children(run.pid)) >= 2, 60), "the truth pool never started"
        time.sleep(1.0)          # some truths arrive...
        stall.touch()
        time.sleep(0.5)          # ...and then each worker is inside one that takes a minute
        descendants = tree(run.pid)
        assert len(descendants) >= 2 and run.poll() is None
        run.send_signal(signum)
        stopped = time.monotonic()
        run.wait(timeout=10)
        wait_until(lambda: not any(running(p) for p in descendants), 2 - (time.monotonic() - stopped))
        left = [p for p in descendants if running(p)]
        assert not left, f"still running 2 s after the {signum.name}: {left}"
    finally:
        for pid in [run.pid] + descendants:
            if running(pid):
                os.kill(pid, signal.SIGKILL)
        run.wait(timeout=10)
        stderr = run.stderr.read()
        run.stderr.close()
    # SIGTERM still ends the process as SIGTERM does; Python ends an uncaught KeyboardInterrupt by SIGINT.
    assert run.returncode == -signum, stderr

    with contextlib.closing(sqlite3.connect(cache)) as db:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        kept = db.execute(f"SELECT COUNT(*) FROM {TABLE}").fetchone()[0]
    report, computed = certify_in_subprocess(script, cache)
    assert report == clean_run[0]
    assert kept + computed == clean_run[1]
    if signum != signal.SIGKILL:   # which loses what the cache's writer had not written yet
        assert kept > 0


@needs_proc
def test_without_the_kernels_signal_a_worker_watches_its_parent(monkeypatch):
    # Where prctl(PR_SET_PDEATHSIG) is missing (not Linux), a thread in the worker does its job.
    monkeypatch.setattr(truth_pool, "_parent_death_signal", lambda signum: False)
    read, write = os.pipe()
    parent = os.fork()
    if parent == 0:
        try:
            worker = os.fork()
            if worker == 0:
                truth_pool._end_with_parent(os.getppid())
                time.sleep(60)
            else:
                os.write(write, str(worker).encode())
        finally:
            os._exit(0)
    os.close(write)
    worker = int(os.read(read, 64))
    os.close(read)
    os.waitpid(parent, 0)
    try:
        assert wait_until(lambda: not running(worker), 3), "the worker outlived its parent"
    finally:
        if running(worker):
            os.kill(worker, signal.SIGKILL)


# -- warnings point at the user's line ----------------------------------------------------------
def double_case():
    return harness.Case("double", lambda x: 2 * x, lambda x: 2 * x, domain=harness.domains.interval(1, 4))


@pytest.mark.parametrize("call", ["certify", "certify_many"])
def test_the_long_certification_warning_points_at_the_callers_line(monkeypatch, call):
    monkeypatch.setattr(solve_module, "LONG_SECONDS", 0.0)
    case = double_case()
    # A cache of its own: another test may have computed these truths in this process.
    options = dict(grid_size=1, workers=1, cache=TruthCache(None))
    with pytest.warns(solve_module.LongCertification) as caught:
        if call == "certify":
            line = inspect.currentframe().f_lineno + 1
            harness.certify(case, torch.float32, **options)
        else:
            line = inspect.currentframe().f_lineno + 1
            certify_module.certify_many([(case, torch.float32, "cpu")], **options)
    assert [(w.filename, w.lineno) for w in caught] == [(__file__, line)]


def test_a_case_knows_the_line_that_defines_it():
    line = inspect.currentframe().f_lineno + 1
    case = harness.Case("neg", lambda x: -x, lambda x: -x)
    assert case.defined_at == (__file__, line, __name__)


CASE_FILE = """
    import harness

    DOMAIN = harness.domains.interval(1, 4)
    neg = harness.Case("neg", lambda x: -x, lambda x: -x, domain=DOMAIN)
"""


@pytest.mark.parametrize("dtypes", ["float32", "float32,float64"], ids=["one item", "truths before the items"])
def test_from_the_plugin_the_warning_points_at_the_case_definition(pytester, monkeypatch, dtypes):
    monkeypatch.setattr(solve_module, "LONG_SECONDS", 0.0)
    monkeypatch.setattr(harness.pytest.plugin, "_SUMMARY", [])   # this run's summary rows stay its own
    path = pytester.mkdir("cases") / "slow.py"
    path.write_text(textwrap.dedent(CASE_FILE))
    reprec = pytester.inline_run("--dtypes", dtypes, "--grid-size", "1", "--devices", "cpu",
                                 "--truth-cache", "none", "-p", "no:cacheprovider")
    reprec.assertoutcome(passed=len(dtypes.split(",")))
    warned = [call.warning_message for call in reprec.getcalls("pytest_warning_recorded")
              if issubclass(call.warning_message.category, solve_module.LongCertification)]
    assert [(Path(w.filename), w.lineno) for w in warned] == [(path, 5)]
