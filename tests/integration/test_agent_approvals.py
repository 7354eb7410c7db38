"""Gated agent tool calls on the local cloud: the call waits for a decision at zero compute, then
runs with the approved (maybe edited) arguments, or the model reads the rejection or the expiry."""

from __future__ import annotations

import json
import time
from typing import Any

import boto3
import pytest

from sutram import wiring
from sutram.engine.agent import (
    EVENTS_PER_APPROVAL,
    EVENTS_PER_CALL,
    EVENTS_PER_CALL_CHECK,
    EVENTS_PER_ESCALATION,
)
from sutram.runs import service as runs
from sutram.store.approvals import AlreadyDecided, ApprovalExpired
from tests.integration.support import TENANT, checkpoints, decide, start, wait_for_approval, wait_for_end
from tests.support import lambda_failures

COMPLAINT = {"customer": "Ada", "order_id": "A-1001", "message": "My desk is late."}
REFUND_CALL = "investigate/turn-0002/call-000"
PROPOSED = {"order_id": "A-1001", "amount_cents": 6400, "reason": "4 days late; the policy grants 10%"}


def output(run_id: str, path: str) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(checkpoints(run_id)[path]["output"])
    return value


def test_the_call_waits_without_running_anything_then_runs_with_the_edited_arguments(cloud, model_calls):
    run_id, execution_arn = start("customer-support", COMPLAINT)
    record = wait_for_approval(run_id, REFUND_CALL)
    assert record.group == "approvers" and record.status == "pending"
    assert record.proposal == PROPOSED
    assert record.summary == f"Agent investigate wants to call issue_refund with {json.dumps(PROPOSED, sort_keys=True)}"
    assert "investigate/turn-0002/call-000" not in checkpoints(run_id)  # asking wrote no checkpoint

    invocations = dict(cloud.invocations)
    time.sleep(1)
    assert dict(cloud.invocations) == invocations  # waiting runs no Lambda
    sfn = boto3.client("stepfunctions")
    assert sfn.describe_execution(executionArn=execution_arn)["status"] == "RUNNING"

    decide(record, "approve", comment="half now", proposal=PROPOSED | {"amount_cents": 3200})
    run = wait_for_end(run_id, execution_arn)

    assert run.status == "SUCCEEDED"
    result = output(run_id, REFUND_CALL)
    assert result["is_error"] is False
    edited = json.dumps(PROPOSED | {"amount_cents": 3200}, sort_keys=True)
    note, refunded = result["content"].split(". Result: ")
    assert note == f"A human (ana) approved this call with changed arguments: {edited}"
    assert json.loads(refunded) | {"refund_id": None} == {
        "refund_id": None,
        "order_id": "A-1001",
        "amount_cents": 3200,
        "status": "refunded",
        "reference": f"{run_id}/{REFUND_CALL}",
    }
    # The model was called once per turn, the refund turn included: the wait paid for nothing.
    assert model_calls.counts['Customer Ada wrote about order A-1001: "My desk is late."'] == 4
    assert [event["type"] for event in run.history].count("TaskScheduled") == 1  # one approval request
    assert run.lambda_invocations("investigate:call") == 4  # three calls, the refund asked once first
    with pytest.raises(AlreadyDecided):
        decide(record, "reject", comment="too late")


def test_a_rejected_call_never_runs_and_the_model_answers_knowing_why(cloud):
    run_id, execution_arn = start("customer-support", COMPLAINT)
    decide(wait_for_approval(run_id, REFUND_CALL), "reject", by="ops-lead", comment="already refunded by phone")
    run = wait_for_end(run_id, execution_arn)

    assert run.status == "SUCCEEDED"
    told = "a human (ops-lead) rejected this call, so it did not run: already refunded by phone"
    assert output(run_id, REFUND_CALL)["content"] == told and output(run_id, REFUND_CALL)["is_error"] is True
    # The model's next turn read the rejection; nothing was refunded.
    assert f"issue_refund returned {told}" in output(run_id, "investigate/turn-0003")["text"]
    reply = runs.get_run(wiring.runs_backend(), TENANT, run_id).output
    assert reply is not None and "RF-" not in json.dumps(reply)


def test_two_gated_calls_wait_side_by_side_and_a_deadline_missed_twice_is_reported_to_the_model(cloud):
    run_id, execution_arn = start("agent-gated", {"order": "A-1001"})
    refund = wait_for_approval(run_id, "clerk/turn-0000/call-000")
    order = wait_for_approval(run_id, "clerk/turn-0000/call-001")
    assert (refund.group, order.group) == ("finance", "buyers")

    # The order's 1 s deadline passes, so cfo is asked; cfo's 1 s passes too. Finance decides late.
    escalated = wait_for_approval(run_id, "clerk/turn-0000/call-001@escalation")
    assert (escalated.group, escalated.proposal) == ("cfo", order.proposal)
    time.sleep(1.5)
    decide(refund, "approve", by="fin-ana")
    finished = wait_for_end(run_id, execution_arn)

    assert finished.status == "SUCCEEDED"
    assert output(run_id, "clerk/turn-0000/call-000")["is_error"] is False
    expired = output(run_id, "clerk/turn-0000/call-001")
    assert expired == {
        "call_id": "call_0_1",
        "name": "place_order",
        "content": "no one decided on this call before its approval deadline, so it did not run",
        "is_error": True,
    }
    first = wiring.approval_store().get(TENANT, order.approval_id)
    assert first is not None and first.status == "escalated"
    for late in (order, escalated):  # a late decision is refused: the API answers 409
        with pytest.raises(ApprovalExpired):
            decide(late, "approve", by="buyer-bo")
    entered = [e["stateEnteredEventDetails"]["name"] for e in finished.history if e["type"] == "TaskStateEntered"]
    assert entered.count("clerk:call") == 4  # each call asked, then ran with its decision
    # What the history budget counts for these calls, less the expiry pass the approved call skipped.
    (tools_events,) = tool_map_events(finished.history)
    per_call = EVENTS_PER_CALL + EVENTS_PER_CALL_CHECK
    assert tools_events == 4 + 2 * per_call + 2 * EVENTS_PER_APPROVAL + EVENTS_PER_ESCALATION - 2


def test_a_gated_call_whose_deadline_fails_the_run_fails_it_and_nothing_runs(cloud):
    run_id, execution_arn = start("agent-gated-fail", {})
    wait_for_approval(run_id, "buyer/turn-0000/call-000")
    run = wait_for_end(run_id, execution_arn)

    assert run.status == "FAILED"
    record = runs.get_run(wiring.runs_backend(), TENANT, run_id)
    assert record.status == "FAILED" and record.error is not None
    assert record.error.error == "Sutram.ApprovalTimedOut"
    assert record.error.cause == "no one decided on a call of place_order by agent buyer before its approval deadline"
    assert "buyer/turn-0000/call-000" not in checkpoints(run_id)  # the order was never placed


def tool_map_events(history: list[dict[str, Any]]) -> list[int]:
    """The history events of each tools Map, from its MapStateEntered to its MapStateExited."""
    counts, inside = [], None
    for event in history:
        if event["type"] == "MapStateEntered":
            inside = 0
        if inside is not None:
            inside += 1
        if event["type"] == "MapStateExited":
            counts.append(inside)
            inside = None
    return counts


def test_an_approved_refund_whose_lambda_died_after_issuing_it_is_not_issued_again(cloud, inject_faults):
    inject_faults(f"{REFUND_CALL}@after_tool_call")
    run_id, execution_arn = start("customer-support", COMPLAINT)
    decide(wait_for_approval(run_id, REFUND_CALL), "approve")
    run = wait_for_end(run_id, execution_arn)

    assert run.status == "SUCCEEDED"
    failures = lambda_failures(run.history)
    assert failures == ["Runtime.ExitError"]  # the approved call died once, after the refund
    refund = checkpoints(run_id)[REFUND_CALL]
    assert refund["attempt"] == 1  # the retry returned the recorded refund: it was issued once
    assert json.loads(json.loads(refund["output"])["content"])["amount_cents"] == 6400
    assert [event["type"] for event in run.history].count("TaskScheduled") == 1  # and asked once


def test_gated_calls_of_an_agent_in_each_map_iteration_wait_for_their_own_decisions(cloud):
    run_id, execution_arn = start("agent-gated-map", {"orders": ["A-1001", "A-1001"]})
    first = wait_for_approval(run_id, "orders[0]/clerk/turn-0000/call-000")
    second = wait_for_approval(run_id, "orders[1]/clerk/turn-0000/call-000")
    assert first.approval_id != second.approval_id

    decide(first, "approve", proposal=first.proposal | {"amount_cents": 50})
    decide(second, "reject", comment="duplicate")
    run = wait_for_end(run_id, execution_arn)

    assert run.status == "SUCCEEDED"
    approved = output(run_id, "orders[0]/clerk/turn-0000/call-000")
    rejected = output(run_id, "orders[1]/clerk/turn-0000/call-000")
    assert approved["is_error"] is False and '"amount_cents": 50, "status": "refunded"' in approved["content"]
    assert rejected == {
        "call_id": "call_0_0",
        "name": "issue_refund",
        "content": "a human (ana) rejected this call, so it did not run: duplicate",
        "is_error": True,
    }
