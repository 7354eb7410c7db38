"""Model providers behind one small interface: a request in, text, tool calls and usage out.

A plain request is a prompt. An agent's request adds the conversation after that prompt
(`messages`: the assistant's turns and the results of the tools it called) and the tools it may
call (`tools`); the response then may carry `tool_calls` instead of, or besides, text.

`scripted` is the offline, deterministic default; `bedrock` uses the Converse API;
`openai` speaks the OpenAI-compatible chat completions protocol over HTTPS.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, Protocol

from pydantic import BaseModel, Field

from sutram.settings import Settings


class Usage(BaseModel):
    """Token counts as the provider reported them."""

    input_tokens: int = Field(ge=0)
    output_tokens: int = Field(ge=0)
    cached_tokens: int = Field(0, ge=0)


class ToolSpec(BaseModel):
    """A tool offered to the model: its arguments as a JSON Schema object."""

    name: str
    description: str
    parameters: dict[str, Any]


class ToolCall(BaseModel):
    """One call the model asked for; `id` is the provider's, echoed back with the result."""

    id: str
    name: str
    arguments: dict[str, Any]


class ToolResult(BaseModel):
    call_id: str
    name: str
    content: str  # what the model reads: the tool's output as JSON, or the error
    is_error: bool = False


class Message(BaseModel):
    """A message after the prompt: the assistant's turn, or the results of the tools it called."""

    role: Literal["assistant", "tool"]
    text: str = ""
    tool_calls: list[ToolCall] = []
    tool_results: list[ToolResult] = []


class ModelRequest(BaseModel):
    model_id: str
    system: str | None = None
    prompt: str  # the first user message
    messages: list[Message] = []  # the conversation after the prompt, oldest first
    tools: list[ToolSpec] = []
    max_tokens: int = 1024
    temperature: float = 0.0
    json_output: bool = False
    # The scripted provider's agent policy, one action per assistant turn (other providers ignore
    # it): {"call": tool, "arguments": {...}}, a list of those, or {"answer": text}.
    script: list[Any] = []


class ModelResponse(BaseModel):
    text: str
    model_id: str
    usage: Usage
    stop_reason: str | None = None
    tool_calls: list[ToolCall] = []


class ModelProvider(Protocol):
    name: str

    def complete(self, request: ModelRequest) -> ModelResponse:
        """Call the model once. Raise TransientStepError for throttling/5xx, StepFailed otherwise."""
        ...


SECRET_CACHE_SECONDS = 300


def get_provider(name: str, *, client: Callable[[str], Any], settings: Settings) -> ModelProvider:
    """The provider called `name`, given its client: `client(service)` makes a boto3 client."""
    # Imported lazily: a Lambda loads only the provider its steps use.
    if name == "scripted":
        from sutram.models.scripted import ScriptedModel

        return ScriptedModel()
    if name == "bedrock":
        from sutram.models.bedrock import BedrockModel

        return BedrockModel(client("bedrock-runtime"))
    if name == "openai":
        from aws_lambda_powertools.utilities.parameters import SecretsProvider

        from sutram.models.openai_compat import OpenAICompatibleModel

        if not settings.openai_api_key_secret:
            return OpenAICompatibleModel(settings)
        secrets = SecretsProvider(boto3_client=client("secretsmanager"))
        # Cached like the link-signing keys: a rotated key reaches every sandbox within 5 minutes.
        return OpenAICompatibleModel(
            settings, lambda: str(secrets.get(settings.openai_api_key_secret, max_age=SECRET_CACHE_SECONDS))
        )
    raise ValueError(f"unknown model provider {name!r}; expected bedrock, openai or scripted")
