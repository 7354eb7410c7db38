"""The composition root: the stores, runtimes and backends of this sandbox, built once from the
settings and the cached clients, and reused across invocations.

Only the Lambda handlers, the local cloud, benchmarks and tests import this module (import-linter
checks it); everything else receives
what it needs as arguments.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from sutram import clients
from sutram.approvals.decisions import ApprovalsBackend
from sutram.approvals.requests import ApprovalRuntime, signed_links
from sutram.engine.work import StepRuntime
from sutram.models import ModelProvider, get_provider
from sutram.runs.catalog import WorkflowCatalog
from sutram.runs.service import RunsBackend
from sutram.settings import Settings, get_settings
from sutram.store.approvals import ApprovalStore
from sutram.store.artifacts import ArtifactStore
from sutram.store.checkpoints import CheckpointStore
from sutram.store.runs import RunStore
from sutram.store.signing_keys import SigningKeys


def settings() -> Settings:
    return get_settings()


def client(service: str) -> Any:
    return clients.client(service)


def table() -> Any:
    return clients.table(settings().table_name)


@cache
def checkpoint_store() -> CheckpointStore:
    return CheckpointStore(table())


@cache
def artifact_store() -> ArtifactStore:
    return ArtifactStore(client("s3"), settings().bucket_name, settings().offload_threshold_bytes)


@cache
def approval_store() -> ApprovalStore:
    return ApprovalStore(table())


@cache
def provider(name: str) -> ModelProvider:
    return get_provider(name, client=client, settings=settings())


@cache
def signing_keys() -> SigningKeys:
    return SigningKeys(client("secretsmanager"), settings().callback_secret_arn)


@cache
def step_runtime() -> StepRuntime:
    config = settings()
    return StepRuntime(
        checkpoints=checkpoint_store(),
        artifacts=artifact_store(),
        providers=provider,
        default_provider=config.default_model_provider,
        default_model_id=config.default_model_id,
        lease_margin_seconds=config.lease_margin_seconds,
        faults=config.faults,
    )


@cache
def approval_runtime() -> ApprovalRuntime:
    config = settings()
    runtime = ApprovalRuntime(
        store=approval_store(),
        artifacts=artifact_store(),
        events=client("events"),
        event_bus=config.event_bus_name,
        webhook_url=config.approval_webhook_url,
        stepfunctions=client("stepfunctions"),
    )
    if config.callback_secret_arn:
        runtime.links = signed_links(config.public_api_url, signing_keys().current)
    return runtime


@cache
def runs_backend() -> RunsBackend:
    config = settings()
    return RunsBackend(
        runs=RunStore(table()),
        workflows=WorkflowCatalog(config.workflows_dir, config.state_machines, config.workflow_aliases),
        executions=client("stepfunctions"),
        artifacts=artifact_store(),
        checkpoints=checkpoint_store(),
    )


@cache
def approvals_backend() -> ApprovalsBackend:
    return ApprovalsBackend(
        store=approval_store(),
        stepfunctions=client("stepfunctions"),
        link_keys=signing_keys().accepted if settings().callback_secret_arn else tuple,
    )


def reset() -> None:
    """Forget cached clients, settings and everything built on them (tests, and the local cloud
    after reconfiguring)."""
    clients.reset()
    get_settings.cache_clear()
    for cached in (
        checkpoint_store,
        artifact_store,
        approval_store,
        provider,
        signing_keys,
        step_runtime,
        approval_runtime,
        runs_backend,
        approvals_backend,
    ):
        cached.cache_clear()
