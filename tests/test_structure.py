"""The structure docs/CONTRACTS.md describes, counted from the code (the layers themselves: lint-imports)."""

from __future__ import annotations

import ast
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("evaluator", "in9_builder", "hub_cards")
# Function-local imports of the package's own modules, each with a reason beside it (lazy heavy imports for
# fast --help and `import evaluator`); the rest of the package imports at module level.
MAX_LOCAL_OWN_IMPORTS = 10


def _sources() -> list[Path]:
    return sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py"))


def _local_own_imports(path: Path) -> list[str]:
    found = []
    for function in ast.walk(ast.parse(path.read_text())):
        if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for node in ast.walk(function):
            if isinstance(node, ast.ImportFrom) and (
                node.level or (node.module or "").split(".")[0] in PACKAGES
            ):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
            elif isinstance(node, ast.Import):
                found += [
                    f"{path.relative_to(ROOT)}:{node.lineno}"
                    for a in node.names
                    if a.name.split(".")[0] in PACKAGES
                ]
    return found


def test_no_import_cycle_among_the_packages_modules():
    graph = grimp.build_graph(*PACKAGES, exclude_type_checking_imports=True)
    cycles = [
        (module, imported)
        for module in sorted(graph.modules)
        for imported in graph.find_modules_directly_imported_by(module)
        if graph.chain_exists(importer=imported, imported=module)
    ]
    assert cycles == []


def test_few_function_local_imports_of_the_packages_own_modules():
    local = [site for path in _sources() for site in _local_own_imports(path)]
    assert len(local) <= MAX_LOCAL_OWN_IMPORTS, local


def test_no_reference_to_documents_outside_the_repository():
    cited = [
        str(p.relative_to(ROOT)) for p in _sources() if "§" in p.read_text() or "shared/spec" in p.read_text()
    ]
    assert cited == []
