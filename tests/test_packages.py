"""The packages of ``sync`` keep their rooms: what each may import, and an engine that
names no record type.

- ``sync.platform`` is plumbing and imports nothing else of ``sync``;
- ``sync.accounts`` (who is calling) builds on the plumbing only;
- ``sync.engine`` builds on both and never on a field domain: it is *given* the
  catalog of record types (``sync.catalog``), so it has no import circle with them;
- a field domain (``patrols``, ``people``, ``training``, ``reference``, ``attachments``)
  builds on the three, and reaches another domain only through that package's public
  names (``from sync.people import visible_person``), never into its modules;
- the reference tablet client (``sync.client``) stands alone.
"""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from sync.catalog import CATALOG

ROOT = Path(__file__).resolve().parent.parent
SYNC = ROOT / "sync"
DOMAINS = frozenset({"patrols", "people", "training", "reference", "attachments", "audit"})
FOUNDATION = frozenset({"platform", "accounts", "engine"})
MAY_IMPORT: dict[str, frozenset[str]] = {
    "platform": frozenset({"platform"}),
    "accounts": frozenset({"platform", "accounts"}),
    "engine": FOUNDATION,
    "client": frozenset({"client"}),
    **{domain: FOUNDATION | {domain} for domain in DOMAINS},
}


def sync_imports(path: Path) -> set[str]:
    """The ``sync`` modules a file imports, by their dotted names as written."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "sync")
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.update([node.module] if node.module.split(".")[0] == "sync" else [])
    return found


def breaches(package: str) -> dict[str, list[str]]:
    """Each module of ``sync/<package>`` with the imports its package may not make."""
    found: dict[str, list[str]] = {}
    for path in sorted((SYNC / package).rglob("*.py")):
        wrong = []
        for name in sorted(sync_imports(path)):
            parts = name.split(".")
            room = parts[1] if len(parts) > 1 else ""
            allowed = room in MAY_IMPORT[package]
            public = room in DOMAINS and len(parts) == 2  # another domain's package names
            if not (allowed or public):
                wrong.append(name)
        if wrong:
            found[str(path.relative_to(ROOT))] = wrong
    return found


def test_every_package_of_sync_has_its_rule() -> None:
    packages = {p.name for p in SYNC.iterdir() if (p / "__init__.py").exists()}
    assert packages == set(MAY_IMPORT)


@pytest.mark.parametrize("package", sorted(MAY_IMPORT))
def test_a_package_imports_only_what_its_room_allows(package: str) -> None:
    assert breaches(package) == {}


def test_the_rule_catches_an_engine_that_imports_a_domain(tmp_path: Path) -> None:
    module = tmp_path / "probe.py"
    module.write_text(
        "from sync.patrols.entities import PATROL\nfrom sync.people import visible_person\n"
    )
    assert sync_imports(module) == {"sync.patrols.entities", "sync.people"}


# Sectors and communities are not named as record types in the engine but as the two
# kinds of scope (``ScopeKind``) the protocol is built on.
RECORD_TYPES = sorted((set(CATALOG) | CATALOG.read_only) - {"sector", "community"})


def named_record_types(source: str) -> list[str]:
    """Record-type names in code: in string literals that are not docstrings, and in
    identifiers (``_load_attendance``). Comments and docstrings may give examples."""
    tree = ast.parse(source)
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    words: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if id(node) not in docstrings:
                words.append(node.value)
        elif isinstance(node, ast.Name):
            words.append(node.id)
        elif isinstance(node, ast.Attribute):
            words.append(node.attr)
        elif isinstance(node, ast.FunctionDef | ast.ClassDef | ast.AsyncFunctionDef):
            words.append(node.name)
        elif isinstance(node, ast.arg):
            words.append(node.arg)
    found = []
    for name in RECORD_TYPES:
        spaced = name.replace("_", " ")
        pattern = re.compile(rf"(?<![a-z]){spaced}(?![a-z])", re.IGNORECASE)
        if any(pattern.search(word.replace("_", " ")) for word in words):
            found.append(name)
    return found


def test_the_engine_names_no_record_type() -> None:
    named = {
        str(path.relative_to(ROOT)): named_record_types(path.read_text())
        for path in sorted((SYNC / "engine").glob("*.py"))
    }
    assert {path: names for path, names in named.items() if names} == {}


def test_the_name_finder_sees_literals_and_identifiers_but_not_docstrings() -> None:
    source = (
        '"""An attendance, for example."""\n'
        "def f(spec):\n"
        '    """A person\'s record."""\n'
        '    return spec.name == "patrol"\n'
        "def _load_attendance_pairs():\n"
        "    return TRACK_SEGMENT\n"
    )
    assert named_record_types(source) == ["attendance", "patrol", "track_segment"]


def test_the_production_wheel_holds_the_product_and_not_the_bench_nor_the_demo(
    tmp_path: Path,
) -> None:
    """Built from a copy of the checkout, so the build leaves nothing in the tree."""
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for name in ("api", "sync", "schemas", "migrations", "bench", "demo"):
        shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(tmp_path), "."],
        cwd=source,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert built.returncode == 0, built.stderr
    [wheel] = tmp_path.glob("fieldsync-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        tops = {name.split("/")[0] for name in names}
    # The console's pages, style sheet and catalogues are files, not modules: in the wheel too.
    console = ROOT / "api" / "console"
    assets = [
        path.relative_to(ROOT).as_posix()
        for folder in ("templates", "static", "locale")
        for path in (console / folder).rglob("*")
        if path.is_file()
    ]
    assert assets
    assert sorted(set(assets) - names) == []
    assert {top for top in tops if not top.endswith(".dist-info")} == {
        "api",
        "sync",
        "schemas",
        "migrations",
    }
