"""The scripted provider's agent policy: deterministic tool calls and answers, exact token counts."""

from __future__ import annotations

from sutram.models import Message, ModelRequest, ToolCall, ToolResult, ToolSpec, Usage
from sutram.models.scripted import ScriptedModel

ITEM = {"type": "object", "properties": {"item": {"type": "string"}, "count": {"type": "integer"}}}
TOOLS = [
    ToolSpec(name="lookup_inventory", description="Stock levels.", parameters=ITEM),
    ToolSpec(name="place_order", description="Orders an item.", parameters=ITEM),
]


def request(prompt: str, messages: list[Message] | None = None, script: list | None = None) -> ModelRequest:
    return ModelRequest(model_id="m", prompt=prompt, messages=messages or [], tools=TOOLS, script=script or [])


def test_the_first_turn_calls_the_tools_named_in_the_prompt_with_the_arguments_written_there() -> None:
    response = ScriptedModel().complete(request("Check the inventory for item: widget, count: 4."))

    assert response.tool_calls == [
        ToolCall(id="call_0_0", name="lookup_inventory", arguments={"item": "widget", "count": 4})
    ]
    assert response.text == "" and response.stop_reason == "tool_use"


def test_with_results_it_answers_with_them_and_the_same_request_gets_the_same_answer() -> None:
    call = ToolCall(id="call_0_0", name="lookup_inventory", arguments={"item": "widget"})
    result = ToolResult(call_id="call_0_0", name="lookup_inventory", content='{"in_stock": 3}')
    later = request(
        "Check the inventory for item: widget.",
        [Message(role="assistant", tool_calls=[call]), Message(role="tool", tool_results=[result])],
    )

    first, second = ScriptedModel().complete(later), ScriptedModel().complete(later)

    assert first == second
    assert first.text == 'Based on the tools: lookup_inventory returned {"in_stock": 3}'
    assert first.tool_calls == [] and first.stop_reason == "end_turn"
    assert first.usage == Usage(input_tokens=159, output_tokens=16)


def test_a_prompt_that_names_no_tool_gets_a_summary() -> None:
    response = ScriptedModel().complete(request("Say hello to the team. Keep it short."))

    assert response.text == "Say hello to the team. Keep it short." and response.tool_calls == []


def test_a_script_picks_each_turns_action_including_parallel_calls() -> None:
    script = [
        [
            {"call": "lookup_inventory", "arguments": {"item": "a"}},
            {"call": "lookup_inventory", "arguments": {"item": "b"}},
        ],
        {"answer": "Both in stock."},
    ]
    calls = ScriptedModel().complete(request("Anything.", script=script)).tool_calls
    turn_one = [Message(role="assistant", tool_calls=calls), Message(role="tool")]

    assert [c.arguments for c in calls] == [{"item": "a"}, {"item": "b"}]
    assert [c.id for c in calls] == ["call_0_0", "call_0_1"]
    assert ScriptedModel().complete(request("Anything.", turn_one, script)).text == "Both in stock."


def test_plain_prompts_are_unchanged_by_tool_support() -> None:
    response = ScriptedModel().complete(ModelRequest(model_id="m", prompt="One. Two. Three."))

    assert response.text == "One. Two." and response.usage == Usage(input_tokens=4, output_tokens=3)
