"""The truth cache: fingerprints of references, round trips, concurrent writers."""

import math
import multiprocessing
import os
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import mpmath
import pytest

from harness.truth.cache import TruthCache, fingerprint
from harness.inputs.domains import real
from harness.inputs.floats import FORMATS, round_to
from harness.truth.mpmath_engine import PointTruth
from harness.truth.point import solve_point
from harness.truth.table import decode, encode

HARNESS_DIR = Path(__file__).resolve().parents[2] / "harness"


def module(name: str, source: str, monkeypatch) -> types.ModuleType:
    """A module made from ``source`` and importable by ``name`` for the rest of the test."""
    mod = types.ModuleType(name)
    monkeypatch.setitem(sys.modules, name, mod)
    exec(compile(textwrap.dedent(source), f"<{name}>", "exec"), mod.__dict__)
    return mod


HELPERS = """
    import mpmath


    def _inner(x):
        return mpmath.sin(x)


    def helper(x):
        return 2 * _inner(x)
"""

# The two ways a reference reaches a helper in another module.
BY_NAME = """
    import mpmath
    from helpers import helper


    def reference(x):
        return mpmath.exp(x) + helper(x)
"""

BY_MODULE = """
    import mpmath
    import helpers


    def reference(x):
        return mpmath.exp(x) + helpers.helper(x)
"""


def reference_print(source: str, helpers: str, monkeypatch) -> str:
    module("helpers", helpers, monkeypatch)
    return fingerprint(module("refs", source, monkeypatch).reference)


# -- fingerprint ------------------------------------------------------------------------------
def test_fingerprint_is_stable_for_the_same_code(monkeypatch):
    for source in (BY_NAME, BY_MODULE):
        # Loaded twice, as a re-import would: new function objects, the same code.
        first = reference_print(source, HELPERS, monkeypatch)
        assert reference_print(source, HELPERS, monkeypatch) == first


def test_fingerprint_ignores_what_the_reference_does_not_call(monkeypatch):
    first = reference_print(BY_NAME, HELPERS, monkeypatch)
    unrelated = textwrap.dedent(HELPERS) + "\n\ndef unused(x):\n    return x\n\n\nCONSTANT = 3\n"
    assert reference_print(BY_NAME, unrelated, monkeypatch) == first


def test_fingerprint_changes_with_the_reference_code(monkeypatch):
    first = reference_print(BY_NAME, HELPERS, monkeypatch)
    edited = BY_NAME.replace("mpmath.exp(x) + helper(x)", "mpmath.exp(x) - helper(x)")
    assert reference_print(edited, HELPERS, monkeypatch) != first
    constant = BY_NAME.replace("mpmath.exp(x) + helper(x)", "mpmath.exp(x) + helper(x) + 1")
    assert reference_print(constant, HELPERS, monkeypatch) != first
    other_function = BY_NAME.replace("mpmath.exp(x)", "mpmath.expm1(x)")
    assert reference_print(other_function, HELPERS, monkeypatch) != first


@pytest.mark.parametrize("source", [BY_NAME, BY_MODULE], ids=["from-import", "module-attribute"])
def test_fingerprint_changes_with_a_helper_in_another_module(source, monkeypatch):
    first = reference_print(source, HELPERS, monkeypatch)
    assert reference_print(source, HELPERS.replace("return 2 * _inner(x)", "return 3 * _inner(x)"),
                           monkeypatch) != first
    # A helper of the helper, one more call away.
    assert reference_print(source, HELPERS.replace("mpmath.sin(x)", "mpmath.cos(x)"), monkeypatch) != first


FINGERPRINT_SCRIPT = """
import sys, types
# Only cache.py is needed: skip the package's torch import.
package = types.ModuleType("harness")
package.__path__ = [sys.argv[1]]
sys.modules["harness"] = package
sys.path.insert(0, sys.argv[2])
from harness.truth.cache import fingerprint
import refs
print(fingerprint(refs.reference))
"""


def test_fingerprint_is_the_same_in_another_process(tmp_path):
    """The persistent cache is read by later runs, each a new process with its own string hashes."""
    (tmp_path / "helpers.py").write_text(textwrap.dedent(HELPERS))
    (tmp_path / "refs.py").write_text(textwrap.dedent(BY_NAME))
    runs = [subprocess.Popen([sys.executable, "-c", FINGERPRINT_SCRIPT, str(HARNESS_DIR), str(tmp_path)],
                             env={**os.environ, "PYTHONHASHSEED": str(seed)}, stdout=subprocess.PIPE, text=True)
            for seed in range(4)]
    prints = set()
    for run in runs:
        out, _ = run.communicate(timeout=60)
        assert run.returncode == 0
        prints.add(out.strip())
    assert len(prints) == 1


def test_fingerprint_changes_with_an_mpf_constant_the_reference_reads(monkeypatch):
    source = """
        import mpmath

        SCALE = mpmath.mpf({})


        def reference(x):
            return SCALE * x
    """
    assert reference_print(source.format(2), HELPERS, monkeypatch) != reference_print(
        source.format(3), HELPERS, monkeypatch)

    def scaled(c):
        return lambda x: c * x

    assert fingerprint(scaled(mpmath.mpf(2))) != fingerprint(scaled(mpmath.mpf(3)))


# -- round trips ------------------------------------------------------------------------------
def round_trips(record: bytes, tmp_path) -> list[bytes]:
    """The record as read back: from the writer, from a new cache on the same file, from memory."""
    path = tmp_path / "truth.sqlite"
    writer = TruthCache(path)
    writer.put_many({"k": record})
    memory = TruthCache(None)
    memory.put_many({"k": record})
    return [writer.get_many(["k"])["k"], TruthCache(path).get_many(["k"])["k"], memory.get_many(["k"])["k"]]


def test_a_computed_truth_comes_back_rounding_as_the_engine_computed_it(tmp_path):
    truth = solve_point(lambda v: [mpmath.exp(v[0]) / 3], [0.1], [1.0], [real()])
    assert truth.value[0]._mpf_[3] > 53   # the engine's working precision, not float64's
    for got in round_trips(encode(truth), tmp_path):
        table = decode(got)
        for f in FORMATS.values():
            assert table.value_in(f).tolist() == [round_to(truth.value[0], f)]
            assert table.grad_in(f).tolist() == [round_to(truth.grad[0], f)]


# -- two writers ------------------------------------------------------------------------------
BATCHES, PER_BATCH = 40, 5


def entry(writer: int, batch: int, j: int) -> tuple[str, bytes]:
    v = mpmath.ldexp(2 * (writer * 1000 + batch * 10 + j) + 1, -batch)
    return f"w{writer}-b{batch}-{j}", encode(PointTruth([v], [1.0], [None], [math.nan], [False], 200))


def write_concurrently(path: str, writer: int, start) -> None:
    start.wait()   # both open the fresh file (create the table, switch to WAL) at the same moment
    cache = TruthCache(path)
    for batch in range(BATCHES):
        cache.put_many(dict(entry(writer, batch, j) for j in range(PER_BATCH)))
        cache.memory.clear()   # read back through sqlite, while the other process writes
        assert len(cache.get_many([entry(writer, batch, j)[0] for j in range(PER_BATCH)])) == PER_BATCH


def test_two_processes_write_the_same_file_at_once(tmp_path):
    path = str(tmp_path / "shared.sqlite")
    context = multiprocessing.get_context("fork")
    start = context.Barrier(2)
    writers = [context.Process(target=write_concurrently, args=(path, w, start)) for w in range(2)]
    for w in writers:
        w.start()
    for w in writers:
        w.join(timeout=120)
    assert [w.exitcode for w in writers] == [0, 0]
    wanted = dict(entry(w, b, j) for w in range(2) for b in range(BATCHES) for j in range(PER_BATCH))
    found = TruthCache(path).get_many(list(wanted))
    assert found.keys() == wanted.keys()
    assert found == wanted


def test_a_writer_keeps_what_arrived_before_an_interrupt(tmp_path):
    cache = TruthCache(tmp_path / "c.sqlite")
    with pytest.raises(KeyboardInterrupt):
        with cache.writer(every=2) as put:
            for k in range(5):
                put(f"k{k}", b"r")
            raise KeyboardInterrupt
    assert len(TruthCache(tmp_path / "c.sqlite").get_many([f"k{k}" for k in range(5)])) == 5


# -- a cache that cannot be read is set aside, not fatal ---------------------------------------------------

def _filled(path: Path, n: int = 2000) -> TruthCache:
    cache = TruthCache(path)
    cache.put_many({f"k{i}": bytes(64) + i.to_bytes(4, "little") for i in range(n)})
    return cache


@pytest.mark.parametrize("damage", ["not a database", "truncated"])
def test_a_damaged_cache_is_set_aside_with_a_warning_and_rebuilt(tmp_path, damage):
    path = tmp_path / "truth.sqlite"
    _filled(path)
    if damage == "not a database":
        path.write_bytes(b"partial copy " * 100)
    else:   # a full disk or an interrupted copy: the first pages survive
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 3])
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    with pytest.warns(UserWarning, match="could not be read .* set aside as truth.sqlite.corrupt-"):
        cache = TruthCache(path)
        found = cache.get_many([f"k{i}" for i in range(2000)])
    assert len(found) < 2000   # what was lost is computed again
    cache.put_many({"new": b"record"})
    assert TruthCache(path).get_many(["new"]) == {"new": b"record"}
    assert list(tmp_path.glob("truth.sqlite.corrupt-*"))


def test_a_cache_of_an_older_engine_is_ignored_with_one_line_that_says_why(tmp_path, monkeypatch):
    import harness.truth.cache

    path = tmp_path / "truth.sqlite"
    monkeypatch.setattr(harness.truth.cache, "ENGINE_VERSION", "truth-old")
    _filled(path, 10)
    monkeypatch.undo()
    with pytest.warns(UserWarning, match=r"written by engine truth-old, this is truth-\d+; its truths are not used") as seen:
        cache = TruthCache(path)
    assert len(seen) == 1
    assert cache.get_many(["k1"]) == {}
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        TruthCache(path)   # now the file is this engine's: no second warning
