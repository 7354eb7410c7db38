"""End-to-end tier: a complete local Sutram per test module, driven only the way a client drives it.

    the session's synthesized template ─> LocalCloud (moto: DynamoDB, S3, Step Functions, Lambda, Cognito)
    demo users ada (tenant acme) and grace (tenant globex) ─> real ID tokens from moto's Cognito
    the API handler ─> served over HTTP on 127.0.0.1 behind a Cognito-authorizer look-alike

Tests talk to it with `requests` (and the `sutram` command); they look inside the cloud only to
check what a client cannot see: Step Functions executions and their histories, model calls.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from localcloud import session as local
from localcloud.observe import ModelCallCounter, count_model_calls
from sutram import wiring
from tests.e2e.support import Api, CloudView
from tests.support import set_faults


@pytest.fixture(scope="module")
def sutram(template: dict[str, Any], workflows_dir: Path) -> Iterator[local.LocalSession]:
    """A local Sutram for this module, from the template the test session synthesized once."""
    environment_before = dict(os.environ)
    session = local.start(template=template, workflows_dir=workflows_dir)
    try:
        yield session
    finally:
        session.stop()
        # The local cloud configures this process like a Lambda sandbox; leave it as it was found.
        os.environ.clear()
        os.environ.update(environment_before)
        wiring.reset()


@pytest.fixture(scope="module")
def api(sutram: local.LocalSession) -> Iterator[Api]:
    client = Api(sutram)
    yield client
    client.settle()


@pytest.fixture(scope="module")
def cloud(sutram: local.LocalSession) -> CloudView:
    return CloudView(sutram)


@pytest.fixture(autouse=True)
def fresh_step_runtime() -> Iterator[None]:
    """Each test gets the step runtime as deployed: no fault or counter of another test survives."""
    wiring.reset()
    yield
    wiring.reset()


@pytest.fixture
def model_calls(fresh_step_runtime: None) -> ModelCallCounter:
    """Counts the model calls the step Lambdas make, by the first line of each prompt."""
    return count_model_calls()


@pytest.fixture
def inject_faults(fresh_step_runtime: None, monkeypatch: pytest.MonkeyPatch) -> Callable[[str], None]:
    """Like deploying with SUTRAM_FAULTS=spec: crash a step at a named point on its first attempt."""
    return partial(set_faults, monkeypatch)
