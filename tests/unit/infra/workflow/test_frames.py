"""infra.workflow.frames: each value in state lives in a slot from its step to its last reader."""

from __future__ import annotations

from typing import Any

from aws_cdk import aws_stepfunctions as sfn

from infra.workflow.frames import Frame
from sutram.definition import WorkflowDefinition


def frame(steps: list[dict[str, Any]]) -> Frame:
    return Frame(list(WorkflowDefinition.model_validate({"name": "w", "steps": steps}).steps))


def tool(step_id: str, reads: str = "$.input.x") -> dict[str, Any]:
    return {"id": step_id, "type": "tool", "tool": "word_frequencies", "input": {"text": reads}}


def test_a_chain_of_400_steps_each_reading_the_one_before_needs_one_slot() -> None:
    steps = [tool("s0")] + [tool(f"s{i}", f"$.steps.s{i - 1}") for i in range(1, 400)]

    chain = frame(steps)

    # A task reads its input before its result is written: each step takes its reader's slot.
    assert chain.slot_count == 1
    assert {chain.result_path(step) for step in chain.steps} == {"$.slots.s0"}


def test_a_value_read_later_keeps_its_slot_and_an_unread_one_is_discarded() -> None:
    steps = [tool("keep"), tool("unread"), tool("a", "$.steps.keep"), tool("b", "$.steps.a"), tool("c", "$.steps.keep")]

    slots = frame(steps)

    keep = slots.result_path(slots.steps[0])
    assert slots.result_path(slots.steps[1]) == sfn.JsonPath.DISCARD
    assert keep not in (slots.result_path(slots.steps[2]), slots.result_path(slots.steps[3]))
    assert slots.path("$.steps.keep.words[0]") == f"{keep}.words[0]"
    assert slots.path("$.input.x") == "$.input.x"


def test_an_agent_loop_never_shares_a_slot_with_what_its_turns_read() -> None:
    agent = {
        "id": "helper",
        "type": "agent",
        "prompt": "hi",
        "input": {"a": "$.steps.first"},
        "tools": ["extract_text"],
    }
    slots = frame([tool("first"), agent, tool("after", "$.steps.helper")])

    assert slots.loop_path(slots.steps[1]) != slots.result_path(slots.steps[0])  # type: ignore[arg-type]


def test_a_value_read_after_a_choice_is_not_overwritten_by_its_branches() -> None:
    choice = {
        "id": "route",
        "type": "choice",
        "choices": [{"when": {"var": "$.input.x", "equals": 1}, "then": [tool("inner"), tool("out", "$.steps.inner")]}],
        "otherwise": [tool("other")],
    }
    slots = frame([tool("early"), choice, tool("late", "$.steps.early"), tool("last", "$.steps.route")])

    early, inner, route = (
        slots.result_path(slots.steps[0]),
        slots.path("$.steps.inner"),
        slots.result_path(slots.steps[1]),
    )
    assert early not in (inner, route)
    assert inner == route  # `out` reads `inner` and then writes the choice's output over it
