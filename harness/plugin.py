"""The pytest plugin: every Case in a ``cases/`` file becomes one test per
dtype and device. Registered as the ``pytest11`` entry point ``harness``, so
installing the package gives any repository the same collection.

Options (group "harness"): ``--dtypes``, ``--devices``, ``--grid-size``,
``--truth-cache``. Case files are ``*.py`` files (not ``test_*``) in a
directory named by the ``certify_dirs`` ini option (default ``cases``); they
may also hold ordinary test functions (benchmarks), which are collected too.
"""

from __future__ import annotations

import fnmatch
from pathlib import Path

import pytest
import torch

DTYPE_NAMES = {"float64": torch.float64, "float32": torch.float32, "float16": torch.float16,
               "bfloat16": torch.bfloat16}
_CACHE_KEY = pytest.StashKey()


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
    parser.addini("certify_dirs", "directories whose .py files hold cases", type="args", default=["cases"])


def pytest_configure(config):
    config.addinivalue_line("markers", "certify: one case certified in one dtype on one device")
    bad = [d for d in _split(config.getoption("--dtypes")) if d not in DTYPE_NAMES]
    if bad:
        raise pytest.UsageError(f"--dtypes: unknown {bad}; choose from {sorted(DTYPE_NAMES)}")
    config.stash[_CACHE_KEY] = None
    config._harness_summary = []


def _split(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def truth_cache(config):
    from .cache import TruthCache

    if config.stash[_CACHE_KEY] is None:
        option = config.getoption("--truth-cache")
        if option and option.lower() == "none":
            path = None
        else:
            path = Path(option) if option else Path(config.rootpath) / ".pytest_cache" / "harness-truth.sqlite"
        config.stash[_CACHE_KEY] = TruthCache(path)
    return config.stash[_CACHE_KEY]


def pytest_collect_file(file_path: Path, parent):
    config = parent.config
    if file_path.suffix != ".py" or file_path.name.startswith(("_", "conftest")):
        return None
    if file_path.parent.name not in config.getini("certify_dirs"):
        return None
    if any(fnmatch.fnmatch(file_path.name, pat) for pat in config.getini("python_files")):
        return None  # an ordinary test module: pytest collects it
    return CaseModule.from_parent(parent, path=file_path)


class CaseModule(pytest.Module):
    """A case file: its Case objects (module level, or in a list/tuple) and its tests."""

    def collect(self):
        try:
            module = self.obj
        except Exception as exc:  # one broken case file must not stop the run
            yield BrokenCaseFile.from_parent(self, name="import", error=exc)
            return
        yield from super().collect()
        from .case import Case

        seen, cases = set(), []
        for value in list(vars(module).values()):
            found = [value] if isinstance(value, Case) else (
                [v for v in value if isinstance(v, Case)] if isinstance(value, (list, tuple)) else [])
            for case in found:
                if id(case) not in seen:
                    seen.add(id(case))
                    cases.append(case)
        dtypes = [DTYPE_NAMES[d] for d in _split(self.config.getoption("--dtypes"))]
        devices = _split(self.config.getoption("--devices"))
        for case in cases:
            for dtype in dtypes:
                if dtype not in case.dtypes:
                    continue
                for device in devices:
                    name = f"{case.name}[{str(dtype).removeprefix('torch.')}-{device}]"
                    item = CaseItem.from_parent(self, name=name, case=case, dtype=dtype, device=device)
                    item.add_marker("certify")
                    yield item


class CertificationMismatch(Exception):
    """The verdict differs from what the case expects."""

    def __init__(self, problem: str, report):
        super().__init__(problem)
        self.problem, self.report = problem, report


class CaseItem(pytest.Item):
    def __init__(self, *, case, dtype, device, **kwargs):
        super().__init__(**kwargs)
        self.case, self.dtype, self.device = case, dtype, device

    def runtest(self):
        __tracebackhide__ = True
        from .certify import certify, check

        if self.device.startswith("cuda") and not torch.cuda.is_available():
            pytest.skip("CUDA is not available (torch.cuda.is_available() is False)")
        report = certify(self.case, self.dtype, self.device, self.config.getoption("--grid-size"),
                         truth_cache(self.config))
        self.add_report_section("call", "certification", str(report))
        self.user_properties.append(("certification", {
            "case": self.case.name, "dtype": report.dtype, "device": report.device, "ok": report.ok,
            "kinds": sorted(report.kinds), "worst_bits": report.worst_bits, "mean_bits": report.mean_bits,
            "regions": [r.words(report.feature_name) for r in report.regions],
            "kinks": len(report.kinks), "stats": report.stats,
        }))
        problem = check(self.case, report, self.dtype)
        if problem:
            raise CertificationMismatch(problem, report)

    def repr_failure(self, excinfo, style=None):
        from .errors import CaseError

        if isinstance(excinfo.value, CertificationMismatch):
            err = excinfo.value
            return f"{self.case.name} › {err.report.dtype} › {err.report.device}: {err.problem}\n\n{err.report}"
        if isinstance(excinfo.value, CaseError):
            return f"broken case: {excinfo.value}"
        return super().repr_failure(excinfo, style)

    def reportinfo(self):
        return self.path, None, f"case {self.name}"


class BrokenCaseFile(pytest.Item):
    def __init__(self, *, error, **kwargs):
        super().__init__(**kwargs)
        self.error = error

    def runtest(self):
        raise self.error

    def repr_failure(self, excinfo, style=None):
        return f"case file {self.path.name} could not be imported:\n{self.error}"

    def reportinfo(self):
        return self.path, None, f"import {self.path.name}"


def pytest_runtest_logreport(report):
    if report.when != "call":
        return
    for key, value in report.user_properties:
        if key == "certification":
            _SUMMARY.append((value, report.outcome))


_SUMMARY: list = []


def pytest_terminal_summary(terminalreporter, config):
    if not _SUMMARY:
        return
    expected_ok = sum(1 for v, outcome in _SUMMARY if v["ok"] and outcome == "passed")
    convicted = sum(1 for v, outcome in _SUMMARY if not v["ok"] and outcome == "passed")
    wrong = sum(1 for _, outcome in _SUMMARY if outcome == "failed")
    stats = [v["stats"] for v, _ in _SUMMARY]
    computed = sum(s.get("truth_computed", 0) for s in stats)
    seconds = sum(s.get("truth_seconds", 0.0) for s in stats)
    rate = f", {computed / seconds:.0f} truth points/s" if seconds > 0 and computed else ""
    terminalreporter.section("gradient certification")
    terminalreporter.write_line(
        f"{expected_ok} certified, {convicted} convicted as expected, {wrong} not as expected; "
        f"{computed} truth points computed in {seconds:.1f} s{rate}, "
        f"{sum(s.get('points', 0) for s in stats)} points judged, "
        f"{sum(s.get('fd_forward_calls', 0) for s in stats)} finite-difference forward calls")
