"""The `agent` step's definition (sutram.definition): tools by name or with approval, limits, prompt
placeholders; and the checkpoint paths of its turns and calls (sutram.engine.agent)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from sutram.definition import AgentLimits, AgentStep, AgentTool, ApprovalRules
from sutram.engine.agent import call_path, turn_path

BASE = {"id": "triage", "type": "agent", "prompt": "Why is {{order}} late?", "input": {"order": "$.input.order"}}


def test_tools_are_plain_names_or_declare_that_they_need_approval() -> None:
    gated = {"name": "http_fetch", "approval": {"group": "ops"}}
    step = AgentStep.model_validate(BASE | {"tools": ["extract_text", gated]})

    fetch = AgentTool(
        name="http_fetch", approval=ApprovalRules(group="ops", timeout_seconds=86_400, on_timeout="reject")
    )
    assert step.tools == [AgentTool(name="extract_text"), fetch]
    assert step.tool("http_fetch") == fetch and step.gated_tools == [fetch] and fetch.needs_approval
    assert not step.tools[0].needs_approval
    assert step.tool("place_order") is None
    assert step.limits == AgentLimits(max_turns=20, max_tokens=100_000, max_seconds=900)
    assert step.parallel_tool_calls is True
    assert step.render(step.prompt, {"order": "o-17"}) == "Why is o-17 late?"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"tools": ["no_such_tool"]}, "unknown tool 'no_such_tool'"),
        ({"tools": ["extract_text", "extract_text"]}, "a tool is listed twice"),
        ({"tools": []}, "at least 1 item"),
        ({"tools": ["extract_text"], "input": {}}, r"placeholder \{\{order\}\} has no entry in input"),
        ({"tools": ["extract_text"], "limits": {"max_turns": 0}}, "greater than or equal to 1"),
        ({"tools": [{"name": "http_fetch", "approval": {}}]}, r"approval.group\n  Field required"),
        ({"tools": [{"name": "http_fetch", "needs_approval": True}]}, r"needs_approval\n  Extra inputs"),
        (
            {"tools": [{"name": "http_fetch", "approval": {"group": "ops", "on_timeout": "escalate"}}]},
            "'escalate_to' is needed with on_timeout: escalate, and only with it",
        ),
        (
            {"tools": [{"name": "http_fetch", "approval": {"group": "ops", "timeout_seconds": 0}}]},
            "greater than or equal to 1",
        ),
    ],
)
def test_invalid_agents_are_refused_with_the_reason(fields: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        AgentStep.model_validate(BASE | fields)


def test_checkpoint_paths_sort_by_turn_then_call() -> None:
    paths = [call_path("m[2]/triage", 7, 10), turn_path("m[2]/triage", 7), call_path("m[2]/triage", 7, 2)]

    assert sorted(paths) == [
        "m[2]/triage/turn-0007",
        "m[2]/triage/turn-0007/call-002",
        "m[2]/triage/turn-0007/call-010",
    ]
