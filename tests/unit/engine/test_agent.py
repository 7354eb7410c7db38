"""sutram.engine.agent on moto: checkpointed turns and tool calls, flat writes, crashes, limits,
approvals."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from sutram import wiring
from sutram.contracts import AgentToolTask, parse_task
from sutram.engine.agent import run_agent_tool, run_agent_turn
from sutram.errors import TransientStepError
from sutram.handlers import step as step_handler
from sutram.models import ModelRequest, ModelResponse
from sutram.models.scripted import ScriptedModel
from sutram.store.approvals import MAX_PROPOSAL_BYTES
from sutram.store.artifacts import REF
from sutram.tools import ToolContext, tool
from tests.unit.support.engine import RUN, Item, set_faults, turn_event

PK = "TENANT#acme#RUN#run-1"
LOOKUP = {"call": "unit_lookup_inventory", "arguments": {"item": "widget"}}


@tool("unit_broken_lookup")
def broken_lookup(args: Item, context: ToolContext) -> dict[str, Any]:
    """Always fails."""
    raise ValueError(f"no warehouse holds {args.item}")


transient_failures: list[str] = []


@tool("unit_flaky_lookup")
def flaky_lookup(args: Item, context: ToolContext) -> str:
    """Fails once with a transient error, then answers."""
    if not transient_failures:
        transient_failures.append(args.item)
        raise TransientStepError("warehouse API throttled")
    return f"{args.item}: 3"


@tool("unit_place_order")
def place_order(args: Item, context: ToolContext) -> dict[str, str]:
    """Orders an item."""
    return {"ordered": args.item}


@tool("unit_catalogue")
def catalogue(args: Item, context: ToolContext) -> str:
    """A long listing."""
    return args.item * 3000


class CountingScripted(ScriptedModel):
    """The scripted provider, keeping each request."""

    def __init__(self) -> None:
        self.requests: list[ModelRequest] = []

    def complete(self, request: ModelRequest) -> ModelResponse:
        self.requests.append(request)
        return super().complete(request)


@pytest.fixture
def model(aws_env: None, monkeypatch: pytest.MonkeyPatch) -> CountingScripted:
    counting = CountingScripted()
    monkeypatch.setattr(wiring.step_runtime(), "providers", lambda name: counting)
    return counting


def agent(**fields: Any) -> dict[str, Any]:
    return {
        "id": "triage",
        "type": "agent",
        "prompt": "Check the inventory for item: {{item}}.",
        "input": {"item": "$.input.item"},
        "tools": ["unit_lookup_inventory"],
    } | fields


def tool_event(step: dict[str, Any], turn: int, call: int, **extra: Any) -> AgentToolTask:
    return AgentToolTask.model_validate({"run": RUN, "step": step, "turn": turn, "call": call} | extra)


def drive(step: dict[str, Any], start: int = 0, delivery: int = 0, max_turns: int = 200) -> dict[str, Any]:
    """What the state machine does: turn, then the turn's tool calls, until done."""
    for turn in range(start, max_turns):
        state = run_agent_turn(turn_event(step, turn, delivery), wiring.step_runtime())
        if state["done"]:
            return state
        for call in state["tool_calls"]:
            run_agent_tool(tool_event(step, turn, call["call"], delivery=delivery), wiring.step_runtime())
    raise AssertionError("the agent never finished")


@pytest.fixture
def puts(aws_env: None) -> Iterator[dict[str, int]]:
    """The request bytes of each put that records a finished checkpoint, by sort key."""
    sizes: dict[str, int] = {}

    def record(params: dict[str, Any], **_: Any) -> None:
        item = json.loads(params["body"])["Item"]
        if item.get("status", {}).get("S") == "succeeded":
            sizes[item["sk"]["S"]] = len(params["body"])

    events = wiring.table().meta.client.meta.events
    events.register("before-call.dynamodb.PutItem", record)
    yield sizes
    events.unregister("before-call.dynamodb.PutItem", record)


def checkpoint(table: Any, path: str) -> dict[str, Any]:
    return table.get_item(Key={"pk": PK, "sk": f"STEP#{path}"})["Item"]


def test_a_scripted_agent_calls_its_tool_then_answers_from_the_result(model, table):
    state = drive(agent())

    assert state == {
        "turn": 1,
        "first_turn": 0,
        "done": True,
        "tool_calls": [],
        "result": {
            "answer": 'Based on the tools: unit_lookup_inventory returned {"item": "widget", "in_stock": 3}',
            "finish_reason": "answered",
            "turns": 2,
        },
    }
    first, second = model.requests
    assert first.prompt == "Check the inventory for item: widget." and first.messages == []
    assert [t.name for t in first.tools] == ["unit_lookup_inventory"]
    assert first.tools[0].parameters["required"] == ["item"]
    assert [m.role for m in second.messages] == ["assistant", "tool"]
    assert second.messages[0].tool_calls[0].arguments == {"item": "widget"}
    turn = checkpoint(table, "triage/turn-0000")
    assert turn["step_type"] == "agent_turn" and turn["usage"]["provider"] == "scripted"
    assert json.loads(checkpoint(table, "triage/turn-0000/call-000")["output"])["is_error"] is False


def test_fifty_turns_write_the_same_bytes_per_turn_however_long_the_conversation(model, puts):
    state = drive(agent(script=[LOOKUP] * 50 + [{"answer": "done"}], limits={"max_turns": 60, "max_tokens": 10**7}))

    assert state["result"] == {"answer": "done", "finish_reason": "answered", "turns": 51}
    turn_sizes = [puts[f"STEP#triage/turn-{turn:04d}"] for turn in (0, 24, 49)]
    call_sizes = [puts[f"STEP#triage/turn-{turn:04d}/call-000"] for turn in (0, 24, 49)]
    assert max(turn_sizes) - min(turn_sizes) <= 8, turn_sizes
    assert max(call_sizes) - min(call_sizes) <= 8, call_sizes
    # ... while the conversation the 50th turn sent the model holds all 49 earlier turns.
    assert len(model.requests[49].messages) == 98


def test_a_crash_after_a_recorded_model_call_resumes_without_calling_the_model_again(model, monkeypatch, table):
    set_faults(monkeypatch, "triage/turn-0002@after_model_call")
    step = agent(script=[LOOKUP, LOOKUP, LOOKUP, {"answer": "done"}])

    with pytest.raises(SystemExit):
        drive(step)
    assert len(model.requests) == 3
    state = drive(step, start=2, delivery=1)  # Step Functions retries turn 2

    assert state["result"] == {"answer": "done", "finish_reason": "answered", "turns": 4}
    assert len(model.requests) == 4
    assert len(model.requests[3].messages) == 6  # turns 0-2 and their results, none lost or doubled
    assert checkpoint(table, "triage/turn-0002")["attempt"] == 1


def test_max_turns_ends_the_loop_with_its_reason(model):
    state = drive(agent(script=[LOOKUP] * 10, limits={"max_turns": 3}))

    assert state["result"] == {"answer": None, "finish_reason": "max_turns", "turns": 3}
    assert len(model.requests) == 3


def test_max_tokens_ends_the_loop_once_the_recorded_usage_reaches_it(model, table):
    state = drive(agent(script=[LOOKUP] * 10, limits={"max_tokens": 150}))

    used = [checkpoint(table, f"triage/turn-{turn:04d}")["usage"] for turn in range(len(model.requests))]
    totals = [u["input_tokens"] + u["output_tokens"] for u in used]
    assert state["result"]["finish_reason"] == "max_tokens"
    assert sum(totals[:-1]) < 150 <= sum(totals)
    assert state["turn"] == len(model.requests) == 2  # 80 tokens, then 161: over 150 before turn 2


def test_max_seconds_counts_from_the_first_turn(model, monkeypatch):
    step = agent(script=[LOOKUP] * 10, limits={"max_seconds": 60})
    run_agent_turn(turn_event(step, 0), wiring.step_runtime())
    run_agent_tool(tool_event(step, 0, 0), wiring.step_runtime())
    later = time.time() + 61
    monkeypatch.setattr(time, "time", lambda: later)

    state = run_agent_turn(turn_event(step, 1), wiring.step_runtime())

    assert state["result"]["finish_reason"] == "max_seconds"
    assert len(model.requests) == 1


GATED = [{"name": "unit_place_order", "approval": {"group": "ops"}}]
ORDER_WIDGET = {"call": "unit_place_order", "arguments": {"item": "widget"}}


def test_a_gated_call_asks_for_a_decision_without_writing_then_runs_once_approved(model, table):
    step = agent(tools=GATED, script=[ORDER_WIDGET, {"answer": "ordered"}])
    state = run_agent_turn(turn_event(step, 0), wiring.step_runtime())
    assert state["tool_calls"] == [{"id": "call_0_0", "name": "unit_place_order", "call": 0}]

    asking = run_agent_tool(tool_event(step, 0, 0), wiring.step_runtime())
    assert asking == {"call": 0, "name": "unit_place_order", "needs_approval": True}
    assert "Item" not in table.get_item(Key={"pk": PK, "sk": "STEP#triage/turn-0000/call-000"})

    approved = {"outcome": "approve", "proposal": {"item": "widget"}, "by": "ops@acme", "comment": ""}
    summary = run_agent_tool(tool_event(step, 0, 0, approval=approved), wiring.step_runtime())
    assert summary == {"call": 0, "name": "unit_place_order", "is_error": False}
    result = json.loads(checkpoint(table, "triage/turn-0000/call-000")["output"])
    assert result["content"] == '{"ordered": "widget"}'
    # Sent again without the decision (a replay), the recorded call answers: no second approval.
    assert run_agent_tool(tool_event(step, 0, 0), wiring.step_runtime()) == summary


def test_an_approved_call_runs_with_the_edited_arguments_and_the_model_reads_the_change(model, table):
    step = agent(tools=GATED, script=[ORDER_WIDGET])
    run_agent_turn(turn_event(step, 0), wiring.step_runtime())
    edited = {"outcome": "approve", "proposal": {"item": "gadget"}, "by": "ops@acme", "comment": "cheaper"}

    run_agent_tool(tool_event(step, 0, 0, approval=edited), wiring.step_runtime())

    result = json.loads(checkpoint(table, "triage/turn-0000/call-000")["output"])
    assert result == {
        "call_id": "call_0_0",
        "name": "unit_place_order",
        "content": 'A human (ops@acme) approved this call with changed arguments: {"item": "gadget"}. '
        'Result: {"ordered": "gadget"}',
        "is_error": False,
    }


@pytest.mark.parametrize(
    ("decision", "told"),
    [
        (
            {"outcome": "reject", "proposal": None, "by": "ops@acme", "comment": "over budget"},
            "a human (ops@acme) rejected this call, so it did not run: over budget",
        ),
        (
            {"outcome": "expired", "proposal": None, "by": None, "comment": None},
            "no one decided on this call before its approval deadline, so it did not run",
        ),
    ],
)
def test_a_rejected_or_expired_call_does_not_run_and_the_model_reads_why(model, decision, told):
    step = agent(tools=GATED, script=[ORDER_WIDGET, {"answer": "not ordered"}])
    run_agent_turn(turn_event(step, 0), wiring.step_runtime())

    assert run_agent_tool(tool_event(step, 0, 0, approval=decision), wiring.step_runtime())["is_error"] is True
    run_agent_turn(turn_event(step, 1), wiring.step_runtime())
    result = model.requests[1].messages[1].tool_results[0]
    assert result.is_error and result.content == told


def test_a_gated_call_too_large_to_put_before_an_approver_is_refused_to_the_model(model, table):
    large = {"call": "unit_place_order", "arguments": {"item": "w" * MAX_PROPOSAL_BYTES}}
    step = agent(tools=GATED, script=[large])
    run_agent_turn(turn_event(step, 0), wiring.step_runtime())

    summary = run_agent_tool(tool_event(step, 0, 0), wiring.step_runtime())

    assert summary == {"call": 0, "name": "unit_place_order", "is_error": True}
    result = json.loads(checkpoint(table, "triage/turn-0000/call-000")["output"])
    assert result["content"] == f"the arguments are 131084 bytes of JSON; an approval holds {MAX_PROPOSAL_BYTES}"


def test_gated_calls_count_their_approval_states_against_the_history_budget(model):
    # A turn with one gated call costs 13 + 7 + 4 + 15 = 39 events: two fit a budget of 100, a third does not.
    step = agent(tools=GATED, script=[ORDER_WIDGET] * 3, limits={"history_events": 100})
    approved = {"outcome": "approve", "proposal": {"item": "widget"}, "by": "ops@acme"}
    for turn in (0, 1):
        assert run_agent_turn(turn_event(step, turn), wiring.step_runtime())["tool_calls"]
        run_agent_tool(tool_event(step, turn, 0, approval=approved), wiring.step_runtime())

    state = run_agent_turn(turn_event(step, 2), wiring.step_runtime())

    assert state["continue"] is True and len(model.requests) == 2


def test_a_failing_tool_is_a_result_the_model_reads_not_a_failed_step(model):
    step = agent(tools=["unit_broken_lookup"], script=[{"call": "unit_broken_lookup", "arguments": {"item": "gizmo"}}])

    state = drive(step)

    result = model.requests[1].messages[1].tool_results[0]
    assert result.is_error and result.content == "ValueError: no warehouse holds gizmo"
    assert (
        state["result"]["answer"]
        == "Based on the tools: unit_broken_lookup returned ValueError: no warehouse holds gizmo"
    )


def test_bad_arguments_and_tools_not_offered_are_reported_to_the_model(model):
    step = agent(script=[[{"call": "unit_lookup_inventory", "arguments": {}}, {"call": "unit_place_order"}]])

    drive(step)

    missing, not_offered = model.requests[1].messages[1].tool_results
    assert (
        missing.is_error and missing.content == "InvalidStepInput: tool 'unit_lookup_inventory': item: Field required"
    )
    assert not_offered.is_error
    assert not_offered.content == "tool 'unit_place_order' is not available; use one of: unit_lookup_inventory"


def test_a_transient_tool_error_fails_the_task_for_a_retry(model):
    transient_failures.clear()
    step = agent(tools=["unit_flaky_lookup"], script=[{"call": "unit_flaky_lookup", "arguments": {"item": "bolt"}}])
    run_agent_turn(turn_event(step, 0), wiring.step_runtime())

    with pytest.raises(TransientStepError):
        run_agent_tool(tool_event(step, 0, 0), wiring.step_runtime())
    assert run_agent_tool(tool_event(step, 0, 0, delivery=1), wiring.step_runtime())["is_error"] is False
    run_agent_turn(turn_event(step, 1), wiring.step_runtime())
    assert model.requests[1].messages[1].tool_results[0].content == "bolt: 3"


def test_a_recorded_turn_or_call_is_returned_without_running_again(model):
    step = agent()
    first = run_agent_turn(turn_event(step, 0), wiring.step_runtime())
    call = run_agent_tool(tool_event(step, 0, 0), wiring.step_runtime())

    assert run_agent_turn(turn_event(step, 0, delivery=1), wiring.step_runtime()) == first
    assert run_agent_tool(tool_event(step, 0, 0, delivery=1), wiring.step_runtime()) == call
    assert len(model.requests) == 1


def test_a_large_tool_result_goes_to_s3_and_comes_back_into_the_conversation(model, table):
    step = agent(tools=["unit_catalogue"], script=[{"call": "unit_catalogue", "arguments": {"item": "ab"}}])

    drive(step)

    assert REF in json.loads(checkpoint(table, "triage/turn-0000/call-000")["output"])
    assert model.requests[1].messages[1].tool_results[0].content == "ab" * 3000


def test_the_scope_prefixes_every_checkpoint_and_the_step_handler_dispatches_on_the_task(model, table):
    event = {"run": RUN, "step": agent(), "scope": "analyse[3]/"}
    sources = {"sources": {"input": {"item": "widget"}}}  # a turn's; a tool call gets none

    state = step_handler.dispatch(parse_task(event | sources | {"task": "agent_turn", "turn": 0}))
    summary = step_handler.dispatch(parse_task(event | {"task": "agent_tool", "turn": 0, "call": 0}))

    assert state["tool_calls"][0]["name"] == "unit_lookup_inventory"
    assert summary == {"call": 0, "name": "unit_lookup_inventory", "is_error": False}
    assert checkpoint(table, "analyse[3]/triage/turn-0000/call-000")["status"] == "succeeded"
