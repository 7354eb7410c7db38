"""Loading the user tool package: its absence leaves the built-in tools (and says so), an import
error in it is raised naming the module, never swallowed."""

from __future__ import annotations

import importlib
import logging
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from sutram import tools
from sutram.errors import InvalidStepInput

PACKAGE = "acme_user_tools"  # stands in for sutram_tools; no such package is installed

_TOOL_MODULE = """
from pydantic import BaseModel

from sutram.tools import tool


class Args(BaseModel):
    x: int


@tool("acme_double")
def double(args: Args, context):
    return 2 * args.x
"""


@pytest.fixture
def user_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh registry whose user package is PACKAGE, to be written in the directory it yields."""
    monkeypatch.setattr(tools, "USER_PACKAGE", PACKAGE)
    monkeypatch.setattr(tools, "_PACKAGES", ("sutram.tools", PACKAGE))
    monkeypatch.setattr(tools, "_registry", dict(tools._registry))  # the built-ins stay registered
    monkeypatch.setattr(tools, "_loaded", False)
    monkeypatch.setattr(tools, "_user_package_missing", False)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path / PACKAGE
    for name, module in list(sys.modules.items()):
        if str(getattr(module, "__file__", None) or "").startswith(str(tmp_path)):
            del sys.modules[name]


def _write(package: Path, files: dict[str, str]) -> None:
    package.mkdir(exist_ok=True)
    for name, text in files.items():
        (package / name).write_text(text)
    importlib.invalidate_caches()


def test_without_a_user_package_the_built_in_tools_run_and_an_unknown_tool_says_why(
    user_package: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="sutram.tools"):
        assert {"extract_text", "assemble_report", "http_fetch"} <= tools.tool_names()

    assert f"no user tool package '{PACKAGE}'" in caplog.text
    with pytest.raises(InvalidStepInput, match=f"unknown tool 'acme_double'.*'{PACKAGE}' is not importable"):
        tools.get_tool("acme_double")


def test_a_user_package_registers_its_tools(user_package: Path) -> None:
    _write(user_package, {"__init__.py": "", "maths.py": _TOOL_MODULE})

    assert tools.get_tool("acme_double").function.__module__ == f"{PACKAGE}.maths"


def test_an_import_error_in_a_tool_module_names_the_module_every_time(user_package: Path) -> None:
    _write(user_package, {"__init__.py": "", "maths.py": _TOOL_MODULE, "crm.py": "import acme_crm_client\n"})

    for _ in range(2):  # not swallowed on the next use either
        with pytest.raises(ImportError, match=rf"tool module '{PACKAGE}\.crm' failed to import: .*'acme_crm_client'"):
            tools.tool_names()


def test_an_import_error_in_the_user_package_itself_is_not_taken_for_its_absence(user_package: Path) -> None:
    _write(user_package, {"__init__.py": "import acme_crm_client\n"})

    with pytest.raises(ImportError, match=f"tool module '{PACKAGE}' failed to import: .*'acme_crm_client'"):
        tools.tool_names()


def test_a_module_that_failed_part_way_loads_once_its_dependency_is_there(user_package: Path) -> None:
    _write(user_package, {"__init__.py": "", "maths.py": _TOOL_MODULE + "import acme_late_dependency\n"})
    with pytest.raises(ImportError, match="acme_late_dependency"):
        tools.tool_names()

    (user_package.parent / "acme_late_dependency.py").write_text("")
    importlib.invalidate_caches()

    assert "acme_double" in tools.tool_names()  # registered again by the re-run, not "registered twice"
