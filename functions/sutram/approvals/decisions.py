"""Deciding: list, read and decide a tenant's approvals, by an API caller or by a signed callback
link, and resume the waiting run with the decision.

Rules: another tenant's approval answers exactly like one that does not exist; only a member of the
approval's group decides it (a callback link stands for the group it was sent to); an edited proposal
must satisfy the approval's `proposal_schema`; an approval is decided once. The Step Functions task
token goes from the store straight to `complete` and never into a response.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError

from sutram import schemas
from sutram.approvals import links
from sutram.approvals.errors import (
    AlreadyDecidedError,
    ApprovalExpiredError,
    ApprovalNotFoundError,
    InvalidCallbackLink,
    InvalidProposal,
    NotAllowed,
)
from sutram.approvals.models import ApprovalPage, ApprovalStatus, ApprovalView, DecisionRequest
from sutram.contracts import Decision
from sutram.rest.auth import Caller
from sutram.rest.errors import InvalidCursor
from sutram.store import cursors
from sutram.store.approvals import (
    MAX_PROPOSAL_BYTES,
    AlreadyDecided,
    ApprovalExpired,
    ApprovalNotFound,
    ApprovalRecord,
    ApprovalStore,
    proposal_bytes,
)
from sutram.store.dynamo import utc_now

logger = Logger(child=True)

CALLBACK_DECIDER = "callback link"
# What SendTaskSuccess answers when no task waits on the token any more.
NOT_WAITING_ERRORS = frozenset({"TaskTimedOut", "TaskDoesNotExist", "InvalidToken"})


@dataclass(frozen=True)
class ApprovalsBackend:
    """What deciding works with (built by the composition root, sutram.wiring)."""

    store: ApprovalStore
    stepfunctions: Any  # a boto3 Step Functions client
    # The keys a callback link may be signed with (sutram.store.signing_keys); none: no link is accepted.
    link_keys: Callable[[], Sequence[str]] = field(default=tuple, repr=False)
    now: Callable[[], datetime] = field(default=utc_now)


def view(record: ApprovalRecord) -> ApprovalView:
    return ApprovalView.model_validate(record.model_dump())


def list_approvals(
    backend: ApprovalsBackend, caller: Caller, status: ApprovalStatus, limit: int, cursor: str | None
) -> ApprovalPage:
    try:
        records, next_cursor = backend.store.list(caller.tenant, status, limit, cursor)
    except cursors.InvalidCursor as exc:
        raise InvalidCursor(str(exc), field="cursor") from None
    return ApprovalPage(approvals=[view(record) for record in records], next_cursor=next_cursor)


def get_approval(backend: ApprovalsBackend, tenant: str, approval_id: str) -> ApprovalView:
    return view(_find(backend, tenant, approval_id))


def decide(backend: ApprovalsBackend, caller: Caller, approval_id: str, request: DecisionRequest) -> ApprovalView:
    record = _find(backend, caller.tenant, approval_id)
    if record.group not in caller.groups:
        raise NotAllowed(f"only members of the group {record.group!r} may decide this approval")
    return _decide(backend, record, request, by=caller.user)


def link_claims(backend: ApprovalsBackend, token: str) -> links.LinkClaims:
    try:
        return links.verify(token, backend.link_keys(), backend.now())
    except links.InvalidLink as exc:
        raise InvalidCallbackLink(str(exc)) from None


def preview_link(backend: ApprovalsBackend, token: str) -> ApprovalView:
    claims = link_claims(backend, token)
    return get_approval(backend, claims.tenant, claims.approval_id)


def decide_by_link(backend: ApprovalsBackend, token: str) -> ApprovalView:
    """Decide as the link says. Recorded as decided by "callback link (<group the link was sent to>)"."""
    claims = link_claims(backend, token)
    record = _find(backend, claims.tenant, claims.approval_id)
    by = f"{CALLBACK_DECIDER} ({claims.approver})"
    return _decide(backend, record, DecisionRequest(decision=claims.outcome), by=by)


def _find(backend: ApprovalsBackend, tenant: str, approval_id: str) -> ApprovalRecord:
    record = backend.store.get(tenant, approval_id)
    if record is None:
        raise ApprovalNotFoundError("no such approval")
    return record


def _decide(backend: ApprovalsBackend, record: ApprovalRecord, request: DecisionRequest, by: str) -> ApprovalView:
    if request.proposal is not None:
        if (size := proposal_bytes(request.proposal)) > MAX_PROPOSAL_BYTES:
            message = f"the proposal is {size} bytes of JSON; at most {MAX_PROPOSAL_BYTES}"
            raise InvalidProposal(message, field="proposal")
        check_proposal(record.proposal_schema, request.proposal)
    try:
        decided, token = backend.store.decide(
            record.tenant,
            record.approval_id,
            request.decision,
            by,
            request.comment or "",
            request.proposal,
            backend.now(),
        )
    except AlreadyDecided as exc:
        raise AlreadyDecidedError(view(exc.record)) from None
    except ApprovalExpired:
        raise ApprovalExpiredError("the approval's deadline has passed") from None
    except ApprovalNotFound:
        raise ApprovalNotFoundError("no such approval") from None
    logger.info(
        "approval decided",
        extra={"approval_id": decided.approval_id, "run_id": decided.run_id, "outcome": request.decision, "by": by},
    )
    try:
        complete(decided, token, backend.stepfunctions)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in NOT_WAITING_ERRORS:
            raise
        return _not_waiting(backend.store, decided, token)
    return view(decided)


def _not_waiting(store: ApprovalStore, decided: ApprovalRecord, token: str) -> ApprovalView:
    """SendTaskSuccess found no task waiting on `token`. If a retried request of the approval has
    replaced it, that delivery found the decision and resumed the run itself. Otherwise the run
    stopped waiting (the deadline passed, or the execution was stopped) before the decision reached
    it: the approval is marked expired, and the caller is told that nothing was done."""
    if store.token_for(decided.tenant, decided.approval_id) != token:
        return view(decided)
    store.lapse(decided)
    raise ApprovalExpiredError("the run stopped waiting before this decision reached it; nothing was done")


def check_proposal(schema: dict[str, Any] | None, proposal: Any) -> None:
    if not schema:
        return
    try:
        schemas.check(schema, proposal, "proposal")
    except schemas.SchemaMismatch as exc:
        raise InvalidProposal(exc.message, field=exc.field) from None


def decision_output(record: ApprovalRecord) -> dict[str, Any]:
    """The output of the waiting task for a decided record (contracts.Decision). `proposal` is the
    proposal to act on, as the approver edited it, and null unless approved, so a rejected action
    cannot be run by mistake."""
    decision = record.decision
    if decision is None:
        raise ValueError(f"approval {record.approval_id} is {record.status}, not decided")
    approved = decision.outcome == "approve"
    proposal = decision.edited_proposal if decision.edited_proposal is not None else record.proposal
    return Decision(
        outcome=decision.outcome, proposal=proposal if approved else None, by=decision.by, comment=decision.comment
    ).model_dump()


def complete(record: ApprovalRecord, token: str, stepfunctions: Any) -> None:
    """Resume the waiting run with a decided record's outcome (SendTaskSuccess)."""
    stepfunctions.send_task_success(taskToken=token, output=json.dumps(decision_output(record)))
