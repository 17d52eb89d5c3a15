"""A persistent cache of truths, so a second run recomputes nothing.

One sqlite3 file (stdlib, WAL journal) shared by every pytest-xdist worker:
each batch of results is one short transaction, and a busy writer waits.
A truth is stored as its ``truth_table`` record (bytes), which rounds
exactly to every format and decodes a whole grid at once.
Entries are keyed by a fingerprint of the reference's code — its bytecode
and constants, and those of every function it calls, recursively — so
editing a reference (or anything it calls) invalidates its truths.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import sqlite3
import time
import types
import warnings
from pathlib import Path

import mpmath


#: Bump when the truth engine changes what it computes.
ENGINE_VERSION = "truth-20"   # 20: limits at ±inf only where every path read settles on one; what no precision resolves there counts as unresolved


def _code_parts(fn, seen: set, out: list, classes: bool = False) -> None:
    if id(fn) in seen:
        return
    seen.add(id(fn))
    if isinstance(fn, functools.partial):
        _code_parts(fn.func, seen, out, classes)
        out.append(repr(fn.args) + repr(sorted(fn.keywords.items())))
        return
    if classes:
        owner = getattr(fn, "__self__", None)   # SomeFunction.apply: the class's own methods
        if isinstance(owner, type):
            _class_parts(owner, seen, out)
        elif not isinstance(fn, (types.FunctionType, types.MethodType, types.BuiltinFunctionType, type)):
            _class_parts(type(fn), seen, out)   # a callable object (an nn.Module: its forward)
    code = getattr(fn, "__code__", None)
    if code is None:
        call = getattr(type(fn), "__call__", None)
        if call is not None and hasattr(call, "__code__"):
            out.append(repr(vars(fn)) if hasattr(fn, "__dict__") else "")
            _code_parts(call, seen, out, classes)
        else:
            out.append(getattr(fn, "__qualname__", repr(fn)))
        return
    _code_object(code, out)
    for cell in fn.__closure__ or ():
        try:
            value = cell.cell_contents
        except ValueError:
            continue
        _value_part(value, seen, out, classes=classes)
    globs = getattr(fn, "__globals__", {})
    # Sorted: set order follows string hashes, which differ between processes.
    names = sorted(_names(code))
    for name in names:
        if name in globs:
            _value_part(globs[name], seen, out, attributes=names, classes=classes)


def _class_parts(cls: type, seen: set, out: list) -> None:
    """The code of a class's own methods and of its bases' outside torch."""
    for klass in cls.__mro__:
        if id(klass) in seen or klass.__module__.split(".")[0] in ("torch", "builtins", "abc", "typing"):
            continue
        seen.add(id(klass))
        out.append(klass.__qualname__)
        for name, member in sorted(vars(klass).items()):
            member = getattr(member, "__func__", member)   # staticmethod, classmethod
            if isinstance(member, types.FunctionType):
                out.append(name)
                _code_parts(member, seen, out, True)


def _names(code) -> set:
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _names(const)
    return names


def _code_object(code, out: list) -> None:
    out.append(code.co_code.hex())
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            _code_object(const, out)
        else:
            out.append(repr(const))
    out.append(",".join(code.co_names))


def _value_part(value, seen: set, out: list, attributes: set = frozenset(), classes: bool = False) -> None:
    if classes and isinstance(value, type):
        _class_parts(value, seen, out)
    elif isinstance(value, (types.FunctionType, types.MethodType)):
        _code_parts(getattr(value, "__func__", value), seen, out, classes)
    elif isinstance(value, types.ModuleType):
        if value.__name__.split(".")[0] in ("mpmath", "math", "builtins", "numpy", "torch"):
            out.append(value.__name__)
            return
        for attr in sorted(attributes):
            member = getattr(value, attr, None)
            if isinstance(member, types.FunctionType):
                _code_parts(member, seen, out, classes)
            elif classes and isinstance(member, type):
                _class_parts(member, seen, out)
    elif isinstance(value, (int, float, str, bool, tuple, type(None), complex)):
        out.append(repr(value))
    elif isinstance(value, (mpmath.mpf, mpmath.mpc)):
        out.append(repr(value._mpf_ if isinstance(value, mpmath.mpf) else value._mpc_))
    elif callable(value):
        _code_parts(value, seen, out)


def fingerprint(reference) -> str:
    """A hash of the reference's code and of everything it calls.

    Example:
        >>> fingerprint(lambda x: x + 1) == fingerprint(lambda x: x + 1)
        True
        >>> fingerprint(lambda x: x + 1) == fingerprint(lambda x: x + 2)
        False
    """
    parts: list = [ENGINE_VERSION, mpmath.__version__]
    _code_parts(reference, set(), parts)
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def code_fingerprint(fn) -> str:
    """A hash of the code of ``fn`` and of everything it calls, classes
    included: a ``torch.autograd.Function``'s forward and backward, an
    ``nn.Module``'s forward. For the code under test (``batched_claims``).

    Example:
        >>> import torch
        >>> class Double(torch.autograd.Function):
        ...     @staticmethod
        ...     def forward(ctx, x): return 2 * x
        ...     @staticmethod
        ...     def backward(ctx, g): return 2 * g
        >>> class Wrong(Double):
        ...     @staticmethod
        ...     def backward(ctx, g): return 3 * g
        >>> code_fingerprint(Double.apply) == code_fingerprint(Wrong.apply)
        False
    """
    parts: list = []
    _code_parts(fn, set(), parts, classes=True)
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


#: The table of records; the JSON table of earlier versions (``truth``) is left alone.
TABLE = "truth_records"
#: The engine version that wrote the records (a file of an older one is emptied, with a warning).
META = "truth_meta"


class CacheWarning(UserWarning):
    """The truth cache was set aside or emptied, and why."""
#: Keys per query (sqlite allows 32,766 parameters since 3.32; older ones 999).
CHUNK = 900


class TruthCache:
    """Maps keys to truth records (``truth_table.encode``) in a sqlite3 file;
    ``path=None`` keeps them in memory only."""

    def __init__(self, path: str | Path | None):
        self.path = Path(path) if path else None
        self.memory: dict[str, bytes] = {}
        if self.path:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._guarded(self._open)

    def _open(self) -> None:
        db = self._connect()
        try:
            # Once per file (it persists): switching the journal mode needs
            # the file to itself, which xdist workers opening it do not give.
            try:
                db.execute("PRAGMA journal_mode=WAL")
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc):
                    raise
                # another worker is switching it right now
            db.execute("BEGIN IMMEDIATE")   # one worker at a time decides about an older engine's file
            try:
                db.execute(f"CREATE TABLE IF NOT EXISTS {TABLE} (key TEXT PRIMARY KEY, value BLOB NOT NULL)")
                db.execute(f"CREATE TABLE IF NOT EXISTS {META} (name TEXT PRIMARY KEY, value TEXT NOT NULL)")
                row = db.execute(f"SELECT value FROM {META} WHERE name = 'engine'").fetchone()
                if row is not None and row[0] != ENGINE_VERSION:
                    warnings.warn(CacheWarning(
                        f"truth cache {self.path}: written by engine {row[0]}, this is {ENGINE_VERSION}; its truths "
                        f"are not used (they are computed again)"), stacklevel=4)
                    db.execute(f"DELETE FROM {TABLE}")
                db.execute(f"INSERT OR REPLACE INTO {META} (name, value) VALUES ('engine', ?)", (ENGINE_VERSION,))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        finally:
            db.close()

    def _guarded(self, operation, *args):
        """``operation(*args)``; a file that is not a database (a truncated copy,
        a full disk, another program's file) is set aside under another name,
        with a warning that says so, and a new one takes its place."""
        try:
            return operation(*args)
        except sqlite3.DatabaseError as exc:
            if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
                raise
            aside = self.path.with_name(f"{self.path.name}.corrupt-{int(time.time())}")
            for suffix in ("", "-wal", "-shm"):
                try:
                    Path(f"{self.path}{suffix}").rename(f"{aside}{suffix}")
                except FileNotFoundError:
                    pass   # another worker moved it first, or there was none
            warnings.warn(CacheWarning(
                f"truth cache {self.path} could not be read ({exc}): set aside as {aside.name}; "
                f"a new cache is built in its place"), stacklevel=4)
            self._open()
            return operation(*args)

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=120)

    def get_many(self, keys: list[str]) -> dict[str, bytes]:
        memory = self.memory
        found = {k: memory[k] for k in keys if k in memory}
        missing = [k for k in keys if k not in found] if len(found) < len(keys) else []
        if self.path and missing:
            found.update(self._guarded(self._read, missing))
        return found

    def _read(self, missing: list[str]) -> dict[str, bytes]:
        found: dict[str, bytes] = {}
        db = self._connect()
        try:
            for start in range(0, len(missing), CHUNK):
                chunk = missing[start:start + CHUNK]
                rows = db.execute(f"SELECT key, value FROM {TABLE} WHERE key IN ({','.join('?' * len(chunk))})", chunk)
                read = dict(rows.fetchall())
                found.update(read)
                # Kept: the next dtype or case with this reference reads memory.
                self.memory.update(read)
        finally:
            db.close()
        return found

    @contextlib.contextmanager
    def writer(self, every: int = 2000, seconds: float = 10.0):
        """``put(key, record)`` for records that arrive one by one over a long
        computation, written in batches.

        Example:
            >>> cache = TruthCache(None)
            >>> with cache.writer() as put:
            ...     put("k", b"record")
            >>> cache.get_many(["k"])
            {'k': b'record'}
        """
        writer = _Writer(self, every, seconds)
        try:
            yield writer
        finally:
            writer.flush()

    def put_many(self, items: dict[str, bytes]) -> None:
        encoded = dict(items)
        self.memory.update(encoded)
        if self.path and encoded:
            self._guarded(self._write, encoded)

    def _write(self, encoded: dict[str, bytes]) -> None:
        db = self._connect()
        try:
            with db:
                db.executemany(f"INSERT OR REPLACE INTO {TABLE} (key, value) VALUES (?, ?)", encoded.items())
        finally:
            db.close()


class _Writer:
    """Records put one at a time, written in batches: every ``every`` records
    or ``seconds``, and whatever is left when the block ends, also by an
    exception or an interrupt (what was computed is kept)."""

    def __init__(self, cache: "TruthCache", every: int, seconds: float):
        self.cache, self.every, self.seconds = cache, every, seconds
        self.pending: dict[str, bytes] = {}
        self.last = time.monotonic()

    def __call__(self, key: str, record: bytes) -> None:
        self.pending[key] = record
        if len(self.pending) >= self.every or time.monotonic() - self.last >= self.seconds:
            self.flush()

    def flush(self) -> None:
        if self.pending:
            self.cache.put_many(self.pending)
            self.pending = {}
        self.last = time.monotonic()


def point_key_prefix(ref_print: str, shapes, cotangent):
    """The hash state of ``point_key`` before the inputs: copied, it keys a
    whole grid of one shape and cotangent."""
    import numpy as np

    h = hashlib.sha256(ref_print.encode())
    h.update(repr(shapes).encode())
    h.update(np.asarray(cotangent, dtype=np.float64).tobytes())
    return h


def point_key(ref_print: str, shapes, cotangent, point) -> str:
    """The cache key of one point: the reference, the input shapes, the
    cotangent and the exact bits of every input."""
    import numpy as np

    h = point_key_prefix(ref_print, shapes, cotangent)
    for arr in point:
        h.update(np.ascontiguousarray(arr, dtype=np.float64).tobytes())
    return h.hexdigest()
