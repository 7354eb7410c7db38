"""Workflow definitions: the pydantic model of a workflow file and its loader.

A definition is the single source of truth. `infra.workflow` compiles it to Amazon States
Language; the step runtime receives each step's spec inside its task payload, so a running
execution always uses the definition its state machine was built from.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import ErrorDetails

from sutram import expressions
from sutram.errors import DEFAULT_RETRYABLE_ERRORS
from sutram.tools import tool_names

STEP_ID = r"^[a-z][a-z0-9_]{0,47}$"
WORKFLOW_NAME = r"^[a-z][a-z0-9-]{0,47}$"
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


class DefinitionError(ValueError):
    """An invalid workflow definition; the message names the file, the step and the field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RetryPolicy(_Strict):
    errors: list[str] = Field(default_factory=lambda: list(DEFAULT_RETRYABLE_ERRORS), min_length=1)
    max_attempts: int = Field(3, ge=0, le=20)  # retries after the first attempt
    interval_seconds: int = Field(1, ge=1, le=3600)
    backoff_rate: float = Field(2.0, ge=1.0, le=10.0)
    max_delay_seconds: int | None = Field(60, ge=1, le=86400)
    jitter: Literal["full", "none"] = "full"


class ModelSpec(_Strict):
    provider: Literal["bedrock", "openai", "scripted"] | None = None  # None: deployment default
    model_id: str | None = None
    max_tokens: int = Field(1024, ge=1, le=200_000)
    temperature: float = Field(0.0, ge=0.0, le=2.0)


class _StepBase(_Strict):
    id: str = Field(pattern=STEP_ID)
    description: str = ""
    # Named arguments: literals, or expressions like "$.input.doc" / "$.steps.<id>.field".
    input: dict[str, Any] = Field(default_factory=dict)
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    timeout_seconds: int = Field(300, ge=1, le=900)

    @field_validator("input")
    @classmethod
    def _expressions_parse(cls, mapping: dict[str, Any]) -> dict[str, Any]:
        for ref in expressions.references_in(mapping):
            del ref  # parsing is the check
        return mapping


class LlmStep(_StepBase):
    type: Literal["llm"]
    model: ModelSpec = Field(default_factory=ModelSpec)
    system: str | None = None
    prompt: str = Field(min_length=1)  # {{name}} placeholders are filled from `input`
    output: Literal["text", "json"] = "text"

    @model_validator(mode="after")
    def _placeholders_have_inputs(self) -> LlmStep:
        for template in (self.prompt, self.system or ""):
            for name in _PLACEHOLDER.findall(template):
                if name not in self.input:
                    raise ValueError(f"prompt placeholder {{{{{name}}}}} has no entry in input")
        return self

    def render(self, template: str, args: dict[str, Any]) -> str:
        def fill(match: re.Match[str]) -> str:
            value = args[match.group(1)]
            return value if isinstance(value, str) else yaml.safe_dump(value, sort_keys=False).strip()

        return _PLACEHOLDER.sub(fill, template)


class ToolStep(_StepBase):
    type: Literal["tool"]
    tool: str = Field(min_length=1)

    @field_validator("tool")
    @classmethod
    def _tool_is_registered(cls, name: str) -> str:
        known = tool_names()
        if name not in known:
            raise ValueError(f"unknown tool {name!r}; registered tools: {', '.join(sorted(known))}")
        return name


Step = Annotated[LlmStep | ToolStep, Field(discriminator="type")]


class WorkflowDefinition(_Strict):
    name: str = Field(pattern=WORKFLOW_NAME)
    description: str = ""
    input_schema: dict[str, Any] | None = None  # JSON Schema checked when a run starts
    steps: list[Step] = Field(min_length=1, max_length=500)

    @model_validator(mode="after")
    def _references_point_backwards(self) -> WorkflowDefinition:
        seen: set[str] = set()
        for step in self.steps:
            if step.id in seen:
                raise ValueError(f"step id {step.id!r} is used twice")
            for ref in expressions.references_in(step.input):
                if ref.step_id is not None and ref.step_id not in seen:
                    raise ValueError(f"step {step.id!r} reads $.steps.{ref.step_id}, which is not an earlier step")
            seen.add(step.id)
        return self

    def step(self, step_id: str) -> LlmStep | ToolStep:
        return next(step for step in self.steps if step.id == step_id)

    def roots_needed_by(self, step: LlmStep | ToolStep) -> list[str]:
        """The state roots (`input`, `steps.<id>`) a step's input mapping reads, in order."""
        return list(dict.fromkeys(ref.root for ref in expressions.references_in(step.input)))

    def outputs_read_later(self) -> set[str]:
        """Ids of steps whose output a later step reads, plus the last step (the run's output)."""
        read = {ref.step_id for s in self.steps for ref in expressions.references_in(s.input)}
        return {step_id for step_id in read if step_id} | {self.steps[-1].id}


def _describe(error: ErrorDetails, raw: Any) -> str:
    location = list(error["loc"])
    where = ""
    if len(location) >= 2 and location[0] == "steps" and isinstance(location[1], int):
        index = location[1]
        steps = raw.get("steps") if isinstance(raw, dict) else None
        step_id = steps[index].get("id") if isinstance(steps, list) and isinstance(steps[index], dict) else None
        where = f"step {step_id!r} (steps[{index}])" if step_id else f"steps[{index}]"
        # Drop the discriminator tag pydantic inserts ("llm"/"tool") from the field path.
        location = location[3:] if len(location) > 2 and location[2] in ("llm", "tool") else location[2:]
    if error["type"] in ("union_tag_invalid", "union_tag_not_found"):
        location = [*location, "type"]
    field = ".".join(str(part) for part in location)
    parts = [part for part in (where, f"field {field!r}" if field else "") if part]
    message = error["msg"].removeprefix("Value error, ")
    return f"{', '.join(parts) or 'workflow'}: {message}"


def parse_definition(raw: Any, source: str) -> WorkflowDefinition:
    try:
        return WorkflowDefinition.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(_describe(error, raw) for error in exc.errors())
        raise DefinitionError(f"{source}: {problems}") from None


def load_definition(path: Path) -> WorkflowDefinition:
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise DefinitionError(f"{path}: not valid YAML: {exc}") from None
    definition = parse_definition(raw, str(path))
    if definition.name != path.stem.replace("_", "-"):
        raise DefinitionError(f"{path}: field 'name' is {definition.name!r}; it must match the file name")
    return definition


def load_all(directory: Path) -> list[WorkflowDefinition]:
    return [load_definition(path) for path in sorted(directory.glob("*.yaml"))]
