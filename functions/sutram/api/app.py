"""The HTTP API: one Powertools Router per capability, included here, and every error mapped to HTTP.

Each capability's routes read the caller and the request and call its logic; whatever goes wrong
leaves as {"error": {code, message, field}}: a capability's RequestError with its own status, a
body no route may read (sutram.rest.bodies) as 400, 413 or 415, an invalid request as 400, a
missing identity as 401, an unknown route as 404, anything else as 500.
"""

from __future__ import annotations

import json
import re
from functools import cache
from http import HTTPStatus
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.models import APIKey, APIKeyIn

from sutram.approvals import routes as approvals
from sutram.recovery import routes as recovery
from sutram.rest.auth import Unauthenticated
from sutram.rest.bodies import MAX_BODY_BYTES, InvalidBody, check_body
from sutram.rest.errors import RequestError, error_response
from sutram.runs import routes as runs

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
app.include_router(runs.router)
app.include_router(recovery.router)
app.include_router(approvals.router)

PUBLIC_PATHS = approvals.PUBLIC_PATHS  # routes that need no session
STAGE_PATH = "/v1"  # where API Gateway serves the routes (infra.constants.API_STAGE_NAME)
JSON = content_types.APPLICATION_JSON


def resolve(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The answer to one API Gateway proxy event. A body no route may read (sutram.rest.bodies), or
    a query parameter the route does not take (a typo would otherwise be ignored), is refused
    first, before any route or Powertools' own request validation reads it."""
    headers = {name.lower(): value for name, value in (event.get("headers") or {}).items()}
    try:
        check_body(
            event.get("body"),
            base64_encoded=bool(event.get("isBase64Encoded")),
            content_type=headers.get("content-type"),
        )
        _check_query(str(event.get("path") or ""), str(event.get("httpMethod") or ""), event)
    except RequestError as exc:
        body = json.dumps(exc.body())
        return {
            "statusCode": int(exc.status),
            "headers": {"Content-Type": content_types.APPLICATION_JSON},
            "body": body,
        }
    return app.resolve(event, context)


@app.get("/openapi.json", include_in_schema=False)
def openapi_document() -> Response[str]:
    return Response(status_code=HTTPStatus.OK, content_type=content_types.APPLICATION_JSON, body=openapi_json())


# What any operation may answer besides its own responses, and what one with a body may.
_ERROR = {"$ref": "#/components/schemas/ErrorBody"}
_GATEWAY = {"type": "object", "required": ["message"], "properties": {"message": {"type": "string"}}}
_ANY_OPERATION = {
    "429": ("Throttled by API Gateway: retry later", _GATEWAY),
    "500": ("An internal error (error.code internal_error); retry later", _ERROR),
}
_WITH_BODY = {
    "413": (f"The body is over {MAX_BODY_BYTES} bytes", _ERROR),
    "415": ("The body is not application/json (UTF-8)", _ERROR),
}


@cache
def openapi_json() -> str:
    """The generated document, less the 422 responses Powertools adds (this API answers invalid
    requests with 400 and an ErrorBody, see _invalid_request), plus what any operation may answer
    (throttling, an internal error, a body no route may read). Public paths need no session."""
    document = json.loads(app.get_openapi_json_schema())
    for path, operations in document["paths"].items():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            responses.pop("422", None)
            common = _ANY_OPERATION | (_WITH_BODY if "requestBody" in operation else {})
            for status, (description, schema) in common.items():
                responses.setdefault(status, {"description": description, "content": {JSON: {"schema": schema}}})
            if path.startswith(PUBLIC_PATHS):
                operation["security"] = []
    for unused in ("HTTPValidationError", "ValidationError", "ResponseValidationError"):
        document.get("components", {}).get("schemas", {}).pop(unused, None)
    document["servers"] = [{"url": STAGE_PATH, "description": "The API's stage, below its invoke URL's host"}]
    return json.dumps(document, separators=(",", ":"))


# --- errors ---------------------------------------------------------------------------------------


@app.exception_handler(RequestError)
def _request_error(exc: RequestError) -> Response:
    return exc.response()


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
    """404 for a path no route has; 405, with the methods it allows, for a path one route has."""
    event = app.current_event
    allowed = [method for pattern, method in _routes() if pattern.fullmatch(event.path)]
    if not allowed:
        return error_response(HTTPStatus.NOT_FOUND, "not_found", "no such resource")
    message = f"{event.http_method} is not allowed here; use {', '.join(allowed)}"
    response = error_response(HTTPStatus.METHOD_NOT_ALLOWED, "method_not_allowed", message)
    response.headers["Allow"] = ", ".join(allowed)
    return response


@cache
def _routes() -> list[tuple[re.Pattern[str], str]]:
    """Each documented operation's path as a pattern ({run_id}: one segment), and its method."""
    return [(pattern, method) for pattern, method, _ in _operations()]


@cache
def _operations() -> list[tuple[re.Pattern[str], str, frozenset[str]]]:
    """Each documented operation: its path pattern, its method and the query parameters it takes."""
    document = json.loads(openapi_json())
    return [
        (
            re.compile("/".join("[^/]+" if part.startswith("{") else re.escape(part) for part in path.split("/"))),
            method.upper(),
            frozenset(p["name"] for p in operation.get("parameters", []) if p.get("in") == "query"),
        )
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
    ]


def _check_query(path: str, method: str, event: dict[str, Any]) -> None:
    """400 for a query parameter the operation does not take; routing decides the rest."""
    names = set(event.get("multiValueQueryStringParameters") or event.get("queryStringParameters") or {})
    for pattern, operation_method, taken in _operations():
        if operation_method == method and pattern.fullmatch(path):
            unknown = sorted(names - taken)
            if unknown:
                takes = f"it takes {', '.join(sorted(taken))}" if taken else "it takes none"
                raise InvalidBody(f"unknown query parameter {unknown[0]!r}; {takes}", field=unknown[0])
            return


@app.exception_handler(Exception)
def _unexpected(exc: Exception) -> Response:
    logger.exception("unhandled error")
    return error_response(HTTPStatus.INTERNAL_SERVER_ERROR, "internal_error", "an internal error occurred")
