"""The shape of the code (docs/development.md "Layout"): no import cycle between the project's modules, and no
import inside a function to hide one. The layers themselves are checked by import-linter
(`pyproject.toml`, run by `.ci/run`)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("crm", "jobs", "opportunities", "billing", "sales", "devtools")


def production_modules() -> dict[str, Path]:
    """Module name -> file, for every module of the project's packages except tests and migrations."""
    modules = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if "tests" in parts or "migrations" in parts:
                continue
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            modules[name] = path
    return modules


def imported_modules(name: str, path: Path, known: set[str]) -> set[str]:
    """The project modules `name` imports (`from a.b import c` counts as a.b.c when that is a module)."""
    found = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def test_no_import_cycle_between_modules():
    modules = production_modules()
    graph = {name: imported_modules(name, path, set(modules)) for name, path in modules.items()}
    # A package's __init__ re-exporting its own modules is not a cycle of theirs.
    for name in graph:
        graph[name] = {t for t in graph[name] if not name.startswith(f"{t}.")}
    cycles = []
    state: dict[str, str] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = "open"
        stack.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == "open":
                cycles.append(stack[stack.index(target) :] + [target])
            elif target not in state:
                visit(target)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node)
    assert cycles == [], "\n".join(" -> ".join(cycle) for cycle in cycles)


def test_no_project_import_inside_a_function():
    offenders = []
    for name, path in production_modules().items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for inner in ast.walk(node):
                if isinstance(inner, ast.ImportFrom) and (
                    inner.level or (inner.module or "").split(".")[0] in PACKAGES
                ):
                    offenders.append(f"{name}:{inner.lineno}")
                elif isinstance(inner, ast.Import) and any(a.name.split(".")[0] in PACKAGES for a in inner.names):
                    offenders.append(f"{name}:{inner.lineno}")
    assert offenders == []


def test_no_module_over_400_lines():
    """Production modules, and the scripts of bench/ and scripts/ too."""
    tools = {
        str(path.relative_to(ROOT)): path for folder in ("bench", "scripts") for path in (ROOT / folder).glob("*.py")
    }
    modules = {**production_modules(), **tools}
    long = {
        name: n for name, path in modules.items() if (n := len(path.read_text(encoding="utf-8").splitlines())) > 400
    }
    assert long == {}


# What Django itself writes into a migration: references by name to a field's default, upload_to
# or expression, which must stay importable anyway (docs/decisions.md "Migrations stand alone").
DJANGO_SERIALISED_REFERENCES = {"crm.search", "jobs.models", "opportunities.models"}


def test_migrations_import_no_app_code_for_their_data_steps():
    """A data step that imported app code would freeze that code: migrations carry what they need."""
    offenders = []
    for package in PACKAGES:
        for path in (ROOT / package).glob("migrations/*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.ImportFrom):
                    names = [node.module or ""]
                elif isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                else:
                    continue
                project = [n for n in names if n.split(".")[0] in PACKAGES]
                if isinstance(node, ast.ImportFrom) or set(project) - DJANGO_SERIALISED_REFERENCES:
                    offenders += [f"{path.relative_to(ROOT)}: {n}" for n in project]
    assert not offenders, offenders
