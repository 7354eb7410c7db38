"""infra.workflow.agent: the states of an agent's loop, as ASL (execution is tests/integration/test_agent_loop.py)."""

from __future__ import annotations

import json
from typing import Any

from aws_cdk import App, Stack
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks

from infra.workflow import agent_states
from sutram.definition import AgentStep

STEP = {"id": "triage", "type": "agent", "prompt": "Go.", "tools": ["extract_text"], "timeout_seconds": 30}
PAYLOAD = {"run.$": "$.run", "delivery.$": "$$.State.RetryCount", "step": STEP, "sources": {}, "scope.$": "$.scope"}


def test_serial_tool_calls_keep_no_output_and_hooks_see_every_task_and_the_map() -> None:
    stack = Stack(App(), "Agent")
    function = lambda_.Function.from_function_arn(stack, "Step", "arn:aws:lambda:us-east-1:123456789012:function:f")
    retried: list[str] = []
    caught: list[str] = []

    def add_retries(task: tasks.LambdaInvoke) -> None:
        retried.append(task.node.id)
        task.add_retry(errors=["TransientStepError"])

    def add_catch(state: Any) -> None:
        caught.append(state.node.id)

    step = AgentStep.model_validate(STEP | {"parallel_tool_calls": False})
    first, last = agent_states(
        stack,
        step,
        step_function=function,
        payload_common=PAYLOAD,
        loop="$.agents.triage",
        result_path=sfn.JsonPath.DISCARD,
        add_retries=add_retries,
        add_catch=add_catch,
    )
    graph = json.loads(stack.resolve(stack.to_json_string(sfn.StateGraph(first, "agent").to_graph_json())))
    states = graph["States"]

    assert graph["StartAt"] == "triage:start"
    assert retried == ["triage", "triage:call"] and caught == ["triage", "triage:tools"]
    assert states["triage"]["Parameters"]["turn.$"] == "$.agents.triage.turn"
    assert states["triage"]["TimeoutSeconds"] == 30
    tools = states["triage:tools"]
    assert tools["MaxConcurrency"] == 1
    assert tools["ItemSelector"] == {
        "run.$": "$.run",
        "scope.$": "$.scope",
        "turn.$": "$.agents.triage.turn",
        "call.$": "$$.Map.Item.Value.call",
    }
    call = tools["ItemProcessor"]["States"]["triage:call"]["Parameters"]
    assert call["run.$"] == "$.run" and call["scope.$"] == "$.scope" and call["task"] == "agent_tool"
    assert "sources" not in call
    assert states["triage:next"]["Parameters"] == {
        "turn.$": "States.MathAdd($.agents.triage.turn, 1)",
        "first_turn.$": "$.agents.triage.first_turn",
    }
    assert last is not None and states["triage:output"]["ResultPath"] is None  # in the template: null
    assert json.dumps(states).count('"Retry"') == 2


def graph_of(step: AgentStep, **hooks: Any) -> dict[str, Any]:
    stack = Stack(App(), "Agent")
    function = lambda_.Function.from_function_arn(stack, "Step", "arn:aws:lambda:us-east-1:123456789012:function:f")
    first, _ = agent_states(
        stack,
        step,
        step_function=function,
        payload_common=PAYLOAD,
        loop="$.agents.triage",
        result_path=sfn.JsonPath.DISCARD,
        **hooks,
    )
    graph: dict[str, Any] = stack.resolve(sfn.StateGraph(first, "agent").to_graph_json())
    return graph


def test_a_call_needing_approval_asks_its_tools_approval_task_then_runs_again_with_the_decision() -> None:
    refund = {"name": "issue_refund", "approval": {"group": "finance", "timeout_seconds": 7200}}
    order = {"name": "place_order", "approval": {"group": "buyers", "timeout_seconds": 60}}
    step = AgentStep.model_validate(STEP | {"tools": ["lookup_order", refund, order]})
    asking: list[str] = []

    tools = graph_of(step, add_request_retries=lambda task: asking.append(task.node.id))["States"]["triage:tools"]

    assert tools["ItemSelector"]["approval.$"] == "States.StringToJson('null')"  # no decision yet
    states = tools["ItemProcessor"]["States"]
    call = states["triage:call"]
    assert call["Parameters"]["approval.$"] == "$.approval"
    assert call["ResultPath"] == "$.called" and call["Next"] == "triage:approval?"
    # A call that answers needs_approval goes to its tool's approval task; any other ends the iteration.
    assert states["triage:approval?"]["Choices"] == [
        {
            "And": [
                {"Variable": "$.called.needs_approval", "IsPresent": True},
                {"Variable": "$.called.name", "StringEquals": name},
            ],
            "Next": f"triage:approve {name}",
        }
        for name in ("issue_refund", "place_order")
    ]
    assert states["triage:approval?"]["Default"] == "triage:called"
    assert states["triage:called"] == {"Type": "Succeed"}
    assert asking == ["triage:approve issue_refund", "triage:approve place_order"]
    for name, deadline in (("issue_refund", 7200), ("place_order", 60)):
        ask = states[f"triage:approve {name}"]
        assert ask["Resource"]["Fn::Join"][1][-1] == ":states:::lambda:invoke.waitForTaskToken"
        assert ask["TimeoutSeconds"] == deadline and ask["ResultPath"] == "$.approval"
        assert ask["Parameters"]["Payload"] | {"step": None} == {
            "run.$": "$.run",
            "scope.$": "$.scope",
            "step": None,
            "turn.$": "$.turn",
            "call.$": "$.call",
            "task": "tool_approval",
            "approval_action": "request",
            "task_token.$": "$$.Task.Token",
            "entered_at.$": "$$.State.EnteredTime",
        }
        assert ask["Catch"] == [{"ErrorEquals": ["States.Timeout"], "Next": "triage:no decision"}]
        assert ask["Next"] == "triage:call"
    assert states["triage:no decision"] == {
        "Type": "Pass",
        "ResultPath": "$.approval",
        "Parameters": {
            "outcome": "expired",
            "proposal.$": "States.StringToJson('null')",
            "by.$": "States.StringToJson('null')",
            "comment.$": "States.StringToJson('null')",
        },
        "Next": "triage:call",
    }


def test_a_gated_tool_waits_a_day_by_default_and_ungated_agents_get_no_approval_states() -> None:
    refund = {"name": "issue_refund", "approval": {"group": "finance"}}
    gated = graph_of(AgentStep.model_validate(STEP | {"tools": ["lookup_order", refund]}))["States"]
    plain = graph_of(AgentStep.model_validate(STEP))["States"]

    gated_states = gated["triage:tools"]["ItemProcessor"]["States"]
    assert set(gated_states) == {
        "triage:call",
        "triage:approval?",
        "triage:approve issue_refund",
        "triage:no decision",
        "triage:called",
    }
    assert gated_states["triage:approve issue_refund"]["TimeoutSeconds"] == 86_400
    assert list(plain["triage:tools"]["ItemProcessor"]["States"]) == ["triage:call"]
    assert "approval.$" not in plain["triage:tools"]["ItemProcessor"]["States"]["triage:call"]["Parameters"]


def test_a_gated_tools_missed_deadline_escalates_or_fails_as_declared() -> None:
    escalating = {
        "name": "issue_refund",
        "approval": {
            "group": "finance",
            "on_timeout": "escalate",
            "escalate_to": "cfo",
            "escalate_timeout_seconds": 600,
        },
    }
    failing = {"name": "place_order", "approval": {"group": "buyers", "on_timeout": "fail"}}
    step = AgentStep.model_validate(STEP | {"tools": [escalating, failing]})

    states = graph_of(step)["States"]["triage:tools"]["ItemProcessor"]["States"]

    assert states["triage:approve issue_refund"]["Catch"] == [
        {"ErrorEquals": ["States.Timeout"], "Next": "triage:escalate issue_refund"}
    ]
    escalate = states["triage:escalate issue_refund"]
    assert escalate["TimeoutSeconds"] == 600 and escalate["Next"] == "triage:call"
    assert escalate["Parameters"]["Payload"]["approval_action"] == "escalate"
    assert escalate["Catch"] == [{"ErrorEquals": ["States.Timeout"], "Next": "triage:no decision"}]
    assert states["triage:approve place_order"]["Catch"] == [
        {"ErrorEquals": ["States.Timeout"], "Next": "triage:place_order undecided"}
    ]
    assert states["triage:place_order undecided"] == {  # fails the Map, and the agent with it
        "Type": "Fail",
        "Error": "Sutram.ApprovalTimedOut",
        "Cause": "no one decided on a call of place_order by agent triage before its approval deadline",
    }
