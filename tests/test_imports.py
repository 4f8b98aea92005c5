"""The package's import rules (ARCHITECTURE.md), read from the source: no import cycle at module or
function level, the engine imports no family, numerics import no spec / CLI / store, errors.py is a
leaf; and importing any module changes no global JAX setting (a fresh process)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import ROOT

PKG = ROOT / "condense_jax"
FAMILIES = ("ode", "gd", "four_phases")
NUMERICS = ("ode.effective", "ode.blowup", "ode.theory", "gd.train", "gd.metrics", "gd.models.activations", "gd.models.mlp",
            "gd.models.cnn", "gd.models.deep_linear", "gd.data", "gd.images", "gd.scales", "gd.cnn_theory", "gd.escape",
            "four_phases.dynamics", "four_phases.data", "four_phases.detect", "engine.devices")


def modules() -> dict[str, Path]:
    out = {}
    for p in PKG.rglob("*.py"):
        parts = p.relative_to(PKG).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = p
    return out


def imports(name: str, path: Path, known: dict) -> set[str]:
    """Every package module `name` imports, anywhere in the file (module level or inside a function)."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    if name == "":
        package = []
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)] + (node.module.split(".") if node.module else [])
            elif node.module and node.module.startswith("condense_jax"):
                base = node.module.split(".")[1:]
            else:
                continue
            base_name = ".".join(base)
            for alias in node.names:
                sub = f"{base_name}.{alias.name}" if base_name else alias.name
                found.add(sub if sub in known else base_name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("condense_jax."):
                    found.add(alias.name[len("condense_jax."):])
    return {m for m in found if m in known and m != name}


@pytest.fixture(scope="module")
def graph():
    known = modules()
    return {name: imports(name, path, known) for name, path in known.items()}


def test_the_reader_sees_imports(graph):
    """A control: the graph holds edges this test knows are there (else every rule below is vacuous)."""
    assert "engine.store" in graph["engine.execute"]
    assert "ode.blowup" in graph["gd.escape"]  # a function-local import
    assert "kinds" in graph["cli"]


def test_no_import_cycle(graph):
    index, low, stack, on, cycles = {}, {}, [], set(), []

    def visit(v):  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    # a package's __init__ importing its own submodules is not a cycle of the code: drop those edges
    assert not cycles, f"import cycles: {cycles}"


def test_engine_imports_no_family(graph):
    bad = {m: sorted(i for i in deps if i.split(".")[0] in (*FAMILIES, "kinds", "cli", "api") or i == "")
           for m, deps in graph.items() if m.startswith("engine")}
    assert not any(bad.values()), bad


def test_families_import_only_the_engine_errors_and_gd_to_ode(graph):
    """The one edge between families is gd → ode (the escape prediction solves the effective ODE)."""
    bad = {}
    for m, deps in graph.items():
        fam = m.split(".")[0]
        if fam not in FAMILIES:
            continue
        other = sorted(d for d in deps if d.split(".")[0] in (*FAMILIES, "kinds", "cli", "api") and d.split(".")[0] != fam
                       and not (fam == "gd" and d.startswith("ode.")))
        if other:
            bad[m] = other
    assert not bad, bad


def test_numerics_import_no_spec_cli_or_store(graph):
    bad = {m: sorted(d for d in graph[m] if d.endswith(".spec") or d in ("cli", "kinds", "api", "engine.store", "engine.spec"))
           for m in NUMERICS}
    assert not any(bad.values()), bad


def test_errors_is_a_leaf(graph):
    assert graph["errors"] == set()


@pytest.mark.slow
def test_importing_any_module_changes_no_global_jax_setting():
    names = sorted(n for n in modules() if n)
    code = ("import importlib, jax\n"
            f"for n in {names!r}:\n"
            "    importlib.import_module('condense_jax.' + n)\n"
            "    assert not jax.config.jax_enable_x64, n\n"
            "print('ok')\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300, check=False)
    assert res.returncode == 0 and "ok" in res.stdout, res.stderr[-2000:]
