"""What the approval routes answer when a decision cannot be taken or an approval cannot be shown."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from sutram.approvals.models import AlreadyDecidedBody, ApprovalView
from sutram.rest.errors import ErrorDetail, RequestError


class ApprovalNotFoundError(RequestError):
    code, status = "approval_not_found", HTTPStatus.NOT_FOUND


class NotAllowed(RequestError):
    code, status = "not_allowed", HTTPStatus.FORBIDDEN


class InvalidProposal(RequestError):
    code, status = "invalid_proposal", HTTPStatus.BAD_REQUEST


class ApprovalExpiredError(RequestError):
    code, status = "approval_expired", HTTPStatus.CONFLICT


class InvalidCallbackLink(RequestError):
    code, status = "invalid_link", HTTPStatus.FORBIDDEN


class AlreadyDecidedError(RequestError):
    """Answered with the approval and its first decision (AlreadyDecidedBody)."""

    code, status = "already_decided", HTTPStatus.CONFLICT

    def __init__(self, approval: ApprovalView) -> None:
        super().__init__("the approval has already been decided")
        self.approval = approval

    def body(self) -> dict[str, Any]:
        body = AlreadyDecidedBody(error=ErrorDetail(code=self.code, message=self.message), approval=self.approval)
        return body.model_dump(mode="json", exclude={"error": {"field"}})
