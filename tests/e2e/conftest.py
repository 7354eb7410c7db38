"""End-to-end tier: a complete local Sutram per test module, driven only the way a client drives it.

    the session's synthesized template ─> LocalCloud (moto: DynamoDB, S3, Step Functions, Lambda, Cognito)
    demo users ada (tenant acme) and grace (tenant globex) ─> real ID tokens from moto's Cognito
    the API handler ─> served over HTTP on 127.0.0.1 behind a Cognito-authorizer look-alike

Tests talk to it with `requests` (and the `sutram` command); they look inside the cloud only to
check what a client cannot see: Step Functions executions and their histories, model calls.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from localcloud import session as local
from localcloud.cloud import Tally
from sutram import wiring
from tests.e2e.support import Api, CloudView


@pytest.fixture(scope="module")
def sutram(assembly: Path) -> Iterator[local.LocalSession]:
    """A local Sutram for this module, from the cloud assembly the test session synthesized once."""
    session = local.start(assembly=assembly)
    try:
        yield session
    finally:
        session.stop()


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
def model_calls(sutram: local.LocalSession) -> Tally:
    """Counts the model calls the step Lambdas make from now on, by the first line of each prompt."""
    return sutram.cloud.tally("model_calls")


@pytest.fixture
def inject_faults(sutram: local.LocalSession) -> Iterator[Callable[[str], None]]:
    """Like deploying with SUTRAM_FAULTS=spec, for the rest of the test: crash a step at a named point
    on its first attempt."""
    yield sutram.cloud.inject_faults
    sutram.cloud.inject_faults("")
