"""The wings' import rules (docs/architecture.md), read from the source.

Every ``import`` and ``from ... import`` of a harness module counts, at module
level and inside functions alike: a function-local import is still a dependency,
only a later one, and a circle through one is a circle: there is none. Each
rule is checked on the harness and, with a planted
breach, on a small graph, so that a check that could never fail fails here.
"""

from __future__ import annotations

import ast
from pathlib import Path

HARNESS = Path(__file__).resolve().parents[1] / "harness"

def _module(path: Path, root: Path = HARNESS) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(root: Path = HARNESS) -> dict[str, set[str]]:
    """Each harness module's harness imports (module names; ``from pkg import mod``
    counts as ``pkg.mod`` where that is a module)."""
    modules = {_module(p, root): p for p in root.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[:len(package.split(".")) - node.level + 1]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                subs = {f"{target}.{a.name}" for a in node.names} & modules.keys()
                found |= subs or {target}
        graph[name] = {t for t in found if t.split(".")[0] == "harness" and t != name}
    return graph


def cycles(graph: dict[str, set[str]], allowed=frozenset()) -> list[list[str]]:
    """Every circle of imports (one per strongly connected set), ``allowed`` edges left out."""
    edges = {m: {t for t in ts if (m, t) not in allowed and t in graph} for m, ts in graph.items()}
    index, low, stack, on, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1 or v in edges[v]:
                found.append(sorted(group))
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def _in(module: str, wing: str) -> bool:
    return module == wing or module.startswith(wing + ".")


def breaches(graph: dict[str, set[str]], wing: str, forbidden) -> list[tuple[str, str]]:
    """Imports from modules of ``wing`` into modules that ``forbidden(target)`` names."""
    return sorted((m, t) for m, ts in graph.items() if _in(m, wing) for t in ts if forbidden(t))


def _inputs_forbidden(target: str) -> bool:
    # The inputs wing sits at the bottom: itself, and errors (which imports nothing).
    return not (_in(target, "harness.inputs") or target == "harness.errors")


def test_no_module_imports_one_that_imports_it_back():
    assert cycles(imports()) == []


def test_inputs_imports_no_other_wing():
    assert breaches(imports(), "harness.inputs", _inputs_forbidden) == []


def test_judging_never_imports_the_claims():
    assert breaches(imports(), "harness.judging", lambda t: _in(t, "harness.claims")) == []


def test_truth_imports_neither_the_claims_nor_the_judging():
    assert breaches(imports(), "harness.truth", lambda t: _in(t, "harness.claims") or _in(t, "harness.judging")) == []


#: What differentiates by torch's autograd: no truth module names any of them.
AUTOGRAD = ("torch.autograd.grad", "torch.autograd.backward", "torch.autograd.forward_ad", "torch.func",
            ".backward(", "requires_grad=True", "create_graph")


def autograd_uses(root: Path = HARNESS / "truth") -> list[tuple[str, str]]:
    """(file under ``root``, what) for each use of torch's autograd machinery in the code (docstrings left out)."""
    found = []
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text())
        docs = {id(n.body[0].value) for n in ast.walk(tree)
                if isinstance(n, (ast.Module, ast.FunctionDef, ast.ClassDef)) and n.body
                and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
        code = "\n".join(ast.unparse(n) for n in ast.walk(tree)
                         if isinstance(n, ast.stmt) and not isinstance(n, (ast.FunctionDef, ast.ClassDef, ast.Module))
                         and not (isinstance(n, ast.Expr) and id(n.value) in docs)
                         and not any(isinstance(c, ast.stmt) for c in ast.iter_child_nodes(n)))
        found += [(str(path.relative_to(root)), what) for what in AUTOGRAD if what in code]
    return found


def test_truth_runs_no_autograd():
    assert autograd_uses() == []


# -- each check fails on a planted breach ------------------------------------------------------

def test_a_planted_circle_is_found_also_through_a_late_import():
    graph = {"harness.a": {"harness.b"}, "harness.b": {"harness.c"}, "harness.c": {"harness.a"}, "harness.d": set()}
    assert cycles(graph) == [["harness.a", "harness.b", "harness.c"]]
    assert cycles(graph, {("harness.c", "harness.a")}) == []


def test_planted_breaches_of_the_wings_are_found():
    graph = {"harness.inputs.grids": {"harness.errors", "harness.truth.cache"},
             "harness.judging.judge": {"harness.claims.estimates", "harness.inputs.floats"},
             "harness.truth.solve": {"harness.judging.kinds"}}
    assert breaches(graph, "harness.inputs", _inputs_forbidden) == [("harness.inputs.grids", "harness.truth.cache")]
    assert breaches(graph, "harness.judging", lambda t: _in(t, "harness.claims")) == [
        ("harness.judging.judge", "harness.claims.estimates")]
    assert breaches(graph, "harness.truth", lambda t: _in(t, "harness.judging")) == [
        ("harness.truth.solve", "harness.judging.kinds")]


def test_imports_are_read_as_modules(tmp_path):
    package = tmp_path / "harness"
    (package / "w").mkdir(parents=True)
    (package / "__init__.py").write_text("from .w import m\n")
    (package / "w" / "__init__.py").write_text("")
    (package / "w" / "m.py").write_text("def f():\n    from .. import top\n")
    (package / "top.py").write_text("from .w.m import f\n")
    graph = imports(package)
    assert graph["harness.w.m"] == {"harness.top"} and graph["harness.top"] == {"harness.w.m"}
    assert cycles(graph) == [["harness.top", "harness.w.m"]]


def test_a_planted_autograd_call_in_truth_is_found(tmp_path):
    (tmp_path / "harness").mkdir()
    (tmp_path / "harness" / "engine.py").write_text('"""Not torch.func: a docstring."""\n'
                                                    "def f(y, x):\n    return torch.autograd.grad(y, x)\n")
    assert [what for _, what in autograd_uses(tmp_path)] == ["torch.autograd.grad"]
