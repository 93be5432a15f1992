"""The package map of docs/architecture.md holds for the code as it is.

Two views of one rule, so neither can drift: the import contracts in pyproject.toml
(``[tool.importlinter]``, also run by ``make lint``) must be kept, and every import between the
hub's top-level packages (an import graph of the code, lazy imports and TYPE_CHECKING ones
included) must be one the table in docs/architecture.md allows. A copy of the code with a wrong
arrow or a cycle planted in it shows the contracts do catch them.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    """``lint-imports`` on the package under ``root`` (its pyproject's contracts)."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", str(root / "pyproject.toml")],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _documented_table() -> dict[str, set[str]]:
    """``package -> packages it may import``, from docs/architecture.md's import table."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    section = text.split("## What may import what", 1)[1].split("\n## ", 1)[0]
    table: dict[str, set[str]] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0].startswith("`hub."):
            package = cells[0].strip("`")
            table[package] = set(re.findall(r"`(hub\.[a-z_]+)`", cells[2]))
    return table


def _package(module: str) -> str:
    return ".".join(module.split(".")[:2])


def test_the_import_contracts_hold() -> None:
    result = _lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"Contracts: \d+ kept, 0 broken", result.stdout), result.stdout


def test_every_import_between_packages_is_in_the_documented_table() -> None:
    table = _documented_table()
    graph = grimp.build_graph("hub", include_external_packages=False)
    packages = {_package(m) for m in graph.modules if m != "hub"}
    assert set(table) == packages, "the table lists exactly the hub's packages"
    wrong = sorted(
        f"{importer} -> {imported} (line {line['line_number']})"
        for importer in graph.modules
        for imported in graph.find_modules_directly_imported_by(importer)
        for line in graph.get_import_details(importer=importer, imported=imported)
        if importer != "hub"
        and imported != "hub"
        and _package(importer) != _package(imported)
        and _package(imported) not in table[_package(importer)]
    )
    assert not wrong, "imports the table does not allow:\n" + "\n".join(wrong)


@pytest.fixture
def copy_of_the_code(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "hub", tmp_path / "hub", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_a_wrong_arrow_breaks_the_contracts(copy_of_the_code: Path) -> None:
    """The domain importing the store (a layer above it) is refused, naming the import."""
    model = copy_of_the_code / "hub" / "domain" / "errors.py"
    model.write_text(model.read_text() + "\nimport hub.store  # planted\n")
    result = _lint_imports(copy_of_the_code)
    assert result.returncode != 0
    assert "hub.domain.errors -> hub.store" in result.stdout, result.stdout


def test_a_cycle_between_modules_breaks_the_contracts(copy_of_the_code: Path) -> None:
    events = copy_of_the_code / "hub" / "events"
    (events / "planted_a.py").write_text("import hub.events.planted_b\n")
    (events / "planted_b.py").write_text("import hub.events.planted_a\n")
    result = _lint_imports(copy_of_the_code)
    assert result.returncode != 0
    assert "No cycles are allowed in hub.events" in result.stdout, result.stdout
