"""Amazon Bedrock through the Converse API: one request shape for every Bedrock model.

Tool use maps onto Converse's content blocks: the tools go in `toolConfig`, the assistant's calls
are `toolUse` blocks, and their results go back as `toolResult` blocks in a user message.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotocoreConnectionError

from sutram.errors import StepFailed, TransientStepError
from sutram.models import Message, ModelRequest, ModelResponse, ToolCall, Usage

# Converse has no JSON mode that every model supports, so JSON steps ask for it in words; the step
# runtime parses the answer and fails the step if it is not JSON.
JSON_INSTRUCTION = "Answer with a single JSON object and nothing else: no prose before or after it, no code fences."

# Error codes that a later attempt can get past; every other code fails the step.
TRANSIENT_ERROR_CODES = frozenset(
    {
        "ThrottlingException",
        "ServiceUnavailableException",
        "InternalServerException",
        "ModelNotReadyException",
        "ModelTimeoutException",
    }
)


class BedrockModel:
    name = "bedrock"

    def __init__(self, client: Any) -> None:
        self.client = client  # a boto3 bedrock-runtime client

    def complete(self, request: ModelRequest) -> ModelResponse:
        prompt = f"{request.prompt}\n\n{JSON_INSTRUCTION}" if request.json_output else request.prompt
        call: dict[str, Any] = {
            "modelId": request.model_id,
            "messages": [{"role": "user", "content": [{"text": prompt}]}, *map(_message, request.messages)],
            "inferenceConfig": {"maxTokens": request.max_tokens, "temperature": request.temperature},
        }
        if request.system:
            call["system"] = [{"text": request.system}]
        if request.tools:
            call["toolConfig"] = {
                "tools": [
                    # Converse refuses an empty description.
                    {
                        "toolSpec": {
                            "name": t.name,
                            "description": t.description or t.name,
                            "inputSchema": {"json": t.parameters},
                        }
                    }
                    for t in request.tools
                ]
            }
        try:
            response = self.client.converse(**call)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = error.get("Code", "Unknown")
            message = f"bedrock model {request.model_id!r}: {code}: {error.get('Message', 'no message')}"
            if code in TRANSIENT_ERROR_CODES:
                raise TransientStepError(message) from None
            raise StepFailed(message) from None
        except (BotocoreConnectionError, HTTPClientError) as exc:
            raise TransientStepError(f"bedrock model {request.model_id!r}: {exc}") from None

        content = response["output"]["message"]["content"]
        usage = response["usage"]
        return ModelResponse(
            # Reasoning models add non-text blocks (reasoningContent); the answer is the text.
            text="".join(block["text"] for block in content if "text" in block),
            model_id=request.model_id,
            usage=Usage(
                input_tokens=usage["inputTokens"],
                output_tokens=usage["outputTokens"],
                cached_tokens=usage.get("cacheReadInputTokens", 0),
            ),
            stop_reason=response.get("stopReason"),
            tool_calls=[
                ToolCall(id=use["toolUseId"], name=use["name"], arguments=use.get("input") or {})
                for use in (block["toolUse"] for block in content if "toolUse" in block)
            ],
        )


def _message(message: Message) -> dict[str, Any]:
    if message.role == "tool":
        results = [
            {
                "toolResult": {
                    "toolUseId": result.call_id,
                    "content": [{"text": result.content}],
                    "status": "error" if result.is_error else "success",
                }
            }
            for result in message.tool_results
        ]
        return {"role": "user", "content": results}
    blocks: list[dict[str, Any]] = [{"text": message.text}] if message.text else []
    blocks += [{"toolUse": {"toolUseId": c.id, "name": c.name, "input": c.arguments}} for c in message.tool_calls]
    return {"role": "assistant", "content": blocks}
