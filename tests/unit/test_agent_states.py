"""infra.agent: the states of an agent's loop, as ASL (execution is tests/integration/test_agent_loop.py)."""

from __future__ import annotations

import json
from typing import Any

from aws_cdk import App, Stack
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks

from infra.agent import agent_states
from sutram.agent import AgentStep

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
    assert call["run.$"] == "$.run" and call["scope.$"] == "$.scope" and call["agent_action"] == "tool"
    assert "sources" not in call
    assert states["triage:next"]["Parameters"] == {
        "turn.$": "States.MathAdd($.agents.triage.turn, 1)",
        "first_turn.$": "$.agents.triage.first_turn",
    }
    assert last is not None and states["triage:output"]["ResultPath"] is None  # in the template: null
    assert json.dumps(states).count('"Retry"') == 2
