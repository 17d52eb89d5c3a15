"""The pytest plugin: every Case in a ``cases/`` file becomes one test per
dtype and device. Registered as the ``pytest11`` entry point ``harness``, so
installing the package gives any repository the same collection.

Options (group "harness"): ``--dtypes``, ``--devices``, ``--grid-size``,
``--truth-cache``, ``--truth-scheduler``, ``--certify-search``,
``--certify-report``. A conftest.py may supply the executor of the truths
through the ``pytest_harness_truth_executor`` hook (``harness.pytest.hookspecs``).

Where cases come from:

- a case file, any ``*.py`` file (not ``test_*``) in a directory named by the
  ``certify_dirs`` ini option (default ``cases``): every Case at module level
  or in a module-level list or tuple, and its ordinary tests (benchmarks);
- any other module pytest collects (``test_*.py``, or a file named on the
  command line): its module-level ``CASES`` list only, since test modules
  keep Case objects as fixtures of their own tests.

A module that defines Case objects and still gives no item gets a warning
naming it, and two cases of one file with the same name (which would give
two items with one id) are a collection error of that name.

Benchmarks (pytest-benchmark) run disabled, once each as plain tests, unless
asked for with ``--benchmark-only``, ``--benchmark-enable`` or an option that
stores results (``--benchmark-json``, ``--benchmark-save``,
``--benchmark-autosave``, ``--benchmark-compare``): ``pytest cases/`` stays a
certification run.
"""

from __future__ import annotations

import fnmatch
import time
import traceback
from pathlib import Path

import pytest
import torch

DTYPE_NAMES = {"float64": torch.float64, "float32": torch.float32, "float16": torch.float16,
               "bfloat16": torch.bfloat16}
_CACHE_KEY = pytest.StashKey()
_EXECUTOR_KEY = pytest.StashKey()


def pytest_addhooks(pluginmanager):
    from . import hookspecs

    pluginmanager.add_hookspecs(hookspecs)


def pytest_addoption(parser):
    group = parser.getgroup("harness", "gradient certification")
    group.addoption("--dtypes", default="float64,float32,float16,bfloat16",
                    help="comma-separated dtypes to certify in (default: all four)")
    group.addoption("--devices", default="cpu,cuda",
                    help="comma-separated devices (default: cpu,cuda; cuda items skip when CUDA is absent)")
    group.addoption("--grid-size", type=int, default=None,
                    help="points per binade and scale of the other grid families (default 2)")
    group.addoption("--truth-cache", default=None,
                    help="sqlite file of cached truths (default .pytest_cache/harness-truth.sqlite "
                         "under the rootdir; 'none' keeps them in memory)")
    group.addoption("--truth-scheduler", default=None, metavar="ADDRESS",
                    help="compute truths on the Dask cluster whose scheduler is at ADDRESS "
                         "(e.g. tcp://host:8786) instead of local processes; workers need the "
                         "references importable (docs/cluster.md; needs distributed)")
    group.addoption("--exhaustive", action="store_true", default=False,
                    help="float16 and bfloat16 items of one-input elementwise cases judge every value of "
                         "the format (65,536 inputs), not the grid; other items say why they stay on it")
    group.addoption("--dense", action="store_true", default=False,
                    help="a sweep that a denser one cannot break: every value of float16 and bfloat16 for "
                         "one-input elementwise cases, 16 points (--grid-size) in every binade of the whole range "
                         "otherwise, and each edge where a claim changes class bisected to adjacent floats")
    group.addoption("--underflow", default=None, choices=("fail", "report"),
                    help="whether a result flushed to zero below the smallest normal fails, in every case "
                         "and dtype (default: the dtype's policy, failing only in float16; a case's underflow=)")
    group.addoption("--indeterminate", default=None, choices=("report", "finite"),
                    help="at ±inf inputs where the limit depends on the path (no truth): list such entries "
                         "(report, the default) or fail a NaN or inf there (finite); a case's indeterminate=")
    group.addoption("--order", type=int, default=None, choices=(1, 2),
                    help="2: also judge the Hessian-vector product (double backward) of every case, "
                         "1: the gradient only (default: each case's own order)")
    group.addoption("--modes", default=None, metavar="MODES",
                    help="reverse,forward: also judge the JVP by forward-mode AD; reverse: the gradient "
                         "only (default: each case's own modes)")
    group.addoption("--certify-search", type=int, default=None, metavar="N",
                    help="after certifying, search N Hypothesis examples for each elementwise case's "
                         "worst input and show it in the item's report (never changes pass/fail; needs hypothesis)")
    group.addoption("--certify-report", default=None, metavar="DIR",
                    help="write DIR/index.md and stability maps (DIR/maps/*.png) of every certified "
                         "case, also when some fail (needs matplotlib; not with xdist's -n)")
    group.addoption("--torch-ops", action="store_true", default=False,
                    help="also run the sweeps of torch's ops (items marked torch_ops: cases/torch_ops.py, "
                         "cases/torch_structured.py), which a plain run deselects")
    group.addoption("--compile", action="store_true", default=False,
                    help="also certify every case compiled by torch.compile (items [...-compiled], "
                         "compared with the eager verdict; harness.claims.execution), as Case(compile=True) asks")
    parser.addini("certify_dirs", "directories whose .py files hold cases", type="args", default=["cases"])


@pytest.hookimpl(tryfirst=True)   # before pytest-benchmark's (trylast) reads the options
def pytest_configure(config):
    config.addinivalue_line("markers", "certify: one case certified in one dtype on one device")
    config.addinivalue_line("markers", "torch_ops: the sweep of torch's elementwise ops; runs with --torch-ops only")
    _disable_benchmarks_unless_asked(config)
    bad = [d for d in _split(config.getoption("--dtypes")) if d not in DTYPE_NAMES]
    if bad:
        raise pytest.UsageError(f"--dtypes: unknown {bad}; choose from {sorted(DTYPE_NAMES)}")
    config.stash[_CACHE_KEY] = None
    _require(config, "--truth-scheduler", "distributed", "Dask's distributed", "cluster")
    _check_report_option(config)
    # Without Hypothesis every search would stop, and say so only in passing items' reports.
    _require(config, "--certify-search", "hypothesis", "hypothesis", "search")
    _SUMMARY.clear()  # a second session in one process counts only its own items
    _GRADCHECKS.clear()
    config._harness_summary = []
    if config.getoption("--modes") is not None:
        from ..case import check_modes

        try:
            check_modes(tuple(_split(config.getoption("--modes"))), "--modes")
        except TypeError as err:
            raise pytest.UsageError(str(err)) from None


#: pytest-benchmark options that ask for timings; without one, benchmarks run once as tests.
_BENCHMARK_ASKED = ("benchmark_only", "benchmark_enable", "benchmark_json", "benchmark_save",
                    "benchmark_autosave", "benchmark_compare")


def _disable_benchmarks_unless_asked(config) -> None:
    # Not an addopts entry: --benchmark-only together with --benchmark-disable is a usage error.
    option = config.option
    if hasattr(option, "benchmark_disable") and not any(getattr(option, name, None) for name in _BENCHMARK_ASKED):
        option.benchmark_disable = True


def _split(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def truth_cache(config):
    from ..truth.cache import TruthCache

    if config.stash[_CACHE_KEY] is None:
        option = config.getoption("--truth-cache")
        if option and option.lower() == "none":
            path = None
        else:
            path = Path(option) if option else Path(config.rootpath) / ".pytest_cache" / "harness-truth.sqlite"
        config.stash[_CACHE_KEY] = TruthCache(path)
    return config.stash[_CACHE_KEY]


def truth_executor(config):
    """The session's executor of truths (``None``: the local pool), asked for once."""
    if _EXECUTOR_KEY not in config.stash:
        config.stash[_EXECUTOR_KEY] = config.hook.pytest_harness_truth_executor(config=config)
    return config.stash[_EXECUTOR_KEY]


@pytest.hookimpl(tryfirst=True)  # the command line before any conftest.py
def pytest_harness_truth_executor(config):
    address = config.getoption("--truth-scheduler")
    if not address:
        return None
    from distributed import Client

    # One client per session; under xdist each worker connects its own.
    client = Client(address)
    config.add_cleanup(client.close)
    return client.get_executor()


def _require(config, option: str, module: str, what: str, extra: str) -> None:
    """A usage error at start-up when ``option`` is given and ``module`` is missing
    (not a run whose items each fail, or pass, for want of it)."""
    if not config.getoption(option):
        return
    try:
        __import__(module)
    except ImportError:
        raise pytest.UsageError(f"{option} needs {what}: pip install 'gradient-harness[{extra}]'") from None


def pytest_collect_file(file_path: Path, parent):
    if not _is_case_file(file_path, parent.config) or parent.session.isinitpath(file_path):
        return None  # a case file named on the command line comes through pytest_pycollect_makemodule
    return CaseModule.from_parent(parent, path=file_path)


def pytest_pycollect_makemodule(module_path: Path, parent):
    # pytest's own collector takes every .py file named on the command line;
    # making it a CaseModule here keeps its tests from being collected twice.
    if _is_case_file(module_path, parent.config):
        return CaseModule.from_parent(parent, path=module_path)
    return None


def _is_case_file(file_path: Path, config) -> bool:
    if file_path.suffix != ".py" or file_path.name.startswith(("_", "conftest")):
        return False
    if file_path.parent.name not in config.getini("certify_dirs"):
        return False
    # An ordinary test module (test_*.py) is pytest's.
    return not any(fnmatch.fnmatch(file_path.name, pat) for pat in config.getini("python_files"))


class CaseModule(pytest.Module):
    """A case file: its Case objects (module level, or in a list/tuple) and its tests."""

    def collect(self):
        try:
            module = self.obj
        except Exception as exc:  # one broken case file must not stop the run
            yield BrokenCaseFile.from_parent(self, name="import", error=exc,
                                             problem=f"case file {self.path.name} could not be imported")
            return
        yield from super().collect()
        yield from _case_items(self, _cases_in(vars(module)))


def pytest_pycollect_makeitem(collector, name, obj):
    # Any other module's CASES: a case file named test_*.py, or outside cases/, is not skipped.
    if name != "CASES" or not isinstance(collector, pytest.Module) or isinstance(collector, CaseModule):
        return None
    found = _cases_in({name: obj})
    return list(_case_items(collector, found)) if found else None


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector):
    report = yield
    if (isinstance(collector, pytest.Module) and not isinstance(collector, (CaseModule, pytest.Package))
            and report.passed and not report.result):
        labels = [label for label, _ in _cases_in(vars(collector.obj))]
        if labels:
            collector.warn(pytest.PytestCollectionWarning(
                f"{collector.path.name} defines Case objects ({', '.join(labels)}) that nothing certifies: "
                f"put them in a module-level CASES list, or the file in a directory named by the "
                f"certify_dirs ini option ({', '.join(collector.config.getini('certify_dirs'))})"))
    return report


def _cases_in(namespace) -> list[tuple[str, object]]:
    """``(label, case)`` for each distinct Case in a namespace, at top level or in a list/tuple;
    the label says where (``neg``, ``CASES[2]``)."""
    from ..case import Case

    seen, found = set(), []
    for key, value in list(namespace.items()):
        if isinstance(value, Case):
            candidates = [(key, value)]
        elif isinstance(value, (list, tuple)):
            candidates = [(f"{key}[{i}]", v) for i, v in enumerate(value) if isinstance(v, Case)]
        else:
            candidates = []
        for label, case in candidates:
            if id(case) not in seen:
                seen.add(id(case))
                found.append((label, case))
    return found


def _case_items(collector, found):
    """One item per case, dtype and device; a name two cases share is one failing item instead."""
    from ..errors import CaseError

    labels: dict[str, list[str]] = {}
    for label, case in found:
        labels.setdefault(case.name, []).append(label)
    from ..claims.execution import compiled_in

    dtypes = [DTYPE_NAMES[d] for d in _split(collector.config.getoption("--dtypes"))]
    devices = _split(collector.config.getoption("--devices"))
    everywhere = collector.config.getoption("--compile")
    for label, case in found:
        if len(labels[case.name]) > 1:
            if label == labels[case.name][0]:
                error = CaseError(case.name, f"{len(labels[case.name])} cases of {collector.nodeid} have this "
                                             f"name ({' and '.join(labels[case.name])}); a name must be unique "
                                             f"in its file, it names the test items")
                yield BrokenCaseFile.from_parent(collector, name=case.name, error=error,
                                                 problem=f"duplicate case name in {collector.path.name}")
            continue
        for dtype in dtypes:
            if dtype not in case.dtypes:
                continue
            for device in devices:
                for compiled in (False, True) if compiled_in(case, dtype, everywhere) else (False,):
                    name = (f"{case.name}[{str(dtype).removeprefix('torch.')}-{device}"
                            f"{_quantities_id(collector.config, case)}{'-compiled' if compiled else ''}]")
                    item = CaseItem.from_parent(collector, name=name, case=case, dtype=dtype, device=device,
                                                compiled=compiled)
                    item.add_marker("certify")
                    yield item


def _quantities_id(config, case) -> str:
    """What an item judges beyond the value and gradient, for its id: ``-hvp``, ``-jvp``."""
    order = config.getoption("--order") or case.order
    modes = tuple(_split(config.getoption("--modes"))) if config.getoption("--modes") else case.modes
    return ("-hvp" if order == 2 else "") + ("-jvp" if "forward" in modes else "")


class CertificationMismatch(Exception):
    """The verdict differs from what the case expects."""

    def __init__(self, problem: str, report):
        super().__init__(problem)
        self.problem, self.report = problem, report


class CaseItem(pytest.Item):
    def __init__(self, *, case, dtype, device, compiled=False, **kwargs):
        super().__init__(**kwargs)
        self.case, self.dtype, self.device, self.compiled = case, dtype, device, compiled
        self.compile_seconds = 0.0

    @property
    def subject(self):
        """What this item runs: the case, or its ``torch.compile``'d twin (compiled on first use)."""
        if not self.compiled:
            return self.case
        from ..claims.execution import compiled

        if not self.device.startswith("cuda") or torch.cuda.is_available():
            twin, seconds = compiled(self.case, self.dtype, self.device)
            self.compile_seconds += seconds
            return twin
        return self.case

    def runtest(self):
        __tracebackhide__ = True
        from ..certify import check

        if self.device.startswith("cuda") and not torch.cuda.is_available():
            pytest.skip("CUDA is not available (torch.cuda.is_available() is False)")
        report = self._certify()
        # A failure prints the report in its message; a section would repeat it.
        if not check(self.case, report, self.dtype, self.compiled):
            self.add_report_section("call", "certification", str(report))
        if self.compiled:
            report.device = f"{self.device}, compiled"
            report.stats["compile_seconds"] = self.compile_seconds
            self.add_report_section("call", "compiled against eager",
                                    f"compiled in {self.compile_seconds:.1f} s\n" + self._against_eager(report))
        examples = self.config.getoption("--certify-search")
        if examples:
            self.add_report_section("call", "worst-input search",
                                    _search(self.case, self.dtype, self.device, examples, truth_cache(self.config),
                                            report))
        self.user_properties.append(("certification", {
            "case": self.case.name, "dtype": report.dtype, "device": report.device, "ok": report.ok,
            "kinds": sorted(report.kinds), "worst_bits": report.worst_bits, "mean_bits": report.mean_bits,
            "regions": [r.words(report.feature_name) for r in report.regions],
            "kinks": len(report.kinks), "stats": report.stats,
            "underflows": [r.words(report.feature_name) for r in report.underflows], "counts": report.counts,
            "indeterminate": [e.words() for e in report.indeterminate],
        }))
        problem = check(self.case, report, self.dtype, self.compiled)
        if not self.compiled and self._has_compiled_twin():   # what the twin compares with
            self.config.stash.setdefault(_EAGER_KEY, {})[(id(self.case), self.dtype, self.device)] = report
        _keep_for_report(self, report)
        if problem:
            raise CertificationMismatch(problem, report)

    def _certify(self):
        """The report: finished from what the session prepared, or certified here."""
        from ..certify import _certify, finish, one_thread

        prepared, self.prepared = getattr(self, "prepared", None), None
        if isinstance(prepared, Exception):
            raise prepared
        with one_thread():
            if prepared is None:
                return _certify(self.subject, self.dtype, self.device, _run_options(self.config))
            return finish(prepared, {})

    def _has_compiled_twin(self) -> bool:
        from ..claims.execution import compiled_in

        return compiled_in(self.case, self.dtype, self.config.getoption("--compile"))

    def _against_eager(self, report) -> str:
        """The compiled verdict beside the eager one: the eager item's report where
        it ran before in this process (collection puts it first), else certified here."""
        from ..certify import _certify, one_thread
        from ..claims.execution import compared

        eager = self.config.stash.get(_EAGER_KEY, {}).get((id(self.case), self.dtype, self.device))
        if eager is None:
            with one_thread():
                eager = _certify(self.case, self.dtype, self.device, _run_options(self.config))
        return compared(eager, report)

    def repr_failure(self, excinfo, style=None):
        from ..errors import CaseError

        if isinstance(excinfo.value, CertificationMismatch):
            err = excinfo.value
            return f"{self.case.name} › {err.report.dtype} › {err.report.device}: {err.problem}\n\n{err.report}"
        if isinstance(excinfo.value, CaseError):
            return f"broken case: {excinfo.value}"
        return super().repr_failure(excinfo, style)

    def reportinfo(self):
        # A line (the file's first), not None: pytest asserts one when a mark skips the item (--benchmark-only).
        return self.path, 0, f"case {self.name}"


def _search(case, dtype, device, examples: int, cache, report) -> str:
    """The worst input a search finds, from the grid's worst, in words: a finding to read, never a verdict."""
    from ..errors import CaseError
    from ..search import worst_input

    if (not case.elementwise and case.shape is None) or case.reference is None:
        return "not searched: only cases with a reference and no hand-written grid are (give it shape=)"
    try:
        return str(worst_input(case, dtype, device, max_examples=examples, cache=cache, report=report))
    except (CaseError, ImportError) as exc:
        return f"search stopped: {exc}"


class BrokenCaseFile(pytest.Item):
    """What a case file could not give (its import, a case name) as one failing item,
    so that the rest of the run goes on."""

    def __init__(self, *, error, problem, **kwargs):
        super().__init__(**kwargs)
        self.error, self.problem = error, problem

    def runtest(self):
        raise self.error

    def repr_failure(self, excinfo, style=None):
        return f"{self.problem}:\n{self.error}"

    def reportinfo(self):
        return self.path, 0, f"{self.name} {self.path.name}"


def pytest_collection_modifyitems(config, items):
    """The torch ops sweep (items marked ``torch_ops``) is several times the rest of
    ``pytest cases/``: it runs only when asked for with ``--torch-ops``."""
    if config.getoption("--torch-ops"):
        return
    sweep = [item for item in items if item.get_closest_marker("torch_ops") is not None]
    if sweep:
        config.hook.pytest_deselected(items=sweep)
        items[:] = [item for item in items if item.get_closest_marker("torch_ops") is None]


# -- every missing truth of the run at once ---------------------------------------------------
_PREFETCH_KEY = pytest.StashKey()
#: (id of a case, dtype, device) -> the eager report of that item, for its compiled twin.
_EAGER_KEY = pytest.StashKey()


def pytest_collection_finish(session):
    """Prepare every selected certification and compute all the truths they
    miss in one pool before the first runs: both cores stay busy through the
    cold part of the run, and a point shared by several items (every dtype's
    grid holds the narrower formats' edges) is computed once. Not in an xdist
    worker (it runs only some of the items it collected) nor for --collect-only."""
    config = session.config
    if config.option.collectonly or hasattr(config, "workerinput"):
        return
    items = [item for item in session.items if isinstance(item, CaseItem)
             and not (item.device.startswith("cuda") and not torch.cuda.is_available())]
    if len(items) < 2:
        return
    from ..certify import one_thread, prepare_all
    from ..truth.pool import default_workers

    started = time.perf_counter()
    options = _run_options(config)
    _say(config, f"gradient certification: preparing {len(items)} certifications"
                 f" (truths on {'the executor' if options.executor else f'{default_workers()} core(s)'})")
    with one_thread():
        prepared = prepare_all([(item.subject, item.dtype, item.device) for item in items], options)
    for item, p in zip(items, prepared):
        item.prepared = p
    computed = len({key for p in prepared if not isinstance(p, Exception) for key in p.todo})
    config.stash[_PREFETCH_KEY] = (computed, time.perf_counter() - started)
    _say(config, f"gradient certification: ready in {time.perf_counter() - started:.1f} s")


def _run_options(config):
    """How this run certifies, from its command line (``certify``'s keywords)."""
    from ..certify import _Options

    return _Options(grid_size=config.getoption("--grid-size"), cache=truth_cache(config),
                    executor=truth_executor(config), progress=_progress(config),
                    exhaustive=config.getoption("--exhaustive"), dense=config.getoption("--dense"),
                    underflow=config.getoption("--underflow"),
                    order=config.getoption("--order"), indeterminate=config.getoption("--indeterminate"),
                    modes=tuple(_split(config.getoption("--modes"))) if config.getoption("--modes") else None)


def _say(config, line: str) -> None:
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(line)


def _progress(config):
    """Progress lines on the terminal for long truth computations (none in an xdist worker)."""
    if hasattr(config, "workerinput") or config.pluginmanager.get_plugin("terminalreporter") is None:
        return None
    return lambda line: _say(config, f"gradient certification: {line}")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    """How the test's ``harness.gradcheck`` calls were judged, carried with its
    report (so that an xdist worker's reach the controller's summary)."""
    from ..gradcheck import tally as gradcheck_tally
    gradcheck_tally.take()   # what ran outside a test (collection, fixtures) is not the test's
    yield
    calls = gradcheck_tally.take()
    if calls:
        item.user_properties.append(("gradcheck", calls))


def pytest_runtest_logreport(report):
    if report.when != "call":
        return
    for key, value in report.user_properties:
        if key == "certification":
            _SUMMARY.append((value, report.outcome))
        elif key == "gradcheck":
            _GRADCHECKS.extend(tuple(c) for c in value)


_SUMMARY: list = []
_GRADCHECKS: list = []


def pytest_terminal_summary(terminalreporter, config):
    from ..gradcheck import tally as gradcheck_tally
    line = gradcheck_tally.summary(_GRADCHECKS)
    if line:
        terminalreporter.section("harness.gradcheck")
        terminalreporter.write_line(line)
    if not _SUMMARY:
        return
    expected_ok = sum(1 for v, outcome in _SUMMARY if v["ok"] and outcome == "passed")
    convicted = sum(1 for v, outcome in _SUMMARY if not v["ok"] and outcome == "passed")
    wrong = sum(1 for _, outcome in _SUMMARY if outcome == "failed")
    stats = [v["stats"] for v, _ in _SUMMARY]
    computed, seconds = config.stash.get(_PREFETCH_KEY, (0, 0.0))   # before the first item
    computed += sum(s.get("truth_computed", 0) for s in stats)
    seconds += sum(s.get("truth_seconds", 0.0) for s in stats)
    rate = f", {computed / seconds:.0f} truth points/s" if seconds > 0 and computed else ""
    terminalreporter.section("gradient certification")
    terminalreporter.write_line(
        f"{expected_ok} certified, {convicted} convicted as expected, {wrong} not as expected; "
        f"{computed} truth points computed in {seconds:.1f} s{rate}, "
        f"{sum(s.get('points', 0) for s in stats)} points judged, "
        f"{sum(s.get('fd_forward_calls', 0) for s in stats)} finite-difference forward calls")
    from ..truth.ball import HANDOVER
    if HANDOVER.proven or HANDOVER.handed:
        # This process's share (an xdist controller computes none).
        causes = "; ".join(f"{n} {cause}" for cause, n in HANDOVER.causes.most_common())
        terminalreporter.write_line(
            f"interval engine: {HANDOVER.proven} truths proven by enclosure; {HANDOVER.handed} points of exact "
            f"formulas handed to the mpmath engine" + (f" ({causes})" if causes else ""))


# -- the certification report (--certify-report DIR) -----------------------------------------
_RUNS_KEY = pytest.StashKey()


def _check_report_option(config) -> None:
    if not config.getoption("--certify-report") or hasattr(config, "workerinput"):
        return
    # xdist workers would hold the reports; what crosses to the controller
    # (user_properties) has no measured entries to draw maps from.
    if config.getoption("dist", "no") != "no":
        raise pytest.UsageError("--certify-report needs a run without xdist (-n/--dist): "
                                "the maps are drawn from reports that stay in the workers")
    _require(config, "--certify-report", "matplotlib", "matplotlib", "report")
    config.stash[_RUNS_KEY] = []


def _keep_for_report(item, report) -> None:
    if _RUNS_KEY in item.config.stash:
        from ..tables.certification_report import Run

        item.config.stash[_RUNS_KEY].append(Run.of(item.case, report, item.path.stem))


def pytest_sessionfinish(session):
    config = session.config
    if _RUNS_KEY not in config.stash:
        return
    heading, detail = _write_report(config, config.stash[_RUNS_KEY])
    if detail:
        session.exitstatus = pytest.ExitCode.INTERNAL_ERROR  # the run's own summary still shows
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line("")  # ends the progress line, which -q leaves open
        reporter.write_sep("-", heading, red=bool(detail))
        if detail:
            reporter.write_line(detail)


def _write_report(config, runs) -> tuple[str, str]:
    """A heading for the terminal, and the traceback when writing failed."""
    from ..tables.certification_report import write

    if not runs:  # --collect-only, or -k selecting nothing: keep the report there is
        return "certification report not written: no case was certified", ""
    directory = Path(config.invocation_params.dir) / config.getoption("--certify-report")
    try:
        index = write(directory, runs, "pytest " + " ".join(config.invocation_params.args))
    except Exception as exc:
        return "certification report not written", "".join(traceback.format_exception(exc))
    return f"certification report: {index} ({len(runs)} runs)", ""
