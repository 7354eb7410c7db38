"""The HTTP API: one Powertools Router per capability, included here, and every error mapped to HTTP.

Each capability's routes read the caller and the request and call its logic; whatever goes wrong
leaves as {"error": {code, message, field}}: a capability's RequestError with its own status, a
body no route may read (sutram.rest.bodies) as 400, 413 or 415, an invalid request as 400, a
missing identity as 401, an unknown route as 404, anything else as 500.
"""

from __future__ import annotations

import json
from functools import cache
from http import HTTPStatus
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.models import APIKey, APIKeyIn

from sutram.approvals import routes as approvals
from sutram.rest.auth import Unauthenticated
from sutram.rest.bodies import check_body
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
app.include_router(approvals.router)

PUBLIC_PATHS = approvals.PUBLIC_PATHS  # routes that need no session


def resolve(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The answer to one API Gateway proxy event. A body no route may read (sutram.rest.bodies) is
    refused first, before any route or Powertools' own request validation reads it."""
    headers = {name.lower(): value for name, value in (event.get("headers") or {}).items()}
    try:
        check_body(
            event.get("body"),
            base64_encoded=bool(event.get("isBase64Encoded")),
            content_type=headers.get("content-type"),
        )
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


@cache
def openapi_json() -> str:
    """The generated document, less the 422 responses Powertools adds: this API answers invalid
    requests with 400 and an ErrorBody (see _invalid_request). Public paths need no session."""
    document = json.loads(app.get_openapi_json_schema())
    for path, operations in document["paths"].items():
        for operation in operations.values():
            operation.get("responses", {}).pop("422", None)
            if path.startswith(PUBLIC_PATHS):
                operation["security"] = []
    for unused in ("HTTPValidationError", "ValidationError"):
        document.get("components", {}).get("schemas", {}).pop(unused, None)
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
    return error_response(HTTPStatus.NOT_FOUND, "not_found", "no such resource")


@app.exception_handler(Exception)
def _unexpected(exc: Exception) -> Response:
    logger.exception("unhandled error")
    return error_response(HTTPStatus.INTERNAL_SERVER_ERROR, "internal_error", "an internal error occurred")
