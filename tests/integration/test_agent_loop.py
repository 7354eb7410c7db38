"""The agent loop that infra.workflow.agent builds, executed by the local cloud's Step Functions: turns and
tool calls through the Map, the answer at $.steps.<id>, and the history events each turn costs."""

from __future__ import annotations

import json
import uuid
from typing import Any

import boto3
from aws_cdk import App, Stack
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk.assertions import Template

from infra.workflow import agent_states
from localcloud.cloud import ACCOUNT, REGION
from localcloud.template import resolve
from sutram.definition import AgentStep
from tests.integration import lambdas
from tests.integration.support import wait_for_execution
from tests.support import execution_history

FUNCTION = "AgentLoopStep"
FUNCTION_ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{FUNCTION}"
TOOL = lambdas.lookup_inventory  # registered here too: the step definition below names it


def agent_asl(step: AgentStep) -> str:
    """The ASL of a state machine made of the agent's states alone, with local ARNs."""
    stack = Stack(App(), "AgentLoop")
    function = lambda_.Function.from_function_arn(stack, "Step", FUNCTION_ARN)
    payload = {
        "run.$": "$.run",
        "delivery.$": "$$.State.RetryCount",
        "step": step.model_dump(mode="json", exclude_defaults=True) | {"id": step.id, "type": step.type},
        "sources": {"input.$": "$.input"},
        "scope": "",
    }
    first, _ = agent_states(
        stack,
        step,
        step_function=function,
        payload_common=payload,
        loop=f"$.agents.{step.id}",
        result_path=f"$.steps.{step.id}",
    )
    sfn.StateMachine(stack, "Machine", definition_body=sfn.DefinitionBody.from_chainable(first))
    [machine] = Template.from_stack(stack).find_resources("AWS::StepFunctions::StateMachine").values()
    return str(resolve(machine["Properties"]["DefinitionString"], str, lambda *_: "", {"AWS::Partition": "aws"}))


def execute(asl: str, run_input: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    client = boto3.client("stepfunctions")
    name = f"agent-{uuid.uuid4().hex[:8]}"
    machine = client.create_state_machine(
        name=name, definition=asl, roleArn=f"arn:aws:iam::{ACCOUNT}:role/sutram-local"
    )
    execution = client.start_execution(stateMachineArn=machine["stateMachineArn"], input=json.dumps(run_input))
    described = wait_for_execution(execution["executionArn"])
    assert described["status"] == "SUCCEEDED", described
    return json.loads(described["output"]), execution_history(execution["executionArn"])


def test_the_loop_runs_turns_and_tool_calls_until_the_answer_with_flat_history_per_turn(cloud: Any) -> None:
    step_function = cloud.function_named("sutram.handlers.step.handler")
    cloud.add_function(FUNCTION, "tests.integration.lambdas.agent_step", step_function.environment)
    lookup = {"call": "it_lookup_inventory", "arguments": {"item": "widget"}}

    def run(tool_turns: int) -> tuple[dict[str, Any], int]:
        step = AgentStep.model_validate(
            {
                "id": "triage",
                "type": "agent",
                "prompt": "Check {{item}}.",
                "input": {"item": "$.input.item"},
                "tools": ["it_lookup_inventory"],
                "script": [[lookup, lookup]] * tool_turns + [{"answer": "in stock"}],
            }
        )
        run_ref = {"tenant": "acme", "run_id": f"r-{uuid.uuid4().hex}", "workflow": "agent-loop"}
        output, events = execute(agent_asl(step), {"run": run_ref, "input": {"item": "widget"}})
        return output, len(events)

    output, events_2 = run(tool_turns=2)
    _, events_5 = run(tool_turns=5)

    assert output["steps"]["triage"] == {"answer": "in stock", "finish_reason": "answered", "turns": 3}
    assert output["agents"]["triage"]["done"] is True
    # Every turn costs the same history events, however long the conversation: the turn task 5,
    # the choice 2, the Map 4 plus 7 per tool call (2 here), the turn increment 2.
    assert (events_5 - events_2) / 3 == 5 + 2 + 4 + 7 * 2 + 2
