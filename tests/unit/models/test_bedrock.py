"""BedrockModel against botocore's Stubber, which checks every request against the real
bedrock-runtime service model, so a malformed Converse call fails here as it would on AWS."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import EndpointConnectionError
from botocore.stub import Stubber

from sutram import wiring
from sutram.errors import StepFailed, TransientStepError
from sutram.models import Message, ModelRequest, ToolCall, ToolResult, ToolSpec, Usage
from sutram.models.bedrock import JSON_INSTRUCTION, BedrockModel

MODEL_ID = "anthropic.claude-3-5-haiku-20241022-v1:0"


def converse_response(text: str, usage: dict[str, int], stop_reason: str = "end_turn") -> dict[str, Any]:
    return {
        "output": {"message": {"role": "assistant", "content": [{"text": text}]}},
        "stopReason": stop_reason,
        "usage": usage,
        "metrics": {"latencyMs": 412},
    }


@pytest.fixture
def stubbed() -> Iterator[tuple[BedrockModel, Stubber]]:
    client = boto3.client(
        "bedrock-runtime", region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
    )
    with Stubber(client) as stubber:
        yield BedrockModel(client), stubber
        stubber.assert_no_pending_responses()


def test_returns_text_usage_and_stop_reason_from_converse(stubbed: tuple[BedrockModel, Stubber]) -> None:
    # Given a system prompt, a user prompt and inference settings
    model, stubber = stubbed
    stubber.add_response(
        "converse",
        converse_response(
            "Ada Lovelace wrote the first program.",
            {"inputTokens": 1200, "outputTokens": 45, "totalTokens": 2245, "cacheReadInputTokens": 1000},
        ),
        expected_params={
            "modelId": MODEL_ID,
            "system": [{"text": "You are a precise analyst."}],
            "messages": [{"role": "user", "content": [{"text": "Summarise the document."}]}],
            "inferenceConfig": {"maxTokens": 300, "temperature": 0.2},
        },
    )
    request = ModelRequest(
        model_id=MODEL_ID, system="You are a precise analyst.", prompt="Summarise the document.",
        max_tokens=300, temperature=0.2,
    )  # fmt: skip

    # When the model is called
    response = model.complete(request)

    # Then text, usage (the provider's own numbers) and stop reason come from the response
    assert response.text == "Ada Lovelace wrote the first program."
    assert response.model_id == MODEL_ID
    assert response.usage == Usage(input_tokens=1200, output_tokens=45, cached_tokens=1000)
    assert response.stop_reason == "end_turn"


def test_omits_system_and_counts_no_cached_tokens_when_bedrock_reports_none(
    stubbed: tuple[BedrockModel, Stubber],
) -> None:
    model, stubber = stubbed
    stubber.add_response(
        "converse",
        converse_response("Done", {"inputTokens": 7, "outputTokens": 2, "totalTokens": 9}, stop_reason="max_tokens"),
        expected_params={
            "modelId": MODEL_ID,
            "messages": [{"role": "user", "content": [{"text": "Hi"}]}],
            "inferenceConfig": {"maxTokens": 1024, "temperature": 0.0},
        },
    )

    response = model.complete(ModelRequest(model_id=MODEL_ID, prompt="Hi"))

    assert response.usage == Usage(input_tokens=7, output_tokens=2, cached_tokens=0)
    assert response.stop_reason == "max_tokens"


def test_joins_text_blocks_and_skips_reasoning_blocks(stubbed: tuple[BedrockModel, Stubber]) -> None:
    model, stubber = stubbed
    response = converse_response("", {"inputTokens": 5, "outputTokens": 9, "totalTokens": 14})
    response["output"]["message"]["content"] = [
        {"reasoningContent": {"reasoningText": {"text": "Let me think."}}},
        {"text": "First. "},
        {"text": "Second."},
    ]
    stubber.add_response("converse", response)

    assert model.complete(ModelRequest(model_id=MODEL_ID, prompt="Hi")).text == "First. Second."


def test_json_output_asks_for_a_single_json_object_in_the_prompt(stubbed: tuple[BedrockModel, Stubber]) -> None:
    model, stubber = stubbed
    stubber.add_response(
        "converse",
        converse_response('{"entities": []}', {"inputTokens": 30, "outputTokens": 6, "totalTokens": 36}),
        expected_params={
            "modelId": MODEL_ID,
            "messages": [{"role": "user", "content": [{"text": f"List the entities.\n\n{JSON_INSTRUCTION}"}]}],
            "inferenceConfig": {"maxTokens": 1024, "temperature": 0.0},
        },
    )

    response = model.complete(ModelRequest(model_id=MODEL_ID, prompt="List the entities.", json_output=True))

    assert response.text == '{"entities": []}'


@pytest.mark.parametrize(
    "code",
    [
        "ThrottlingException",
        "ServiceUnavailableException",
        "InternalServerException",
        "ModelNotReadyException",
        "ModelTimeoutException",
    ],
)
def test_retryable_bedrock_errors_raise_transient_step_error(stubbed: tuple[BedrockModel, Stubber], code: str) -> None:
    model, stubber = stubbed
    stubber.add_client_error("converse", service_error_code=code, service_message="Slow down", http_status_code=429)

    with pytest.raises(TransientStepError, match=f"bedrock model '{MODEL_ID}': {code}: Slow down"):
        model.complete(ModelRequest(model_id=MODEL_ID, prompt="Hi"))


@pytest.mark.parametrize(
    "code",
    ["ValidationException", "AccessDeniedException", "ResourceNotFoundException", "ModelErrorException"],
)
def test_other_bedrock_errors_fail_the_step_naming_model_and_code(
    stubbed: tuple[BedrockModel, Stubber], code: str
) -> None:
    model, stubber = stubbed
    stubber.add_client_error(
        "converse", service_error_code=code, service_message="The provided model identifier is invalid.",
        http_status_code=400,
    )  # fmt: skip

    with pytest.raises(StepFailed) as failure:
        model.complete(ModelRequest(model_id=MODEL_ID, prompt="Hi"))

    assert str(failure.value) == f"bedrock model '{MODEL_ID}': {code}: The provided model identifier is invalid."


def test_network_failure_raises_transient_step_error() -> None:
    class UnreachableClient:
        def converse(self, **_: Any) -> dict[str, Any]:
            raise EndpointConnectionError(endpoint_url="https://bedrock-runtime.us-east-1.amazonaws.com")

    with pytest.raises(TransientStepError, match="Could not connect"):
        BedrockModel(UnreachableClient()).complete(ModelRequest(model_id=MODEL_ID, prompt="Hi"))


def test_provider_creates_its_client_on_first_use_and_reuses_it(monkeypatch: pytest.MonkeyPatch, aws_env: None) -> None:
    created: list[str] = []

    def make_client(service: str) -> object:
        created.append(service)
        return object()

    wiring.reset()
    monkeypatch.setattr(wiring, "client", make_client)

    runtime = wiring.step_runtime()
    assert "bedrock-runtime" not in created

    model = runtime.providers("bedrock")
    assert model.client is runtime.providers("bedrock").client  # type: ignore[attr-defined]
    assert created.count("bedrock-runtime") == 1


def test_tool_use_round_trip_with_tool_config_tool_use_and_tool_result_blocks(
    stubbed: tuple[BedrockModel, Stubber],
) -> None:
    # Given a conversation in which the model called a tool and got its result
    model, stubber = stubbed
    schema = {"type": "object", "properties": {"item": {"type": "string"}}, "required": ["item"]}
    response = converse_response("", {"inputTokens": 90, "outputTokens": 30, "totalTokens": 120}, "tool_use")
    response["output"]["message"]["content"] = [
        {"text": "Checking the second warehouse."},
        {"toolUse": {"toolUseId": "tooluse_2", "name": "lookup_inventory", "input": {"item": "bolt"}}},
    ]
    stubber.add_response(
        "converse",
        response,
        expected_params={
            "modelId": MODEL_ID,
            "messages": [
                {"role": "user", "content": [{"text": "Check widgets."}]},
                {
                    "role": "assistant",
                    "content": [
                        {"toolUse": {"toolUseId": "tooluse_1", "name": "lookup_inventory", "input": {"item": "widget"}}}
                    ],
                },
                {
                    "role": "user",
                    "content": [
                        {
                            "toolResult": {
                                "toolUseId": "tooluse_1",
                                "content": [{"text": '{"in_stock": 0}'}],
                                "status": "success",
                            }
                        }
                    ],
                },
            ],
            "inferenceConfig": {"maxTokens": 1024, "temperature": 0.0},
            "toolConfig": {
                "tools": [
                    {
                        "toolSpec": {
                            "name": "lookup_inventory",
                            "description": "lookup_inventory",  # Converse needs one; the name stands in
                            "inputSchema": {"json": schema},
                        }
                    }
                ]
            },
        },
    )
    request = ModelRequest(
        model_id=MODEL_ID,
        prompt="Check widgets.",
        messages=[
            Message(
                role="assistant",
                tool_calls=[ToolCall(id="tooluse_1", name="lookup_inventory", arguments={"item": "widget"})],
            ),
            Message(
                role="tool",
                tool_results=[ToolResult(call_id="tooluse_1", name="lookup_inventory", content='{"in_stock": 0}')],
            ),
        ],
        tools=[ToolSpec(name="lookup_inventory", description="", parameters=schema)],
    )

    # When the model is called
    answer = model.complete(request)

    # Then its text and toolUse blocks come back as text and tool calls
    assert answer.text == "Checking the second warehouse."
    assert answer.tool_calls == [ToolCall(id="tooluse_2", name="lookup_inventory", arguments={"item": "bolt"})]
    assert answer.stop_reason == "tool_use"
    assert answer.usage == Usage(input_tokens=90, output_tokens=30)


def test_a_failed_tool_result_is_sent_with_status_error(stubbed: tuple[BedrockModel, Stubber]) -> None:
    model, stubber = stubbed
    stubber.add_response(
        "converse", converse_response("Sorry.", {"inputTokens": 9, "outputTokens": 2, "totalTokens": 11})
    )
    request = ModelRequest(
        model_id=MODEL_ID,
        prompt="Order one.",
        messages=[
            Message(role="assistant", text="Ordering.", tool_calls=[ToolCall(id="t1", name="order", arguments={})]),
            Message(
                role="tool", tool_results=[ToolResult(call_id="t1", name="order", content="declined", is_error=True)]
            ),
        ],
        tools=[ToolSpec(name="order", description="Orders.", parameters={"type": "object", "properties": {}})],
    )
    sent: list[dict[str, Any]] = []
    model.client.meta.events.register(
        "provide-client-params.bedrock-runtime.Converse", lambda params, **_: sent.append(params)
    )

    assert model.complete(request).text == "Sorry."
    assert sent[0]["messages"][1]["content"][0] == {"text": "Ordering."}
    assert sent[0]["messages"][2]["content"][0]["toolResult"]["status"] == "error"
