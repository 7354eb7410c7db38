"""The request side of an `approval` step, and the call that resumes a run once it is decided.

    Step Functions (waitForTaskToken) ─> request_approval: resolve proposal ─> open record with token
                                                                          └─> notify (EventBridge, webhook)
    decision (API) ─> ApprovalStore.decide ─> complete(record, token) ─> SendTaskSuccess ─> run continues

The request Lambda returns nothing: the task ends only when `complete` sends the decision, or
when its deadline passes and the state machine takes the step's `on_timeout` path. The task token
is stored on the approval item and never leaves it: not in the notification, not in a log line.
A notification that fails is logged; it never fails the step, because the approval is recorded
and can still be found and decided through the API.
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import boto3
from aws_lambda_powertools import Logger
from pydantic import BaseModel

from sutram import expressions
from sutram.approval_links import make_links
from sutram.approvals import (
    MAX_PROPOSAL_BYTES,
    ApprovalRecord,
    ApprovalStore,
    approval_id_for,
    proposal_bytes,
    utc_iso,
)
from sutram.artifacts import ArtifactStore
from sutram.definition import ApprovalRules, ApprovalStep, render_template
from sutram.errors import InvalidStepInput
from sutram.steps import RunRef

logger = Logger(child=True)

EVENT_SOURCE = "sutram"
EVENT_DETAIL_TYPE = "Approval requested"
ESCALATION_SUFFIX = "@escalation"  # the escalated approval's step path: `<step path>@escalation`
WEBHOOK_TRIES = 3
WEBHOOK_TIMEOUT_SECONDS = 3
WEBHOOK_BACKOFF_SECONDS = 0.5  # before the second try; doubled before the third


class ApprovalEvent(BaseModel):
    """The payload the compiled state machine sends to the step Lambda for an `approval` step."""

    run: RunRef
    scope: str = ""
    step: ApprovalStep
    sources: dict[str, Any] = {}
    task_token: str
    # request: the first approval; escalate: its deadline passed, ask `escalate_to` instead.
    approval_action: Literal["request", "escalate"]
    # When Step Functions entered the waiting state ($$.State.EnteredTime): the deadline counts from
    # it, so the record's deadline never falls after the task's own timeout.
    entered_at: datetime | None = None

    @property
    def roots(self) -> dict[str, Any]:
        roots = {f"steps.{step_id}": value for step_id, value in self.sources.get("steps", {}).items()}
        return roots | {name: self.sources[name] for name in ("input", "item") if name in self.sources}


def api_links(record: ApprovalRecord) -> dict[str, str]:
    """Where an approver finds the approval: its API path (relative to the API's base URL)."""
    return {"approval": f"/approvals/{record.approval_id}"}


def signed_links(
    base_url: str, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
) -> Callable[[ApprovalRecord], dict[str, str]]:
    """The API path plus single-use, expiring approve/reject callback links (sutram.approval_links)."""

    def links(record: ApprovalRecord) -> dict[str, str]:
        return {"approval": f"{base_url}/approvals/{record.approval_id}"} | make_links(record, base_url, clock())

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
    event_bus: str = "default"
    webhook_url: str = ""  # a Slack-compatible incoming webhook, or "" for none
    # Links put in notifications; the API's approvals routes may provide richer ones (decide URLs).
    links: Callable[[ApprovalRecord], dict[str, str]] = api_links
    post: Callable[[str, dict[str, Any]], None] = post_json
    sleep: Callable[[float], None] = field(default=time.sleep)
    stepfunctions: Any = None  # for resuming a retried request whose approval is already decided


def request_approval(payload: dict[str, Any], runtime: ApprovalRuntime, now: datetime | None = None) -> None:
    """Record the approval with this delivery's task token and notify the approvers."""
    event = ApprovalEvent.model_validate(payload)
    open_and_notify(build_record(event, runtime.artifacts, now or datetime.now(UTC)), event.task_token, runtime)


def open_and_notify(record: ApprovalRecord, task_token: str, runtime: ApprovalRuntime) -> None:
    """Store a pending approval with the token of the task that waits for it, and notify its group;
    an escalation marks the approval it replaces escalated first. A retried request finds the same
    record: a decided one resumes this delivery at once."""
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


def build_record(event: ApprovalEvent, artifacts: ArtifactStore, now: datetime) -> ApprovalRecord:
    step, run = event.step, event.run

    def load(value: Any) -> Any:
        return artifacts.load(run.tenant, value)

    try:
        args = expressions.evaluate(step.input, event.roots, load)
        proposal = expressions.evaluate(step.proposal, event.roots, load)
    except expressions.ExpressionError as exc:
        raise InvalidStepInput(f"step {step.id!r} input: {exc}") from None
    if (size := proposal_bytes(proposal)) > MAX_PROPOSAL_BYTES:
        raise InvalidStepInput(
            f"step {step.id!r} proposal: {size} bytes of JSON, more than an approval holds ({MAX_PROPOSAL_BYTES});"
            " propose the decision's essentials, and keep large content in the run's steps"
        )
    return new_record(
        run,
        event.scope + step.id,
        step,
        escalated=event.approval_action == "escalate",
        summary=render_template(step.summary, args),
        proposal=proposal,
        proposal_schema=step.proposal_schema,
        now=now,
        entered_at=event.entered_at,
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
        created_at=utc_iso(now),
        expires_at=utc_iso((entered_at or now) + timedelta(seconds=deadline)),
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


def decision_output(record: ApprovalRecord) -> dict[str, Any]:
    """The step's output for a decided record. `proposal` is the proposal to act on, as the
    approver edited it, and null unless approved, so a rejected action cannot be run by mistake."""
    decision = record.decision
    if decision is None:
        raise ValueError(f"approval {record.approval_id} is {record.status}, not decided")
    approved = decision.outcome == "approve"
    proposal = decision.edited_proposal if decision.edited_proposal is not None else record.proposal
    return {
        "outcome": decision.outcome,
        "proposal": proposal if approved else None,
        "by": decision.by,
        "comment": decision.comment,
    }


def complete(record: ApprovalRecord, token: str, stepfunctions: Any = None) -> None:
    """Resume the waiting run with a decided record's outcome (what the API calls after `decide`)."""
    client = stepfunctions or boto3.client("stepfunctions")
    client.send_task_success(taskToken=token, output=json.dumps(decision_output(record)))
