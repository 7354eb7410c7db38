"""The HTTP API's routes. Each route reads the caller and the request, calls one function of
sutram.runs or sutram.api.decisions and returns its model; errors of every kind leave as
{"error": {code, message, field}}.
"""

from __future__ import annotations

import json
from functools import cache
from http import HTTPStatus
from typing import Annotated, Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.depends import Depends
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.models import APIKey, APIKeyIn
from aws_lambda_powertools.event_handler.openapi.params import Body, Header, Query
from aws_lambda_powertools.event_handler.request import Request

from sutram import runs
from sutram.api import decisions
from sutram.api.auth import Caller, Unauthenticated, caller_from_event
from sutram.api.models import (
    AlreadyDecidedBody,
    ApprovalPage,
    ApprovalStatus,
    ApprovalView,
    DecisionRequest,
    ErrorBody,
    ErrorDetail,
    RunDetail,
    RunPage,
    RunStatus,
    RunSummary,
    StartRunRequest,
    StepList,
)
from sutram.definition import WORKFLOW_NAME

logger = Logger()

app = APIGatewayRestResolver(enable_validation=True)
app.configure_openapi(
    title="Sutram API",
    version="1",
    description="Start durable AI workflow runs and follow their steps, tokens and outcome.",
    security_schemes={
        "cognito": APIKey(
            name="Authorization",
            in_=APIKeyIn.header,
            description="A Cognito user pool ID token, as is (API Gateway's Cognito authorizer).",
        )
    },
    security=[{"cognito": []}],
)

STATUS_OF_ERROR: dict[type[runs.RunsError], HTTPStatus] = {
    runs.WorkflowNotFound: HTTPStatus.NOT_FOUND,
    runs.RunNotFound: HTTPStatus.NOT_FOUND,
    runs.VersionNotFound: HTTPStatus.NOT_FOUND,
    runs.InvalidRunInput: HTTPStatus.BAD_REQUEST,
    runs.InvalidCursor: HTTPStatus.BAD_REQUEST,
    runs.IdempotencyKeyReused: HTTPStatus.CONFLICT,
    runs.RunIdTaken: HTTPStatus.CONFLICT,
    runs.StartFailed: HTTPStatus.SERVICE_UNAVAILABLE,
    decisions.ApprovalNotFoundError: HTTPStatus.NOT_FOUND,
    decisions.NotAllowed: HTTPStatus.FORBIDDEN,
    decisions.InvalidProposal: HTTPStatus.BAD_REQUEST,
    decisions.ApprovalExpiredError: HTTPStatus.CONFLICT,
    decisions.InvalidCallbackLink: HTTPStatus.FORBIDDEN,
}


def _documented(**responses: tuple[str, type[Any]]) -> dict[int, Any]:
    """OpenAPI responses: {"http_201": ("Created", Model)} -> {201: {...}}."""
    return {
        int(name.removeprefix("http_")): {
            "description": description,
            "content": {content_types.APPLICATION_JSON: {"model": model}},
        }
        for name, (description, model) in responses.items()
    }


_NOT_FOUND = ("Unknown, or another tenant's", ErrorBody)
_INVALID = ("Invalid request; `error.field` names the problem", ErrorBody)
_UNAUTHENTICATED = ("The token has no custom:tenant claim", ErrorBody)


def current_caller(request: Request) -> Caller:
    caller = caller_from_event(request.resolved_event.raw_event)
    logger.append_keys(tenant=caller.tenant, user=caller.user)
    return caller


CurrentCaller = Annotated[Caller, Depends(current_caller)]


@app.post(
    "/workflows/<name>/runs",
    summary="Start a run",
    responses=_documented(
        http_201=("Started", RunSummary),
        http_200=("Already started by an earlier request with this Idempotency-Key", RunSummary),
        http_400=_INVALID,
        http_401=_UNAUTHENTICATED,
        http_404=("No such workflow, or no such version of it", ErrorBody),
        http_409=("Idempotency-Key already used with another input", ErrorBody),
        http_503=("Not started; retry with the same Idempotency-Key", ErrorBody),
    ),
)
def start_run(
    name: str,
    request: Annotated[StartRunRequest, Body()],
    caller: CurrentCaller,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", min_length=1, max_length=255)] = None,
) -> Response[RunSummary]:
    started = runs.start_run(runs.default_backend(), caller.tenant, name, request, idempotency_key)
    status = HTTPStatus.CREATED if started.created else HTTPStatus.OK
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=started.run)


@app.get(
    "/runs",
    summary="List runs, newest first",
    responses=_documented(http_400=_INVALID, http_401=_UNAUTHENTICATED),
)
def list_runs(
    caller: CurrentCaller,
    workflow: Annotated[str | None, Query(pattern=WORKFLOW_NAME)] = None,
    status: Annotated[RunStatus | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=2048)] = None,
) -> RunPage:
    return runs.list_runs(
        runs.default_backend(), caller.tenant, workflow=workflow, status=status, limit=limit, cursor=cursor
    )


@app.get(
    "/runs/<run_id>",
    summary="A run: status, input, output, error and usage totals",
    responses=_documented(http_401=_UNAUTHENTICATED, http_404=_NOT_FOUND),
)
def get_run(run_id: str, caller: CurrentCaller) -> RunDetail:
    return runs.get_run(runs.default_backend(), caller.tenant, run_id)


@app.get(
    "/runs/<run_id>/steps",
    summary="A run's steps in the order they started",
    responses=_documented(http_401=_UNAUTHENTICATED, http_404=_NOT_FOUND),
)
def list_steps(run_id: str, caller: CurrentCaller) -> StepList:
    return runs.list_steps(runs.default_backend(), caller.tenant, run_id)


@app.get(
    "/approvals",
    summary="List the tenant's approvals with one status, newest first",
    responses=_documented(http_400=_INVALID, http_401=_UNAUTHENTICATED),
)
def list_approvals(
    caller: CurrentCaller,
    status: Annotated[ApprovalStatus, Query()] = "pending",
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=2048)] = None,
) -> ApprovalPage:
    return decisions.list_approvals(caller, status, limit, cursor)


@app.get(
    "/approvals/<approval_id>",
    summary="An approval: its proposal, group, deadline, status and decision",
    responses=_documented(http_401=_UNAUTHENTICATED, http_404=_NOT_FOUND),
)
def get_approval(approval_id: str, caller: CurrentCaller) -> ApprovalView:
    return decisions.get_approval(caller.tenant, approval_id)


@app.post(
    "/approvals/<approval_id>/decision",
    summary="Approve or reject, optionally with an edited proposal; resumes the waiting run",
    responses=_documented(
        http_200=("Decided", ApprovalView),
        http_400=("Invalid body, or the edited proposal fails proposal_schema (`error.field`)", ErrorBody),
        http_401=_UNAUTHENTICATED,
        http_403=("The caller is not in the approval's group", ErrorBody),
        http_404=_NOT_FOUND,
        http_409=("Already decided (the body holds the first decision) or past its deadline", AlreadyDecidedBody),
    ),
)
def decide(approval_id: str, request: Annotated[DecisionRequest, Body()], caller: CurrentCaller) -> ApprovalView:
    return decisions.decide(caller, approval_id, request)


CALLBACKS_PATH = "/callbacks/"
_CALLBACK_RESPONSES = _documented(
    http_403=("The link is malformed, forged, altered or expired", ErrorBody),
    http_404=("The approval no longer exists", ErrorBody),
)


@app.get(
    "/callbacks/approvals/<token>",
    summary="What a signed callback link would decide (changes nothing; no session needed)",
    responses=_CALLBACK_RESPONSES,
)
def preview_callback(token: str) -> ApprovalView:
    return decisions.preview_link(token)


@app.post(
    "/callbacks/approvals/<token>",
    summary="Decide as a signed callback link says (no session needed); a link works once",
    responses=_CALLBACK_RESPONSES | _documented(http_409=("Already decided, or past its deadline", AlreadyDecidedBody)),
)
def use_callback(token: str) -> ApprovalView:
    return decisions.decide_by_link(token)


@app.get("/openapi.json", include_in_schema=False)
def openapi_document() -> Response[str]:
    return Response(status_code=HTTPStatus.OK, content_type=content_types.APPLICATION_JSON, body=openapi_json())


@cache
def openapi_json() -> str:
    """The generated document, less the 422 responses Powertools adds: this API answers invalid
    requests with 400 and an ErrorBody (see _invalid_request). Callback links need no session."""
    document = json.loads(app.get_openapi_json_schema())
    for path, operations in document["paths"].items():
        for operation in operations.values():
            operation.get("responses", {}).pop("422", None)
            if path.startswith(CALLBACKS_PATH):
                operation["security"] = []
    for unused in ("HTTPValidationError", "ValidationError"):
        document.get("components", {}).get("schemas", {}).pop(unused, None)
    return json.dumps(document, separators=(",", ":"))


# --- errors ---------------------------------------------------------------------------------------


def error_response(status: HTTPStatus, code: str, message: str, field: str | None = None) -> Response:
    body = ErrorBody(error=ErrorDetail(code=code, message=message, field=field))
    return Response(
        status_code=status, content_type=content_types.APPLICATION_JSON, body=body.model_dump(exclude_none=True)
    )


@app.exception_handler(runs.RunsError)
def _runs_error(exc: runs.RunsError) -> Response:
    status = STATUS_OF_ERROR.get(type(exc), HTTPStatus.INTERNAL_SERVER_ERROR)
    return error_response(status, exc.code, exc.message, exc.field)


@app.exception_handler(decisions.AlreadyDecidedError)
def _already_decided(exc: decisions.AlreadyDecidedError) -> Response:
    body = AlreadyDecidedBody(error=ErrorDetail(code=exc.code, message=exc.message), approval=exc.approval)
    return Response(
        status_code=HTTPStatus.CONFLICT,
        content_type=content_types.APPLICATION_JSON,
        body=body.model_dump(mode="json", exclude={"error": {"field"}}),
    )


@app.exception_handler(Unauthenticated)
def _unauthenticated(exc: Unauthenticated) -> Response:
    return error_response(HTTPStatus.UNAUTHORIZED, "unauthorized", str(exc))


@app.exception_handler(RequestValidationError)
def _invalid_request(exc: RequestValidationError) -> Response:
    first = exc.errors()[0]
    location = [str(part) for part in first.get("loc", ())]
    if location[:1] == ["header"]:  # validation sees header names lower-cased; name them as clients send them
        location[1:] = ["-".join(word.capitalize() for word in name.split("-")) for name in location[1:]]
    field = (".".join(location[1:]) or location[0]) if location else None  # drop "body"/"query"/"header"
    message = first.get("msg") or "invalid request"
    if first.get("type") == "json_invalid":
        field, message = "body", "the body is not valid JSON"
    return error_response(HTTPStatus.BAD_REQUEST, "invalid_request", message, field)


@app.not_found
def _no_route(exc: NotFoundError) -> Response:
    return error_response(HTTPStatus.NOT_FOUND, "not_found", "no such resource")


@app.exception_handler(Exception)
def _unexpected(exc: Exception) -> Response:
    logger.exception("unhandled error")
    return error_response(HTTPStatus.INTERNAL_SERVER_ERROR, "internal_error", "an internal error occurred")
