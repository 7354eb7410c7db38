"""Asking for a decision: what an `approval` step and a gated agent tool call record, and whom they notify.

    approval step (waitForTaskToken) ─> request_approval: resolve the proposal ─┐
    gated tool call (waitForTaskToken) ─> request_tool_approval: the call's      ├─> open the record with
                                          arguments, the tool's schema         ─┘   the task token, notify
                                                                                    (EventBridge, webhook)
    decision (sutram.approvals.decisions) ─> SendTaskSuccess ─> the run continues

The request Lambda returns nothing: the task ends only when the decision is sent, or when its
deadline passes and the state machine takes the `on_timeout` path: reject, escalate (a second
request asking `escalate_to`, at `<path>@escalation`) or fail. A gated call's approval is keyed by
the call's checkpoint path (`<agent>/turn-0003/call-001`), so the approvals API, callback links,
notifications and the CLI decide it like any other. The task token is stored on the approval item
and never leaves it: not in the notification, not in a log line. A notification that fails is
logged; it never fails the step, because the approval is recorded and can still be found and
decided through the API. No Lambda runs while the run waits.
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from aws_lambda_powertools import Logger

from sutram.approvals.decisions import complete
from sutram.approvals.links import make_links
from sutram.contracts import ApprovalTask, RunRef, ToolApprovalTask
from sutram.definition import ApprovalRules, render_template
from sutram.engine.agent import call_path, recorded_turn, tool_call
from sutram.engine.work import StepRuntime, resolve
from sutram.errors import InvalidStepInput, ReplayDiverged, StepFailed
from sutram.models import ToolCall
from sutram.store.approvals import (
    MAX_PROPOSAL_BYTES,
    ApprovalRecord,
    ApprovalStore,
    approval_id_for,
    proposal_bytes,
)
from sutram.store.artifacts import ArtifactStore
from sutram.store.dynamo import iso_z, utc_now
from sutram.tools import get_tool

logger = Logger(child=True)

EVENT_SOURCE = "sutram"
EVENT_DETAIL_TYPE = "Approval requested"
ESCALATION_SUFFIX = "@escalation"  # the escalated approval's step path: `<step path>@escalation`
WEBHOOK_TRIES = 3
WEBHOOK_TIMEOUT_SECONDS = 3
WEBHOOK_BACKOFF_SECONDS = 0.5  # before the second try; doubled before the third
SUMMARY_ARGUMENTS_CHARS = 600  # a gated call's arguments as the summary quotes them; the proposal has them all
SUMMARY_REASONING_CHARS = 600


def api_links(record: ApprovalRecord) -> dict[str, str]:
    """Where an approver finds the approval: its API path (relative to the API's base URL)."""
    return {"approval": f"/approvals/{record.approval_id}"}


def signed_links(
    base_url: str, key: Callable[[], str], clock: Callable[[], datetime] = utc_now
) -> Callable[[ApprovalRecord], dict[str, str]]:
    """The API path plus single-use, expiring approve/reject callback links (sutram.approvals.links),
    signed with the current `key()`."""

    def links(record: ApprovalRecord) -> dict[str, str]:
        return {"approval": f"{base_url}/approvals/{record.approval_id}"} | make_links(record, base_url, clock(), key())

    return links


def post_json(url: str, body: dict[str, Any]) -> None:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=WEBHOOK_TIMEOUT_SECONDS) as response:
        response.read()


@dataclass
class ApprovalRuntime:
    store: ApprovalStore
    artifacts: ArtifactStore
    events: Any  # an EventBridge client
    stepfunctions: Any  # resumes a retried request whose approval is already decided
    event_bus: str = "default"
    webhook_url: str = ""  # a Slack-compatible incoming webhook, or "" for none
    # Links put in notifications: the API path, or with a callback secret (sutram.wiring) signed
    # approve/reject links as well.
    links: Callable[[ApprovalRecord], dict[str, str]] = api_links
    post: Callable[[str, dict[str, Any]], None] = post_json
    sleep: Callable[[float], None] = field(default=time.sleep)


def request_approval(task: ApprovalTask, runtime: ApprovalRuntime, now: datetime | None = None) -> None:
    """Record an `approval` step's approval with this delivery's task token and notify the approvers."""
    record = build_record(task, runtime.artifacts, now or utc_now())
    open_and_notify(record, task.task_token, runtime, replay_of=task.run.replay_of)


def request_tool_approval(
    task: ToolApprovalTask, steps: StepRuntime, approvals: ApprovalRuntime, now: datetime | None = None
) -> None:
    """Record the approval of one gated tool call with this delivery's task token and notify its group."""
    answer = recorded_turn(task.run, task.agent_path, task.turn, steps)
    call = tool_call(answer, task.agent_path, task.turn, task.call)
    record = build_tool_record(task, call, answer["text"], now or utc_now())
    open_and_notify(record, task.task_token, approvals, replay_of=task.run.replay_of)


def open_and_notify(
    record: ApprovalRecord, task_token: str, runtime: ApprovalRuntime, replay_of: str | None = None
) -> None:
    """Store a pending approval with the token of the task that waits for it, and notify its group;
    an escalation marks the approval it replaces escalated first. A retried request finds the same
    record: a decided one resumes this delivery at once. A replay asks nobody: it resumes with the
    decision the recorded run got, or stops if it got none."""
    if replay_of is not None:
        recorded = runtime.store.get(record.tenant, approval_id_for(record.tenant, replay_of, record.step_path))
        if recorded is None or recorded.decision is None:
            raise ReplayDiverged(f"approval {record.step_path!r} was not decided in run {replay_of}")
        complete(recorded, task_token, runtime.stepfunctions)
        return
    if record.step_path.endswith(ESCALATION_SUFFIX):
        first = approval_id_for(record.tenant, record.run_id, record.step_path.removesuffix(ESCALATION_SUFFIX))
        runtime.store.expire(record.tenant, first, "escalated")
    opened = runtime.store.open(record, task_token)
    if opened.decision is not None:
        complete(opened, task_token, runtime.stepfunctions)
        return
    if opened.status == "pending":
        logger.info(
            "approval requested",
            extra={
                "approval_id": opened.approval_id,
                "run_id": opened.run_id,
                "step_path": opened.step_path,
                "group": opened.group,
                "expires_at": opened.expires_at,
            },
        )
        notify(opened, runtime)


def build_record(task: ApprovalTask, artifacts: ArtifactStore, now: datetime) -> ApprovalRecord:
    step, run = task.step, task.run
    args = resolve(step.input, run, step, task.roots, artifacts)
    proposal = resolve(step.proposal, run, step, task.roots, artifacts)
    if (size := proposal_bytes(proposal)) > MAX_PROPOSAL_BYTES:
        raise InvalidStepInput(
            f"step {step.id!r} proposal: {size} bytes of JSON, more than an approval holds ({MAX_PROPOSAL_BYTES});"
            " propose the decision's essentials, and keep large content in the run's steps"
        )
    return new_record(
        run,
        task.scope + step.id,
        step,
        escalated=task.approval_action == "escalate",
        summary=render_template(step.summary, args),
        proposal=proposal,
        proposal_schema=step.proposal_schema,
        now=now,
        entered_at=task.entered_at,
    )


def build_tool_record(task: ToolApprovalTask, call: ToolCall, reasoning: str, now: datetime) -> ApprovalRecord:
    tool = task.step.tool(call.name)
    if tool is None or tool.approval is None:
        raise StepFailed(f"agent {task.step.id!r}: tool {call.name!r} does not need an approval")
    return new_record(
        task.run,
        call_path(task.agent_path, task.turn, task.call),
        tool.approval,
        escalated=task.approval_action == "escalate",
        summary=tool_summary(task.step.id, call, reasoning),
        proposal=call.arguments,
        proposal_schema=get_tool(call.name).args_model.model_json_schema(),
        now=now,
        entered_at=task.entered_at,
    )


def new_record(
    run: RunRef,
    path: str,
    rules: ApprovalRules,
    *,
    escalated: bool,
    summary: str,
    proposal: Any,
    proposal_schema: dict[str, Any] | None,
    now: datetime,
    entered_at: datetime | None,
) -> ApprovalRecord:
    """The pending approval of what waits at `path` (a step or a tool call), under `rules`: who
    decides, by when (counted from when the waiting task was entered), and what a missed deadline
    does. An escalated approval is `<path>@escalation`, decided by `escalate_to`; its own missed
    deadline rejects."""
    if escalated:
        path += ESCALATION_SUFFIX
    deadline = rules.escalation_deadline if escalated else rules.timeout_seconds
    return ApprovalRecord(
        approval_id=approval_id_for(run.tenant, run.run_id, path),
        tenant=run.tenant,
        run_id=run.run_id,
        workflow=run.workflow,
        step_path=path,
        summary=summary,
        proposal=proposal,
        proposal_schema=proposal_schema,
        group=str(rules.escalate_to) if escalated else rules.group,
        created_at=iso_z(now),
        expires_at=iso_z((entered_at or now) + timedelta(seconds=deadline)),
        timeout_action="reject" if escalated else rules.on_timeout,
        escalate_to=None if escalated else rules.escalate_to,
    )


def notify(record: ApprovalRecord, runtime: ApprovalRuntime) -> None:
    """Publish `Approval requested` on EventBridge and post to the webhook, if one is configured.
    Failures are logged and swallowed."""
    detail = record.model_dump(mode="json") | {"links": runtime.links(record)}
    try:
        response = runtime.events.put_events(
            Entries=[
                {
                    "Source": EVENT_SOURCE,
                    "DetailType": EVENT_DETAIL_TYPE,
                    "Detail": json.dumps(detail),
                    "EventBusName": runtime.event_bus,
                }
            ]
        )
        if response.get("FailedEntryCount"):
            logger.warning("approval event not published", extra={"entries": response.get("Entries")})
    except Exception:
        logger.exception("approval event not published", extra={"approval_id": record.approval_id})
    if runtime.webhook_url:
        _post_with_retries(runtime, webhook_message(record, detail["links"]), record.approval_id)


def webhook_message(record: ApprovalRecord, links: dict[str, str]) -> dict[str, Any]:
    """A Slack-compatible message: `text` for any chat tool, the record for anything else."""
    lines = [
        f"Approval requested from {record.group} ({record.workflow}, run {record.run_id}): {record.summary}",
        f"Decide by {record.expires_at}.",
        *(f"{name}: {link}" for name, link in links.items()),
    ]
    return {"text": "\n".join(lines), "approval": record.model_dump(mode="json"), "links": links}


def _post_with_retries(runtime: ApprovalRuntime, body: dict[str, Any], approval_id: str) -> None:
    for attempt in range(1, WEBHOOK_TRIES + 1):
        try:
            runtime.post(runtime.webhook_url, body)
            return
        except Exception as exc:
            logger.warning(
                "approval webhook failed",
                extra={"approval_id": approval_id, "attempt": attempt, "error": f"{type(exc).__name__}: {exc}"},
            )
            if attempt < WEBHOOK_TRIES:
                runtime.sleep(WEBHOOK_BACKOFF_SECONDS * 2 ** (attempt - 1))
    logger.error("approval webhook gave up", extra={"approval_id": approval_id, "tries": WEBHOOK_TRIES})


def tool_summary(agent_id: str, call: ToolCall, reasoning: str) -> str:
    """What the approver reads: the call, and what the model said when it made it."""
    arguments = _clip(json.dumps(call.arguments, ensure_ascii=False, sort_keys=True), SUMMARY_ARGUMENTS_CHARS)
    text = f"Agent {agent_id} wants to call {call.name} with {arguments}"
    if reasoning.strip():
        text += f". It said: {_clip(reasoning.strip(), SUMMARY_REASONING_CHARS)}"
    return text


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
