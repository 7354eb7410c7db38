"""sutram.approvals.requests for an approval step: record with the token, notify without it, never
fail on a notification; and the approval step's definition."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from sutram.approvals import decisions, requests
from sutram.approvals.decisions import decision_output
from sutram.approvals.links import verify
from sutram.approvals.requests import ApprovalRuntime, request_approval
from sutram.contracts import ApprovalTask
from sutram.definition import DefinitionError, parse_definition
from sutram.errors import InvalidStepInput
from sutram.store.approvals import MAX_PROPOSAL_BYTES, approval_id_for
from tests.unit.support.approvals import Events

NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
TOKEN = "AQCEAAAAKgAAAAMAAAAAAAAAA-secret-task-token"
STEP = {
    "id": "approve_refund",
    "type": "approval",
    "summary": "Refund {{amount}} EUR for order {{order}}",
    "input": {"amount": "$.input.amount", "order": "$.input.order"},
    "proposal": {"order": "$.input.order", "amount": "$.input.amount", "currency": "EUR"},
    "group": "finance",
    "timeout_seconds": 3600,
    "on_timeout": "escalate",
    "escalate_to": "cfo",
    "escalate_timeout_seconds": 600,
}


def task(action: str = "request", token: str = TOKEN, scope: str = "", **fields: Any) -> ApprovalTask:
    return ApprovalTask.model_validate(payload(action, token, scope) | fields)


def payload(action: str = "request", token: str = TOKEN, scope: str = "") -> dict[str, Any]:
    return {
        "run": {"tenant": "acme", "run_id": "run-1", "workflow": "refunds"},
        "scope": scope,
        "step": STEP,
        "sources": {"input": {"amount": 120.5, "order": 42}},
        "task": "approval",
        "task_token": token,
        "approval_action": action,
    }


@pytest.fixture
def runtime(approval_runtime) -> ApprovalRuntime:
    return approval_runtime


def test_a_request_records_the_approval_with_its_token(runtime):
    assert request_approval(task(), runtime, NOW) is None  # the task waits for SendTaskSuccess

    approval_id = approval_id_for("acme", "run-1", "approve_refund")
    record = runtime.store.get("acme", approval_id)
    assert record.summary == "Refund 120.5 EUR for order 42"
    assert record.proposal == {"order": 42, "amount": 120.5, "currency": "EUR"}
    assert (record.group, record.status, record.timeout_action, record.escalate_to) == (
        "finance",
        "pending",
        "escalate",
        "cfo",
    )
    assert (record.created_at, record.expires_at) == ("2026-01-05T09:00:00.000Z", "2026-01-05T10:00:00.000Z")
    assert runtime.store.token_for("acme", approval_id) == TOKEN


def test_a_proposal_too_large_for_an_approval_fails_the_request_saying_so(runtime):
    large = task(sources={"input": {"amount": 1, "order": "o" * MAX_PROPOSAL_BYTES}})

    with pytest.raises(InvalidStepInput, match=r"step 'approve_refund' proposal: 131\d{3} bytes of JSON, more than"):
        request_approval(large, runtime, NOW)
    assert runtime.store.get("acme", approval_id_for("acme", "run-1", "approve_refund")) is None
    assert runtime.events.entries == []


def test_the_deadline_counts_from_when_the_task_was_entered(runtime):
    request_approval(task(entered_at="2026-01-05T08:59:58.5Z"), runtime, NOW)

    record = runtime.store.get("acme", approval_id_for("acme", "run-1", "approve_refund"))
    assert (record.created_at, record.expires_at) == ("2026-01-05T09:00:00.000Z", "2026-01-05T09:59:58.500Z")


def test_the_approval_requested_event_carries_the_record_and_links_but_not_the_token(runtime):
    request_approval(task(), runtime, NOW)

    (entry,) = runtime.events.entries
    assert (entry["Source"], entry["DetailType"], entry["EventBusName"]) == ("sutram", "Approval requested", "default")
    detail = json.loads(entry["Detail"])
    assert detail["approval_id"] == approval_id_for("acme", "run-1", "approve_refund")
    assert detail["links"] == {"approval": f"/approvals/{detail['approval_id']}"}
    assert TOKEN not in entry["Detail"]


def test_the_webhook_is_retried_then_given_up_without_failing_the_step(runtime):
    calls, sleeps = [], []

    def failing_post(url: str, body: dict[str, Any]) -> None:
        calls.append((url, body))
        raise TimeoutError("the chat tool is down")

    runtime.webhook_url, runtime.post, runtime.sleep = "https://hooks.example.com/T1", failing_post, sleeps.append
    runtime.events = Events(fail=True)

    request_approval(task(), runtime, NOW)

    assert len(calls) == requests.WEBHOOK_TRIES == 3
    assert sleeps == [0.5, 1.0]
    url, body = calls[0]
    assert url == "https://hooks.example.com/T1"
    assert body["text"].startswith("Approval requested from finance (refunds, run run-1): Refund 120.5 EUR")
    assert TOKEN not in json.dumps(body)
    assert runtime.store.get("acme", approval_id_for("acme", "run-1", "approve_refund")).status == "pending"


def test_a_webhook_that_recovers_is_posted_once(runtime):
    outcomes = [ConnectionError("reset"), None]
    posted = []

    def flaky_post(url: str, body: dict[str, Any]) -> None:
        outcome = outcomes.pop(0)
        if outcome:
            raise outcome
        posted.append(body)

    runtime.webhook_url, runtime.post = "https://hooks.example.com/T1", flaky_post

    request_approval(task(), runtime, NOW)

    assert len(posted) == 1 and outcomes == []


def test_a_retried_request_replaces_the_token_and_notifies_again(runtime):
    request_approval(task(token="token-1"), runtime, NOW)
    request_approval(task(token="token-2"), runtime, NOW)

    assert runtime.store.token_for("acme", approval_id_for("acme", "run-1", "approve_refund")) == "token-2"
    assert len(runtime.events.entries) == 2
    assert runtime.stepfunctions.sent == []


def test_a_retried_request_of_a_decided_approval_resumes_its_own_delivery(runtime):
    request_approval(task(token="token-1"), runtime, NOW)
    approval_id = approval_id_for("acme", "run-1", "approve_refund")
    runtime.store.decide("acme", approval_id, "reject", "ana", "too much", now=NOW)

    request_approval(task(token="token-2"), runtime, NOW)

    (sent,) = runtime.stepfunctions.sent
    assert sent["taskToken"] == "token-2"
    assert json.loads(sent["output"]) == {"outcome": "reject", "proposal": None, "by": "ana", "comment": "too much"}
    assert len(runtime.events.entries) == 1


def test_escalation_marks_the_first_approval_and_asks_the_escalation_group(runtime):
    request_approval(task(scope="batch[2]/"), runtime, NOW)
    request_approval(task("escalate", token="token-2", scope="batch[2]/"), runtime, NOW)

    first = runtime.store.get("acme", approval_id_for("acme", "run-1", "batch[2]/approve_refund"))
    second = runtime.store.get("acme", approval_id_for("acme", "run-1", "batch[2]/approve_refund@escalation"))
    assert first.status == "escalated"
    assert (second.group, second.status, second.timeout_action) == ("cfo", "pending", "reject")
    assert second.escalate_to is None
    assert second.expires_at == "2026-01-05T09:10:00.000Z"
    assert runtime.store.token_for("acme", second.approval_id) == "token-2"


def test_the_output_is_the_edited_proposal_when_approved(runtime):
    request_approval(task(), runtime, NOW)
    approval_id = approval_id_for("acme", "run-1", "approve_refund")
    edited = {"order": 42, "amount": 100, "currency": "EUR"}

    record, token = runtime.store.decide("acme", approval_id, "approve", "ana", "capped", edited, now=NOW)
    decisions.complete(record, token, runtime.stepfunctions)

    (sent,) = runtime.stepfunctions.sent
    assert sent["taskToken"] == TOKEN
    assert json.loads(sent["output"]) == {"outcome": "approve", "proposal": edited, "by": "ana", "comment": "capped"}


def test_an_undecided_record_has_no_output(runtime):
    request_approval(task(), runtime, NOW)

    with pytest.raises(ValueError, match="not decided"):
        decision_output(runtime.store.get("acme", approval_id_for("acme", "run-1", "approve_refund")))


def _definition(step: dict[str, Any]) -> Any:
    return parse_definition({"name": "refunds", "steps": [step]}, "refunds.yaml")


def test_an_approval_step_is_a_valid_definition():
    (step,) = _definition(STEP).steps
    assert (step.type, step.escalation_deadline) == ("approval", 600)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"summary": "Refund {{missing}}"}, "summary placeholder {{missing}} has no entry in input"),
        ({"on_timeout": "reject"}, "'escalate_to' is needed with on_timeout: escalate, and only with it"),
        ({"escalate_to": None}, "'escalate_to' is needed with on_timeout: escalate, and only with it"),
        ({"proposal": "$.steps.later"}, "reads $.steps.later, which is not an earlier step"),
        ({"timeout_seconds": 0}, "field 'timeout_seconds'"),
    ],
)
def test_an_inconsistent_approval_step_is_refused(change, message):
    with pytest.raises(DefinitionError) as raised:
        _definition({k: v for k, v in (STEP | change).items() if v is not None})
    assert message in str(raised.value)


def test_with_a_callback_secret_notifications_carry_signed_approve_and_reject_links(runtime, monkeypatch):
    runtime.links = requests.signed_links("https://api.example.com/v1", lambda: "s3cret", clock=lambda: NOW)

    request_approval(task(), runtime, NOW)

    (entry,) = runtime.events.entries
    links = json.loads(entry["Detail"])["links"]
    approval_id = approval_id_for("acme", "run-1", "approve_refund")
    assert links["approval"] == f"https://api.example.com/v1/approvals/{approval_id}"
    for outcome in ("approve", "reject"):
        assert links[outcome].startswith("https://api.example.com/v1/callbacks/approvals/")
        claims = verify(links[outcome].rsplit("/", 1)[1], ["s3cret"], NOW)
        assert (claims.approval_id, claims.tenant, claims.outcome) == (approval_id, "acme", outcome)
    assert TOKEN not in entry["Detail"]
