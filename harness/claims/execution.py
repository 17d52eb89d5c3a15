"""How the implementation under test is run: as written (eager), or compiled
by ``torch.compile``.

Inductor does not run eager's kernels: it decomposes ops into primitives
(``torch/_decomp``), fuses them and keeps 16-bit intermediates in float32, and
AOTAutograd compiles the backward with them. A compiled case is the same case
with its forward (and a claimed backward, if it has one) compiled: one
compiled callable per case and dtype, with dynamic shapes, so the grids of
every size reuse it. Its compile time is measured apart, on a warm-up call
before the grid runs, and the verdict is compared with the eager one point by
point (``differences``).
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import math
import time
from unittest import mock

import numpy as np
import torch

from ..case import Case

#: (id of the case, its name, dtype, device) -> (the case, its compiled twin); the
#: case is kept alive by its entry, so its id is not reused while it is here.
_COMPILED: dict[tuple, tuple[Case, Case]] = {}
#: The same key -> the Python modules Inductor generated for the twin (forward and
#: backward graphs, their C++ or Triton kernels inline), caught at the warm-up.
_SOURCES: dict[tuple, list[str]] = {}


def compiled_in(case: Case, dtype: torch.dtype, everywhere: bool = False) -> bool:
    """Whether ``case`` is certified compiled in ``dtype``: ``Case(compile=True)``,
    a mapping of dtype names (``{"float32": True}``, ``"*"`` for the rest), or
    ``everywhere`` (the plugin's ``--compile``)."""
    spec = case.compile
    if everywhere or spec is True:
        return True
    if isinstance(spec, dict):
        name = str(dtype).removeprefix("torch.")
        return bool(spec.get(name, spec.get("*", False)))
    return False


def compiled(case: Case, dtype: torch.dtype, device: str = "cpu") -> tuple[Case, float]:
    """``case`` with ``torch.compile``'d callables for ``dtype``, and the seconds the
    compilation took (0 when this process compiled it before)."""
    key = (id(case), case.name, dtype, device)
    if key in _COMPILED:
        return _COMPILED[key][1], 0.0
    backward = _compile(case.backward) if case.backward is not None else None
    twin = dataclasses.replace(case, forward=_compile(case.forward), backward=backward)
    _COMPILED[key] = (case, twin)
    seconds, _SOURCES[key] = _warm_up(twin, dtype, device)
    return twin, seconds


def decomposed(case: Case, dtype: torch.dtype, device: str = "cpu") -> Case:
    """``case`` run through what Inductor compiles, minus Inductor's code: Dynamo's graph,
    Inductor's decompositions and AOTAutograd's forward/backward partition, each remaining
    aten op run by eager's kernel (the ``aot_eager_decomp_partition`` backend).

    Beside eager and compiled torch it places a compiled difference: where it gives the
    compiled number, the decomposition's formula is responsible; where it gives eager's,
    Inductor's generated code is (its fusion, vectorized math, reduction order, float32
    intermediates)."""
    return _configured(case, dtype, device, {}, backend="aot_eager_decomp_partition")


#: Inductor's setting that turns its CPU vectorization off: one element per step, reductions in sequence.
SCALAR = {"cpp.simdlen": 1}
#: Inductor's setting that lets the C++ compiler contract ``a * b + c`` into an fma
#: (``-ffp-contract=fast``; Inductor's default is ``off``).
CONTRACTED = {"cpp.enable_floating_point_contract_flag": "fast"}


def unvectorized(case: Case, dtype: torch.dtype, device: str = "cpu") -> Case:
    """``case`` compiled by Inductor with its CPU vectorization off (``SCALAR``): the same
    graphs, decompositions and fusions, each kernel a scalar loop. Where it gives eager's
    number and the vectorized compile does not, the vectorized code is responsible (its
    vector math functions, Sleef's among them, and its reductions in lanes and then a
    tree across them)."""
    return _configured(case, dtype, device, SCALAR)


def contracted(case: Case, dtype: torch.dtype, device: str = "cpu") -> Case:
    """``case`` compiled by Inductor with multiply-adds contracted into fma (``CONTRACTED``).
    Where it gives eager's number and the default compile does not, the difference is the
    contraction: the same C++ source (``calc_i0e``) rounds otherwise with and without it,
    and eager's kernel evidently fuses those multiply-adds."""
    return _configured(case, dtype, device, CONTRACTED)


def _configured(case: Case, dtype: torch.dtype, device: str, patch: dict, backend: str = "inductor") -> Case:
    """``case`` compiled by ``backend`` under Inductor's config ``patch``, once per case and dtype."""
    import torch._inductor.config as inductor_config

    key = (id(case), case.name, dtype, device, backend, tuple(sorted(patch.items())))
    if key not in _COMPILED:
        def configured(fn):
            compiled_fn = _compile(fn, backend)

            def call(*args):
                with inductor_config.patch(patch):      # a recompile (new guard) keeps the setting
                    return compiled_fn(*args)
            return functools.update_wrapper(call, fn)
        twin = dataclasses.replace(case, forward=configured(case.forward),
                                   backward=configured(case.backward) if case.backward is not None else None)
        with inductor_config.patch(patch):              # the backward graph compiles at the first backward
            _warm_up(twin, dtype, device)
        _COMPILED[key] = (case, twin)
    return _COMPILED[key][1]


#: Decomposed ops that compute nothing otherwise: they create, view or move data, fold add's
#: ``alpha`` into a product, or turn a Scalar overload into its Tensor one.
NO_ARITHMETIC = frozenset({"detach", "_to_copy", "arange", "cat", "empty_like", "fill", "flip", "ones", "ones_like",
                           "zeros", "zeros_like", "stack", "t", "transpose", "masked_fill", "tril", "add",
                           "rsub.Scalar"})


def decompositions(case: Case, dtype: torch.dtype, device: str = "cpu") -> list[str]:
    """The aten ops of ``case``'s forward and backward graphs (as AOTAutograd traces them,
    before any decomposition) that Inductor decomposes (``select_decomp_table``), by name,
    less ``NO_ARITHMETIC``."""
    from functorch.compile import make_boxed_func
    from torch._dynamo.backends.common import aot_autograd
    from torch._inductor.compile_fx import select_decomp_table

    table, found = select_decomp_table(), set()

    def record(gm, _inputs):
        found.update(str(n.target) for n in gm.graph.nodes if n.op == "call_function" and n.target in table)
        return make_boxed_func(gm.forward)

    recorder = aot_autograd(fw_compiler=record, bw_compiler=record)
    backward = _compile(case.backward, recorder) if case.backward is not None else None
    _warm_up(dataclasses.replace(case, forward=_compile(case.forward, recorder), backward=backward), dtype, device)
    # "aten.add.Scalar": the op ("add") and the op with its overload ("add.Scalar").
    return sorted(op for op in found if not {op.split(".")[1], ".".join(op.split(".")[1:3])} & NO_ARITHMETIC)


def generated_code(case: Case, dtype: torch.dtype, device: str = "cpu") -> str:
    """What Inductor generated for ``case`` compiled in ``dtype`` (after ``compiled``):
    the wrapper modules of its forward and backward graphs with their kernels, as
    ``TORCH_LOGS=output_code`` prints them; "" when nothing was compiled."""
    return "\n".join(_SOURCES.get((id(case), case.name, dtype, device), []))


_SERIAL = itertools.count()
#: Compiled versions Dynamo keeps of one frame before it runs the frame eagerly.
RECOMPILE_LIMIT = 64


def _compile(fn, backend="inductor"):
    """``torch.compile(fn, dynamic=True)`` of a call of ``fn`` with a code object of
    its own, keeping ``fn``'s signature for the names and the number of inputs the
    harness reads from it. Dynamo caches compiled graphs per code object, up to
    ``cache_size_limit`` (8) of them, and then runs the frame eagerly without a
    word: a builtin (``torch.exp``) or a helper shared by many cases would reach it
    after 8 cases and dtypes, and their "compiled" verdicts would be eager's."""
    def call(*args):
        return fn(*args)
    call.__code__ = call.__code__.replace(co_name=f"compiled_{next(_SERIAL)}")
    import torch._dynamo.config as dynamo_config

    # A graph break (gaussian_nll_loss checks `any(var < 0)`) leaves the case's own
    # forward to be compiled as a frame of its own, shared by the twins of every dtype
    # and recompiled for each dtype and grad mode: past 8 Dynamo runs it eagerly,
    # without a word, as above. The limit is raised, and reaching it is an error (the
    # item is a broken case naming it) rather than an eager verdict called compiled.
    dynamo_config.recompile_limit = max(dynamo_config.recompile_limit, RECOMPILE_LIMIT)
    dynamo_config.accumulated_recompile_limit = max(dynamo_config.accumulated_recompile_limit, 64 * RECOMPILE_LIMIT)
    dynamo_config.fail_on_recompile_limit_hit = True
    out = functools.update_wrapper(torch.compile(call, dynamic=True, backend=backend), fn)
    # The harness runs a claimed backward twice on one graph (retain_graph) to see that
    # it is deterministic; AOTAutograd's donated buffers forbid that ("broken case"), and
    # turning them off for the process is no cure: Inductor's cache then serves backwards
    # compiled with donation, which write into a saved tensor (log_ndtr's second gradient
    # was off by sqrt(2 pi)). A compiled callable is run forward again instead.
    out.harness_compiled = True
    return out


def _warm_up(case: Case, dtype: torch.dtype, device: str) -> tuple[float, list[str]]:
    """Run the compiled forward and backward once on inputs of the grid's kind
    (1-D of 8 elements for an elementwise case, the case's shapes for a
    structured one): the compilation, timed, and the code Inductor generated
    (handed to ``save_output_code`` whether compiled or loaded from its cache).
    A failure here is left for the certification to report at a point."""
    from torch._inductor.graph import GraphLowering

    from .claimed import one_thread

    shapes = case.shape or ((8,),) * case.arity
    xs = [torch.full(s, 0.5, dtype=dtype, device=device, requires_grad=True) for s in shapes]
    sources: list[str] = []
    started = time.perf_counter()
    # In the thread count and grad modes certification runs in (Dynamo guards on both):
    # the graphs the grid uses are compiled here, timed, and not inside the certification.
    with mock.patch.object(GraphLowering, "save_output_code", sources.append), one_thread():
        try:
            y = case.forward(*xs)
            if case.backward is not None:
                case.backward(*[x.detach() for x in xs], torch.ones_like(y))
            else:
                torch.autograd.grad(y, xs, torch.ones_like(y), allow_unused=True)
            with torch.no_grad():       # the finite differences' forward calls
                case.forward(*[x.detach() for x in xs])
        except Exception:   # the grid's first point names the problem with its input
            pass
    return time.perf_counter() - started, sources


@dataclasses.dataclass
class Difference:
    """An entry the eager and the compiled verdicts judge differently."""

    point: tuple
    quantity: str
    eager: str       # a kind, or "ok"
    compiled: str
    eager_bits: float
    compiled_bits: float

    def words(self) -> str:
        def side(kind: str, bits: float) -> str:
            return kind if kind == "ok" else f"{kind} ({bits:.1f} bits)"
        point = ", ".join(_short(a) for a in self.point)
        return (f"({point}) {self.quantity}: eager {side(self.eager, self.eager_bits)}, "
                f"compiled {side(self.compiled, self.compiled_bits)}")


def _short(a) -> str:
    a = np.asarray(a, dtype=np.float64)
    if a.ndim == 0:
        return f"{float(a):.6g}"
    head = ", ".join(f"{v:.3g}" for v in a.ravel()[:6])
    return f"[{head}{', …' if a.size > 6 else ''}] shape {a.shape}"


def _key(point, quantity: str) -> tuple:
    return tuple(np.asarray(a, dtype=np.float64).tobytes() for a in point) + (quantity,)


def differences(eager, compiled_report, bits: float = 1.0) -> list[Difference]:
    """Entries where the two reports' failing kinds differ, or where both fail
    alike but more than ``bits`` apart: from each report's failures, so an entry
    that passes in both is never listed."""
    def table(report):
        return {_key(f.point, f.quantity): f for f in report.failures}
    a, b = table(eager), table(compiled_report)
    out = []
    for key in sorted(set(a) | set(b), key=repr):
        fa, fb = a.get(key), b.get(key)
        ka, kb = (fa.kind if fa else "ok"), (fb.kind if fb else "ok")
        ba = fa.bits if fa else math.nan
        bb = fb.bits if fb else math.nan
        if ka != kb or (fa and fb and abs(fa.bits - fb.bits) > bits):
            f = fa or fb
            out.append(Difference(f.point, f.quantity, ka, kb, ba, bb))
    return out


def compared(eager, compiled_report, shown: int = 8) -> str:
    """The section a compiled item prints: its verdict against eager's, and the
    entries where they differ."""
    diff = differences(eager, compiled_report)
    verdicts = (f"eager: {'certified' if eager.ok else 'convicted ' + ', '.join(sorted(eager.kinds))}; "
                f"compiled: {'certified' if compiled_report.ok else 'convicted ' + ', '.join(sorted(compiled_report.kinds))}")
    if not diff:
        return verdicts + "\nthe compiled verdict judges every entry as eager's does"
    lines = [verdicts, f"{len(diff)} entries judged differently (kind, or more than a bit):"]
    lines += ["  " + d.words() for d in diff[:shown]]
    if len(diff) > shown:
        lines.append(f"  and {len(diff) - shown} more")
    return "\n".join(lines)
