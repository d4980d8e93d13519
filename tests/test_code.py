"""The code's own checks: lint and format (ruff), strict typing (mypy, configured in
pyproject.toml), no import cycle, no import deferred into a function, and the layers of
docs/design.md §2.

The import graph is read from the source, not from a running interpreter: every ``import`` and
``from … import`` of every module of ``collector`` and ``consent``, at the top, inside functions
and under ``TYPE_CHECKING`` alike (an import kept for annotations is still a dependency, and
moving it out of ``TYPE_CHECKING`` must not make a cycle). Importing ``a.b.c`` also runs the
``__init__`` of ``a.b``, so it counts as an import of that package too, except of the importer's
own packages, which always run first.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
PACKAGES = ("collector", "consent")
#: What ruff lints and formats (sdk_snippet/node_modules is excluded in pyproject.toml).
LINTED = ("collector", "consent", "tests", "examples", "sdk_snippet")

#: Imports of a collector or consent module inside a function, each with why it cannot be at
#: the top of its module. An import deferred to dodge a cycle does not belong here: the cycle is
#: broken where it is made instead.
DEFERRED_IMPORTS: dict[tuple[str, str], str] = {}

#: The modules outside collector.storage that may import a storage backend, and which one, as
#: collector/storage/ports.py lists them with its reasons.
BACKEND_IMPORTERS: dict[str, str] = {
    # Copies SQLite rows into ClickHouse and prints ClickHouse's DDL: about ClickHouse by nature.
    "collector.cli.clickhouse": "collector.storage.clickhouse",
    # A backup is SQLite's online backup of the database file; both record or check the names of
    # the SQLite schema's migrations.
    "collector.backup.create": "collector.storage.sqlite",
    "collector.backup.restore": "collector.storage.sqlite",
    # Rewrites the SQLite file's events into their compact layout: about SQLite by nature.
    "collector.cli.upgrade": "collector.storage.sqlite",
}
#: The packages and modules that reach storage through its ports only.
PORT_USERS = (
    "collector.reports",
    "collector.privacy",
    "collector.web",
    "collector.cli",
    "collector.auth",
    "collector.backup",
)
BACKENDS = ("collector.storage.sqlite", "collector.storage.clickhouse")
COPY_FROM_SQLITE = "collector.storage.clickhouse.copy_from_sqlite"


@dataclass(frozen=True)
class Import:
    importer: str
    imported: str
    line: int
    in_function: bool


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


MODULES = _modules()


def _imported_names(module: str, node: ast.Import | ast.ImportFrom) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:
        package = module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]
        for _ in range(node.level - 1):
            package = package.rpartition(".")[0]
        base = f"{package}.{base}" if base else package
    # ``from a import b`` imports the module a.b when there is one, else a name of a.
    return [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]


def _targets(module: str, name: str) -> Iterator[str]:
    """The modules an import of ``name`` runs: ``name`` and its packages, except the
    importer's own packages (they run before it)."""
    parts = name.split(".")
    for end in range(1, len(parts) + 1):
        target = ".".join(parts[:end])
        if target in MODULES and target != module and not module.startswith(target + "."):
            yield target


def _imports_of(module: str) -> Iterator[Import]:
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))

    def visit(node: ast.AST, in_function: bool) -> Iterator[Import]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import | ast.ImportFrom):
                for name in _imported_names(module, child):
                    for target in _targets(module, name):
                        yield Import(module, target, child.lineno, in_function)
            inside = in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            yield from visit(child, inside)

    yield from visit(tree, False)


IMPORTS = [found for module in MODULES for found in _imports_of(module)]


def _where(found: Import) -> str:
    return f"{MODULES[found.importer].relative_to(ROOT)}:{found.line}"


def _listing(imports: list[Import]) -> str:
    """One line per import statement, naming the module it imports (not the packages it runs
    on the way)."""
    named: dict[str, str] = {}
    for found in imports:
        where = _where(found)
        named[where] = max(named.get(where, ""), found.imported, key=len)
    return "\n".join(f"{where}: {imported}" for where, imported in sorted(named.items()))


def _run(*command: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(part) for part in command], cwd=ROOT, capture_output=True, text=True, timeout=300
    )


def test_ruff_lint() -> None:
    result = _run(BIN / "ruff", "check", "--no-cache", *LINTED)
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format() -> None:
    result = _run(BIN / "ruff", "format", "--check", "--no-cache", *LINTED)
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict() -> None:
    # The cache lives in the virtual environment, out of the tree and warm from run to run
    # (about 5 s warm, 15 s cold).
    cache = Path(sys.prefix) / ".mypy_cache"
    result = _run(BIN / "mypy", "--cache-dir", cache, "--no-error-summary")
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_import_cycle() -> None:
    graph: dict[str, set[str]] = {module: set() for module in MODULES}
    for found in IMPORTS:
        graph[found.importer].add(found.imported)
    cycles: list[list[str]] = []
    state: dict[str, str] = {}
    path: list[str] = []

    def walk(module: str) -> None:
        state[module] = "open"
        path.append(module)
        for imported in sorted(graph[module]):
            if state.get(imported) == "open":
                cycles.append([*path[path.index(imported) :], imported])
            elif imported not in state:
                walk(imported)
        path.pop()
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            walk(module)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(cycle) for cycle in cycles)


def test_no_import_deferred_into_a_function() -> None:
    deferred = [
        found
        for found in IMPORTS
        if found.in_function and (found.importer, found.imported) not in DEFERRED_IMPORTS
    ]
    assert not deferred, "imports inside functions:\n" + _listing(deferred)
    unused = set(DEFERRED_IMPORTS) - {(f.importer, f.imported) for f in IMPORTS if f.in_function}
    assert not unused, f"allowed deferred imports that no longer exist: {sorted(unused)}"


def test_consent_imports_nothing_of_the_collector() -> None:
    # consent/ stays importable alone: the root of the error tree, MesureError, is declared in
    # consent/errors.py for that reason, and collector.errors, which draws the tree and
    # re-exports it, imports nothing else.
    found = [
        f for f in IMPORTS if _within(f.importer, "consent") and _within(f.imported, "collector")
    ]
    found += [
        f for f in IMPORTS if f.importer == "collector.errors" and _within(f.imported, "collector")
    ]
    assert not found, _listing(found)


def test_storage_is_reached_through_its_ports() -> None:
    found: list[Import] = []
    for f in IMPORTS:
        if not any(_within(f.importer, user) for user in PORT_USERS):
            continue
        backend = next((b for b in BACKENDS if _within(f.imported, b)), None)
        if backend is None:
            continue
        allowed = next(
            (
                allowed_backend
                for importer, allowed_backend in BACKEND_IMPORTERS.items()
                if _within(f.importer, importer)
            ),
            None,
        )
        if allowed != backend:
            found.append(f)
    assert not found, "backend imports outside collector.storage:\n" + _listing(found)


def test_the_backend_exceptions_are_those_ports_lists() -> None:
    listed = (ROOT / "collector/storage/ports.py").read_text(encoding="utf-8")
    for importer in BACKEND_IMPORTERS:
        assert f":mod:`{importer}`" in listed, importer


@pytest.mark.parametrize(
    ("backend", "other", "allowed"),
    [
        # Copies a SQLite data directory into ClickHouse: about both by nature.
        ("collector.storage.clickhouse", "collector.storage.sqlite", (COPY_FROM_SQLITE,)),
        ("collector.storage.sqlite", "collector.storage.clickhouse", ()),
    ],
)
def test_backends_do_not_borrow_from_each_other(
    backend: str, other: str, allowed: tuple[str, ...]
) -> None:
    found = [
        f"{_where(f)}: {f.imported}"
        for f in IMPORTS
        if _within(f.importer, backend) and _within(f.imported, other) and f.importer not in allowed
    ]
    assert not found, "\n".join(found)
