"""Session-wide fixtures: one CDK synth for the whole test run, and a local cloud per module.

The cloud assembly (template and Lambda asset) is synthesized once from the repository's workflows
plus the test workflows in tests/workflows/, with the offline scripted model as the deployment
default. Infra tests assert on its template; integration and end-to-end tests run it on the local
cloud, whose sandboxes run the Lambda code from the assembly's asset.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import REPO

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")


@pytest.fixture(scope="session")
def workflows_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("workflows")
    for source in [*(REPO / "workflows").glob("*.yaml"), *(REPO / "tests" / "workflows").glob("*.yaml")]:
        shutil.copy(source, directory / source.name)
    return directory


@pytest.fixture(scope="session")
def assembly(workflows_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The cloud assembly (`cdk.out`) the local cloud runs."""
    from localcloud.session import synthesize

    return synthesize(workflows_dir, tmp_path_factory.mktemp("cdk.out"))


@pytest.fixture(scope="session")
def template(assembly: Path) -> dict[str, Any]:
    from infra.assembly import template_path

    template: dict[str, Any] = json.loads(template_path(assembly).read_text())
    return template


# Module scope: a test module gets a fresh cloud, and no other test's moto mock ever nests in it.
@pytest.fixture(scope="module")
def local_cloud(assembly: Path) -> Iterator[Any]:
    from localcloud.cloud import LocalCloud

    with LocalCloud.from_assembly(assembly) as cloud:
        yield cloud
