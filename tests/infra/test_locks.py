"""requirements/*.lock hold every dependency, transitive ones included, at the versions pyproject.toml
pins: a pin changed without `make lock` fails here, not on a fresh machine."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;\\]+)", re.MULTILINE)


def _name(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pins(lines: list[str]) -> dict[str, str]:
    return {_name(match[0]): match[1] for line in lines for match in _PIN.findall(line.strip())}


def _locked(lock: str) -> dict[str, str]:
    return _pins((REPO / "requirements" / lock).read_text().splitlines())


def test_every_pin_of_pyproject_is_locked_at_its_version() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    runtime, dev = _pins(project["dependencies"]), _pins(project["optional-dependencies"]["dev"])
    development, lambda_ = _locked("dev.lock"), _locked("lambda.lock")

    assert {name: development.get(name) for name in runtime | dev} == runtime | dev
    assert {name: lambda_.get(name) for name in runtime} == runtime
    # Transitive dependencies are locked too, not left to whatever is newest on the day.
    assert {"pydantic-core", "botocore", "aws-xray-sdk"} <= set(lambda_)
    assert len(development) > len(runtime | dev) + 20


def test_the_development_lock_checks_every_download_against_a_hash() -> None:
    text = (REPO / "requirements" / "dev.lock").read_text()
    entries = re.split(r"\n(?=[A-Za-z0-9])", text.split("\n", 2)[2])
    assert entries and all("--hash=sha256:" in entry for entry in entries if "==" in entry)
