"""What every request body must be before a route reads it, checked before anything is stored:

    Content-Type   application/json (a charset parameter, if any, utf-8)     else 415 unsupported_media_type
    size           at most MAX_BODY_BYTES                                    else 413 body_too_large
    encoding       UTF-8                                                     else 400 invalid_request
    JSON           well formed, nested at most MAX_JSON_DEPTH levels,
                   no lone surrogate (\\ud800) in a string or a key           else 400 invalid_request

Each answer names what is wrong and where (`field`: "body", or the path of the offending value).
"""

from __future__ import annotations

import base64
import binascii
import json
from http import HTTPStatus
from typing import Any

from sutram.rest.errors import RequestError

MAX_BODY_BYTES = 5 * 1024 * 1024  # bytes: the proxy event that carries a body must fit Lambda's 6 MB payload
MAX_JSON_DEPTH = 32  # nested objects and arrays: DynamoDB's limit on nested attributes


class UnsupportedMediaType(RequestError):
    code, status = "unsupported_media_type", HTTPStatus.UNSUPPORTED_MEDIA_TYPE


class BodyTooLarge(RequestError):
    code, status = "body_too_large", HTTPStatus.REQUEST_ENTITY_TOO_LARGE


class InvalidBody(RequestError):
    code, status = "invalid_request", HTTPStatus.BAD_REQUEST


def check_body(body: str | None, *, base64_encoded: bool, content_type: str | None) -> None:
    """Raise the RequestError a body that cannot be read as JSON deserves; a missing body passes."""
    if body is None or body == "":
        return
    media_type, _, parameters = (content_type or "").partition(";")
    charset = parameters.strip().lower().removeprefix("charset=").strip('"') if "charset=" in parameters else "utf-8"
    if media_type.strip().lower() != "application/json" or charset != "utf-8":
        raise UnsupportedMediaType(
            f"send the body as application/json (UTF-8), not {content_type or 'without a Content-Type'}",
            "Content-Type",
        )
    raw = _bytes(body, base64_encoded)
    if len(raw) > MAX_BODY_BYTES:
        raise BodyTooLarge(f"the body is {len(raw)} bytes; at most {MAX_BODY_BYTES} are accepted", "body")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidBody(f"the body is not valid UTF-8 (byte {exc.start})", "body") from None
    try:
        value = json.loads(text)
    except RecursionError:
        raise InvalidBody(f"the body is nested deeper than {MAX_JSON_DEPTH} levels", "body") from None
    except ValueError:
        raise InvalidBody("the body is not valid JSON", "body") from None
    check_json(value)


def check_json(value: Any, root: str = "body") -> None:
    """Raise InvalidBody if `value` nests deeper than MAX_JSON_DEPTH or holds a lone surrogate."""
    pending: list[tuple[Any, list[str]]] = [(value, [])]
    while pending:
        current, path = pending.pop()
        if isinstance(current, str):
            _encodable(current, path, root)
            continue
        if not isinstance(current, dict | list):
            continue
        if len(path) >= MAX_JSON_DEPTH:
            raise InvalidBody(f"the body is nested deeper than {MAX_JSON_DEPTH} levels", _field(path, root))
        items = current.items() if isinstance(current, dict) else enumerate(current)
        for key, child in items:
            if isinstance(key, str):
                _encodable(key, path, root)
            pending.append((child, [*path, str(key)]))


def _encodable(text: str, path: list[str], root: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        character = f"\\u{ord(text[exc.start]):04x}"
        message = f"a string holds a lone surrogate ({character}), which UTF-8 cannot carry"
        raise InvalidBody(message, _field(path, root)) from None


def _field(path: list[str], root: str) -> str:
    return ".".join(path) if path else root


def _bytes(body: str, base64_encoded: bool) -> bytes:
    if not base64_encoded:
        return body.encode("utf-8", "surrogatepass")
    try:
        return base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidBody("the body is not valid base64", "body") from None
