"""Dependencies point one way: ``schemas`` <- ``sync`` <- ``api``, and ``bench`` beside.

``sync/`` is the engine and never knows it is served over HTTP; ``schemas/`` is the
records and wire models and knows neither; the migrations run without the HTTP skin.
``bench/`` is a client of the service: it may use ``sync`` and ``schemas`` but talks
to the server over HTTP only, never through ``api``; nothing the server runs imports
it, but the ``fieldsync bench`` command, which hands over to it when it is called.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HTTP_FRAMEWORKS = {"fastapi", "starlette"}


def imported_modules(source: str, package: str) -> set[str]:
    """Top-level modules ``source`` imports anywhere (also inside functions and
    ``TYPE_CHECKING`` blocks); a relative import stays inside ``package``."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                found.add(package)
            elif node.module:
                found.add(node.module.split(".")[0])
    return found


def forbidden_imports(package: str, forbidden: set[str]) -> dict[str, set[str]]:
    """Each file under ``package/`` that imports a forbidden module, with what it imports."""
    files = sorted((ROOT / package).rglob("*.py"))
    assert files, f"no Python files under {package}/"
    found = {
        str(path.relative_to(ROOT)): imported_modules(path.read_text(), package) & forbidden
        for path in files
    }
    return {name: modules for name, modules in found.items() if modules}


def test_the_import_walker_sees_every_form_of_import() -> None:
    source = (
        "import os.path\n"
        "from fastapi import FastAPI\n"
        "from . import sibling\n"
        "from .. import cousin\n"
        "def late():\n"
        "    import starlette.requests\n"
        "if TYPE_CHECKING:\n"
        "    from api.deps import SessionDep\n"
    )
    assert imported_modules(source, "sync") == {"os", "fastapi", "sync", "starlette", "api"}


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        ("sync", HTTP_FRAMEWORKS | {"api", "bench"}),
        ("schemas", HTTP_FRAMEWORKS | {"api", "sync", "bench"}),
        ("migrations", {"api", "bench"}),
        ("bench", HTTP_FRAMEWORKS | {"api", "tests"}),
        ("demo", HTTP_FRAMEWORKS | {"api", "tests"}),
    ],
)
def test_a_layer_imports_nothing_from_the_layers_above_it(
    package: str, forbidden: set[str]
) -> None:
    assert forbidden_imports(package, forbidden) == {}


def imported_names(source: str, module: str) -> set[str]:
    """Every dotted name ``source`` (the text of ``module``) imports, whole: a module
    and each name taken from it (``from a.b import c`` is ``a.b`` and ``a.b.c``), a
    relative import resolved against ``module``'s package."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            parts = module.split(".")[: -node.level] if node.level else []
            base = ".".join([*parts, *([node.module] if node.module else [])])
            if node.module:
                found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def test_the_name_walker_resolves_relative_imports_and_keeps_whole_names() -> None:
    source = (
        "import api.deps\n"
        "from api.routes.trainings import csv_file\n"
        "from . import patrols\n"
        "from .. import answers\n"
        "def late():\n"
        "    from .people import Reader\n"
    )
    assert imported_names(source, "api.routes.agreements") == {
        "api.deps",
        "api.routes.trainings",
        "api.routes.trainings.csv_file",
        "api.routes.patrols",
        "api.answers",
        "api.routes.people",
        "api.routes.people.Reader",
    }


def test_a_route_module_imports_no_other_route_module() -> None:
    """What routes share (role aliases, how a file is answered) lives beside them in
    ``api.deps`` and ``api.answers``, so that no route depends on another."""
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / "api" / "routes").glob("*.py")):
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        names = imported_names(path.read_text(), module)
        routes = {name for name in names if name == "api.routes" or name.startswith("api.routes.")}
        if routes:
            found[str(path.relative_to(ROOT))] = routes
    assert found == {}


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        ("sync", HTTP_FRAMEWORKS | {"api", "bench"}),
        ("schemas", HTTP_FRAMEWORKS | {"api", "sync", "bench"}),
        ("bench", HTTP_FRAMEWORKS | {"api"}),
    ],
)
def test_importing_a_layer_loads_nothing_from_the_layers_above_it(
    package: str, forbidden: set[str]
) -> None:
    """Also what the layer's own dependencies pull in, which the source walk cannot see."""
    probe = (
        "import importlib, pkgutil, sys\n"
        f"import {package}\n"
        f"for module in pkgutil.walk_packages({package}.__path__, '{package}.'):\n"
        "    importlib.import_module(module.name)\n"
        "print(' '.join(sorted({name.split('.')[0] for name in sys.modules})))\n"
    )
    answer = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    assert answer.returncode == 0, answer.stderr
    assert set(answer.stdout.split()) & forbidden == set()


def test_only_the_bench_command_imports_the_benchmark_and_only_when_it_runs() -> None:
    """The server's code never loads ``bench`` nor ``demo``: ``api.cli`` imports each
    inside its command's function, so even ``fieldsync serve`` does not."""
    assert forbidden_imports("api", {"bench", "demo"}) == {"api/cli.py": {"bench", "demo"}}
    for package in ("sync", "schemas", "migrations", "bench"):
        assert forbidden_imports(package, {"demo"}) == {}, package
    tree = ast.parse((ROOT / "api" / "cli.py").read_text())
    top_level = {
        node.module
        for node in tree.body
        if isinstance(node, ast.ImportFrom) and node.module is not None
    } | {alias.name for node in tree.body if isinstance(node, ast.Import) for alias in node.names}
    assert not {name for name in top_level if name.split(".")[0] in ("bench", "demo")}


def dialect_branches(source: str) -> list[str]:
    """What in ``source`` knows which database it runs on: imports from
    ``sqlalchemy.dialects`` and comparisons of a ``dialect.name``."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import | ast.ImportFrom):
            module = (node.module or "") if isinstance(node, ast.ImportFrom) else ""
            names = [f"{module}.{alias.name}".lstrip(".") for alias in node.names]
            if any(name.startswith("sqlalchemy.dialects") for name in names):
                found.append(f"line {node.lineno}: imports from sqlalchemy.dialects")
        if isinstance(node, ast.Compare) and any(
            isinstance(side, ast.Attribute)
            and side.attr == "name"
            and isinstance(side.value, ast.Attribute)
            and side.value.attr == "dialect"
            for side in (node.left, *node.comparators)
        ):
            found.append(f"line {node.lineno}: compares dialect.name")
    return found


def test_the_walker_sees_every_dialect_branch() -> None:
    source = (
        "from sqlalchemy.dialects.postgresql import JSONB\n"
        "from sqlalchemy import dialects\n"
        "import sqlalchemy.dialects.sqlite\n"
        "if session.get_bind().dialect.name == 'postgresql': pass\n"
        "sqlite = 'sqlite' != connection.dialect.name\n"
        "report = engine.dialect.name\n"
    )
    assert sorted(dialect_branches(source)) == [
        "line 1: imports from sqlalchemy.dialects",
        "line 2: imports from sqlalchemy.dialects",
        "line 3: imports from sqlalchemy.dialects",
        "line 4: compares dialect.name",
        "line 5: compares dialect.name",
    ]


def test_only_the_database_module_knows_sqlite_from_postgresql() -> None:
    """What differs between the two databases is kept in ``sync.platform.database``
    (``is_postgresql``, ``upsert``, ``json_array_contains``, ``transaction_lock``), so
    that a difference is written, and tested on both, once. Reporting the dialect's
    name (the health check) is not a branch and is allowed."""
    found = {
        str(path.relative_to(ROOT)): branches
        for path in sorted((ROOT / "sync").rglob("*.py"))
        if path != ROOT / "sync" / "platform" / "database.py"
        and (branches := dialect_branches(path.read_text()))
    }
    assert found == {}
