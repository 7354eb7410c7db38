"""The HTTP API as the `sutram` command calls it: JSON requests with the ID token, and the API's errors."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import quote, urlencode

from cli.config import Config
from cli.errors import CliError

REQUEST_TIMEOUT_SECONDS = 30


class ApiError(CliError):
    """The API answered with an error body: {"error": {code, message, field}} or API Gateway's {"message"}."""

    def __init__(self, status: int, body: Any) -> None:
        detail = body.get("error") if isinstance(body, dict) else None
        if isinstance(detail, dict):
            self.code = str(detail.get("code", "error"))
            message = str(detail.get("message", ""))
            if detail.get("field"):
                message += f" (field: {detail['field']})"
        else:
            self.code = "http_error"
            message = str(body.get("message")) if isinstance(body, dict) and body.get("message") else "request failed"
        if status in (401, 403):
            message += "; run `sutram login` or set SUTRAM_TOKEN"
        super().__init__(f"{message} [HTTP {status}, {self.code}]")
        self.status = status
        self.body = body


class ApiClient:
    def __init__(self, config: Config) -> None:
        self._config = config

    def get(self, path: str, query: dict[str, Any] | None = None) -> Any:
        return self.request("GET", path, query=query)[1]

    def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        query: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        query_string = urlencode({name: value for name, value in (query or {}).items() if value is not None})
        url = self._config.api_url + path + (f"?{query_string}" if query_string else "")
        request = urllib.request.Request(
            url,
            method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={
                "Authorization": self._config.token,
                "Accept": "application/json",
                **({"Content-Type": "application/json"} if body is not None else {}),
                **(headers or {}),
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_SECONDS) as response:
                return response.status, _json_or_text(response.read())
        except urllib.error.HTTPError as exc:
            raise ApiError(exc.code, _json_or_text(exc.read())) from None
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            reason = getattr(exc, "reason", exc)
            raise CliError(f"cannot reach {self._config.api_url}: {reason}") from None


def _json_or_text(payload: bytes) -> Any:
    try:
        return json.loads(payload)
    except ValueError:
        return {"message": payload.decode("utf-8", "replace")[:500]}


def run_path(run_id: str, *rest: str) -> str:
    return "/".join(["/runs", quote(run_id, safe=""), *rest])
