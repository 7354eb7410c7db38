"""Unit-tier fixtures: a moto DynamoDB table and S3 bucket shaped like the deployed ones, and the
approval side on them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from sutram import wiring
from sutram.approvals.requests import ApprovalRuntime
from sutram.store.approvals import ApprovalStore
from tests.unit.support.approvals import Events, StepFunctions
from tests.unit.support.aws import aws_resources


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    with aws_resources(monkeypatch, offload_threshold_bytes=1024):
        yield


@pytest.fixture
def table(aws_env: None) -> Any:
    return wiring.table()


@pytest.fixture
def approval_runtime(table: Any) -> ApprovalRuntime:
    """The approval side with recording EventBridge and Step Functions fakes, and no webhook waits."""
    return ApprovalRuntime(
        store=ApprovalStore(table),
        artifacts=wiring.artifact_store(),
        events=Events(),
        stepfunctions=StepFunctions(),
        sleep=lambda seconds: None,
    )
