"""The import graph of the `pallet` package, read statically: no cycles among the compiler's
modules, and the core library's modules stay small.

Every import counts wherever it is written (at the top, inside a function, at the bottom of a
module), because a late import only hides a cycle from Python, not from the reader; imports
under `if TYPE_CHECKING:` never run and do not count. Importing `a.b.c` runs the packages
`a` and `a.b` first, so it is an edge to them too (except to the importer's own packages,
which are already being imported)."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# import name -> folder of this repository, as setup.py maps them
ROOTS = {"pallet": "pallet", "pallet.grammar": "grammar", "pallet.stevedore": "stevedore",
         "pallet.compiler": "compiler", "pallet.runtime": "runtime", "pallet.crates": "crates"}

# Cycles in pallet.compiler that remain, each as its modules (sorted) and why. A new cycle, or
# a known one that grows, fails; one that is gone fails too, so that it is taken off this list.
KNOWN_CYCLES: dict[tuple[str, ...], str] = {}


def _modules() -> dict[str, Path]:
    found = {}
    for name, folder in ROOTS.items():
        base = ROOT / folder
        for path in sorted(base.rglob("*.py")):
            rel = path.relative_to(base).with_suffix("").parts
            if any(not (base.joinpath(*rel[:i]) / "__init__.py").exists() for i in range(len(rel))):
                continue  # not inside a package (scripts, data)
            if rel[-1] == "__init__":
                rel = rel[:-1]
            found[".".join((name, *rel))] = path
    return found


MODULES = _modules()


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST):
    """Every import statement in a module, at any depth, except those only for type checkers."""
    todo = [tree]
    while todo:
        node = todo.pop()
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                todo.extend(child.orelse)
                continue
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                yield child
            todo.append(child)


def _with_packages(name: str, importer: str) -> set[str]:
    """`name` and the packages Python runs to import it, but not the importer's own."""
    parts = name.split(".")
    own = {".".join(importer.split(".")[:i]) for i in range(1, importer.count(".") + 2)}
    return {p for p in (".".join(parts[:i]) for i in range(1, len(parts) + 1))
            if p in MODULES and p not in own}


def import_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for module, path in MODULES.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        edges: set[str] = set()
        for node in _imports(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    edges |= _with_packages(alias.name, module)
                continue
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module
            edges |= _with_packages(target, module)
            for alias in node.names:  # `from package import module`
                if f"{target}.{alias.name}" in MODULES:
                    edges |= _with_packages(f"{target}.{alias.name}", module)
        edges.discard(module)
        graph[module] = edges
    return graph


def cycles(graph: dict[str, set[str]], within: str) -> list[tuple[str, ...]]:
    """The strongly connected components of more than one module among the modules under
    `within` (Tarjan's algorithm), each as a sorted tuple."""
    nodes = [m for m in graph if m == within or m.startswith(within + ".")]
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[tuple[str, ...]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in nodes:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(tuple(sorted(component)))

    for v in sorted(nodes):
        if v not in index:
            visit(v)
    return sorted(found)


def test_the_graph_sees_late_and_relative_imports():
    graph = import_graph()
    # a relative import at the top of a module
    assert "pallet.compiler.values" in graph["pallet.compiler.core.maps_sets"]
    # `from .. import script_words`: a module named in a from-import
    assert "pallet.compiler.script_words" in graph["pallet.compiler.core.strings"]
    # a late import inside a function body
    assert "pallet.compiler.script_text" in graph["pallet.compiler.core.printing"]
    # importing a module of a package runs the package first
    assert "pallet.compiler.core" in graph["pallet.compiler.project"]


def test_cycles_are_found():
    graph = {"p.a": {"p.b"}, "p.b": {"p.c"}, "p.c": {"p.a"}, "p.d": {"p.a"}, "q.x": {"p.d"}}
    assert cycles(graph, "p") == [("p.a", "p.b", "p.c")]


def test_no_import_cycles_among_the_evaluator_special_forms_plan_specs_and_core():
    named = ("evaluator", "special_forms", "plan", "specs", "core")
    for cycle in cycles(import_graph(), "pallet.compiler"):
        hit = [m for m in cycle if m.split(".")[2] in named]
        assert not hit, f"an import cycle through {', '.join(hit)}: {' '.join(cycle)}"


def test_no_import_cycles_in_the_compiler_but_the_known_ones():
    found = {c: KNOWN_CYCLES.get(c) for c in cycles(import_graph(), "pallet.compiler")}
    new = [" ".join(c) for c, why in found.items() if why is None]
    gone = [" ".join(c) for c in KNOWN_CYCLES if c not in found]
    assert not new, "new import cycles:\n" + "\n".join(new)
    assert not gone, "known import cycles that are gone (take them off KNOWN_CYCLES):\n" + "\n".join(gone)


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m.startswith("pallet.compiler.core")))
def test_core_modules_stay_small(module):
    lines = MODULES[module].read_text().count("\n")
    assert lines <= 600, f"{MODULES[module].relative_to(ROOT)} has {lines} lines; split it by concern"


def test_no_import_cycles_anywhere_in_pallet():
    # The runtime and the commands too: the cloud providers take the provider names from
    # runtime/provider_names.py, the cloud commands the run options from commands/_run_common.py.
    found = cycles(import_graph(), "pallet")
    assert not found, "import cycles:\n" + "\n".join(" ".join(c) for c in found)
