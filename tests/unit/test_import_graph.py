"""The package graph points one way (docs/architecture.md, "Packages and what they may import").

Read from the source, not by importing it: every ``import`` and ``from … import`` of one
project package inside another. A new import that points up the graph fails here, naming the
module and the line.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# The project's own packages, and which of the others each may import. Lower layers first:
# bus/ is the plumbing and imports nothing of the project; ordering/ is the core; billing/
# reacts to ordering; notifications/, audit/ and analytics/ react to both; live/ presents them
# over WebSockets; operations/ (housekeeping, and what operators watch) looks at all of them;
# consumers/ (the worker processes) and the project package's assembly (settings, URLs, ASGI,
# the API and the AsyncAPI document) sit on top.
KIT = "passline-kit"  # passline's helpers every app may use: no app imports reach back from them
LAYERS: dict[str, set[str]] = {
    "bus": set(),
    KIT: {"bus"},
    "ordering": {"bus", KIT},
    "billing": {"bus", KIT, "ordering"},
    "notifications": {"bus", KIT, "ordering", "billing"},
    "audit": {"bus", KIT},
    "analytics": {"bus", KIT, "ordering", "billing"},
    "live": {"bus", KIT, "ordering", "billing", "analytics"},
    "operations": {"bus", KIT, "ordering", "billing", "notifications", "audit", "analytics", "live"},
    "consumers": {"bus", KIT, "ordering", "billing", "notifications", "audit", "analytics", "live"},
    "passline": {
        *("bus", KIT, "ordering", "billing", "notifications", "audit", "analytics", "live"),
        *("operations", "consumers"),
    },
}
KIT_MODULES = {
    "api_schemas",
    "breakers",
    "db",
    "errors",
    "http",
    "logging",
    "middleware",
    "readonly_admin",
    "sessions",
    "threads",
    "throttles",
    "health",
}

# Known exceptions, each with why it is there and what removes it. Do not add to this list:
# move the code instead.
KNOWN: set[tuple[str, str]] = set()


def _package(module: str) -> str:
    parts = module.split(".")
    if parts[0] == "passline" and len(parts) > 1 and parts[1] in KIT_MODULES:
        return KIT
    return parts[0]


def _imports() -> list[tuple[str, int, str]]:
    """(importing module, line, imported module) for every project import outside migrations."""
    found = []
    for top in LAYERS:
        if top == KIT:
            continue
        for path in sorted((ROOT / top).rglob("*.py")):
            relative = path.relative_to(ROOT)
            if "migrations" in relative.parts or "management" in relative.parts:
                continue  # management commands are entry points, like consumers/
            module = ".".join(relative.with_suffix("").parts)
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    targets = [node.module]
                elif isinstance(node, ast.Import):
                    targets = [alias.name for alias in node.names]
                else:
                    continue
                found += [(module, node.lineno, target) for target in targets if target.split(".")[0] in LAYERS]
    return found


def test_every_import_between_packages_points_down_the_graph():
    wrong = []
    for module, line, target in _imports():
        source, imported = _package(module), _package(target)
        if source == imported or imported in LAYERS[source]:
            continue
        if (module, imported.split(".")[0]) in KNOWN:
            continue
        wrong.append(f"{module}:{line} imports {target} ({source} may import {sorted(LAYERS[source]) or 'nothing'})")
    assert not wrong, "imports against the package graph:\n" + "\n".join(wrong)


def test_the_known_exceptions_still_exist():
    # An exception nobody needs any more is removed from KNOWN, so the list only shrinks.
    present = {(module, _package(target)) for module, _, target in _imports()}
    assert KNOWN <= present, f"no longer needed, remove from KNOWN: {sorted(KNOWN - present)}"


@pytest.mark.parametrize(
    "source, target",
    [("bus.relay", "ordering.models"), ("ordering.services", "billing.models"), ("passline.db", "ordering.models")],
)
def test_an_upward_import_is_refused(source, target):
    assert _package(target) not in LAYERS[_package(source)]


def _private_imports() -> list[str]:
    """Every ``from <project module> import _name`` in the project's packages: a name with a
    leading underscore is its module's own, and another module that needs it needs it public."""
    found = []
    for top in sorted(set(LAYERS) - {KIT}):
        for path in sorted((ROOT / top).rglob("*.py")):
            relative = path.relative_to(ROOT)
            if "migrations" in relative.parts:
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in LAYERS:
                    found += [
                        f"{relative}:{node.lineno} imports {alias.name} from {node.module}"
                        for alias in node.names
                        if alias.name.startswith("_")
                    ]
    return found


def test_no_module_imports_another_modules_private_name():
    private = _private_imports()
    assert not private, "private names imported across modules:\n" + "\n".join(private)
