"""The Lambda code asset: what goes in it, what stays out, and when it is rebuilt."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, DockerImage

from infra import bundling, constants
from infra.stack import SutramStack
from infra.synth import cdk_json_context
from tests.support import REPO


def _fake_pip(calls: list[list[str]]) -> Any:
    def run(command: list[str], **_: Any) -> subprocess.CompletedProcess[str]:
        calls.append(command)
        target = Path(command[command.index("--target") + 1])
        for name in ("yaml", "botocore", "botocore-1.44.5.dist-info", "bin"):
            (target / name).mkdir()
        return subprocess.CompletedProcess(command, 0, "", "")

    return run


def test_pins_come_from_pyproject_without_the_runtimes_boto3() -> None:
    pins = bundling.runtime_pins()
    assert any(pin.startswith("aws-lambda-powertools[") for pin in pins)
    assert any(pin.startswith("pydantic==") for pin in pins)
    assert not any(pin.startswith("boto3") for pin in pins)


def test_dependencies_are_installed_once_for_lambda_without_runtime_packages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[list[str]] = []
    monkeypatch.setattr(bundling, "BUILD_DIR", tmp_path)
    monkeypatch.setattr(bundling.subprocess, "run", _fake_pip(calls))

    first = bundling.installed_dependencies(["PyYAML==6.0.3"])
    second = bundling.installed_dependencies(["PyYAML==6.0.3"])

    assert first == second and len(calls) == 1
    assert {"--platform", "manylinux2014_x86_64", "--python-version", "3.14", "--only-binary=:all:"} <= set(calls[0])
    assert sorted(path.name for path in first.iterdir()) == ["yaml"]
    assert [path.name for path in tmp_path.iterdir()] == [first.name]  # no staging directory left behind


def test_bundle_holds_the_package_the_workflows_and_the_dependencies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    deps = tmp_path / "deps"
    (deps / "yaml").mkdir(parents=True)
    monkeypatch.setattr(bundling, "installed_dependencies", lambda pins, runtime: deps)
    output = tmp_path / "asset"
    output.mkdir()

    bundled = bundling.LocalBundling(REPO / "workflows", ["PyYAML==6.0.3"]).try_bundle(
        str(output), image=DockerImage.from_registry("unused")
    )

    assert bundled
    assert (output / "yaml").is_dir()
    assert (output / "sutram" / "handlers" / "step.py").is_file()
    assert (output / "sutram_tools" / "commerce.py").is_file()
    assert (output / "workflows" / "document-analysis.yaml").is_file()
    assert not list(output.rglob("__pycache__"))


def test_asset_hash_changes_with_the_workflows_and_the_pins(tmp_path: Path) -> None:
    shutil.copytree(REPO / "workflows", tmp_path, dirs_exist_ok=True)
    pins = ["PyYAML==6.0.3"]
    before = bundling.asset_hash(tmp_path, pins)

    assert bundling.asset_hash(tmp_path, pins) == before
    assert bundling.asset_hash(tmp_path, ["PyYAML==6.0.2"]) != before
    (tmp_path / "document-analysis.yaml").write_text((tmp_path / "document-analysis.yaml").read_text() + "\n# edit\n")
    assert bundling.asset_hash(tmp_path, pins) != before


def test_bundled_synth_stages_an_asset_ready_for_lambda(tmp_path: Path) -> None:
    # The real thing: CDK calls LocalBundling through jsii, and pip fetches wheels (cached in .build/).
    app = App(outdir=str(tmp_path), context=cdk_json_context())
    SutramStack(app, constants.STACK_NAME, workflows_dir=REPO / "workflows", bundle=True)
    app.synth()

    (asset,) = tmp_path.glob("asset.*")
    assert (asset / "sutram" / "handlers" / "step.py").is_file()
    assert (asset / "workflows" / "document-analysis.yaml").is_file()
    python = constants.LAMBDA_RUNTIME_PYTHON.removeprefix("python").replace(".", "")
    assert list((asset / "pydantic_core").glob(f"*.cpython-{python}-x86_64-linux-gnu.so"))  # built for the runtime
    assert (asset / "aws_lambda_powertools").is_dir()
    assert not list(asset.glob("boto*")) and not (asset / "bin").exists()
