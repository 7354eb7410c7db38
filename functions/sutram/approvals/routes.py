"""The approval routes: list, read and decide approvals, and the signed callback links."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.depends import Depends
from aws_lambda_powertools.event_handler.openapi.params import Body, Query

from sutram.approvals import decisions
from sutram.approvals.decisions import ApprovalsBackend
from sutram.approvals.links import CALLBACK_PATH
from sutram.approvals.models import AlreadyDecidedBody, ApprovalPage, ApprovalStatus, ApprovalView, DecisionRequest
from sutram.rest.auth import CurrentCaller
from sutram.rest.errors import INVALID, NOT_FOUND, UNAUTHENTICATED, ErrorBody, documented

router = Router()

# Callback links carry their own authority (a signature); these routes need no session.
PUBLIC_PATHS = (CALLBACK_PATH,)


def backend() -> ApprovalsBackend:
    """What the routes work with: the API handler overrides this with the composition root's."""
    raise NotImplementedError("the approval routes are wired by sutram.handlers.api (app.dependency_overrides)")


Backend = Annotated[ApprovalsBackend, Depends(backend)]


@router.get(
    "/approvals",
    summary="List the tenant's approvals with one status, newest first",
    responses=documented(http_200=("A page of approvals", ApprovalPage), http_400=INVALID, http_401=UNAUTHENTICATED),
)
def list_approvals(
    caller: CurrentCaller,
    approvals: Backend,
    status: Annotated[ApprovalStatus, Query()] = "pending",
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=2048)] = None,
) -> ApprovalPage:
    return decisions.list_approvals(approvals, caller, status, limit, cursor)


@router.get(
    "/approvals/<approval_id>",
    summary="An approval: its proposal, group, deadline, status and decision",
    responses=documented(http_200=("The approval", ApprovalView), http_401=UNAUTHENTICATED, http_404=NOT_FOUND),
)
def get_approval(approval_id: str, caller: CurrentCaller, approvals: Backend) -> ApprovalView:
    return decisions.get_approval(approvals, caller.tenant, approval_id)


@router.post(
    "/approvals/<approval_id>/decision",
    summary="Approve or reject, optionally with an edited proposal; resumes the waiting run",
    responses=documented(
        http_200=("Decided", ApprovalView),
        http_400=("Invalid body, or the edited proposal fails proposal_schema (`error.field`)", ErrorBody),
        http_401=UNAUTHENTICATED,
        http_403=("The caller is not in the approval's group", ErrorBody),
        http_404=NOT_FOUND,
        http_409=(
            "Already decided (already_decided: the body holds the first decision) or past its deadline "
            "(approval_expired)",
            AlreadyDecidedBody | ErrorBody,
        ),
    ),
)
def decide(
    approval_id: str, request: Annotated[DecisionRequest, Body()], caller: CurrentCaller, approvals: Backend
) -> ApprovalView:
    return decisions.decide(approvals, caller, approval_id, request)


_CALLBACK_RESPONSES = documented(
    http_200=("The approval, as the link would decide it or has decided it", ApprovalView),
    http_403=("The link is malformed, forged, altered or expired", ErrorBody),
    http_404=("The approval no longer exists", ErrorBody),
)


@router.get(
    "/callbacks/approvals/<token>",
    summary="What a signed callback link would decide (changes nothing; no session needed)",
    responses=_CALLBACK_RESPONSES,
)
def preview_callback(token: str, approvals: Backend) -> ApprovalView:
    return decisions.preview_link(approvals, token)


@router.post(
    "/callbacks/approvals/<token>",
    summary="Decide as a signed callback link says (no session needed); a link works once",
    responses=_CALLBACK_RESPONSES
    | documented(
        http_409=(
            "Already decided (already_decided), or past its deadline (approval_expired)",
            AlreadyDecidedBody | ErrorBody,
        )
    ),
)
def use_callback(token: str, approvals: Backend) -> ApprovalView:
    return decisions.decide_by_link(approvals, token)
