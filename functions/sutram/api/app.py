"""The HTTP API's routes. Each route reads the caller and the request, calls one function of
sutram.runs and returns its model; errors of every kind leave as {"error": {code, message, field}}.
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
from sutram.api.auth import Caller, Unauthenticated, caller_from_event
from sutram.api.models import (
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


@app.get("/openapi.json", include_in_schema=False)
def openapi_document() -> Response[str]:
    return Response(status_code=HTTPStatus.OK, content_type=content_types.APPLICATION_JSON, body=openapi_json())


@cache
def openapi_json() -> str:
    """The generated document, less the 422 responses Powertools adds: this API answers invalid
    requests with 400 and an ErrorBody (see _invalid_request)."""
    document = json.loads(app.get_openapi_json_schema())
    for operations in document["paths"].values():
        for operation in operations.values():
            operation.get("responses", {}).pop("422", None)
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
