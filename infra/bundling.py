"""The Lambda code asset shared by every function, bundled on this machine without Docker.

The bundled asset holds every Python package under `functions/` (`sutram`, the user tool package
`sutram_tools`, and any package added there), the workflow definitions (`workflows/*.yaml`) and
the runtime dependencies pinned in pyproject.toml, installed as manylinux wheels for the Lambda
runtime's Python (CDK context `sutram:lambdaPython`), their own dependencies held to the versions
in requirements/lambda.lock (`make lock`). Installed dependencies are cached in
`.build/deps-<hash of the pins, the lock and the target>`, and the asset hash is computed from
those and the sources, so an unchanged asset is neither rebuilt nor uploaded.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path
from typing import Any

import jsii
from aws_cdk import BundlingOptions, DockerImage, ILocalBundling
from aws_cdk import aws_lambda as lambda_

from infra import constants

REPO_ROOT = Path(__file__).resolve().parent.parent
FUNCTIONS_DIR = REPO_ROOT / "functions"
BUILD_DIR = REPO_ROOT / ".build"
LAMBDA_LOCK = REPO_ROOT / "requirements" / "lambda.lock"  # every transitive version, as constraints
_PACKAGE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*")


def runtime_pins(pyproject: Path = REPO_ROOT / "pyproject.toml") -> list[str]:
    """The [project].dependencies the Lambda runtime does not already provide."""
    dependencies = tomllib.loads(pyproject.read_text())["project"]["dependencies"]
    return sorted(pin for pin in dependencies if _distribution(pin) not in constants.RUNTIME_PROVIDED_PACKAGES)


def _distribution(requirement: str) -> str:
    match = _PACKAGE_NAME.match(requirement.strip())
    if match is None:
        raise ValueError(f"pyproject.toml: cannot read a package name from dependency {requirement!r}")
    return re.sub(r"[-_.]+", "-", match.group(0)).lower()


def _python_version(runtime: str) -> str:
    """`3.14` for the Lambda runtime `python3.14`: what `pip --python-version` takes."""
    return runtime.removeprefix("python")


def _deps_digest(pins: list[str], runtime: str) -> str:
    target = {
        "pins": pins,
        "lock": LAMBDA_LOCK.read_text(),
        "platform": constants.LAMBDA_PIP_PLATFORM,
        "python": _python_version(runtime),
    }
    return hashlib.sha256(json.dumps(target, sort_keys=True).encode()).hexdigest()[:16]


def installed_dependencies(pins: list[str], runtime: str = constants.LAMBDA_RUNTIME_PYTHON) -> Path:
    """A directory holding `pins` installed for the Lambda runtime `runtime` (`python3.14`); built
    once per set of pins and runtime."""
    target = BUILD_DIR / f"deps-{_deps_digest(pins, runtime)}"
    if target.is_dir():
        return target
    BUILD_DIR.mkdir(exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=BUILD_DIR, prefix="installing-"))
    try:
        command = [
            sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile",
            "--platform", constants.LAMBDA_PIP_PLATFORM, "--implementation", "cp",
            "--python-version", _python_version(runtime), "--only-binary=:all:", "--target", str(staging),
            "--constraint", str(LAMBDA_LOCK), *pins,
        ]  # fmt: skip
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"installing the Lambda dependencies failed:\n{result.stdout}{result.stderr}")
        # Transitive dependencies (aws-xray-sdk needs botocore) would shadow the runtime's own copy;
        # bin/ holds console scripts pointing at this machine's Python.
        for name in constants.RUNTIME_PROVIDED_PACKAGES:
            for path in [*staging.glob(name), *staging.glob(f"{name}-*.dist-info")]:
                shutil.rmtree(path)
        shutil.rmtree(staging / "bin", ignore_errors=True)
        try:
            staging.rename(target)  # atomic: a concurrent or interrupted synth never sees a partial cache
        except OSError:
            if not target.is_dir():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _definitions(workflows_dir: Path) -> list[Path]:
    return sorted(workflows_dir.glob("*.yaml"))


def _tree_digest(files: list[Path], root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(files):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def _is_package(path: Path) -> bool:
    """A directory Python imports as a package: a regular one (with `__init__.py`) or a namespace
    package (a directory of modules without one, importable all the same)."""
    return path.is_dir() and path.name.isidentifier() and path.name != "__pycache__" and any(path.rglob("*.py"))


def package_roots() -> list[Path]:
    """What the handlers may import from `functions/`: each package (`sutram`, the user tool package
    `sutram_tools`, any package a user adds) and each top-level module."""
    return sorted(
        path
        for path in FUNCTIONS_DIR.iterdir()
        if _is_package(path) or (path.is_file() and path.suffix == ".py" and path.stem.isidentifier())
    )


def _package_files() -> list[Path]:
    files: list[Path] = []
    for root in package_roots():
        candidates = root.rglob("*") if root.is_dir() else [root]
        files += [p for p in candidates if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"]
    return files


def asset_hash(workflows_dir: Path, pins: list[str], runtime: str = constants.LAMBDA_RUNTIME_PYTHON) -> str:
    """Changes whenever the pins, the runtime, the sources of any package under `functions/` or the
    workflow definitions change."""
    parts = [_tree_digest(_package_files(), FUNCTIONS_DIR), _tree_digest(_definitions(workflows_dir), workflows_dir)]
    return hashlib.sha256(json.dumps([*parts, _deps_digest(pins, runtime)]).encode()).hexdigest()


@jsii.implements(ILocalBundling)
class LocalBundling:
    """Assembles the asset directory with files copied from this machine (CDK's local hook)."""

    def __init__(self, workflows_dir: Path, pins: list[str], runtime: str = constants.LAMBDA_RUNTIME_PYTHON) -> None:
        self._workflows_dir = workflows_dir
        self._pins = pins
        self._runtime = runtime

    def try_bundle(self, output_dir: str, *, image: DockerImage, **options: Any) -> bool:
        output = Path(output_dir)
        if self._pins:
            shutil.copytree(installed_dependencies(self._pins, self._runtime), output, dirs_exist_ok=True)
        copies = {output / path.relative_to(FUNCTIONS_DIR): path for path in _package_files()}
        workflows = output / Path(constants.LAMBDA_WORKFLOWS_DIR).name
        copies |= {workflows / path.name: path for path in _definitions(self._workflows_dir)}
        for destination, source in copies.items():
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination)
        return True


def lambda_code(workflows_dir: Path, *, bundle: bool, runtime: str = constants.LAMBDA_RUNTIME_PYTHON) -> lambda_.Code:
    """The code asset of every function, its dependencies built for the Lambda runtime `runtime`
    (`python3.14`). Unbundled (the local cloud, tests) it is the same asset without the dependencies:
    the packages and the workflow definitions, laid out as deployed; its sandboxes take the
    dependencies from the local environment."""
    pins = runtime_pins() if bundle else []
    return lambda_.Code.from_asset(
        str(FUNCTIONS_DIR),
        asset_hash=asset_hash(workflows_dir, pins, runtime),
        bundling=BundlingOptions(
            # Required by the API but never pulled: local bundling always succeeds.
            image=DockerImage.from_registry("unused"),
            local=LocalBundling(workflows_dir, pins, runtime),
        ),
    )
