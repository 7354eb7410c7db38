"""Model providers behind one small interface: a request in, text and usage out.

`scripted` is the offline, deterministic default; `bedrock` uses the Converse API;
`openai` speaks the OpenAI-compatible chat completions protocol over HTTPS.
"""

from __future__ import annotations

from typing import Protocol

from pydantic import BaseModel, Field


class Usage(BaseModel):
    """Token counts as the provider reported them."""

    input_tokens: int = Field(ge=0)
    output_tokens: int = Field(ge=0)
    cached_tokens: int = Field(0, ge=0)


class ModelRequest(BaseModel):
    model_id: str
    system: str | None = None
    prompt: str
    max_tokens: int = 1024
    temperature: float = 0.0
    json_output: bool = False


class ModelResponse(BaseModel):
    text: str
    model_id: str
    usage: Usage
    stop_reason: str | None = None


class ModelProvider(Protocol):
    name: str

    def complete(self, request: ModelRequest) -> ModelResponse:
        """Call the model once. Raise TransientStepError for throttling/5xx, StepFailed otherwise."""
        ...


def get_provider(name: str) -> ModelProvider:
    # Imported lazily: a Lambda loads only the provider its steps use.
    if name == "scripted":
        from sutram.models.scripted import ScriptedModel

        return ScriptedModel()
    if name == "bedrock":
        from sutram.models.bedrock import BedrockModel

        return BedrockModel()
    if name == "openai":
        from sutram.models.openai_compat import OpenAICompatibleModel

        return OpenAICompatibleModel()
    raise ValueError(f"unknown model provider {name!r}; expected bedrock, openai or scripted")
