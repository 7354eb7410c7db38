"""Moto resources shaped like the stack's: the single table and the bucket, and the environment a
function of the stack gets."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
import pytest
from moto import mock_aws

from sutram import wiring
from tests.support import REPO

REGION = "us-east-1"
# mock_aws gives every test a fresh default boto3 session, which reloads each service model (~50 ms
# a client); one session shared across tests keeps the loaded models.
_SHARED_SESSION = boto3.Session()


def use_shared_boto3_session() -> None:
    """Call inside mock_aws, which restores its own default session when it stops."""
    boto3.DEFAULT_SESSION = _SHARED_SESSION


def create_table(dynamodb: Any, name: str) -> None:
    """The single table as the stack declares it: pk/sk, and gsi1 (gsi1pk/gsi1sk, all attributes)."""
    dynamodb.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": name, "AttributeType": "S"} for name in ("pk", "sk", "gsi1pk", "gsi1sk")
        ],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "gsi1",
                "KeySchema": [
                    {"AttributeName": "gsi1pk", "KeyType": "HASH"},
                    {"AttributeName": "gsi1sk", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
    )


@contextmanager
def aws_resources(monkeypatch: pytest.MonkeyPatch, *, offload_threshold_bytes: int) -> Iterator[str]:
    """Inside mock_aws: the table and the bucket, both named as yielded, and the composition root
    built afresh from the environment a function of the stack gets."""
    # Unique names: this mock may nest inside the session's local cloud, which shares moto's state.
    name = f"sutram-test-{uuid.uuid4().hex[:8]}"
    for variable, value in {
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "SUTRAM_TABLE": name,
        "SUTRAM_BUCKET": name,
        "SUTRAM_OFFLOAD_THRESHOLD_BYTES": str(offload_threshold_bytes),
        "SUTRAM_WORKFLOWS_DIR": str(REPO / "workflows"),
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_SERVICE_NAME": "sutram-test",
        "POWERTOOLS_METRICS_NAMESPACE": "SutramTest",
        "POWERTOOLS_METRICS_DISABLED": "true",
    }.items():
        monkeypatch.setenv(variable, value)
    wiring.reset()
    with mock_aws():
        use_shared_boto3_session()
        create_table(boto3.client("dynamodb"), name)
        boto3.client("s3").create_bucket(Bucket=name)
        try:
            yield name
        finally:
            wiring.reset()
