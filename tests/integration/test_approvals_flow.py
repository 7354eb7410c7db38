"""Approval steps on the local cloud: the run waits for a decision without running anything, resumes
with it, takes its `on_timeout` path when nobody decides, and never shows the task token."""

from __future__ import annotations

import json
import time

import boto3
import pytest

from sutram import wiring
from sutram.approvals import decisions
from sutram.runs import service as runs
from sutram.store.approvals import ApprovalExpired, approval_id_for
from tests.integration.support import TENANT, output_of, start, wait_for_approval, wait_for_end


def test_a_run_waits_for_the_decision_without_running_anything_then_continues_with_it(cloud):
    run_id, execution_arn = start("approval-refund", {"amount": 120.5, "order": 42})
    record = wait_for_approval(run_id, "approve_refund")
    assert record.summary == "Refund 120.5 EUR for order 42"
    assert record.proposal == {"order": 42, "amount": 120.5, "currency": "EUR"}
    assert record.group == "finance" and record.status == "pending"

    invocations = dict(cloud.invocations)
    time.sleep(1)
    assert dict(cloud.invocations) == invocations  # waiting runs no Lambda
    sfn = boto3.client("stepfunctions")
    assert sfn.describe_execution(executionArn=execution_arn)["status"] == "RUNNING"

    edited = {"order": 42, "amount": 100, "currency": "EUR"}
    decided, token = wiring.approval_store().decide(TENANT, record.approval_id, "approve", "ana", "capped", edited)
    decisions.complete(decided, token, sfn)
    run = wait_for_end(run_id, execution_arn)

    assert run.status == "SUCCEEDED"
    assert output_of(run) == {"decision": {"outcome": "approve", "proposal": edited, "by": "ana", "comment": "capped"}}
    assert [event["type"] for event in run.history].count("TaskScheduled") == 1  # one request, no retry


def test_the_task_token_appears_nowhere_but_the_approval_item(cloud):
    run_id, execution_arn = start("approval-refund", {"amount": 7, "order": 9})
    record = wait_for_approval(run_id, "approve_refund")
    token = wiring.approval_store().token_for(TENANT, record.approval_id)
    assert token
    listed, _ = wiring.approval_store().list(TENANT, "pending", limit=100)
    decided, _ = wiring.approval_store().decide(TENANT, record.approval_id, "reject", "ana", "no")
    decisions.complete(decided, token, boto3.client("stepfunctions"))
    run = wait_for_end(run_id, execution_arn)
    assert run.status == "SUCCEEDED"
    assert output_of(run) == {"decision": {"outcome": "reject", "proposal": None, "by": "ana", "comment": "no"}}

    sfn = boto3.client("stepfunctions")
    visible = {
        "history": [event for event in run.history if event["type"] != "TaskScheduled"],
        "execution": sfn.describe_execution(executionArn=execution_arn),
        "run": runs.get_run(wiring.runs_backend(), TENANT, run_id).model_dump(mode="json"),
        "approval": decided.model_dump(mode="json"),
        "listed": [approval.model_dump(mode="json") for approval in listed],
        "steps": wiring.checkpoint_store().list_steps(TENANT, run_id),
    }
    assert token not in json.dumps(visible, default=str)
    # Step Functions itself records the resolved task parameters, token included, in TaskScheduled
    # (as AWS does): the execution history is account-level data, which Sutram's API never serves.
    scheduled = [event for event in run.history if event["type"] == "TaskScheduled"]
    assert len(scheduled) == 1 and token in json.dumps(scheduled, default=str)


def test_a_missed_deadline_with_on_timeout_reject_gives_the_expired_outcome(cloud):
    run_id, execution_arn = start("approval-timeouts", {"on_timeout": "reject", "proposal": {"pay": 1}})
    record = wait_for_approval(run_id, "quick_reject")
    run = wait_for_end(run_id, execution_arn)

    assert run.status == "SUCCEEDED"
    assert output_of(run) == {"outcome": "expired", "proposal": None, "by": None, "comment": None}
    with pytest.raises(ApprovalExpired):  # a late decision is refused: the API answers 409
        wiring.approval_store().decide(TENANT, record.approval_id, "approve", "ana")


def test_a_missed_deadline_with_on_timeout_escalate_asks_the_escalation_group(cloud):
    run_id, execution_arn = start("approval-timeouts", {"on_timeout": "escalate", "proposal": {"pay": 2}})
    wait_for_approval(run_id, "quick_escalate")
    escalated = wait_for_approval(run_id, "quick_escalate@escalation")
    assert escalated.group == "cfo"
    first = wiring.approval_store().get(TENANT, approval_id_for(TENANT, run_id, "quick_escalate"))
    assert first is not None and first.status == "escalated"

    decided, token = wiring.approval_store().decide(TENANT, escalated.approval_id, "approve", "cfo-ana")
    decisions.complete(decided, token, boto3.client("stepfunctions"))
    run = wait_for_end(run_id, execution_arn)

    assert run.status == "SUCCEEDED"
    assert output_of(run) == {"outcome": "approve", "proposal": {"pay": 2}, "by": "cfo-ana", "comment": ""}


def test_a_missed_deadline_with_on_timeout_fail_fails_the_run(cloud):
    run_id, execution_arn = start("approval-timeouts", {"on_timeout": "fail", "proposal": {"pay": 3}})
    run = wait_for_end(run_id, execution_arn)

    assert run.status == "FAILED"
    record = runs.get_run(wiring.runs_backend(), TENANT, run_id)
    assert record.status == "FAILED" and record.error is not None
    assert (record.error.error, record.error.cause) == (
        "Sutram.ApprovalTimedOut",
        "no one decided on approval step quick_fail before its deadline",
    )
