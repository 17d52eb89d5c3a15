"""How much of torch's differentiable ops the accuracy tables cover.

The yardstick is torch's own OpInfo database
(``torch.testing._internal.common_methods_invocations.op_db``), the list
torch's test suite runs every operator test over: its entries that support
autograd, counted by name (the variants of one name, e.g. ``polygamma``'s
``polygamma_n_0`` to ``_n_4``, count once). A case names the op it certifies
(``"torch.nn.functional.softplus(threshold=40)"``) and covers that name;
alternatives such as ``"expm1.stable"`` are not torch ops and cover nothing.

    >>> from harness.tables.coverage import coverage, covered_op
    >>> covered_op("torch.polygamma(1, x)"), covered_op("expm1.stable")
    ('polygamma', None)
    >>> len(coverage(["torch.exp", "torch.pow(x, 2)", "torch.pow"]).covered)
    2

Importing the database takes seconds (torch's test utilities come with it,
and it needs the ``expecttest`` package); it is imported on first use and kept.
"""

from __future__ import annotations

import contextlib
import functools
import re
import warnings
from dataclasses import dataclass

import torch

FAMILIES = (
    "elementwise unary", "elementwise binary", "special functions", "reductions", "normalization",
    "losses", "linear algebra", "Fourier transforms", "convolution and pooling", "attention",
    "shape and indexing", "other",
)

#: Families told by the name, tried in order before OpInfo's classes: a namespace
#: (``special.``, ``fft.``, ``linalg.``) or the subject of a whole ``nn.functional``
#: section. The special functions outside ``torch.special`` are the gamma, error
#: and Bessel functions torch keeps in its main namespace too.
_BY_NAME = (
    ("special functions", r"^special\.|^(lgamma|digamma|polygamma|mvlgamma|erf|erfc|erfinv|i0)$"),
    ("Fourier transforms", r"^fft\.|^i?stft$"),
    ("attention", r"attention"),
    ("losses", r"loss|cross_entropy|kl_div"),
    ("normalization", r"softmax|softmin|(batch|layer|group|instance|rms|response)_norm|normalize|^renorm$"),
    ("linear algebra", r"^linalg\.|^(add|b|addb|baddb|sparse\.|sparse\.sampled_add)?m[mv]$|matmul|^addr$|dot$"
                       r"|^(inner|outer|kron|tensordot|einsum|trace|cross|logdet|matrix_exp|pinverse|ormqr)$"
                       r"|cholesky|^lu|^qr$|svd|pca_lowrank|triangular_solve|^nn\.functional\.(bi)?linear$"),
    ("convolution and pooling", r"conv|pool|interpolate|upsample|grid_sample|shuffle|^nn\.functional\.unfold$"),
)

#: What is left once OpInfo's classes and ATen's tags have spoken, by name.
_LEFT = (
    # An OpInfo without the ufunc class, on an ATen op without the pointwise tag.
    ("elementwise unary", r"^nn\.functional\.hardswish$"),
    ("reductions", r"^(masked\.)?cum|logcumsumexp|cumulative|median|quantile|^mode$|kthvalue|^(std|var)(_mean)?$"
                   r"|dist|cov|corrcoef|trapz|trapezoid|segment_reduce|logsumexp|cosine_similarity"),
    ("shape and indexing", r"index|scatter|gather|select|slice|split|chunk|stack|^cat$|squeeze|expand|broadcast"
                           r"|flip|roll|rot90|permute|transpose|movedim|reshape|view|flat|narrow|diag|^tril|^triu"
                           r"|take|put|masked_fill|repeat|tile|getitem|pad|atleast|meshgrid|cartesian_prod"
                           r"|combinations|block_diag|sort|topk|^(t|T|H|mT|mH)$|unbind|unfold|as_strided"
                           r"|sum_to_size|contiguous|alias|embedding|one_hot|^fill$|^zero_$|^clone$"),
)

#: Case names the matcher cannot place by spelling: ``case name -> OpInfo name``.
#: Empty: every case of cases/torch_ops.py, cases/torch_structured.py and cases/torch_linalg.py is found
#: by its name, an alias, its ``nn.functional``/``special``/``Tensor`` twin or the
#: function it names.
EXCEPTIONS: dict[str, str] = {}

_CALL = re.compile(r"\(.*\)$")


@dataclass(frozen=True)
class OpInfoOps:
    """The differentiable OpInfo entries and what the coverage needs of them."""

    entries: tuple            # the OpInfo objects, variants included
    names: tuple[str, ...]    # their distinct names, sorted
    family: dict              # OpInfo name -> family
    spellings: dict           # OpInfo name or alias name -> OpInfo name
    callables: dict           # id of the function an entry or alias tests -> OpInfo name


def _import_op_db() -> list:
    """torch's OpInfo database, imported without its side effects on the session:
    torch's test utilities forbid setting ``torch.backends`` flags outside a
    ``flags()`` block on import (torch's own context for its tests restores the
    permission on exit) and add a warnings filter (``catch_warnings`` drops it)."""
    unfrozen = getattr(torch.backends, "__allow_nonbracketed_mutation", contextlib.nullcontext)
    try:
        with warnings.catch_warnings(), unfrozen():
            from torch.testing._internal.common_methods_invocations import op_db
    except ImportError as e:
        raise ImportError(f"torch's OpInfo database does not import ({e}); it needs the expecttest package") from e
    return op_db


@functools.cache
def differentiable_ops() -> OpInfoOps:
    """The OpInfo entries that support autograd, their names, families and spellings.

    Example:
        >>> ops = differentiable_ops()
        >>> len(ops.entries), len(ops.names)    # torch 2.13
        (547, 487)
    """
    entries = tuple(op for op in _import_op_db() if op.supports_autograd)
    family: dict[str, str] = {}
    spellings: dict[str, str] = {}
    callables: dict[int, str] = {}
    for op in entries:
        family.setdefault(op.name, classify(op))
        spellings.setdefault(op.name, op.name)
        callables.setdefault(id(op.op), op.name)
        for alias in op.aliases:
            spellings.setdefault(alias.name, op.name)
            callables.setdefault(id(alias.op), op.name)
    return OpInfoOps(entries, tuple(sorted(family)), family, spellings, callables)


# -- families ---------------------------------------------------------------------------------

def _aten(op):
    """The ATen overload packet an OpInfo entry tests, or None: its ``aten_name``,
    else its name out of a Python namespace (``nn.functional.hardswish`` and
    ``masked.logaddexp`` are built on ``aten.hardswish`` and ``aten.logaddexp``)."""
    for name in (op.aten_name, re.sub(r"^(nn\.functional|masked)\.", "", op.name)):
        try:
            packet = getattr(torch.ops.aten, name or "", None)
        except (AttributeError, RuntimeError):
            packet = None
        if packet is not None:
            return packet
    return None


def _tags(packet) -> set[str]:
    return {tag.name for overload in packet.overloads() for tag in getattr(packet, overload).tags}


def _schemas(packet) -> list:
    return [getattr(packet, overload)._schema for overload in packet.overloads()]


def _tensor_inputs(packet) -> int:
    """The most tensors an overload takes, ``out=`` aside (``where(condition)`` alone would say one)."""
    return max(sum(1 for a in s.arguments if str(a.type) == "Tensor" and not a.is_out) for s in _schemas(packet))


def _is_view(packet) -> bool:
    """Whether an overload returns a view of its input (``Tensor(a)``, not written to)."""
    return any(r.alias_info is not None and not r.alias_info.is_write for s in _schemas(packet) for r in s.returns)


def classify(op) -> str:
    """The family of an OpInfo entry, by rules tried in order:

    0. OpInfo's ``ReductionOpInfo`` class (``linalg.vector_norm`` is a reduction);
    1. its name (``_BY_NAME``): a namespace (``special.``, ``fft.``, ``linalg.``),
       or the subject of a whole ``nn.functional`` section (attention, losses,
       normalization, convolution and pooling) or of linear algebra;
    2. OpInfo's other classes: ``SpectralFuncInfo``, ``UnaryUfuncInfo``,
       ``BinaryUfuncInfo``, ``ShapeFuncInfo``;
    3. the tags ATen gives its operator: ``reduction``; ``pointwise`` (unary
       when no overload takes more than one tensor, binary otherwise:
       ``addcmul``, ``lerp`` and ``where`` count as binary); ``view_copy`` or a
       schema returning a view of its input (shape and indexing);
    4. its name again (``_LEFT``): scans, order statistics, moments and distances
       are reductions; indexing, joining, splitting and reshaping are shape and
       indexing;
    5. anything else (dropout, sampling, conversions to sparse, complex views) is "other".
    """
    if type(op).__name__ == "ReductionOpInfo":
        return "reductions"
    for family, pattern in _BY_NAME:
        if re.search(pattern, op.name):
            return family
    by_class = {"SpectralFuncInfo": "Fourier transforms",
                "UnaryUfuncInfo": "elementwise unary", "BinaryUfuncInfo": "elementwise binary",
                "ShapeFuncInfo": "shape and indexing"}
    if type(op).__name__ in by_class:
        return by_class[type(op).__name__]
    packet = _aten(op)
    if packet is not None:
        tags = _tags(packet)
        if "reduction" in tags:
            return "reductions"
        if "pointwise" in tags:
            return "elementwise unary" if _tensor_inputs(packet) == 1 else "elementwise binary"
        if "view_copy" in tags or _is_view(packet):
            return "shape and indexing"
    for family, pattern in _LEFT:
        if re.search(pattern, op.name):
            return family
    return "other"


# -- matching ---------------------------------------------------------------------------------

def _twins(name: str) -> list[str]:
    """The spellings of one function across namespaces: ``nn.functional.X`` is
    built on ATen's ``X``, ``special.X`` is ``X`` wherever both exist, and
    ``Tensor.X`` is the method of ``X``."""
    for prefix in ("nn.functional.", "special.", "Tensor."):
        if name.startswith(prefix):
            return [name.removeprefix(prefix)]
    return ["nn.functional." + name, "special." + name]


def _resolve(name: str):
    """The object ``torch.<name>`` names, or None."""
    obj = torch
    for part in name.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj


def covered_op(case_name: str) -> str | None:
    """The OpInfo name a case covers, or None.

    The case name loses a leading ``torch.`` and a trailing variant in
    parentheses, then is looked up as an OpInfo name or alias, then as its
    ``nn.functional``/``special``/``Tensor`` twin, then by the very function
    it names (``torch.segment_reduce`` is OpInfo's ``_segment_reduce``).
    Names outside ``torch.`` (``"expm1.stable"``) cover nothing.

    Example:
        >>> covered_op("torch.nn.functional.gelu(approximate=tanh)")
        'nn.functional.gelu'
        >>> covered_op("torch.special.expit"), covered_op("sigmoid.stable")
        ('sigmoid', None)
    """
    if case_name in EXCEPTIONS:
        return EXCEPTIONS[case_name]
    if not case_name.startswith("torch."):
        return None
    ops = differentiable_ops()
    bare = _CALL.sub("", case_name).removeprefix("torch.")
    for spelling in [bare, *_twins(bare)]:
        if spelling in ops.spellings:
            return ops.spellings[spelling]
    function = _resolve(bare)
    return None if function is None else ops.callables.get(id(function))


def is_torch_op(case_name: str) -> bool:
    """Whether the case names a function of torch (in OpInfo or not)."""
    return case_name.startswith("torch.") and callable(_resolve(_CALL.sub("", case_name).removeprefix("torch.")))


# -- the section ------------------------------------------------------------------------------

@dataclass
class Coverage:
    """Which differentiable OpInfo names some cases cover, by family."""

    covered: dict      # OpInfo name -> the case names covering it
    beyond: list       # torch ops with no OpInfo entry
    not_ops: list      # case names that are not torch ops (certified alternatives)
    total: int         # differentiable OpInfo names
    by_family: dict    # family -> (covered names, total)


def coverage(case_names) -> Coverage:
    """The coverage of ``case_names`` (each counted once).

    Example:
        >>> c = coverage(["torch.exp", "torch.pow(x, 2)", "torch.pow", "expm1.stable"])
        >>> sorted(c.covered), c.not_ops
        (['exp', 'pow'], ['expm1.stable'])
    """
    ops = differentiable_ops()
    covered: dict[str, list[str]] = {}
    beyond, not_ops = [], []
    for name in dict.fromkeys(case_names):
        op = covered_op(name)
        if op is not None:
            covered.setdefault(op, []).append(name)
        elif is_torch_op(name):
            beyond.append(name)
        else:
            not_ops.append(name)
    by_family = {}
    for family in FAMILIES:
        members = [n for n in ops.names if ops.family[n] == family]
        by_family[family] = ([n for n in members if n in covered], len(members))
    return Coverage(covered, beyond, not_ops, len(ops.names), by_family)


def _percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:.0f}%" if whole else "—"


def coverage_section(case_names, sources: str = "These cases") -> str:
    """The markdown section: the fraction of differentiable OpInfo names covered,
    a table by family, the covered names per family, and the cases beyond OpInfo.

    Example:
        >>> text = coverage_section(["torch.exp", "torch.erf"], "Two cases")
        >>> text.splitlines()[2].startswith("Two cases cover 2 of")
        True
    """
    c = coverage(case_names)
    ops = differentiable_ops()
    rows = [f"| {f} | {len(names)} | {total} | {_percent(len(names), total)} |"
            for f, (names, total) in c.by_family.items() if total]
    listed = [f"- {f}: {', '.join(f'`{n}`' for n in names)}" for f, (names, _) in c.by_family.items() if names]
    beyond = ", ".join(f"`{n}`" for n in c.beyond) or "none"
    not_ops = ", ".join(f"`{n}`" for n in c.not_ops) or "none"
    return "\n".join([
        "## Coverage",
        "",
        f"{sources} cover {len(c.covered)} of {c.total} differentiable ops ({_percent(len(c.covered), c.total)}): "
        f"the names of torch's OpInfo database (`torch.testing._internal.common_methods_invocations.op_db`, "
        f"torch {torch.__version__}) whose entries support autograd, {len(ops.entries)} entries, the variants "
        "of one name counted once. A case covers the name it certifies, whatever its arguments "
        "(`torch.pow(x, 2)` covers `pow`); families by `harness.tables.coverage.classify`.",
        "",
        "| family | covered | total | percent |",
        "|---|---|---|---|",
        *rows,
        f"| all | {len(c.covered)} | {c.total} | {_percent(len(c.covered), c.total)} |",
        "",
        "Covered, by family:",
        "",
        *listed,
        "",
        f"Matched no OpInfo entry: torch ops outside the database: {beyond}; "
        f"not torch ops (certified alternatives): {not_ops}.",
    ])
