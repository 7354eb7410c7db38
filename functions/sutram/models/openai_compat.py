"""The OpenAI-compatible chat completions protocol, spoken with the standard library.

OpenAI itself and most other hosted or self-hosted endpoints (vLLM, Ollama, LiteLLM, Groq, ...)
accept it; `SUTRAM_OPENAI_BASE_URL` picks the endpoint, and the API key is read at run time from the
Secrets Manager secret `SUTRAM_OPENAI_API_KEY_SECRET` names (never from the environment).
Tool use is the protocol's `tools` (function schemas), the assistant's `tool_calls` (arguments as
a JSON string) and one `role: tool` message per result.
"""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

from sutram.errors import StepFailed, TransientStepError
from sutram.models import Message, ModelRequest, ModelResponse, ToolCall, Usage
from sutram.settings import Settings, get_settings

REQUEST_TIMEOUT_SECONDS = 60  # seconds, per HTTP request; the step's own timeout bounds the retries
_ERROR_EXCERPT_CHARS = 500  # of a provider's error body quoted in the step's error


class OpenAICompatibleModel:
    name = "openai"

    def __init__(self, settings: Settings | None = None, api_key: Callable[[], str] = lambda: "") -> None:
        self._settings = settings
        self._api_key = api_key

    def complete(self, request: ModelRequest) -> ModelResponse:
        settings = self._settings or get_settings()
        who = f"openai model {request.model_id!r}"
        body = _post_json(
            f"{settings.openai_base_url.rstrip('/')}/chat/completions",
            _request_body(request),
            self._api_key(),
            who,
        )
        choices = body.get("choices")
        if not isinstance(choices, list) or not choices:
            raise StepFailed(f"{who}: the response has no choices")
        choice = choices[0]
        usage = body.get("usage") or {}
        message = choice.get("message") or {}
        return ModelResponse(
            text=message.get("content") or "",
            model_id=request.model_id,
            usage=Usage(
                input_tokens=usage.get("prompt_tokens", 0),
                output_tokens=usage.get("completion_tokens", 0),
                cached_tokens=(usage.get("prompt_tokens_details") or {}).get("cached_tokens", 0),
            ),
            stop_reason=choice.get("finish_reason"),
            tool_calls=[_tool_call(call, who) for call in message.get("tool_calls") or []],
        )


def _tool_call(call: dict[str, Any], who: str) -> ToolCall:
    function = call.get("function") or {}
    try:
        arguments = json.loads(function.get("arguments") or "{}")
    except ValueError:
        raise StepFailed(f"{who}: tool call {call.get('id')!r} has arguments that are not JSON") from None
    if not isinstance(arguments, dict):
        raise StepFailed(f"{who}: tool call {call.get('id')!r} has arguments that are not a JSON object")
    return ToolCall(id=call.get("id", ""), name=function.get("name", ""), arguments=arguments)


def _messages(message: Message) -> list[dict[str, Any]]:
    if message.role == "tool":
        return [{"role": "tool", "tool_call_id": r.call_id, "content": r.content} for r in message.tool_results]
    assistant: dict[str, Any] = {"role": "assistant", "content": message.text or None}
    if message.tool_calls:
        assistant["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": json.dumps(c.arguments)}}
            for c in message.tool_calls
        ]
    return [assistant]


def _request_body(request: ModelRequest) -> dict[str, Any]:
    messages = [{"role": "system", "content": request.system}] if request.system else []
    messages.append({"role": "user", "content": request.prompt})
    for message in request.messages:
        messages.extend(_messages(message))
    body: dict[str, Any] = {
        "model": request.model_id,
        "messages": messages,
        "max_tokens": request.max_tokens,
        "temperature": request.temperature,
    }
    if request.json_output:
        body["response_format"] = {"type": "json_object"}
    if request.tools:
        body["tools"] = [
            {"type": "function", "function": {"name": t.name, "description": t.description, "parameters": t.parameters}}
            for t in request.tools
        ]
    return body


def _post_json(url: str, payload: dict[str, Any], api_key: str, who: str) -> dict[str, Any]:
    headers = {"Content-Type": "application/json", "Accept": "application/json", "User-Agent": "sutram"}
    if api_key:  # local servers often need none
        headers["Authorization"] = f"Bearer {api_key}"
    http_request = urllib.request.Request(url, data=json.dumps(payload).encode(), headers=headers, method="POST")
    try:
        with urllib.request.urlopen(http_request, timeout=REQUEST_TIMEOUT_SECONDS) as response:
            raw = response.read()
    except urllib.error.HTTPError as exc:
        message = f"{who}: HTTP {exc.code}: {_error_message(exc)}"
        if exc.code == 429 or exc.code >= 500:
            raise TransientStepError(message) from None
        raise StepFailed(message) from None
    except (OSError, http.client.HTTPException) as exc:  # URLError, refused, reset, timeout
        raise TransientStepError(f"{who}: {url}: {getattr(exc, 'reason', exc)}") from None
    try:
        body = json.loads(raw)
    except ValueError:
        raise StepFailed(f"{who}: the response is not JSON: {raw[:_ERROR_EXCERPT_CHARS]!r}") from None
    if not isinstance(body, dict):
        raise StepFailed(f"{who}: the response is not a JSON object")
    return body


def _error_message(exc: urllib.error.HTTPError) -> str:
    """The provider's own explanation: `error.message` in OpenAI's format, else the body's start."""
    try:
        raw = exc.read()
    except (OSError, http.client.HTTPException):
        return exc.reason or "no body"
    try:
        error = json.loads(raw).get("error")
        message = error.get("message") if isinstance(error, dict) else error
        if isinstance(message, str) and message:
            return message
    except (ValueError, AttributeError):
        pass
    return raw[:_ERROR_EXCERPT_CHARS].decode("utf-8", errors="replace").strip() or str(exc.reason)
