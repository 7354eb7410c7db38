"""sutram.approvals.requests for a gated agent tool call: what the approver reads and may edit, who
decides, the deadline, and the token kept server-side."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import BaseModel, Field

from sutram import wiring
from sutram.approvals.requests import request_tool_approval
from sutram.approvals.requests import tool_summary as summary
from sutram.contracts import ToolApprovalTask
from sutram.engine.agent import run_agent_turn
from sutram.errors import StepFailed
from sutram.models import ToolCall
from sutram.store.approvals import approval_id_for
from sutram.tools import ToolContext, tool
from tests.unit.support.engine import RUN, turn_event

NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
TOKEN = "AQCEAAAAKgAAAAMAAAAAAAAAA-secret-task-token"


class Refund(BaseModel):
    order: str
    amount_cents: int = Field(ge=1)


@tool("unit_refund")
def refund(args: Refund, context: ToolContext) -> dict[str, Any]:
    """Refunds an order."""
    return args.model_dump()


STEP = {
    "id": "clerk",
    "type": "agent",
    "prompt": "Settle {{item}}.",
    "input": {"item": "$.input.item"},
    "tools": [
        "unit_lookup_inventory",
        {
            "name": "unit_refund",
            "approval": {
                "group": "finance",
                "timeout_seconds": 7200,
                "on_timeout": "escalate",
                "escalate_to": "cfo",
                "escalate_timeout_seconds": 600,
            },
        },
    ],
    "script": [
        [
            {"call": "unit_lookup_inventory", "arguments": {"item": "widget"}},
            {"call": "unit_refund", "arguments": {"order": "A-1", "amount_cents": 6400}},
        ]
    ],
}


def task(call: int = 1, token: str = TOKEN, scope: str = "", action: str = "request") -> ToolApprovalTask:
    return ToolApprovalTask.model_validate(
        {
            "task": "tool_approval",
            "approval_action": action,
            "run": RUN,
            "scope": scope,
            "step": STEP,
            "turn": 0,
            "call": call,
            "task_token": token,
            "entered_at": "2026-01-05T08:59:58.500Z",
        }
    )


@pytest.fixture
def turn_recorded(aws_env: None) -> None:
    run_agent_turn(turn_event(STEP, 0), wiring.step_runtime())


def test_the_call_is_recorded_as_an_approval_of_its_arguments_for_the_tools_group(turn_recorded, approval_runtime):
    assert request_tool_approval(task(), wiring.step_runtime(), approval_runtime, NOW) is None

    approval_id = approval_id_for("acme", "run-1", "clerk/turn-0000/call-001")
    record = approval_runtime.store.get("acme", approval_id)
    assert record is not None
    assert record.step_path == "clerk/turn-0000/call-001" and record.workflow == "unit"
    assert record.summary == 'Agent clerk wants to call unit_refund with {"amount_cents": 6400, "order": "A-1"}'
    assert record.proposal == {"order": "A-1", "amount_cents": 6400}
    assert record.proposal_schema == Refund.model_json_schema()
    assert (record.group, record.status, record.timeout_action, record.escalate_to) == (
        "finance",
        "pending",
        "escalate",
        "cfo",
    )
    # The deadline counts from when the task was entered: the tool's timeout_seconds later.
    assert (record.created_at, record.expires_at) == ("2026-01-05T09:00:00.000Z", "2026-01-05T10:59:58.500Z")
    assert approval_runtime.store.token_for("acme", approval_id) == TOKEN


def test_the_approvers_are_notified_without_the_token(turn_recorded, approval_runtime):
    request_tool_approval(task(), wiring.step_runtime(), approval_runtime, NOW)

    (entry,) = approval_runtime.events.entries
    assert entry["DetailType"] == "Approval requested" and entry["Source"] == "sutram"
    detail = json.loads(entry["Detail"])
    assert detail["group"] == "finance" and detail["proposal"] == {"order": "A-1", "amount_cents": 6400}
    assert TOKEN not in entry["Detail"]


def test_a_call_inside_a_map_iteration_is_keyed_by_its_scoped_path(aws_env, approval_runtime):
    run_agent_turn(turn_event(STEP, 0).model_copy(update={"scope": "orders[2]/"}), wiring.step_runtime())

    request_tool_approval(task(scope="orders[2]/"), wiring.step_runtime(), approval_runtime, NOW)

    approval_id = approval_id_for("acme", "run-1", "orders[2]/clerk/turn-0000/call-001")
    assert approval_runtime.store.get("acme", approval_id) is not None


def test_a_retried_request_of_a_decided_call_resumes_its_own_delivery_at_once(turn_recorded, approval_runtime):
    request_tool_approval(task(token="token-1"), wiring.step_runtime(), approval_runtime, NOW)
    approval_id = approval_id_for("acme", "run-1", "clerk/turn-0000/call-001")
    approval_runtime.store.decide("acme", approval_id, "approve", "ana", "", {"order": "A-1", "amount_cents": 10}, NOW)

    request_tool_approval(task(token="token-2"), wiring.step_runtime(), approval_runtime, NOW)

    (sent,) = approval_runtime.stepfunctions.sent
    assert sent["taskToken"] == "token-2"
    assert json.loads(sent["output"]) == {
        "outcome": "approve",
        "proposal": {"order": "A-1", "amount_cents": 10},
        "by": "ana",
        "comment": "",
    }


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (0, "tool 'unit_lookup_inventory' does not need an approval"),
        (5, "turn 0 has no tool call 5"),
    ],
)
def test_a_call_that_is_not_gated_or_not_there_is_refused(turn_recorded, approval_runtime, call, message):
    with pytest.raises(StepFailed, match=message):
        request_tool_approval(task(call=call), wiring.step_runtime(), approval_runtime, NOW)
    assert approval_runtime.events.entries == []


def test_the_summary_quotes_what_the_model_said_and_clips_long_text():
    call = ToolCall(id="c1", name="unit_refund", arguments={"order": "A-1", "amount_cents": 6400, "note": "x" * 900})

    text = summary("clerk", call, "  The desk came 4 days late; policy says 10%.  ")

    arguments, said = text.split(". It said: ")
    assert arguments.startswith('Agent clerk wants to call unit_refund with {"amount_cents": 6400, "note": "xxx')
    assert len(arguments) == len("Agent clerk wants to call unit_refund with ") + 600 and arguments.endswith("…")
    assert said == "The desk came 4 days late; policy says 10%."


def test_a_missed_deadline_escalates_the_call_to_the_escalation_group(turn_recorded, approval_runtime):
    request_tool_approval(task(), wiring.step_runtime(), approval_runtime, NOW)

    request_tool_approval(
        task(token="token-2", action="escalate"),
        wiring.step_runtime(),
        approval_runtime,
        NOW,
    )

    first = approval_runtime.store.get("acme", approval_id_for("acme", "run-1", "clerk/turn-0000/call-001"))
    escalated_id = approval_id_for("acme", "run-1", "clerk/turn-0000/call-001@escalation")
    escalated = approval_runtime.store.get("acme", escalated_id)
    assert first is not None and first.status == "escalated"
    assert escalated is not None and escalated.step_path == "clerk/turn-0000/call-001@escalation"
    assert (escalated.group, escalated.timeout_action, escalated.escalate_to) == ("cfo", "reject", None)
    assert escalated.expires_at == "2026-01-05T09:09:58.500Z"  # escalate_timeout_seconds after entering
    assert escalated.proposal == first.proposal
    assert approval_runtime.store.token_for("acme", escalated_id) == "token-2"
    assert [json.loads(entry["Detail"])["group"] for entry in approval_runtime.events.entries] == ["finance", "cfo"]
