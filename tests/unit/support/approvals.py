"""The approval side's fakes, EventBridge and Step Functions clients that keep what they were sent,
and approval records as the approval store keeps them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sutram.store.approvals import ApprovalRecord, approval_id_for
from sutram.store.dynamo import iso_z


class Events:
    def __init__(self, fail: bool = False) -> None:
        self.entries: list[dict[str, Any]] = []
        self.fail = fail

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        if self.fail:
            raise ConnectionError("EventBridge is unreachable")
        self.entries += Entries
        return {"FailedEntryCount": 0, "Entries": [{"EventId": "e-1"}]}


class StepFunctions:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def send_task_success(self, **request: Any) -> None:
        self.sent.append(request)


def approval_record(
    step_path: str = "approve_refund",
    *,
    created_at: datetime,
    expires_at: datetime,
    tenant: str = "acme",
    run_id: str = "r-1",
    **fields: Any,
) -> ApprovalRecord:
    """A pending approval of a refund, asked of finance by `step_path` of a run; `fields` replace
    any other of its fields."""
    return ApprovalRecord.model_validate(
        {
            "approval_id": approval_id_for(tenant, run_id, step_path),
            "tenant": tenant,
            "run_id": run_id,
            "workflow": "refunds",
            "step_path": step_path,
            "summary": "Refund 120.5 EUR to order 42",
            "proposal": {"order": 42, "amount": 120.5},
            "group": "finance",
            "created_at": iso_z(created_at),
            "expires_at": iso_z(expires_at),
        }
        | fields
    )
