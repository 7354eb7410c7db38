"""The agent runtime: one Lambda invocation per model turn and per tool call, each checkpointed.

    turn N: claim turn N ─> recorded? return it
              └─> rebuild the conversation from turns < N and their calls ─> limit reached? finish
                    └─> call the model once ─> record {text, tool_calls} and usage ─> return the small state
    call i: claim turn N's call i ─> recorded? return it
              └─> needs approval and none given? ApprovalRequired
                    └─> run the tool with the model's arguments ─> record the result (S3 if large)

Each checkpoint holds only its own delta, so the bytes a turn writes do not grow with the
conversation; a turn reads the conversation back with one consistent query. A tool's failure is
a result the model reads (`is_error`), not a failed step; only TransientStepError is retried.
"""

from __future__ import annotations

import json
import time
from typing import Any, Literal

from pydantic import BaseModel, Field

from sutram import expressions, faults, keys
from sutram.agent import AgentStep, call_path, turn_path
from sutram.checkpoints import AlreadyRecorded, StepKey
from sutram.errors import InvalidStepInput, StepFailed, SutramError, TransientStepError
from sutram.models import Message, ToolCall, ToolResult, ToolSpec
from sutram.steps import RunRef, StepRuntime
from sutram.tools import ToolContext, get_tool

ANSWERED = "answered"
# Step Functions history events of one loop iteration, measured on the compiled loop: the turn task,
# the done? choice, the tools Map and the next-turn pass (13), and each tool call's task (7).
EVENTS_PER_TURN = 13
EVENTS_PER_CALL = 7


class ApprovalRequired(SutramError):
    """The tool call needs a human decision: send the tool task again with `approval`."""


class Approval(BaseModel):
    approved: bool
    by: str = ""
    note: str = ""


class _AgentEvent(BaseModel):
    run: RunRef
    delivery: int = 0  # Step Functions' retry count for this task ($$.State.RetryCount)
    scope: str = ""  # the checkpoint path prefix of the enclosing map or parallel, e.g. "analyse[3]/"
    step: AgentStep
    turn: int = Field(ge=0)

    @property
    def agent_path(self) -> str:
        return f"{self.scope}{self.step.id}"


class AgentTurnEvent(_AgentEvent):
    agent_action: Literal["turn"] = "turn"
    first_turn: int = Field(0, ge=0)  # the turn this execution started at (later ones continue a run)
    # The state roots the step's input mapping reads, as in steps.StepEvent.
    sources: dict[str, Any] = {}


class AgentToolEvent(_AgentEvent):
    agent_action: Literal["tool"] = "tool"
    call: int = Field(ge=0)  # the index of the call in the turn's tool_calls
    approval: Approval | None = None  # the human decision, for a tool that needs one


def handle(event: dict[str, Any], runtime: StepRuntime) -> dict[str, Any]:
    """The step Lambda's entry for agent tasks; `agent_action` says which one."""
    if event.get("agent_action") == "tool":
        return run_agent_tool(AgentToolEvent.model_validate(event), runtime)
    return run_agent_turn(AgentTurnEvent.model_validate(event), runtime)


def run_agent_turn(event: AgentTurnEvent, runtime: StepRuntime) -> dict[str, Any]:
    """Run turn `event.turn` once. Returns {turn, done, tool_calls: [{id, name, call}], result?};
    `result` ({answer, finish_reason, turns}, or its artifact reference) comes with done."""
    step, run = event.step, event.run
    key = StepKey(run.tenant, run.run_id, turn_path(event.agent_path, event.turn))
    claim = runtime.checkpoints.claim(
        key,
        step_type="agent_turn",
        lease_seconds=step.timeout_seconds + runtime.lease_margin_seconds,
        at_most_once=False,
        delivery=event.delivery,
    )
    if isinstance(claim, AlreadyRecorded):
        recorded = runtime.artifacts.load(run.tenant, claim.output)
        return _state(event.turn, recorded, runtime, run.tenant) | {"first_turn": event.first_turn}
    try:
        faults.crash_if_injected(runtime.faults, key.path, "before_call", claim.attempt)
        messages, used_tokens, started_at, calls_per_turn = _conversation(event, runtime)
        if _history_full(step, event, calls_per_turn):
            # Hand the turn to a fresh execution; it claims the released lease and runs the turn.
            runtime.checkpoints.release(claim, "continued in a new execution (history limit)")
            return {
                "turn": event.turn,
                "first_turn": event.first_turn,
                "done": False,
                "continue": True,
                "tool_calls": [],
            }
        usage = None
        reason = _limit_reached(step, event.turn, used_tokens, started_at or float(claim.item["started_at"]))
        if reason:
            delta: dict[str, Any] = {"text": "", "tool_calls": [], "finish_reason": reason}
        else:
            delta, usage = _call_model(event, messages, runtime)
        runtime.checkpoints.complete(claim, runtime.artifacts.offload_if_large(run.tenant, delta), usage)
    except Exception as exc:
        runtime.checkpoints.release(claim, f"{type(exc).__name__}: {exc}")
        raise
    faults.crash_if_injected(runtime.faults, key.path, "after_model_call", claim.attempt)
    return _state(event.turn, delta, runtime, run.tenant) | {"first_turn": event.first_turn}


def run_agent_tool(event: AgentToolEvent, runtime: StepRuntime) -> dict[str, Any]:
    """Run call `event.call` of turn `event.turn` once. Returns {call, name, is_error}."""
    step, run = event.step, event.run
    call = _requested_call(event, runtime)
    key = StepKey(run.tenant, run.run_id, call_path(event.agent_path, event.turn, event.call))
    offered = step.tool(call.name)
    claim = runtime.checkpoints.claim(
        key,
        step_type="agent_tool",
        lease_seconds=step.timeout_seconds + runtime.lease_margin_seconds,
        at_most_once=offered is not None and get_tool(call.name).delivery == "at_most_once",
        delivery=event.delivery,
    )
    if isinstance(claim, AlreadyRecorded):
        return _call_summary(event.call, runtime.artifacts.load(run.tenant, claim.output))
    try:
        faults.crash_if_injected(runtime.faults, key.path, "before_call", claim.attempt)
        if offered is None:
            result = _error(call, f"tool {call.name!r} is not available; use one of: {', '.join(_offered(step))}")
        elif offered.needs_approval and event.approval is None:
            raise ApprovalRequired(f"agent {step.id!r}: tool call {key.path!r} ({call.name}) needs a human decision")
        elif event.approval is not None and not event.approval.approved:
            result = _error(call, f"a human declined this call{_by(event.approval)}")
        else:
            context = ToolContext(tenant=run.tenant, run_id=run.run_id, step_path=key.path, attempt=claim.attempt)
            result = _run_tool(call, context)
        runtime.checkpoints.complete(claim, runtime.artifacts.offload_if_large(run.tenant, result.model_dump()), None)
    except Exception as exc:
        runtime.checkpoints.release(claim, f"{type(exc).__name__}: {exc}")
        raise
    faults.crash_if_injected(runtime.faults, key.path, "after_tool_call", claim.attempt)
    return _call_summary(event.call, result.model_dump())


def _offered(step: AgentStep) -> list[str]:
    return [tool.name for tool in step.tools]


def _conversation(
    event: AgentTurnEvent, runtime: StepRuntime
) -> tuple[list[Message], int, float | None, dict[int, int]]:
    """The messages after the prompt from turns before this one, the tokens they used, when the
    first turn started, and how many tool calls each earlier turn made."""
    prefix = f"{event.agent_path}/turn-"
    turns: dict[int, dict[str, Any]] = {}
    results: dict[tuple[int, int], dict[str, Any]] = {}
    used_tokens, started_at = 0, None
    items = runtime.checkpoints.list_under(event.run.tenant, event.run.run_id, prefix, consistent=True)
    for item in items:
        turn_part, _, call_part = item["sk"].removeprefix(keys.step_sk(prefix)).partition("/call-")
        turn = int(turn_part)
        if turn == 0:
            started_at = float(item["started_at"])
        if turn >= event.turn or item.get("status") != "succeeded":
            continue
        output = runtime.artifacts.load(event.run.tenant, json.loads(item["output"]))
        if call_part:
            results[turn, int(call_part)] = output
        else:
            turns[turn] = output
            usage = item.get("usage") or {}
            used_tokens += int(usage.get("input_tokens", 0)) + int(usage.get("output_tokens", 0))
    messages: list[Message] = []
    for turn in sorted(turns):
        calls = [ToolCall.model_validate(call) for call in turns[turn]["tool_calls"]]
        messages.append(Message(role="assistant", text=turns[turn]["text"], tool_calls=calls))
        if calls:
            missing = {"is_error": True, "content": "the tool call has no recorded result"}
            tool_results = [
                ToolResult.model_validate({"call_id": c.id, "name": c.name} | results.get((turn, i), missing))
                for i, c in enumerate(calls)
            ]
            messages.append(Message(role="tool", tool_results=tool_results))
    return messages, used_tokens, started_at, {turn: len(turns[turn]["tool_calls"]) for turn in turns}


def _history_full(step: AgentStep, event: AgentTurnEvent, calls_per_turn: dict[int, int]) -> bool:
    """Would one more turn, with as many calls as any turn made so far, pass the execution's budget
    of history events? Counts only the turns this execution ran."""
    spent = sum(
        EVENTS_PER_TURN + EVENTS_PER_CALL * calls
        for turn, calls in calls_per_turn.items()
        if event.first_turn <= turn < event.turn
    )
    next_turn = EVENTS_PER_TURN + EVENTS_PER_CALL * max(calls_per_turn.values(), default=1)
    return spent + next_turn > step.limits.history_events


def _limit_reached(step: AgentStep, turn: int, used_tokens: int, started_at: float) -> str | None:
    limits = step.limits
    if turn >= limits.max_turns:
        return "max_turns"
    if used_tokens >= limits.max_tokens:
        return "max_tokens"
    if time.time() - started_at >= limits.max_seconds:
        return "max_seconds"
    return None


def _call_model(
    event: AgentTurnEvent, messages: list[Message], runtime: StepRuntime
) -> tuple[dict[str, Any], dict[str, Any]]:
    step = event.step
    response, usage = runtime.call_model(
        step,
        _resolve_input(event, runtime),
        messages=messages,
        tools=[_spec(name) for name in _offered(step)],
        script=step.script,
    )
    delta = {
        "text": response.text,
        "tool_calls": [call.model_dump() for call in response.tool_calls],
        "finish_reason": None if response.tool_calls else ANSWERED,
    }
    return delta, usage


def _resolve_input(event: AgentTurnEvent, runtime: StepRuntime) -> dict[str, Any]:
    roots = {f"steps.{step_id}": value for step_id, value in event.sources.get("steps", {}).items()}
    roots |= {name: event.sources[name] for name in ("input", "item") if name in event.sources}
    try:
        return expressions.evaluate(
            event.step.input, roots, lambda value: runtime.artifacts.load(event.run.tenant, value)
        )
    except expressions.ExpressionError as exc:
        raise InvalidStepInput(f"step {event.step.id!r} input: {exc}") from None


def _spec(name: str) -> ToolSpec:
    tool = get_tool(name)
    return ToolSpec(name=name, description=tool.description, parameters=tool.args_model.model_json_schema())


def _state(turn: int, delta: dict[str, Any], runtime: StepRuntime, tenant: str) -> dict[str, Any]:
    """What Step Functions keeps of a turn: small, whatever the size of the conversation."""
    calls = [{"id": call["id"], "name": call["name"], "call": i} for i, call in enumerate(delta["tool_calls"])]
    state: dict[str, Any] = {"turn": turn, "done": delta["finish_reason"] is not None, "tool_calls": calls}
    if state["done"]:
        answered = delta["finish_reason"] == ANSWERED
        result = {
            "answer": delta["text"] if answered else None,
            "finish_reason": delta["finish_reason"],
            "turns": turn + 1 if answered else turn,  # model calls made
        }
        state["result"] = runtime.artifacts.offload_if_large(tenant, result)
    return state


def _requested_call(event: AgentToolEvent, runtime: StepRuntime) -> ToolCall:
    key = StepKey(event.run.tenant, event.run.run_id, turn_path(event.agent_path, event.turn))
    recorded = runtime.checkpoints.recorded(key)
    if recorded is None:
        raise StepFailed(f"agent {event.step.id!r}: turn {event.turn} has no recorded answer")
    calls = runtime.artifacts.load(event.run.tenant, recorded)["tool_calls"]
    if event.call >= len(calls):
        raise StepFailed(f"agent {event.step.id!r}: turn {event.turn} has no tool call {event.call}")
    return ToolCall.model_validate(calls[event.call])


def _run_tool(call: ToolCall, context: ToolContext) -> ToolResult:
    try:
        value = get_tool(call.name).run(call.arguments, context)
    except TransientStepError:
        raise
    except Exception as exc:  # the model reads the failure and decides what to do
        return _error(call, f"{type(exc).__name__}: {exc}")
    content = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return ToolResult(call_id=call.id, name=call.name, content=content)


def _error(call: ToolCall, message: str) -> ToolResult:
    return ToolResult(call_id=call.id, name=call.name, content=message, is_error=True)


def _by(approval: Approval) -> str:
    return (f" ({approval.by})" if approval.by else "") + (f": {approval.note}" if approval.note else "")


def _call_summary(call: int, result: dict[str, Any]) -> dict[str, Any]:
    return {"call": call, "name": result["name"], "is_error": result["is_error"]}
