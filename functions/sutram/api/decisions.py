"""What the approval routes do: list, read and decide a tenant's approvals, by an API caller or by a
signed callback link. Routes in sutram.api.app stay thin; the rules are here.

Rules: another tenant's approval answers exactly like one that does not exist; only a member of the
approval's group decides it (a callback link stands for the group it was sent to); an edited proposal
must satisfy the approval's `proposal_schema`; an approval is decided once. The Step Functions task
token goes from the store straight to `approval_step.complete` and never into a response.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.validation import validate
from aws_lambda_powertools.utilities.validation.exceptions import SchemaValidationError
from botocore.exceptions import ClientError

from sutram import approval_links, approval_step, aws
from sutram.api.auth import Caller
from sutram.api.models import ApprovalPage, ApprovalStatus, ApprovalView, DecisionRequest
from sutram.approvals import (
    MAX_PROPOSAL_BYTES,
    AlreadyDecided,
    ApprovalExpired,
    ApprovalNotFound,
    ApprovalRecord,
    ApprovalStore,
    InvalidApprovalCursor,
    proposal_bytes,
)
from sutram.runs import InvalidCursor, RunsError
from sutram.settings import get_settings

logger = Logger(child=True)

CALLBACK_DECIDER = "callback link"
# What SendTaskSuccess answers when no task waits on the token any more.
NOT_WAITING_ERRORS = frozenset({"TaskTimedOut", "TaskDoesNotExist", "InvalidToken"})


class ApprovalNotFoundError(RunsError):
    code = "approval_not_found"


class NotAllowed(RunsError):
    code = "not_allowed"


class InvalidProposal(RunsError):
    code = "invalid_proposal"


class AlreadyDecidedError(RunsError):
    code = "already_decided"

    def __init__(self, approval: ApprovalView) -> None:
        super().__init__("the approval has already been decided")
        self.approval = approval


class ApprovalExpiredError(RunsError):
    code = "approval_expired"


class InvalidCallbackLink(RunsError):
    code = "invalid_link"


def _store() -> ApprovalStore:
    return ApprovalStore(aws.table())


def _now() -> datetime:
    return datetime.now(UTC)


def view(record: ApprovalRecord) -> ApprovalView:
    return ApprovalView.model_validate(record.model_dump())


def list_approvals(caller: Caller, status: ApprovalStatus, limit: int, cursor: str | None) -> ApprovalPage:
    try:
        records, next_cursor = _store().list(caller.tenant, status, limit, cursor)
    except InvalidApprovalCursor as exc:
        raise InvalidCursor(str(exc), field="cursor") from None
    return ApprovalPage(approvals=[view(record) for record in records], next_cursor=next_cursor)


def get_approval(tenant: str, approval_id: str) -> ApprovalView:
    return view(_find(tenant, approval_id))


def decide(caller: Caller, approval_id: str, request: DecisionRequest) -> ApprovalView:
    record = _find(caller.tenant, approval_id)
    if record.group not in caller.groups:
        raise NotAllowed(f"only members of the group {record.group!r} may decide this approval")
    return _decide(record, request, by=caller.user)


def link_claims(token: str) -> approval_links.LinkClaims:
    try:
        return approval_links.verify(token, get_settings().callback_secret.get_secret_value(), _now())
    except approval_links.InvalidLink as exc:
        raise InvalidCallbackLink(str(exc)) from None


def preview_link(token: str) -> ApprovalView:
    claims = link_claims(token)
    return get_approval(claims.tenant, claims.approval_id)


def decide_by_link(token: str) -> ApprovalView:
    """Decide as the link says. Recorded as decided by "callback link (<group the link was sent to>)"."""
    claims = link_claims(token)
    record = _find(claims.tenant, claims.approval_id)
    return _decide(record, DecisionRequest(decision=claims.outcome), by=f"{CALLBACK_DECIDER} ({claims.approver})")


def _find(tenant: str, approval_id: str) -> ApprovalRecord:
    record = _store().get(tenant, approval_id)
    if record is None:
        raise ApprovalNotFoundError("no such approval")
    return record


def _decide(record: ApprovalRecord, request: DecisionRequest, by: str) -> ApprovalView:
    if request.proposal is not None:
        if (size := proposal_bytes(request.proposal)) > MAX_PROPOSAL_BYTES:
            message = f"the proposal is {size} bytes of JSON; at most {MAX_PROPOSAL_BYTES}"
            raise InvalidProposal(message, field="proposal")
        check_proposal(record.proposal_schema, request.proposal)
    try:
        decided, token = _store().decide(
            record.tenant, record.approval_id, request.decision, by, request.comment or "", request.proposal, _now()
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
        approval_step.complete(decided, token, aws.client("stepfunctions"))
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in NOT_WAITING_ERRORS:
            raise
        return _not_waiting(decided, token)
    return view(decided)


def _not_waiting(decided: ApprovalRecord, token: str) -> ApprovalView:
    """SendTaskSuccess found no task waiting on `token`. If a retried request of the approval has
    replaced it, that delivery found the decision and resumed the run itself. Otherwise the run
    stopped waiting (the deadline passed, or the execution was stopped) before the decision reached
    it: the approval is marked expired, and the caller is told that nothing was done."""
    store = _store()
    if store.token_for(decided.tenant, decided.approval_id) != token:
        return view(decided)
    store.lapse(decided)
    raise ApprovalExpiredError("the run stopped waiting before this decision reached it; nothing was done")


def check_proposal(schema: dict[str, Any] | None, proposal: Any) -> None:
    if not schema:
        return
    try:
        validate(event=proposal, schema=schema)
    except SchemaValidationError as exc:
        path = [str(part) for part in (exc.path or [])[1:]]  # fastjsonschema names the root "data"
        missing = None
        if exc.rule == "required" and isinstance(exc.value, dict) and isinstance(exc.rule_definition, list):
            missing = next((name for name in exc.rule_definition if name not in exc.value), None)
        field = ".".join(["proposal", *path, *([missing] if missing else [])])
        message = f"{field} is required" if missing else re.sub(r"^data\b", "proposal", exc.validation_message or "")
        raise InvalidProposal(message or "the proposal does not match its schema", field=field) from None
