"""boto3 clients and stores, created once per Lambda sandbox and reused across invocations."""

from __future__ import annotations

from functools import cache
from typing import Any

import boto3

from sutram.artifacts import ArtifactStore
from sutram.checkpoints import CheckpointStore
from sutram.settings import get_settings

RETENTION_SECONDS = 90 * 24 * 3600  # run and step items expire (DynamoDB TTL) after 90 days


@cache
def client(service: str) -> Any:
    return boto3.client(service)


@cache
def table() -> Any:
    return boto3.resource("dynamodb").Table(get_settings().table_name)


@cache
def checkpoint_store() -> CheckpointStore:
    return CheckpointStore(table(), RETENTION_SECONDS)


@cache
def artifact_store() -> ArtifactStore:
    settings = get_settings()
    return ArtifactStore(client("s3"), settings.bucket_name, settings.offload_threshold_bytes)


def reset() -> None:
    """Forget cached clients and settings (tests, and the local cloud after reconfiguring)."""
    for cached in (client, table, checkpoint_store, artifact_store, get_settings):
        cached.cache_clear()
