"""Session-wide fixtures: one CDK synth and one local cloud for the whole test run.

The template is synthesized once from the repository's workflows plus the test workflows in
tests/workflows/, with the offline scripted model as the deployment default. Infra tests assert
on it; integration and end-to-end tests run it on the local cloud.
"""

from __future__ import annotations

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
def template(workflows_dir: Path) -> dict[str, Any]:
    from infra.synth import synth_template
    from localcloud.session import LOCAL_CONTEXT

    return synth_template(workflows_dir, bundle=False, context=LOCAL_CONTEXT)


# Module scope: a test module gets a fresh cloud, and no other test's moto mock ever nests in it.
@pytest.fixture(scope="module")
def local_cloud(template: dict[str, Any], workflows_dir: Path) -> Iterator[Any]:
    from localcloud.cloud import LocalCloud

    with LocalCloud(template, environment={"SUTRAM_WORKFLOWS_DIR": str(workflows_dir)}) as cloud:
        yield cloud
