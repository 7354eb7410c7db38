"""Unit-tier fixtures: a moto DynamoDB table and S3 bucket shaped like the deployed ones."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from sutram import wiring
from sutram.approvals.requests import ApprovalRuntime
from sutram.store.approvals import ApprovalStore
from tests.unit.api_support import create_table
from tests.unit.approval_support import Events, StepFunctions


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # Unique names: this mock may nest inside the session's local cloud, which shares moto's state.
    suffix = uuid.uuid4().hex[:8]
    table_name, bucket_name = f"sutram-unit-{suffix}", f"sutram-unit-{suffix}"
    for name, value in {
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "unit",
        "AWS_SECRET_ACCESS_KEY": "unit",
        "SUTRAM_TABLE": table_name,
        "SUTRAM_BUCKET": bucket_name,
        "SUTRAM_OFFLOAD_THRESHOLD_BYTES": "1024",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_NAMESPACE": "SutramTest",
    }.items():
        monkeypatch.setenv(name, value)
    wiring.reset()
    with mock_aws():
        create_table(boto3.client("dynamodb"), table_name)
        boto3.client("s3").create_bucket(Bucket=bucket_name)
        yield
    wiring.reset()


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
