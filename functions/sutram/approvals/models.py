"""Request and response models of the approval routes. The OpenAPI document is generated from these."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from sutram.rest.errors import ErrorBody
from sutram.store.approvals import Outcome as DecisionOutcome
from sutram.store.approvals import Status as ApprovalStatus


class DecisionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decision: DecisionOutcome
    comment: str | None = Field(None, max_length=4000)
    proposal: Any = Field(
        None,
        description="An edited proposal, checked against proposal_schema; kept next to the original.",
    )


class Decision(BaseModel):
    outcome: DecisionOutcome
    by: str = Field(description='The deciding user, or "callback link (<group>)" for a signed link.')
    at: datetime
    comment: str | None = None
    edited_proposal: Any = Field(None, description="The approver's edit of `proposal`, when there was one.")


class ApprovalView(BaseModel):
    """A human approval a run waits on. `proposal` is always the step's original proposal."""

    approval_id: str
    run_id: str
    workflow: str
    step_path: str
    summary: str | None = None
    proposal: Any = None
    proposal_schema: dict[str, Any] | None = None
    group: str | None = Field(None, description="Only members of this Cognito group may decide.")
    created_at: datetime
    expires_at: datetime
    status: ApprovalStatus
    decision: Decision | None = None
    timeout_action: str | None = None
    escalate_to: str | None = None


class ApprovalPage(BaseModel):
    approvals: list[ApprovalView]
    next_cursor: str | None = Field(None, description="Pass as `cursor` to get the next page; null on the last.")


class AlreadyDecidedBody(ErrorBody):
    approval: ApprovalView = Field(description="The approval with its first (and only) decision.")
