"""What a route answers when something is wrong, whatever the capability:
{"error": {"code": "...", "message": "...", "field": "..."}} with the error's HTTP status.

A capability raises a `RequestError` subclass naming its code and status; `sutram.api.app` turns
every one into this body. `documented` describes responses for the OpenAPI document.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from aws_lambda_powertools.event_handler import Response, content_types
from pydantic import BaseModel, Field


class ErrorDetail(BaseModel):
    code: str = Field(description="Machine-readable, e.g. run_not_found, invalid_request.")
    message: str
    field: str | None = Field(None, description="The offending field, e.g. input.document.title or limit.")


class ErrorBody(BaseModel):
    error: ErrorDetail


class GatewayMessage(BaseModel):
    """What API Gateway itself answers, before the API's code runs: {"message": "Unauthorized"} from
    the Cognito authorizer, {"message": "Too Many Requests"} when throttled."""

    message: str


class RequestError(Exception):
    """A request that cannot be served as asked: answered with `status` and an ErrorBody."""

    code = "error"
    status = HTTPStatus.INTERNAL_SERVER_ERROR

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def body(self) -> dict[str, Any]:
        return ErrorBody(error=ErrorDetail(code=self.code, message=self.message, field=self.field)).model_dump(
            exclude_none=True
        )

    def response(self) -> Response:
        return Response(status_code=self.status, content_type=content_types.APPLICATION_JSON, body=self.body())


class InvalidCursor(RequestError):
    """A listing cursor that is malformed or was not handed to this tenant."""

    code, status = "invalid_cursor", HTTPStatus.BAD_REQUEST


def error_response(status: HTTPStatus, code: str, message: str, field: str | None = None) -> Response:
    """An error body with this status, for failures that are not a capability's RequestError."""
    body = ErrorBody(error=ErrorDetail(code=code, message=message, field=field))
    return Response(
        status_code=status, content_type=content_types.APPLICATION_JSON, body=body.model_dump(exclude_none=True)
    )


def documented(**responses: tuple[str, Any]) -> dict[int, Any]:
    """OpenAPI responses: {"http_201": ("Created", Model)} -> {201: {...}}."""
    return {
        int(name.removeprefix("http_")): {
            "description": description,
            "content": {content_types.APPLICATION_JSON: {"model": model}},
        }
        for name, (description, model) in responses.items()
    }


NOT_FOUND = ("Unknown, or another tenant's", ErrorBody)
INVALID = ("Invalid request; `error.field` names the problem", ErrorBody)
UNAUTHENTICATED = (
    'No valid ID token (the authorizer\'s {"message": "Unauthorized"}), or one without a custom:tenant claim',
    GatewayMessage | ErrorBody,
)
