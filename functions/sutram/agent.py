"""The `agent` step: a model calling tools in a loop until it answers or a limit ends it.

    - id: triage
      type: agent
      system: You are a careful support engineer.
      prompt: "Find out why order {{order}} is late and what to tell the customer."
      input: {order: $.input.order_id}
      tools: [lookup_order, {name: refund_order, needs_approval: true}]
      limits: {max_turns: 20, max_tokens: 100000, max_seconds: 900}

Every turn (one model call) and every tool call is a checkpoint of its own under the agent's path:

    STEP#<scope><agent id>/turn-0007            turn 7: the assistant's text and tool calls, usage
    STEP#<scope><agent id>/turn-0007/call-001   the result of turn 7's second tool call

The runtime is `sutram.agent_runtime`; the state machine loop is `infra.agent`.
"""

from __future__ import annotations

import re
from typing import Any, Literal

import yaml
from pydantic import Field, field_validator, model_validator

from sutram.definition import _PLACEHOLDER, ModelSpec, _StepBase, _Strict
from sutram.tools import tool_names


class AgentTool(_Strict):
    name: str
    # The call waits for a human decision before it runs (see AgentToolEvent.approval).
    needs_approval: bool = False


class AgentLimits(_Strict):
    max_turns: int = Field(20, ge=1, le=9999)  # model calls
    max_tokens: int = Field(100_000, ge=1)  # input + output tokens over all turns
    max_seconds: int = Field(900, ge=1)  # wall clock from the start of the first turn


class AgentStep(_StepBase):
    type: Literal["agent"]
    model: ModelSpec = Field(default_factory=ModelSpec)
    system: str | None = None
    prompt: str = Field(min_length=1)  # {{name}} placeholders are filled from `input`
    tools: list[AgentTool] = Field(min_length=1)  # a plain name, or {name, needs_approval}
    limits: AgentLimits = Field(default_factory=AgentLimits)
    parallel_tool_calls: bool = True  # run one turn's calls at once, else one after another
    # For the scripted provider: one action per turn, {call, arguments}, a list of them, or {answer}.
    script: list[Any] = Field(default_factory=list)

    @field_validator("tools", mode="before")
    @classmethod
    def _names_are_tools(cls, tools: Any) -> Any:
        return (
            [{"name": tool} if isinstance(tool, str) else tool for tool in tools] if isinstance(tools, list) else tools
        )

    @field_validator("tools")
    @classmethod
    def _tools_are_registered_once(cls, tools: list[AgentTool]) -> list[AgentTool]:
        known, names = tool_names(), [tool.name for tool in tools]
        for name in names:
            if name not in known:
                raise ValueError(f"unknown tool {name!r}; registered tools: {', '.join(sorted(known))}")
        if len(set(names)) != len(names):
            raise ValueError("a tool is listed twice")
        return tools

    @model_validator(mode="after")
    def _placeholders_have_inputs(self) -> AgentStep:
        for template in (self.prompt, self.system or ""):
            for name in _PLACEHOLDER.findall(template):
                if name not in self.input:
                    raise ValueError(f"prompt placeholder {{{{{name}}}}} has no entry in input")
        return self

    def tool(self, name: str) -> AgentTool | None:
        return next((tool for tool in self.tools if tool.name == name), None)

    def render(self, template: str, args: dict[str, Any]) -> str:
        def fill(match: re.Match[str]) -> str:
            value = args[match.group(1)]
            return value if isinstance(value, str) else yaml.safe_dump(value, sort_keys=False).strip()

        return _PLACEHOLDER.sub(fill, template)


def turn_path(agent_path: str, turn: int) -> str:
    """The checkpoint path of a turn; `agent_path` is the scope followed by the agent's id."""
    return f"{agent_path}/turn-{turn:04d}"


def call_path(agent_path: str, turn: int, call: int) -> str:
    return f"{turn_path(agent_path, turn)}/call-{call:03d}"
