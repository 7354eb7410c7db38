"""Fixtures of the `sutram` command tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import without_user_configuration


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty home and working directory, and no SUTRAM_* variables, so no real configuration leaks in."""
    without_user_configuration(monkeypatch, home=tmp_path / "home", cwd=tmp_path)
    return tmp_path
