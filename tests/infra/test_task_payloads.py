"""Every payload a synthesized state machine sends a Lambda is a sutram.contracts task, as the Lambda
parses it: infra and the runtime share one vocabulary, and a key the runtime does not know fails here.

A Lambda Task's payload is its Parameters when the Task invokes the function directly (its
Resource is the function's ARN: payload_response_only), or Parameters.Payload when it goes through
`lambda:invoke` (a waitForTaskToken task). Its `key.$` paths become sample values for `key` before
the payload is validated with sutram.contracts.TASKS, as Step Functions would resolve them at run time.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any, get_args

import pytest
from pydantic import BaseModel, ValidationError

from sutram.contracts import TASKS, Task, task_name
from tests.infra.support import joined

LAMBDA_INVOKE = ":states:::lambda:invoke"
WAIT_FOR_TOKEN = ":states:::lambda:invoke.waitForTaskToken"
# An agent's continuation starts a new execution of its own state machine: not a Lambda payload.
START_EXECUTION = "arn:aws:states:::states:startExecution"

# What a `<field>.$` path resolves to at run time, by field name.
SAMPLES: dict[str, Any] = {
    "run": {"tenant": "acme", "run_id": "r-1", "workflow": "w"},
    "delivery": 0,
    "turn": 0,
    "first_turn": 0,
    "call": 0,
    "scope": "",
    "task_token": "token",
    "entered_at": "2025-01-01T00:00:00Z",
    "approval": None,
    "output": {},
    "error": {"Error": "States.ALL", "Cause": "x"},
    "compensation": {"undone": ["order"], "not_undone": []},
    "input": {},
}


def _models() -> tuple[type[BaseModel], ...]:
    union, _discriminator = get_args(Task)
    return get_args(union)


def _intrinsic(value: dict[str, Any]) -> str:
    """An intrinsic of the DefinitionString's Fn::Join as text that keeps its JSON string valid."""
    return json.dumps(value).replace('"', "'")


def _asl(machine: dict[str, Any]) -> dict[str, Any]:
    """A state machine's ASL: its DefinitionString's Fn::Join, joined, with each intrinsic as its text."""
    definition: dict[str, Any] = json.loads(joined(machine["Properties"]["DefinitionString"], _intrinsic))
    return definition


def _states(states: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every state, those of Map iterations and Parallel branches included, by name."""
    for name, state in states.items():
        yield name, state
        nested = [*state.get("Branches", []), *(state[key] for key in ("ItemProcessor", "Iterator") if key in state)]
        for graph in nested:
            yield from _states(graph["States"])


def _lambda_functions(template: dict[str, Any]) -> set[str]:
    return {lid for lid, resource in template["Resources"].items() if resource["Type"] == "AWS::Lambda::Function"}


def _payload(state: dict[str, Any], functions: set[str]) -> dict[str, Any] | None:
    """The Lambda payload of a Task state, None for the agent's continuation; any other Task fails."""
    resource = state["Resource"]
    if resource == START_EXECUTION:
        return None
    if resource.endswith((LAMBDA_INVOKE, WAIT_FOR_TOKEN)):
        payload: dict[str, Any] = state["Parameters"]["Payload"]
        return payload
    if resource in {_intrinsic({"Fn::GetAtt": [function, "Arn"]}) for function in functions}:
        return dict(state["Parameters"])
    raise AssertionError(f"a Task invokes {resource}: neither a Lambda function nor the agent's continuation")


def task_payloads(template: dict[str, Any]) -> dict[str, dict[str, dict[str, Any]]]:
    """The Lambda payloads of every state machine (by name), by state name, as synthesized."""
    functions = _lambda_functions(template)
    machines: dict[str, dict[str, dict[str, Any]]] = {}
    for resource in template["Resources"].values():
        if resource["Type"] != "AWS::StepFunctions::StateMachine":
            continue
        payloads = machines.setdefault(resource["Properties"]["StateMachineName"], {})
        for name, state in _states(_asl(resource)["States"]):
            if state["Type"] == "Task" and (payload := _payload(state, functions)) is not None:
                payloads[name] = payload
    return machines


def resolve(payload: dict[str, Any], *, in_sources: bool = False) -> dict[str, Any]:
    """The payload as the Lambda receives it: a `key.$` path becomes the sample value for `key`. In
    `sources` (the state roots a step reads) any value will do, so an unknown key gets {}; elsewhere
    it keeps its path, for the contract to accept (a str field) or to name as not fitting."""
    resolved: dict[str, Any] = {}
    for key, value in payload.items():
        if key.endswith(".$"):
            name = key.removesuffix(".$")
            fallback = {} if in_sources else value
            resolved[name] = copy.deepcopy(SAMPLES[name]) if name in SAMPLES else fallback
        elif isinstance(value, dict) and (in_sources or key == "sources"):
            resolved[key] = resolve(value, in_sources=True)
        else:
            resolved[key] = value
    return resolved


def test_every_lambda_payload_of_every_state_machine_is_a_contracts_task(template: dict[str, Any]) -> None:
    machines = task_payloads(template)
    assert machines, "the template has no state machine"
    failures, kinds = [], set()
    for machine, payloads in sorted(machines.items()):
        assert payloads, f"{machine} has no Lambda task payload"
        for state, payload in payloads.items():
            try:
                kinds.add(TASKS.validate_python(resolve(payload)).task)
            except ValidationError as error:
                failures.append(f"{machine}, state {state!r}: {error}")
    assert not failures, "payloads that do not fit sutram.contracts:\n\n" + "\n\n".join(failures)
    assert kinds == {task_name(model) for model in _models()}, "the test workflows no longer use every task"


@pytest.mark.parametrize("drift", [{"agent_action.$": "$.action"}, {"agent_action": "act"}])
def test_a_payload_key_the_contracts_do_not_declare_fails_validation(
    template: dict[str, Any], drift: dict[str, Any]
) -> None:
    payloads = {name: payload for machine in task_payloads(template).values() for name, payload in machine.items()}
    by_kind = {payload["task"]: payload for payload in payloads.values()}
    assert set(by_kind) == {task_name(model) for model in _models()}

    for kind, payload in by_kind.items():
        TASKS.validate_python(resolve(payload))  # as synthesized, it fits
        with pytest.raises(ValidationError) as raised:
            TASKS.validate_python(resolve(payload | drift))
        [error] = raised.value.errors()
        assert error["type"] == "extra_forbidden" and error["loc"] == (kind, "agent_action"), error
