"""Integration-tier helpers: start runs on the session's local cloud and wait for them."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest

from localcloud.observe import ModelCallCounter
from sutram import wiring
from sutram.approvals import decisions
from sutram.runs import service as runs
from sutram.runs.models import StartRunRequest
from sutram.store.approvals import ApprovalRecord, approval_id_for


@dataclass
class FinishedRun:
    run_id: str
    tenant: str
    status: str
    execution_arn: str
    history: list[dict[str, Any]]

    def lambda_invocations(self, state: str) -> int:
        """How many times Step Functions invoked the Lambda of `state` (retries included)."""
        scheduled = 0
        current = None
        for event in self.history:
            if event["type"].endswith("StateEntered"):
                current = event["stateEnteredEventDetails"]["name"]
            elif event["type"] == "LambdaFunctionScheduled" and current == state:
                scheduled += 1
        return scheduled


def start(workflow: str, run_input: dict[str, Any], tenant: str = "acme") -> tuple[str, str]:
    """Start a run as the API does; returns its run id and execution ARN."""
    started = runs.start_run(
        wiring.runs_backend(), tenant, workflow, StartRunRequest(input=run_input), uuid.uuid4().hex
    )
    record = wiring.runs_backend().runs.get(tenant, started.run.run_id)
    assert record is not None and record.execution_arn
    return started.run.run_id, record.execution_arn


def wait_for_end(run_id: str, execution_arn: str, tenant: str = "acme", timeout: float = 60) -> FinishedRun:
    sfn = boto3.client("stepfunctions")
    deadline = time.monotonic() + timeout
    while (status := sfn.describe_execution(executionArn=execution_arn)["status"]) == "RUNNING":
        assert time.monotonic() < deadline, f"run {run_id} still running after {timeout}s"
        time.sleep(0.05)
    events = sfn.get_execution_history(executionArn=execution_arn, maxResults=1000)["events"]
    return FinishedRun(run_id, tenant, status, execution_arn, events)


def run_workflow(workflow: str, run_input: dict[str, Any], tenant: str = "acme", timeout: float = 60) -> FinishedRun:
    return wait_for_end(*start(workflow, run_input, tenant), tenant=tenant, timeout=timeout)


def wait_for_approval(run_id: str, step_path: str, tenant: str = "acme", timeout: float = 30) -> ApprovalRecord:
    deadline = time.monotonic() + timeout
    while (record := wiring.approval_store().get(tenant, approval_id_for(tenant, run_id, step_path))) is None:
        assert time.monotonic() < deadline, f"no approval for {step_path} of run {run_id} after {timeout}s"
        time.sleep(0.05)
    return record


def decide(
    record: ApprovalRecord,
    outcome: str,
    by: str = "ana",
    comment: str = "",
    proposal: Any = None,
    tenant: str = "acme",
) -> ApprovalRecord:
    """Decide an approval as the API does, and resume the run that waits for it."""
    decided, token = wiring.approval_store().decide(tenant, record.approval_id, outcome, by, comment, proposal)
    decisions.complete(decided, token, boto3.client("stepfunctions"))
    return decided


@pytest.fixture
def cloud(local_cloud: Any) -> Iterator[Any]:
    wiring.reset()
    yield local_cloud
    wiring.reset()


@pytest.fixture
def model_calls(cloud: Any, monkeypatch: pytest.MonkeyPatch) -> ModelCallCounter:
    runtime = wiring.step_runtime()
    counter = ModelCallCounter(runtime.providers)
    monkeypatch.setattr(runtime, "providers", counter)
    return counter


@pytest.fixture
def inject_faults(cloud: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    def inject(spec: str) -> None:
        monkeypatch.setattr(wiring.step_runtime(), "faults", spec)

    return inject
