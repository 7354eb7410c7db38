"""A gated agent tool call decided the way an approver decides it: over HTTP, through the approvals
API, with an edited proposal checked against the tool's own argument schema."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from localcloud.session import LocalSession
from sutram import wiring
from sutram.store.approvals import approval_id_for
from tests.e2e.support import Api
from tests.support import wait_for

COMPLAINT = {"customer": "Ada", "order_id": "A-1001", "message": "My desk is late."}
REFUND_CALL = "investigate/turn-0002/call-000"
PROPOSED = {"order_id": "A-1001", "amount_cents": 6400, "reason": "4 days late; the policy grants 10%"}


def pending_approval(api: Api, approval_id: str, timeout: float = 20) -> dict[str, Any]:
    """Poll GET /approvals?status=pending, as an approver's inbox does, until the approval is listed."""

    def listed() -> dict[str, Any] | None:
        response = api.get("/approvals", status="pending", limit="100")
        assert response.status_code == 200, response.text
        found = [item for item in response.json()["approvals"] if item["approval_id"] == approval_id]
        return found[0] if found else None

    return wait_for(listed, timeout=timeout, interval=0.05, failure=f"approval {approval_id} never listed")


@pytest.fixture
def log_lines(sutram: LocalSession) -> Iterator[Callable[[], list[str]]]:
    """The lines the Lambda functions log during the test, at INFO and up (as deployed, with
    POWERTOOLS_LOG_LEVEL=INFO), as CloudWatch Logs would hold them."""
    cloud = sutram.cloud
    cloud.drill({"POWERTOOLS_LOG_LEVEL": "INFO"})
    start = len(cloud.logs)
    yield lambda: [line for _, line in cloud.logs[start:] if line.startswith('{"level"')]
    cloud.drill({"POWERTOOLS_LOG_LEVEL": ""})


def test_a_refund_the_agent_proposes_is_decided_over_http_and_issued_with_the_edited_amount(
    api: Api, log_lines: Callable[[], list[str]]
) -> None:
    started = api.start(COMPLAINT, workflow="customer-support")
    assert started.status_code == 201, started.text
    run_id = started.json()["run_id"]
    approval_id = approval_id_for("acme", run_id, REFUND_CALL)
    responses: list[str] = []

    approval = pending_approval(api, approval_id)
    assert approval["proposal"] == PROPOSED and approval["group"] == "approvers"
    assert approval["proposal_schema"]["required"] == ["order_id", "amount_cents", "reason"]
    assert approval["step_path"] == REFUND_CALL
    foreign = api.get(f"/approvals/{approval_id}", user="grace")
    assert foreign.status_code == 404

    decision = f"/approvals/{approval_id}/decision"
    bad_edit = api.request("POST", decision, json={"decision": "approve", "proposal": PROPOSED | {"amount_cents": 0}})
    assert bad_edit.status_code == 400
    assert (bad_edit.json()["error"]["code"], bad_edit.json()["error"]["field"]) == (
        "invalid_proposal",
        "proposal.amount_cents",
    )
    approved = api.request(
        "POST",
        decision,
        json={"decision": "approve", "comment": "half now", "proposal": PROPOSED | {"amount_cents": 3200}},
    )
    assert approved.status_code == 200, approved.text
    second = api.request("POST", decision, json={"decision": "reject", "comment": "no"})
    assert second.status_code == 409 and second.json()["approval"]["decision"]["outcome"] == "approve"
    run = api.wait(run_id)
    responses += [r.text for r in (started, foreign, bad_edit, approved, second)]

    assert run["status"] == "SUCCEEDED"
    steps = api.get(f"/runs/{run_id}/steps")
    responses.append(steps.text)
    refund = next(step for step in steps.json()["steps"] if step["id"] == REFUND_CALL)
    issued = json.loads(refund["output"]["content"].split(". Result: ")[1])
    assert (issued["amount_cents"], issued["status"]) == (3200, "refunded")
    token = wiring.approval_store().token_for("acme", approval_id)
    assert token and all(token not in text for text in [*responses, json.dumps(run)])
    # The log tells the approval's story, and never holds the token.
    lines = log_lines()
    logged = [json.loads(line) for line in lines]
    requested = [line for line in logged if line["message"] == "approval requested"]
    decided = [line for line in logged if line["message"] == "approval decided"]
    assert [(line["approval_id"], line["group"], line["step_path"]) for line in requested] == [
        (approval_id, "approvers", REFUND_CALL)
    ]
    assert [(line["approval_id"], line["outcome"], line["by"]) for line in decided] == [(approval_id, "approve", "ada")]
    assert all(token not in line for line in lines)
