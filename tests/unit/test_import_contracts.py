"""The import contracts of `make lint`: dependencies point inward, and a forbidden import breaks the lint."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _imported_modules(path: Path) -> list[tuple[int, str]]:
    """(line, top-level module) of every absolute import in the file; relative ones stay in the package."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name.split(".")[0]) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module.split(".")[0]))
    return found


def _outside_the_standard_library(root: Path) -> list[str]:
    """The domain's absolute imports of anything but the standard library (its own are relative)."""
    allowed = set(sys.stdlib_module_names) | {"__future__"}
    return [
        f"{path.relative_to(root)}:{line} imports {name}"
        for path in sorted((root / "chalicelib" / "domain").rglob("*.py"))
        for line, name in _imported_modules(path)
        if name not in allowed
    ]


def test_the_domain_imports_only_the_standard_library_and_itself():
    assert _outside_the_standard_library(ROOT) == []


def test_the_name_check_reads_every_absolute_import_of_a_module():
    assert _imported_modules(ROOT / "chalicelib" / "domain" / "provider.py") == [
        (3, "__future__"),
        (5, "collections"),
        (6, "dataclasses"),
        (7, "datetime"),
        (8, "typing"),
    ]


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of the package and its contracts, to plant imports in."""
    shutil.copytree(ROOT / "chalicelib", tmp_path / "chalicelib", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], cwd=tree, capture_output=True, text=True, timeout=120, check=False
    )


def test_the_contracts_hold_for_the_code_as_it_is(tree):
    done = lint_imports(tree)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3 kept, 0 broken" in done.stdout


def test_a_third_party_import_in_the_domain_fails_the_name_check(tree):
    path = tree / "chalicelib" / "domain" / "money.py"
    path.write_text(path.read_text() + "\nimport yaml  # planted by the test\n")
    assert _outside_the_standard_library(tree) == [
        "chalicelib/domain/money.py:" + str(len(path.read_text().splitlines())) + " imports yaml"
    ]


SERVICES = "services import no adapter"
DOMAIN = "domain imports nothing"
HANDLERS = "the API and the event handlers catch the domain's errors"


@pytest.mark.parametrize(
    ("module", "line", "broken"),
    [
        ("services/batches.py", "from ..adapters.postgres import PayoutRepository", [SERVICES]),
        ("services/fanout.py", "import psycopg2", [SERVICES]),
        ("services/queries.py", "import boto3", [SERVICES]),
        ("services/ports.py", "from ..wiring import repository", [SERVICES]),
        ("domain/money.py", "from ..observability import logger", [DOMAIN]),
        # the services import the domain, so a driver in the domain breaks both contracts
        ("domain/report.py", "import httpx", [DOMAIN, SERVICES]),
        # a handler catching botocore's errors means an adapter let them out
        ("worker.py", "from botocore.exceptions import ClientError", [HANDLERS]),
        ("api/http.py", "import botocore.exceptions", [HANDLERS]),
    ],
)
def test_a_forbidden_import_breaks_its_contract(tree, module, line, broken):
    path = tree / "chalicelib" / module
    path.write_text(path.read_text() + f"\n{line}  # planted by the test\n")
    done = lint_imports(tree)
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"{3 - len(broken)} kept, {len(broken)} broken" in done.stdout
    assert all(f"{contract}" in done.stdout for contract in broken)
    assert f"chalicelib.{module[:-3].replace('/', '.')}" in done.stdout
