"""The `agent` step: a model calling tools in a loop, one Lambda invocation per model turn and per
tool call, each a checkpoint of its own under the agent's path:

    STEP#<scope><agent id>/turn-0007            turn 7: the assistant's text and tool calls, usage
    STEP#<scope><agent id>/turn-0007/call-001   the result of turn 7's second tool call

    turn N: claim turn N ─> recorded? return it
              └─> rebuild the conversation from turns < N and their calls ─> limit reached? finish
                    └─> call the model once ─> record {text, tool_calls} and usage ─> return the small state
    call i: claim turn N's call i ─> recorded? return it
              └─> needs approval and none given? answer {needs_approval} (the state machine asks,
                  then sends the call again with the decision: sutram.approvals.requests)
                    └─> run the tool with the model's (or the approved) arguments ─> record the
                        result (S3 if large); a rejection or expiry is the result instead

Each checkpoint holds only its own delta, so the bytes a turn writes do not grow with the
conversation; a turn reads the conversation back with one consistent query. A tool's failure is
a result the model reads (`is_error`), not a failed step; only TransientStepError is retried.
The state machine's loop is infra.workflow.agent.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from sutram.contracts import AgentToolTask, AgentTurnTask, Decision, RunRef
from sutram.definition import AgentStep
from sutram.engine.work import Done, HandOver, StepRuntime, Work, resolve, run_once
from sutram.errors import StepFailed, TransientStepError
from sutram.models import Message, ToolCall, ToolResult, ToolSpec
from sutram.store.approvals import MAX_PROPOSAL_BYTES, proposal_bytes
from sutram.store.checkpoints import SUCCEEDED, Claimed, StepKey
from sutram.store.keys import step_path
from sutram.tools import ToolContext, get_tool

ANSWERED = "answered"
# Step Functions history events of one loop iteration, measured on the compiled loop: the turn task,
# the done? choice, the tools Map and the next-turn pass (13), and each tool call's task (7). In an
# agent with gated tools each call adds its approval? choice and end (4), and a gated call at most
# 15 more: the call that asks, the wait, the expiry pass when nobody decides, and the choice again;
# 6 more for the second wait of a tool whose approvals escalate.
EVENTS_PER_TURN = 13
EVENTS_PER_CALL = 7
EVENTS_PER_CALL_CHECK = 4
EVENTS_PER_APPROVAL = 15
EVENTS_PER_ESCALATION = 6


def turn_path(agent_path: str, turn: int) -> str:
    """The checkpoint path of a turn; `agent_path` is the scope followed by the agent's id."""
    return f"{agent_path}/turn-{turn:04d}"


def call_path(agent_path: str, turn: int, call: int) -> str:
    return f"{turn_path(agent_path, turn)}/call-{call:03d}"


def run_agent_turn(task: AgentTurnTask, runtime: StepRuntime) -> dict[str, Any]:
    """Run turn `task.turn` once. Returns {turn, done, tool_calls: [{id, name, call}], result?};
    `result` ({answer, finish_reason, turns}, or its artifact reference) comes with done."""
    step, run = task.step, task.run
    key = StepKey(run.tenant, run.run_id, turn_path(task.agent_path, task.turn))

    def work(claim: Claimed) -> Work | HandOver:
        messages, used_tokens, started_at, events_per_turn = _conversation(task, runtime)
        if _history_full(step, task, events_per_turn):
            # Hand the turn to a fresh execution; it claims the released lease and runs the turn.
            return HandOver("continued in a new execution (history limit)")
        reason = _limit_reached(step, task.turn, used_tokens, started_at or float(claim.item["started_at"]))
        if reason:
            return Work({"text": "", "tool_calls": [], "finish_reason": reason})
        return _call_model(task, messages, runtime)

    done = run_once(
        runtime,
        key,
        step_type="agent_turn",
        timeout_seconds=step.timeout_seconds,
        delivery=task.delivery,
        run=task.run,
        work=work,
        fault_label=key.path,
        done_point="after_model_call",
        need_value=True,
    )
    if isinstance(done, HandOver):
        return {"turn": task.turn, "first_turn": task.first_turn, "done": False, "continue": True, "tool_calls": []}
    return _state(task, done.value, runtime) | {"first_turn": task.first_turn}


def run_agent_tool(task: AgentToolTask, runtime: StepRuntime) -> dict[str, Any]:
    """Run call `task.call` of turn `task.turn` once. Returns {call, name, is_error}, or
    {call, name, needs_approval: true} for a gated call that comes without a decision yet."""
    step, run = task.step, task.run
    answer = recorded_turn(run, task.agent_path, task.turn, runtime)
    call = tool_call(answer, task.agent_path, task.turn, task.call)
    key = StepKey(run.tenant, run.run_id, call_path(task.agent_path, task.turn, task.call))
    offered = step.tool(call.name)
    asking = offered is not None and offered.needs_approval and task.approval is None
    size = proposal_bytes(call.arguments) if asking else 0
    if asking and size <= MAX_PROPOSAL_BYTES:
        recorded = runtime.checkpoints.recorded(key)  # a call decided and run before needs nothing more
        if recorded is not None:
            return _call_summary(task.call, runtime.artifacts.load(run.tenant, recorded))
        return {"call": task.call, "name": call.name, "needs_approval": True}

    at_most_once = offered is not None and get_tool(call.name).delivery == "at_most_once"

    def work(claim: Claimed) -> Work:
        mark = (lambda: runtime.checkpoints.mark_in_flight(claim)) if at_most_once else (lambda: None)
        if offered is None:
            result = _error(call, f"tool {call.name!r} is not available; use one of: {', '.join(_offered(step))}")
        elif asking:  # too large to put before an approver
            result = _error(call, f"the arguments are {size} bytes of JSON; an approval holds {MAX_PROPOSAL_BYTES}")
        elif task.approval is not None and task.approval.outcome != "approve":
            result = _error(call, _not_approved(task.approval))
        else:
            context = ToolContext(tenant=run.tenant, run_id=run.run_id, step_path=key.path, attempt=claim.attempt)
            result = (
                _run_approved(call, task.approval, context, mark) if task.approval else _run_tool(call, context, mark)
            )
        return Work(result.model_dump())

    done = run_once(
        runtime,
        key,
        step_type="agent_tool",
        timeout_seconds=step.timeout_seconds,
        delivery=task.delivery,
        run=task.run,
        at_most_once=at_most_once,
        work=work,
        fault_label=key.path,
        done_point="after_tool_call",
        need_value=True,
    )
    assert isinstance(done, Done)  # a tool call never hands over
    return _call_summary(task.call, done.value)


def _offered(step: AgentStep) -> list[str]:
    return [tool.name for tool in step.tools]


def _conversation(task: AgentTurnTask, runtime: StepRuntime) -> tuple[list[Message], int, float | None, dict[int, int]]:
    """The messages after the prompt from turns before this one, the tokens they used, when the
    first turn started, and the history events each earlier turn cost."""
    prefix = f"{task.agent_path}/turn-"
    turns: dict[int, dict[str, Any]] = {}
    results: dict[tuple[int, int], dict[str, Any]] = {}
    used_tokens, started_at = 0, None
    items = runtime.checkpoints.list_under(task.run.tenant, task.run.run_id, prefix, consistent=True)
    for item in items:
        turn_part, _, call_part = step_path(item["sk"]).removeprefix(prefix).partition("/call-")
        turn = int(turn_part)
        if turn == 0:
            started_at = float(item["started_at"])
        if turn >= task.turn or item.get("status") != SUCCEEDED:
            continue
        output = runtime.artifacts.load(task.run.tenant, json.loads(item["output"]))
        if call_part:
            results[turn, int(call_part)] = output
        else:
            turns[turn] = output
            usage = item.get("usage") or {}
            used_tokens += int(usage.get("input_tokens", 0)) + int(usage.get("output_tokens", 0))
    messages: list[Message] = []
    events_per_turn: dict[int, int] = {}
    for turn in sorted(turns):
        calls = [ToolCall.model_validate(call) for call in turns[turn]["tool_calls"]]
        events_per_turn[turn] = _turn_events(task.step, calls)
        messages.append(Message(role="assistant", text=turns[turn]["text"], tool_calls=calls))
        if calls:
            missing = {"is_error": True, "content": "the tool call has no recorded result"}
            tool_results = [
                ToolResult.model_validate({"call_id": c.id, "name": c.name} | results.get((turn, i), missing))
                for i, c in enumerate(calls)
            ]
            messages.append(Message(role="tool", tool_results=tool_results))
    return messages, used_tokens, started_at, events_per_turn


def _history_full(step: AgentStep, task: AgentTurnTask, events_per_turn: dict[int, int]) -> bool:
    """Would one more turn, costing as many events as the costliest turn so far, pass the
    execution's budget of history events? Counts only the turns this execution ran."""
    spent = sum(events for turn, events in events_per_turn.items() if task.first_turn <= turn < task.turn)
    next_turn = max(events_per_turn.values(), default=EVENTS_PER_TURN + EVENTS_PER_CALL)
    return spent + next_turn > step.limits.history_events


def _turn_events(step: AgentStep, calls: list[ToolCall]) -> int:
    """The history events of a turn that made `calls` (at most, for gated calls)."""
    per_call = EVENTS_PER_CALL + (EVENTS_PER_CALL_CHECK if step.gated_tools else 0)
    events = EVENTS_PER_TURN + per_call * len(calls)
    for call in calls:
        rules = (tool := step.tool(call.name)) and tool.approval
        if rules:
            events += EVENTS_PER_APPROVAL + (EVENTS_PER_ESCALATION if rules.on_timeout == "escalate" else 0)
    return events


def _limit_reached(step: AgentStep, turn: int, used_tokens: int, started_at: float) -> str | None:
    limits = step.limits
    if turn >= limits.max_turns:
        return "max_turns"
    if used_tokens >= limits.max_tokens:
        return "max_tokens"
    if time.time() - started_at >= limits.max_seconds:
        return "max_seconds"
    return None


def _call_model(task: AgentTurnTask, messages: list[Message], runtime: StepRuntime) -> Work:
    step = task.step
    response, usage = runtime.call_model(
        step,
        resolve(step.input, task.run, step, task.roots, runtime.artifacts),
        messages=messages,
        tools=[_spec(name) for name in _offered(step)],
        script=step.script,
    )
    delta = {
        "text": response.text,
        "tool_calls": [call.model_dump() for call in response.tool_calls],
        "finish_reason": None if response.tool_calls else ANSWERED,
    }
    return Work(delta, usage)


def _spec(name: str) -> ToolSpec:
    tool = get_tool(name)
    return ToolSpec(name=name, description=tool.description, parameters=tool.args_model.model_json_schema())


def _state(task: AgentTurnTask, delta: dict[str, Any], runtime: StepRuntime) -> dict[str, Any]:
    """What Step Functions keeps of a turn: small, whatever the size of the conversation."""
    turn = task.turn
    calls = [{"id": call["id"], "name": call["name"], "call": i} for i, call in enumerate(delta["tool_calls"])]
    state: dict[str, Any] = {"turn": turn, "done": delta["finish_reason"] is not None, "tool_calls": calls}
    if state["done"]:
        answered = delta["finish_reason"] == ANSWERED
        result = {
            "answer": delta["text"] if answered else None,
            "finish_reason": delta["finish_reason"],
            "turns": turn + 1 if answered else turn,  # model calls made
        }
        where = f"agent {task.agent_path!r} output"
        state["result"] = runtime.artifacts.offload_if_large(task.run.tenant, result, task.keep, where)
    return state


def recorded_turn(run: RunRef, agent_path: str, turn: int, runtime: StepRuntime) -> dict[str, Any]:
    """What the model answered in `turn`: {text, tool_calls, finish_reason}."""
    recorded = runtime.checkpoints.recorded(StepKey(run.tenant, run.run_id, turn_path(agent_path, turn)))
    if recorded is None:
        raise StepFailed(f"agent {agent_path!r}: turn {turn} has no recorded answer")
    answer: dict[str, Any] = runtime.artifacts.load(run.tenant, recorded)
    return answer


def tool_call(answer: dict[str, Any], agent_path: str, turn: int, call: int) -> ToolCall:
    """Call `call` of a turn's recorded answer."""
    calls = answer["tool_calls"]
    if call >= len(calls):
        raise StepFailed(f"agent {agent_path!r}: turn {turn} has no tool call {call}")
    return ToolCall.model_validate(calls[call])


def _run_tool(call: ToolCall, context: ToolContext, before_call: Callable[[], None]) -> ToolResult:
    try:
        value = get_tool(call.name).run(call.arguments, context, before_call)
    except TransientStepError:
        raise
    except Exception as exc:  # the model reads the failure and decides what to do
        return _error(call, f"{type(exc).__name__}: {exc}")
    content = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return ToolResult(call_id=call.id, name=call.name, content=content)


def _error(call: ToolCall, message: str) -> ToolResult:
    return ToolResult(call_id=call.id, name=call.name, content=message, is_error=True)


def _run_approved(
    call: ToolCall, approval: Decision, context: ToolContext, before_call: Callable[[], None]
) -> ToolResult:
    """Run the call with the arguments as approved; the model reads when an approver changed them."""
    arguments = approval.proposal if approval.proposal is not None else call.arguments
    result = _run_tool(call.model_copy(update={"arguments": arguments}), context, before_call)
    if arguments == call.arguments:
        return result
    edited = json.dumps(arguments, ensure_ascii=False, sort_keys=True)
    note = f"A human ({approval.by}) approved this call with changed arguments: {edited}. Result: "
    return result.model_copy(update={"content": note + result.content})


def _not_approved(approval: Decision) -> str:
    if approval.outcome == "expired":
        return "no one decided on this call before its approval deadline, so it did not run"
    comment = f": {approval.comment}" if approval.comment else ""
    return f"a human ({approval.by}) rejected this call, so it did not run{comment}"


def _call_summary(call: int, result: dict[str, Any]) -> dict[str, Any]:
    return {"call": call, "name": result["name"], "is_error": result["is_error"]}
