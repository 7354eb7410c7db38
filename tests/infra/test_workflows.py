"""One Standard state machine per workflow: traced, logged, and only the states the design allows."""

from __future__ import annotations

from typing import Any

from aws_cdk.assertions import Match, Template

from infra import constants
from infra.workflow import lease_wait_attempts
from sutram.definition import WorkflowDefinition

BOOKKEEPING_STATES = {"RecordSuccess", "RecordFailure", "Failed"}


def _machine_name(definition: WorkflowDefinition) -> str:
    return f"{constants.STACK_NAME}-{definition.name}"


def test_one_standard_traced_logged_state_machine_per_workflow(
    cdk_template: Template, definitions: list[WorkflowDefinition]
) -> None:
    cdk_template.resource_count_is("AWS::StepFunctions::StateMachine", len(definitions))
    for definition in definitions:
        cdk_template.has_resource_properties(
            "AWS::StepFunctions::StateMachine",
            {
                "StateMachineName": _machine_name(definition),
                "StateMachineType": "STANDARD",
                "TracingConfiguration": {"Enabled": True},
                "LoggingConfiguration": {
                    "Destinations": [{"CloudWatchLogsLogGroup": {"LogGroupArn": Match.any_value()}}],
                    "Level": "ERROR",
                    "IncludeExecutionData": False,
                },
            },
        )


def test_states_are_the_steps_plus_three_bookkeeping_states(
    state_machine_definitions: dict[str, dict[str, Any]], definitions: list[WorkflowDefinition]
) -> None:
    for definition in definitions:
        states = state_machine_definitions[_machine_name(definition)]["States"]
        assert set(states) == {step.id for step in definition.steps} | BOOKKEEPING_STATES
        assert len(states) == len(definition.steps) + len(BOOKKEEPING_STATES)


def test_steps_run_in_order_and_end_by_recording_success(
    state_machine_definitions: dict[str, dict[str, Any]], definitions: list[WorkflowDefinition]
) -> None:
    for definition in definitions:
        asl = state_machine_definitions[_machine_name(definition)]
        ids = [step.id for step in definition.steps]
        assert asl["StartAt"] == ids[0]
        assert [asl["States"][step_id]["Next"] for step_id in ids] == [*ids[1:], "RecordSuccess"]
        assert asl["States"]["RecordSuccess"]["End"] is True
        assert asl["States"]["RecordFailure"]["Next"] == "Failed"
        assert asl["States"]["Failed"]["Type"] == "Fail"


def test_every_step_task_retries_and_catches_into_record_failure(
    state_machine_definitions: dict[str, dict[str, Any]], definitions: list[WorkflowDefinition]
) -> None:
    for definition in definitions:
        states = state_machine_definitions[_machine_name(definition)]["States"]
        for step in definition.steps:
            task = states[step.id]
            assert task["Type"] == "Task"
            assert task["TimeoutSeconds"] == step.timeout_seconds
            assert task["Retry"][0]["ErrorEquals"] == ["StepInProgress"]
            if step.retry.max_attempts:
                assert task["Retry"][1]["ErrorEquals"] == [e for e in step.retry.errors if e != "StepInProgress"]
                assert task["Retry"][1]["MaxAttempts"] == step.retry.max_attempts
            assert task["Catch"] == [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "RecordFailure"}]


def test_recording_the_end_of_a_run_survives_lambda_throttling(
    state_machine_definitions: dict[str, dict[str, Any]],
) -> None:
    for asl in state_machine_definitions.values():
        for name in ("RecordSuccess", "RecordFailure"):
            (retry,) = asl["States"][name]["Retry"]
            assert {"Lambda.TooManyRequestsException", "Lambda.ServiceException"} <= set(retry["ErrorEquals"])
            assert "Catch" not in asl["States"][name]  # a failure here must fail the execution


def test_tasks_invoke_the_step_and_finish_functions_directly(template: dict[str, Any]) -> None:
    for resource in Template.from_json(template).find_resources("AWS::StepFunctions::StateMachine").values():
        refs = [part for part in resource["Properties"]["DefinitionString"]["Fn::Join"][1] if isinstance(part, dict)]
        assert {ref["Fn::GetAtt"][0] for ref in refs} == {constants.STEP_FUNCTION_ID, constants.FINISH_FUNCTION_ID}


def test_a_step_waits_out_a_live_lease_before_its_own_retry_policy_applies(
    state_machine_definitions: dict[str, dict[str, Any]],
) -> None:
    states = state_machine_definitions[f"{constants.STACK_NAME}-document-analysis"]["States"]
    first_retrier = states["summarise"]["Retry"][0]
    assert first_retrier["ErrorEquals"] == ["StepInProgress"]
    assert first_retrier["MaxAttempts"] == lease_wait_attempts(120)
    waited = sum(min(5 * 2**i, 60) for i in range(first_retrier["MaxAttempts"]))
    assert waited >= 120 + 30  # the step's timeout plus the lease margin
    assert all("StepInProgress" not in retrier["ErrorEquals"] for retrier in states["summarise"]["Retry"][1:])
