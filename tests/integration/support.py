"""Integration-tier helpers: start runs on the session's local cloud as the API does, wait for them
and for their approvals, decide approvals, and read what a run recorded."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import boto3

from sutram import wiring
from sutram.approvals import decisions
from sutram.runs import service as runs
from sutram.runs.models import StartRunRequest
from sutram.store.approvals import ApprovalRecord, approval_id_for
from tests.support import execution_history, lambda_invocations, wait_for

TENANT = "acme"


@dataclass
class FinishedRun:
    run_id: str
    tenant: str
    status: str
    execution_arn: str
    history: list[dict[str, Any]]

    def lambda_invocations(self, state: str) -> int:
        """How many times Step Functions invoked the Lambda of `state` (retries included)."""
        return lambda_invocations(self.history, state)


def start(
    workflow: str,
    run_input: dict[str, Any],
    tenant: str = TENANT,
    version: int | None = None,
    idempotency_key: str | None = None,
) -> tuple[str, str]:
    """Start a run as the API does; returns its run id and execution ARN."""
    request = StartRunRequest(input=run_input, version=version)
    key = idempotency_key or uuid.uuid4().hex
    started = runs.start_run(wiring.runs_backend(), tenant, workflow, request, key)
    record = wiring.runs_backend().runs.get(tenant, started.run.run_id)
    assert record is not None and record.execution_arn
    return started.run.run_id, record.execution_arn


def wait_for_execution(execution_arn: str, timeout: float = 60) -> dict[str, Any]:
    """DescribeExecution of `execution_arn` once it has ended."""
    sfn = boto3.client("stepfunctions")

    def ended() -> dict[str, Any] | None:
        described: dict[str, Any] = sfn.describe_execution(executionArn=execution_arn)
        return None if described["status"] == "RUNNING" else described

    return wait_for(ended, timeout=timeout, interval=0.05, failure=f"{execution_arn} still running after {timeout}s")


def wait_for_end(run_id: str, execution_arn: str, tenant: str = TENANT, timeout: float = 60) -> FinishedRun:
    status = wait_for_execution(execution_arn, timeout)["status"]
    return FinishedRun(run_id, tenant, status, execution_arn, execution_history(execution_arn))


def run_workflow(workflow: str, run_input: dict[str, Any], tenant: str = TENANT, timeout: float = 60) -> FinishedRun:
    return wait_for_end(*start(workflow, run_input, tenant), tenant=tenant, timeout=timeout)


def wait_for_approval(run_id: str, step_path: str, tenant: str = TENANT, timeout: float = 30) -> ApprovalRecord:
    return wait_for(
        lambda: wiring.approval_store().get(tenant, approval_id_for(tenant, run_id, step_path)),
        timeout=timeout,
        interval=0.05,
        failure=f"no approval for {step_path} of run {run_id} after {timeout}s",
    )


def decide(
    record: ApprovalRecord,
    outcome: str,
    by: str = "ana",
    comment: str = "",
    proposal: Any = None,
    tenant: str = TENANT,
) -> ApprovalRecord:
    """Decide an approval as the API does, and resume the run that waits for it."""
    decided, token = wiring.approval_store().decide(tenant, record.approval_id, outcome, by, comment, proposal)
    decisions.complete(decided, token, boto3.client("stepfunctions"))
    return decided


def checkpoints(run_id: str, tenant: str = TENANT) -> dict[str, dict[str, Any]]:
    """The checkpoint items of a run, by step path."""
    return {item["sk"].removeprefix("STEP#"): item for item in wiring.checkpoint_store().list_steps(tenant, run_id)}


def output_of(run: FinishedRun) -> Any:
    """The output the run recorded, read from its artifact when it was too large to inline."""
    detail = runs.get_run(wiring.runs_backend(), run.tenant, run.run_id)
    if detail.output_artifact is None:
        return detail.output
    return wiring.artifact_store().load(run.tenant, {"$artifact": detail.output_artifact.key})
