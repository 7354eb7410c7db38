"""The Lambda code asset `cdk synth` builds is the code that runs: every package under functions/,
every handler and every tool a workflow names imports from the asset alone, in a fresh interpreter,
as on Lambda."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
from aws_cdk import App, DockerImage

from infra import assembly, bundling, constants
from infra.functions import RuntimeConfig
from infra.synth import synth_template
from sutram.definition import AgentStep, ToolStep, load_all, walk
from sutram.tools import USER_PACKAGE, get_tool
from tests.support import REPO

# The asset's dependencies are pip-installed for the runtime's Python (`pip --python-version`), and
# compiled wheels (pydantic-core's) only load in that Python. The deployed runtime is python3.14
# (cdk.json), which this machine may not have; so this test synthesizes for the interpreter running
# it, through the same context setting a deployment uses: the asset is built exactly the same way,
# for a Python that can import it here.
LOCAL_PYTHON = f"python{sys.version_info.major}.{sys.version_info.minor}"

# What the Lambda Python runtime ships besides the standard library, put on the path after the asset
# (as /var/runtime comes after /var/task): the SDK the asset leaves out, and what it imports.
RUNTIME_PROVIDED = (*constants.RUNTIME_PROVIDED_PACKAGES, "jmespath", "dateutil", "six", "urllib3")

# A region as on Lambda, and credentials that no AWS account knows: nothing here may reach AWS.
ENVIRONMENT = {"AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}

# Runs in `python -I -S -B`: no site-packages, no PYTHONPATH, no current directory, no bytecode
# written into the asset. sys.path is the standard library, the asset, then the runtime's packages.
_IMPORT_FROM_ASSET = """
import importlib, json, sys
from pathlib import Path

config = json.loads(sys.argv[1])
sys.path[:0] = config["path"]
failures = []


def attempt(what, action):
    try:
        action()
    except BaseException as exc:  # an import may raise anything, SystemExit included
        failures.append(f"{what}: {type(exc).__name__}: {exc}")


for package in config["packages"]:
    attempt(f"package {package}", lambda package=package: importlib.import_module(package))

for handler in config["handlers"]:
    module, _, name = handler.rpartition(".")
    attempt(f"handler {handler}", lambda module=module, name=name: getattr(importlib.import_module(module), name))


def tools():
    from sutram import tools

    for name in config["tools"]:
        attempt(f"tool {name!r}", lambda name=name: tools.get_tool(name))


def definitions():
    from sutram.definition import load_all

    load_all(Path(config["workflows"]))


attempt("the tool registry", tools)
attempt(f"the workflows in {config['workflows']}", definitions)
origins = {name: getattr(sys.modules.get(name), "__file__", None) for name in config["origins"]}
print(json.dumps({"failures": failures, "origins": origins}))
"""


def _workflow_tools(workflows_dir: Path) -> set[str]:
    """Every tool a workflow in `workflows_dir` names: in `tool` steps and in agents' tool lists."""
    names = set()
    for definition in load_all(workflows_dir):
        for step in walk(list(definition.steps)):
            if isinstance(step, ToolStep):
                names.add(step.tool)
            elif isinstance(step, AgentStep):
                names |= {tool.name for tool in step.tools}
    return names


def _runtime_packages(directory: Path) -> Path:
    """`directory` holding links to this environment's copies of what the Lambda runtime provides."""
    directory.mkdir()
    for name in RUNTIME_PROVIDED:
        spec = importlib.util.find_spec(name)
        assert spec is not None and spec.origin is not None, f"{name} is not installed here"
        location = Path(spec.submodule_search_locations[0]) if spec.submodule_search_locations else Path(spec.origin)
        (directory / location.name).symlink_to(location)
    return directory


@pytest.fixture(scope="module")
def cloud_assembly(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`cdk.out` of a bundled synth (the real LocalBundling, run by CDK through jsii; pip fetches
    wheels once, cached in .build/) of the repository's workflows."""
    outdir = tmp_path_factory.mktemp("cdk.out")
    synth_template(
        REPO / "workflows", bundle=True, outdir=outdir, context={constants.CONTEXT_LAMBDA_PYTHON: LOCAL_PYTHON}
    )
    return outdir


@pytest.mark.slow
def test_every_handler_and_workflow_tool_imports_from_the_asset_alone(cloud_assembly: Path, tmp_path: Path) -> None:
    assets = assembly.function_assets(cloud_assembly)
    handlers = sorted(set(assembly.function_handlers(cloud_assembly).values()))
    (asset,) = set(assets.values())
    template = json.loads(assembly.template_path(cloud_assembly).read_text())
    # The runtime follows the same setting as the pip target.
    assert {template["Resources"][function]["Properties"]["Runtime"] for function in assets} == {LOCAL_PYTHON}
    tools = sorted(_workflow_tools(REPO / "workflows"))
    # The check covers the user tool package: some workflow uses a tool defined there.
    assert any(get_tool(name).function.__module__.startswith(f"{USER_PACKAGE}.") for name in tools)
    runtime = _runtime_packages(tmp_path / "runtime")
    config = {
        "path": [str(asset), str(runtime)],
        "packages": [root.stem for root in bundling.package_roots()],  # sutram, sutram_tools, ...
        "handlers": handlers,
        "tools": tools,
        "workflows": str(asset / Path(constants.LAMBDA_WORKFLOWS_DIR).name),
        "origins": ["sutram", USER_PACKAGE, "pydantic_core", "boto3"],
    }
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-B", "-c", _IMPORT_FROM_ASSET, json.dumps(config)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=ENVIRONMENT,
        timeout=120,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.splitlines()[-1])
    failures = "\n".join(report["failures"])
    assert not failures, f"the asset {asset} misses what the code imports:\n{failures}"
    origins = report["origins"]
    assert all(origins[name].startswith(f"{asset}/") for name in ("sutram", USER_PACKAGE, "pydantic_core")), origins
    assert origins["boto3"].startswith(f"{runtime}/"), origins


def test_the_asset_holds_every_package_under_functions_and_its_hash_covers_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    functions = tmp_path / "functions"
    sources = {
        "sutram/__init__.py": "",
        "sutram_tools/__init__.py": "",
        "sutram_tools/crm.py": "TOOLS = []\n",
        "acme/__init__.py": "",  # a package a user added
        "acme/prompts/refund.txt": "data files of a package come along\n",
        "acme_namespace/helpers.py": "",  # no __init__.py: a namespace package imports all the same
        "single.py": "",
    }
    for relative, text in sources.items():
        (functions / relative).parent.mkdir(parents=True, exist_ok=True)
        (functions / relative).write_text(text)
    (functions / "sutram" / "__pycache__").mkdir()
    (functions / "sutram" / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"")
    deps = tmp_path / "deps"
    (deps / "yaml").mkdir(parents=True)
    monkeypatch.setattr(bundling, "FUNCTIONS_DIR", functions)
    monkeypatch.setattr(bundling, "installed_dependencies", lambda pins, runtime: deps)
    output = tmp_path / "asset"
    output.mkdir()
    pins: list[str] = ["PyYAML==6.0.3"]
    before = bundling.asset_hash(REPO / "workflows", pins)

    bundling.LocalBundling(REPO / "workflows", pins).try_bundle(str(output), image=DockerImage.from_registry("unused"))

    bundled = {str(path.relative_to(output)) for path in output.rglob("*") if path.is_file()}
    assert set(sources) <= bundled
    assert not any("__pycache__" in path for path in bundled)
    (functions / "sutram_tools" / "crm.py").write_text("TOOLS = ['changed']\n")
    assert bundling.asset_hash(REPO / "workflows", pins) != before
    assert bundling.asset_hash(REPO / "workflows", pins, "python3.12") != bundling.asset_hash(REPO / "workflows", pins)


def test_a_lambda_python_that_is_no_runtime_fails_synth_naming_the_key() -> None:
    with pytest.raises(ValueError, match=r"sutram:lambdaPython='3\.13'"):
        RuntimeConfig.from_context(App(context={constants.CONTEXT_LAMBDA_PYTHON: "3.13"}).node)
