"""The `agent` step: a model calling tools in a loop until it answers or a limit ends it.

    - id: triage
      type: agent
      system: You are a careful support engineer.
      prompt: "Find out why order {{order}} is late and what to tell the customer."
      input: {order: $.input.order_id}
      tools: [lookup_order, {name: issue_refund, approval: {group: finance}}]
      limits: {max_turns: 20, max_tokens: 100000, max_seconds: 900}

Every turn (one model call) and every tool call is a checkpoint of its own under the agent's path:

    STEP#<scope><agent id>/turn-0007            turn 7: the assistant's text and tool calls, usage
    STEP#<scope><agent id>/turn-0007/call-001   the result of turn 7's second tool call

The step model lives with the other steps in `sutram.definition`; the runtime is
`sutram.agent_runtime`; the state machine loop is `infra.agent`.
"""

from __future__ import annotations

from sutram.definition import AgentLimits, AgentStep, AgentTool

__all__ = ["AgentLimits", "AgentStep", "AgentTool", "call_path", "turn_path"]


def turn_path(agent_path: str, turn: int) -> str:
    """The checkpoint path of a turn; `agent_path` is the scope followed by the agent's id."""
    return f"{agent_path}/turn-{turn:04d}"


def call_path(agent_path: str, turn: int, call: int) -> str:
    return f"{turn_path(agent_path, turn)}/call-{call:03d}"
