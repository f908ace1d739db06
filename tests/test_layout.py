"""The package reads like the pipeline: each stage imports only the stages before it, no module
imports itself back through others, the library never imports the app or the lab's tools, the app
is a thin page over the library, and no module grows past what a reader takes in at once."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "hyperthumb"
# The pipeline's order: a module may import its own stage and the stages before it.
STAGES = [("errors", "limits", "cache"), ("jpeg",), ("models",), ("codec",), ("zoo",), ("library",),
          ("evaluation",), ("training",), ("study",), ("release",), ("cli", "__main__", "")]
MAX_LINES = 400
APP_MAX_LINES = 100  # app.py only builds and serves the page from the webapp package


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(path): path for path in PACKAGE.rglob("*.py")}
APP_MODULES = {_module_name(path): path for path in (ROOT / "webapp").rglob("*.py")}


def _imports(name: str) -> set[str]:
    """Every module `name` imports, at the top or inside a function (resolved to a module of ours
    where the name is one, else the package it comes from)."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([node.module] if node.module else []))
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base)
    return found - {name}


def _imports_of(path: Path) -> set[str]:
    """The modules a file imports by absolute name."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level:
            found.add(node.module)
    return found


def _stage(module: str) -> int:
    part = module.split(".")[1] if "." in module else ""
    return next(index for index, names in enumerate(STAGES) if part in names)


def test_each_stage_imports_only_the_stages_before_it():
    backwards = [(name, imported) for name in MODULES for imported in _imports(name)
                 if imported in MODULES and _stage(imported) > _stage(name)]
    assert not backwards


def test_the_library_never_imports_the_app_the_tools_or_the_tests():
    outside = [(name, imported) for name in MODULES for imported in _imports(name)
               if imported.split(".")[0] in ("app", "webapp", "tools", "tests")]
    assert not outside


def test_no_import_cycle():
    graph = {name: {imported for imported in _imports(name) if imported in MODULES} for name in MODULES}
    state: dict[str, str] = {}

    def visit(name: str, path: tuple[str, ...]) -> None:
        state[name] = "open"
        for imported in sorted(graph[name]):
            assert state.get(imported) != "open", " -> ".join((*path, name, imported))
            if imported not in state:
                visit(imported, (*path, name))
        state[name] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, ())


def test_no_module_is_over_400_lines():
    modules = {**MODULES, **APP_MODULES}
    long = {name: n for name, path in modules.items() if (n := len(path.read_text().splitlines())) > MAX_LINES}
    assert not long


def test_the_app_is_thin():
    """app.py builds the page from the webapp package, whose tabs format what the library returns:
    none of them reaches into the models or the JPEG internals."""
    assert len((ROOT / "app.py").read_text().splitlines()) <= APP_MAX_LINES
    internals = [(name, imported) for name, path in APP_MODULES.items() for imported in _imports_of(path)
                 if imported.startswith(("hyperthumb.models", "hyperthumb.jpeg", "hyperthumb.training"))]
    assert not internals
