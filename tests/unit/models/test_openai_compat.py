"""OpenAICompatibleModel against a real HTTP server on 127.0.0.1 that records what it receives."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any

import boto3
import pytest

from sutram.errors import StepFailed, TransientStepError
from sutram.models import Message, ModelRequest, ToolCall, ToolResult, ToolSpec, Usage, get_provider, openai_compat
from sutram.models.openai_compat import OpenAICompatibleModel
from sutram.settings import Settings
from tests.unit.support.http import LocalServer, quiet, reply, running

MODEL_ID = "gpt-4o-mini"


class FakeOpenAI(LocalServer):
    """Answers every request with `reply` and keeps (path, headers, JSON body) of each."""

    def __init__(self) -> None:
        super().__init__(_Handler)
        self.reply: tuple[int, Any] = (200, {})
        self.requests: list[tuple[str, dict[str, str], Any]] = []
        self.slow = False

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_port}/v1"


class _Handler(BaseHTTPRequestHandler):
    server: FakeOpenAI

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.requests.append((self.path, dict(self.headers), body))
        if self.server.slow:
            self.server.release.wait(5)
        status, answer = self.server.reply
        payload = answer if isinstance(answer, bytes) else json.dumps(answer).encode()
        reply(self, status, {"Content-Type": "application/json"}, payload)

    log_message = quiet


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    with running(FakeOpenAI()) as fake:
        yield fake


def provider(base_url: str, api_key: str = "sk-test") -> OpenAICompatibleModel:
    return OpenAICompatibleModel(Settings(table_name="t", bucket_name="b", openai_base_url=base_url), lambda: api_key)


def completion(text: str, usage: dict[str, Any], finish_reason: str = "stop") -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish_reason}],
        "usage": usage,
    }


def test_posts_chat_completion_and_returns_text_usage_and_stop_reason(server: FakeOpenAI) -> None:
    # Given a provider that answers with usage including cached prompt tokens
    server.reply = (
        200,
        completion(
            "A two-sentence summary.",
            {"prompt_tokens": 1500, "completion_tokens": 42, "total_tokens": 1542,
             "prompt_tokens_details": {"cached_tokens": 1024}},
        ),
    )  # fmt: skip
    request = ModelRequest(
        model_id=MODEL_ID, system="You are precise.", prompt="Summarise.", max_tokens=300, temperature=0.5
    )

    # When the model is called
    response = provider(server.base_url + "/").complete(request)

    # Then the request is a standard chat completion with the bearer key
    [(path, headers, body)] = server.requests
    assert path == "/v1/chat/completions"
    assert headers["Authorization"] == "Bearer sk-test"
    assert headers["Content-Type"] == "application/json"
    assert body == {
        "model": MODEL_ID,
        "messages": [{"role": "system", "content": "You are precise."}, {"role": "user", "content": "Summarise."}],
        "max_tokens": 300,
        "temperature": 0.5,
    }
    # And the response carries the provider's own numbers
    assert response.text == "A two-sentence summary."
    assert response.model_id == MODEL_ID
    assert response.usage == Usage(input_tokens=1500, output_tokens=42, cached_tokens=1024)
    assert response.stop_reason == "stop"


def test_json_output_requests_json_object_and_cached_tokens_default_to_zero(server: FakeOpenAI) -> None:
    server.reply = (200, completion('{"entities": []}', {"prompt_tokens": 20, "completion_tokens": 5}))

    response = provider(server.base_url).complete(
        ModelRequest(model_id=MODEL_ID, prompt="Return JSON.", json_output=True)
    )

    [(_, _, body)] = server.requests
    assert body["messages"] == [{"role": "user", "content": "Return JSON."}]
    assert body["response_format"] == {"type": "json_object"}
    assert response.usage == Usage(input_tokens=20, output_tokens=5, cached_tokens=0)


def test_sends_no_authorization_header_without_an_api_key(server: FakeOpenAI) -> None:
    server.reply = (200, completion("ok", {"prompt_tokens": 1, "completion_tokens": 1}))

    provider(server.base_url, api_key="").complete(ModelRequest(model_id=MODEL_ID, prompt="Hi"))

    [(_, headers, _)] = server.requests
    assert "Authorization" not in headers


@pytest.mark.parametrize("status", [429, 500, 503])
def test_rate_limits_and_server_errors_are_transient(server: FakeOpenAI, status: int) -> None:
    server.reply = (status, {"error": {"message": "Rate limit reached", "type": "requests"}})

    with pytest.raises(TransientStepError, match=f"openai model '{MODEL_ID}': HTTP {status}: Rate limit reached"):
        provider(server.base_url).complete(ModelRequest(model_id=MODEL_ID, prompt="Hi"))


def test_client_errors_fail_the_step_with_status_and_provider_message(server: FakeOpenAI) -> None:
    server.reply = (404, {"error": {"message": "The model `gpt-9` does not exist", "code": "model_not_found"}})

    with pytest.raises(StepFailed) as failure:
        provider(server.base_url).complete(ModelRequest(model_id="gpt-9", prompt="Hi"))

    assert str(failure.value) == "openai model 'gpt-9': HTTP 404: The model `gpt-9` does not exist"


def test_client_error_without_json_body_quotes_the_body(server: FakeOpenAI) -> None:
    server.reply = (401, b"Unauthorized: bad key")

    with pytest.raises(StepFailed, match="HTTP 401: Unauthorized: bad key"):
        provider(server.base_url).complete(ModelRequest(model_id=MODEL_ID, prompt="Hi"))


@pytest.mark.parametrize("reply", [{"object": "chat.completion"}, {"choices": []}])
def test_a_response_without_choices_fails_the_step(server: FakeOpenAI, reply: dict[str, Any]) -> None:
    server.reply = (200, reply)

    with pytest.raises(StepFailed, match="the response has no choices"):
        provider(server.base_url).complete(ModelRequest(model_id=MODEL_ID, prompt="Hi"))


def test_a_response_that_is_not_json_fails_the_step(server: FakeOpenAI) -> None:
    server.reply = (200, b"<html>gateway</html>")

    with pytest.raises(StepFailed, match="the response is not JSON"):
        provider(server.base_url).complete(ModelRequest(model_id=MODEL_ID, prompt="Hi"))


def test_a_timeout_is_transient(server: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(openai_compat, "REQUEST_TIMEOUT_SECONDS", 0.2)
    server.slow = True

    with pytest.raises(TransientStepError, match="timed out"):
        provider(server.base_url).complete(ModelRequest(model_id=MODEL_ID, prompt="Hi"))


def test_a_refused_connection_is_transient() -> None:
    with socket.socket() as unused:  # a port nobody listens on once this socket is closed
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]

    with pytest.raises(TransientStepError, match="Connection refused"):
        provider(f"http://127.0.0.1:{port}/v1").complete(ModelRequest(model_id=MODEL_ID, prompt="Hi"))


LOOKUP = ToolSpec(
    name="lookup_inventory",
    description="How many of an item are in stock.",
    parameters={"type": "object", "properties": {"item": {"type": "string"}}, "required": ["item"]},
)


def test_tool_use_round_trip_sends_tools_calls_and_results_and_parses_the_calls(server: FakeOpenAI) -> None:
    # Given a conversation in which the model called a tool that failed, and the tool's result
    reply = completion("", {"prompt_tokens": 80, "completion_tokens": 20}, finish_reason="tool_calls")
    reply["choices"][0]["message"] = {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_b",
                "type": "function",
                "function": {"name": "lookup_inventory", "arguments": '{"item": "bolt"}'},
            }
        ],
    }
    server.reply = (200, reply)
    request = ModelRequest(
        model_id=MODEL_ID,
        prompt="Check widgets.",
        messages=[
            Message(
                role="assistant",
                text="Let me look.",
                tool_calls=[ToolCall(id="call_a", name="lookup_inventory", arguments={"item": "widget"})],
            ),
            Message(
                role="tool",
                tool_results=[
                    ToolResult(call_id="call_a", name="lookup_inventory", content="no such item", is_error=True)
                ],
            ),
        ],
        tools=[LOOKUP],
    )

    # When the model is called
    response = provider(server.base_url).complete(request)

    # Then the protocol's tools, assistant tool_calls (JSON string arguments) and tool messages go out
    [(_, _, body)] = server.requests
    assert body["tools"] == [{"type": "function", "function": LOOKUP.model_dump()}]
    assert body["messages"] == [
        {"role": "user", "content": "Check widgets."},
        {
            "role": "assistant",
            "content": "Let me look.",
            "tool_calls": [
                {
                    "id": "call_a",
                    "type": "function",
                    "function": {"name": "lookup_inventory", "arguments": '{"item": "widget"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_a", "content": "no such item"},
    ]
    # And the answer's calls come back with parsed arguments
    assert response.tool_calls == [ToolCall(id="call_b", name="lookup_inventory", arguments={"item": "bolt"})]
    assert response.text == ""
    assert response.stop_reason == "tool_calls"


def test_tool_call_arguments_that_are_not_json_fail_the_step(server: FakeOpenAI) -> None:
    reply = completion("", {"prompt_tokens": 1, "completion_tokens": 1}, finish_reason="tool_calls")
    reply["choices"][0]["message"]["tool_calls"] = [
        {"id": "call_x", "type": "function", "function": {"name": "lookup_inventory", "arguments": "{item: bolt"}}
    ]
    server.reply = (200, reply)

    with pytest.raises(StepFailed, match="tool call 'call_x' has arguments that are not JSON"):
        provider(server.base_url).complete(ModelRequest(model_id=MODEL_ID, prompt="Hi", tools=[LOOKUP]))


def test_the_api_key_is_read_from_the_secret_the_settings_name(server: FakeOpenAI, aws_env: None) -> None:
    secret = boto3.client("secretsmanager").create_secret(Name="openai", SecretString="sk-from-secrets")["ARN"]
    settings = Settings(table_name="t", bucket_name="b", openai_base_url=server.base_url, openai_api_key_secret=secret)
    server.reply = (200, completion("hi", {"prompt_tokens": 1, "completion_tokens": 1}))

    get_provider("openai", client=boto3.client, settings=settings).complete(
        ModelRequest(model_id=MODEL_ID, prompt="Hi")
    )

    _, headers, _ = server.requests[-1]
    assert headers["Authorization"] == "Bearer sk-from-secrets"
