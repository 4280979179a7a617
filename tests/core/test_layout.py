"""The package's layout: the solver core apart from the compendium glue, no import cycles."""
import ast
import pathlib
import subprocess
import sys

import admmnn

ROOT = pathlib.Path(admmnn.__file__).parent
GLUE = "admmnn.experiments"


def module_name(path: pathlib.Path) -> str:
    parts = ("admmnn",) + path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in ROOT.rglob("*.py")}


def imports(name: str):
    """(target module, line, inside a function) for every import of an admmnn module in
    module ``name``, at any depth (functions and classes included)."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    tree = ast.parse(path.read_text(), str(path))
    found = []

    def visit(node, in_function):
        for child in ast.iter_child_nodes(node):
            nested = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            targets = []
            if isinstance(child, ast.Import):
                targets = [alias.name for alias in child.names]
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = package.split(".")
                    base = base[: len(base) - child.level + 1]
                    origin = ".".join(base + ([child.module] if child.module else []))
                else:
                    origin = child.module or ""
                # ``from pkg import sub`` imports the submodule pkg.sub when there is one
                targets = [f"{origin}.{a.name}" if f"{origin}.{a.name}" in MODULES else origin for a in child.names]
            for target in targets:
                while target and target not in MODULES and "." in target:
                    target = target.rsplit(".", 1)[0]
                if target in MODULES and target != name:
                    found.append((target, child.lineno, in_function))
            visit(child, nested)

    visit(tree, False)
    return found


GRAPH = {name: imports(name) for name in MODULES}


def test_the_parser_sees_both_layers():
    assert "admmnn.solve" in MODULES and f"{GLUE}.compare" in MODULES
    assert ("admmnn.io", ) == tuple(t for t, _, _ in GRAPH["admmnn.result"] if t == "admmnn.io")
    assert any(t == "admmnn.solve" for t, _, _ in GRAPH[f"{GLUE}.baselines"])


def test_no_admmnn_import_is_hidden_in_a_function():
    hidden = [f"{name}:{line} imports {target}" for name, edges in GRAPH.items() for target, line, inner in edges if inner]
    assert not hidden, hidden


def test_no_import_cycle():
    edges = {name: sorted({t for t, _, _ in found}) for name, found in GRAPH.items()}
    state, cycles = {}, []

    def walk(node, stack):
        state[node] = "open"
        for nxt in edges[node]:
            if state.get(nxt) == "open":
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                walk(nxt, stack + [nxt])
        state[node] = "done"

    for node in edges:
        if node not in state:
            walk(node, [node])
    assert not cycles, [" -> ".join(c) for c in cycles]


def test_the_core_never_imports_the_glue():
    bad = [f"{name}:{line} imports {target}" for name, found in GRAPH.items() if not name.startswith(GLUE)
           for target, line, _ in found if target.startswith(GLUE)]
    assert not bad, bad


def test_import_admmnn_loads_no_plotting_data_or_notebook_package():
    code = ("import sys, admmnn; admmnn.ConvexReLUClassifier; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('matplotlib', 'torchvision', 'papermill')"
            " or m.startswith('admmnn.experiments')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_solve_documents_every_parameter_numpydoc_style():
    import inspect
    import re

    doc = inspect.getdoc(admmnn.solve)
    section = doc.split("Parameters\n----------\n", 1)[1].split("\n\nReturns\n", 1)[0]
    documented = re.findall(r"^(\*{0,2}\w+)(?: : .+)?$", section, flags=re.M)
    params = [("**" if p.kind is p.VAR_KEYWORD else "") + name for name, p in inspect.signature(admmnn.solve).parameters.items()]
    assert documented == params
