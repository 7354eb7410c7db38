"""The layering check (`lint-imports`, configured in pyproject.toml) holds on the code as it is, and
fails on a planted cycle of the kind it exists to prevent."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import REPO

LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"
PACKAGES = {
    "sutram": REPO / "functions" / "sutram",
    **{name: REPO / name for name in ("infra", "localcloud", "cli", "benchmarks")},
}


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    environment = os.environ | {"PYTHONPATH": str(root)}
    command = [str(LINT_IMPORTS), "--no-cache", "--config", str(REPO / "pyproject.toml")]
    return subprocess.run(command, cwd=root, env=environment, capture_output=True, text=True, timeout=120)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of the code the contracts cover, to plant imports in."""
    for name, source in PACKAGES.items():
        shutil.copytree(source, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def test_the_code_keeps_every_layering_contract(tree: Path) -> None:
    result = lint_imports(tree)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_a_provider_reaching_for_the_composition_root_is_refused(tree: Path) -> None:
    # The cycle the layering exists to prevent: wiring builds providers, so a provider importing it
    # closes a loop (wiring -> models -> bedrock -> wiring).
    bedrock = tree / "sutram" / "models" / "bedrock.py"
    bedrock.write_text(bedrock.read_text() + "\nfrom sutram import wiring  # noqa: E402\n")

    result = lint_imports(tree)

    assert result.returncode != 0
    assert "sutram.models.bedrock -> sutram.wiring" in result.stdout
    assert "Lambda code is layered" in result.stdout and "BROKEN" in result.stdout


def test_a_cycle_between_sibling_packages_is_refused(tree: Path) -> None:
    keys = tree / "sutram" / "store" / "keys.py"
    keys.write_text(keys.read_text() + "\nimport sutram.engine.work  # noqa: E402\n")

    result = lint_imports(tree)

    assert result.returncode != 0
    assert "No import cycle between sibling modules or packages, at any depth BROKEN" in result.stdout
