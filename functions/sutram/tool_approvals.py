"""Approvals for gated agent tool calls: a tool declared with `approval` rules runs only once a
member of their `group` approves the call, with the model's arguments or edited ones.

    <agent>:call ─ {needs_approval} ─> <agent>:approve <tool> (waitForTaskToken) ─> request_tool_approval:
                                         record {summary, proposal: the arguments, schema: the tool's}
    decision (API) ─> SendTaskSuccess {outcome, proposal, by, comment} ─> <agent>:call again, with it
    deadline passes ─> on_timeout: reject ─> <agent>:no decision {outcome: expired} ─> <agent>:call again
                       on_timeout: escalate ─> <agent>:escalate <tool> asks `escalate_to` the same way
                       on_timeout: fail ─> the tools Map fails, and with it the run

The approval is the same record an `approval` step opens (sutram.approvals), keyed by the call's
checkpoint path (`<agent>/turn-0003/call-001`, `…@escalation` when escalated), so the approvals
API, callback links, notifications and the CLI decide it like any other. No Lambda runs while the
call waits.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from sutram.agent import AgentStep, call_path
from sutram.agent_runtime import recorded_turn, tool_call
from sutram.approval_step import ApprovalRuntime, new_record, open_and_notify
from sutram.approvals import ApprovalRecord
from sutram.errors import StepFailed
from sutram.models import ToolCall
from sutram.steps import RunRef, StepRuntime
from sutram.tools import get_tool

SUMMARY_ARGUMENTS_CHARS = 600  # the arguments as the summary quotes them; the proposal has them all
SUMMARY_REASONING_CHARS = 600


class ToolApprovalEvent(BaseModel):
    """The payload of a gated call's approval task."""

    agent_action: Literal["approval"]
    # request: the first approval; escalate: its deadline passed, ask `escalate_to` instead.
    approval_action: Literal["request", "escalate"] = "request"
    run: RunRef
    scope: str = ""
    step: AgentStep
    turn: int = Field(ge=0)
    call: int = Field(ge=0)
    task_token: str
    entered_at: datetime | None = None  # $$.State.EnteredTime: the deadline counts from it

    @property
    def agent_path(self) -> str:
        return f"{self.scope}{self.step.id}"

    @property
    def path(self) -> str:
        return call_path(self.agent_path, self.turn, self.call)


def request_tool_approval(
    payload: dict[str, Any], steps: StepRuntime, approvals: ApprovalRuntime, now: datetime | None = None
) -> None:
    """Record the approval of one tool call with this delivery's task token and notify its group."""
    event = ToolApprovalEvent.model_validate(payload)
    answer = recorded_turn(event.run, event.agent_path, event.turn, steps)
    call = tool_call(answer, event.agent_path, event.turn, event.call)
    open_and_notify(build_record(event, call, answer["text"], now or datetime.now(UTC)), event.task_token, approvals)


def build_record(event: ToolApprovalEvent, call: ToolCall, reasoning: str, now: datetime) -> ApprovalRecord:
    tool = event.step.tool(call.name)
    if tool is None or tool.approval is None:
        raise StepFailed(f"agent {event.step.id!r}: tool {call.name!r} does not need an approval")
    return new_record(
        event.run,
        event.path,
        tool.approval,
        escalated=event.approval_action == "escalate",
        summary=summary(event.step.id, call, reasoning),
        proposal=call.arguments,
        proposal_schema=get_tool(call.name).args_model.model_json_schema(),
        now=now,
        entered_at=event.entered_at,
    )


def summary(agent_id: str, call: ToolCall, reasoning: str) -> str:
    """What the approver reads: the call, and what the model said when it made it."""
    arguments = _clip(json.dumps(call.arguments, ensure_ascii=False, sort_keys=True), SUMMARY_ARGUMENTS_CHARS)
    text = f"Agent {agent_id} wants to call {call.name} with {arguments}"
    if reasoning.strip():
        text += f". It said: {_clip(reasoning.strip(), SUMMARY_REASONING_CHARS)}"
    return text


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
