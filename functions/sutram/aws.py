"""boto3 clients and stores, created once per Lambda sandbox and reused across invocations."""

from __future__ import annotations

from functools import cache
from typing import Any

import boto3

from sutram.approval_step import ApprovalRuntime, signed_links
from sutram.approvals import ApprovalStore
from sutram.artifacts import ArtifactStore
from sutram.checkpoints import CheckpointStore
from sutram.models import get_provider
from sutram.settings import get_settings
from sutram.steps import StepRuntime

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


@cache
def step_runtime() -> StepRuntime:
    settings = get_settings()
    return StepRuntime(
        checkpoints=checkpoint_store(),
        artifacts=artifact_store(),
        providers=cache(get_provider),
        default_provider=settings.default_model_provider,
        default_model_id=settings.default_model_id,
        lease_margin_seconds=settings.lease_margin_seconds,
        faults=settings.faults,
    )


@cache
def approval_store() -> ApprovalStore:
    return ApprovalStore(table())


@cache
def approval_runtime() -> ApprovalRuntime:
    settings = get_settings()
    runtime = ApprovalRuntime(
        store=approval_store(),
        artifacts=artifact_store(),
        events=client("events"),
        event_bus=settings.event_bus_name,
        webhook_url=settings.approval_webhook_url,
        stepfunctions=client("stepfunctions"),
    )
    if settings.callback_secret.get_secret_value():
        runtime.links = signed_links(settings.public_api_url)
    return runtime


def reset() -> None:
    """Forget cached clients and settings (tests, and the local cloud after reconfiguring)."""
    for cached in (
        client,
        table,
        checkpoint_store,
        artifact_store,
        step_runtime,
        approval_store,
        approval_runtime,
        get_settings,
    ):
        cached.cache_clear()
