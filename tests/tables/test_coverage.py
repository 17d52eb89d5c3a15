"""The coverage of torch's differentiable OpInfo ops (``harness.tables.coverage``).

torch's OpInfo database is imported once for the session (``differentiable_ops``
is cached); everything else is string work on its names.
"""

import re

import pytest
import torch

from harness.tables import accuracy_table
from harness.tables import coverage


@pytest.fixture(scope="module")
def ops():
    return coverage.differentiable_ops()


@pytest.fixture(scope="module")
def table_cases():
    cases, _, _ = accuracy_table.load("cases.torch_ops")
    return [c.name for c in cases]


def test_the_yardstick_is_the_differentiable_opinfo_entries(ops):
    assert 500 < len(ops.entries) < 700 and 400 < len(ops.names) < 600
    assert all(op.supports_autograd for op in ops.entries)
    assert len(ops.names) == len({op.name for op in ops.entries}) < len(ops.entries)   # variants count once
    assert {"exp", "nn.functional.softplus", "linalg.vector_norm", "special.ndtr", "polygamma"} <= set(ops.names)
    assert set(ops.family.values()) <= set(coverage.FAMILIES)


def test_the_opinfo_import_leaves_torch_backends_flags_settable(ops):
    assert not torch.backends.flags_frozen()


@pytest.mark.parametrize("case, op", [
    ("torch.exp", "exp"),
    ("torch.nn.functional.softplus", "nn.functional.softplus"),
    ("torch.nn.functional.softplus(threshold=40)", "nn.functional.softplus"),
    ("torch.nn.functional.gelu(approximate=tanh)", "nn.functional.gelu"),
    ("torch.polygamma(1, x)", "polygamma"),
    ("torch.mvlgamma(x, p=2)", "mvlgamma"),
    ("torch.special.ndtr", "special.ndtr"),
    ("torch.special.expit", "sigmoid"),                      # an alias
    ("torch.nn.functional.softmax", "softmax"),              # an alias of the OpInfo name
    ("torch.relu", "nn.functional.relu"),                    # the nn.functional twin
    ("torch.Tensor.exp", "exp"),                             # the method
    ("torch.segment_reduce", "_segment_reduce"),             # the same function object
    ("torch.linalg.vector_norm(ord=inf)", "linalg.vector_norm"),
    ("torch.nn.functional.cross_entropy(label_smoothing=0.1)", "nn.functional.cross_entropy"),
])
def test_a_case_covers_the_op_it_names(ops, case, op):
    assert coverage.covered_op(case) == op


@pytest.mark.parametrize("case", ["expm1.stable", "nn.functional.gelu.stable", "torch.no_such_op", "exp"])
def test_alternatives_and_unknown_names_cover_nothing(ops, case):
    assert coverage.covered_op(case) is None


def test_unmatched_names_are_told_apart(ops):
    c = coverage.coverage(["torch.exp", "torch.manual_seed", "expm1.stable", "torch.exp"])
    assert list(c.covered) == ["exp"] and c.beyond == ["torch.manual_seed"] and c.not_ops == ["expm1.stable"]


@pytest.mark.parametrize("name, family", [
    ("exp", "elementwise unary"), ("nn.functional.softplus", "elementwise unary"),
    ("hypot", "elementwise binary"), ("where", "elementwise binary"), ("special.ndtr", "special functions"),
    ("lgamma", "special functions"), ("sum", "reductions"), ("linalg.vector_norm", "reductions"),
    ("cumsum", "reductions"), ("softmax", "normalization"), ("nn.functional.layer_norm", "normalization"),
    ("nn.functional.cross_entropy", "losses"), ("linalg.svd", "linear algebra"), ("mm", "linear algebra"),
    ("fft.rfft", "Fourier transforms"), ("nn.functional.conv2d", "convolution and pooling"),
    ("nn.functional.scaled_dot_product_attention", "attention"), ("reshape", "shape and indexing"),
    ("gather", "shape and indexing"), ("nn.functional.dropout", "other"),
])
def test_families(ops, name, family):
    assert ops.family[name] == family


def test_the_torch_ops_table_covers_each_named_op_once(ops, table_cases):
    c = coverage.coverage(table_cases)
    torch_cases = [n for n in table_cases if n.startswith("torch.")]
    assert c.not_ops == [n for n in table_cases if not n.startswith("torch.")] and not c.beyond
    assert sorted(n for names in c.covered.values() for n in names) == sorted(torch_cases)
    assert len(c.covered["pow"]) == 4    # torch.pow and three fixed exponents: one name
    assert len(c.covered) == len({re.sub(r"\(.*\)$", "", n) for n in torch_cases})


def test_the_section_prints_the_coverage_and_the_family_table(ops, table_cases):
    c = coverage.coverage(table_cases)
    text = coverage.coverage_section(table_cases, "The cases")
    percent = f"{100 * len(c.covered) / len(ops.names):.0f}%"
    assert text.startswith("## Coverage")
    assert f"The cases cover {len(c.covered)} of {len(ops.names)} differentiable ops ({percent})" in text
    rows = {line.split(" | ")[0].removeprefix("| "): line for line in text.splitlines()
            if line.startswith("| ") and not line.startswith("| family")}
    assert set(rows) == {f for f in coverage.FAMILIES if c.by_family[f][1]} | {"all"}
    assert rows["all"] == f"| all | {len(c.covered)} | {len(ops.names)} | {percent} |"
    assert sum(int(line.split(" | ")[2]) for f, line in rows.items() if f != "all") == len(ops.names)
    unary, total = c.by_family["elementwise unary"]
    assert rows["elementwise unary"].startswith(f"| elementwise unary | {len(unary)} | {total} |") and "exp" in unary
    assert "- elementwise unary: `acos`" in text and "`expm1.stable`" in text.splitlines()[-1]


def test_the_page_puts_coverage_between_findings_and_the_table(ops, table_cases):
    section = accuracy_table.coverage_of(["cases.torch_ops"])
    assert section.startswith("## Coverage") and "[cases/torch_ops.py](../cases/torch_ops.py)" in section
    meta = {"torch": "t", "python": "p", "mpmath": "m", "machine": "x", "grid_size": 1, "summary": "s"}
    page = accuracy_table.render([], {}, [], meta, coverage=section)
    assert page.index("## Findings") < page.index("## Coverage") < page.index("## The table")
    assert "## Coverage" not in accuracy_table.render([], {}, [], meta)


def test_the_coverage_counts_both_tables_by_default():
    modules = accuracy_table.coverage_modules("cases.torch_ops")
    assert modules[0] == "cases.torch_ops" and set(modules) <= set(accuracy_table.TABLE_MODULES)
    assert accuracy_table.coverage_modules("cases.torch_ops", "none") == []
    assert accuracy_table.coverage_modules("cases.other") == ["cases.other"]
    assert accuracy_table.coverage_modules("cases.x", "cases.a,cases.b") == ["cases.a", "cases.b"]
