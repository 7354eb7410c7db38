"""One Standard state machine per workflow: traced, logged, and only the states the design allows."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk.assertions import Match, Template

from infra import constants
from infra.workflow import choice_rule, lease_wait_attempts
from sutram.definition import (
    AgentStep,
    AnyStep,
    ApprovalStep,
    ChoiceStep,
    Condition,
    LlmStep,
    MapStep,
    ToolStep,
    WorkflowDefinition,
    child_lists,
    walk,
)

BOOKKEEPING_STATES = {"RecordSuccess", "RecordFailure", "Failed"}


def _machine_name(definition: WorkflowDefinition) -> str:
    return f"{constants.STACK_NAME}-{definition.name}"


def _asl(machines: dict[str, dict[str, Any]], workflow: str) -> dict[str, Any]:
    return machines[f"{constants.STACK_NAME}-{workflow}"]


def _same_level(steps: list[AnyStep]) -> list[AnyStep]:
    """The steps whose states share a States map: a choice's branches do, a map's or a parallel's don't."""
    found = []
    for step in steps:
        found.append(step)
        if isinstance(step, ChoiceStep):
            found += [s for _, nested in child_lists(step) for s in _same_level(nested)]
    return found


def _task_states(states: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every Task state, nested ones included, by name."""
    found = {}
    for name, state in states.items():
        if state["Type"] == "Task":
            found[name] = state
        for branch in [*state.get("Branches", []), *([state["ItemProcessor"]] if "ItemProcessor" in state else [])]:
            found |= _task_states(branch["States"])
    return found


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
                    "Level": "ALL",
                    "IncludeExecutionData": False,
                },
            },
        )


def test_states_are_the_steps_plus_three_bookkeeping_states(
    state_machine_definitions: dict[str, dict[str, Any]], definitions: list[WorkflowDefinition]
) -> None:
    for definition in definitions:
        states = state_machine_definitions[_machine_name(definition)]["States"]
        ids = [step.id for step in _same_level(list(definition.steps))]
        # An agent is its loop: entry, turn task, done? choice, tools Map, next-turn and output passes,
        # and at the top level the resume? choice and the continuation to a fresh execution.
        ids += [
            f"{step.id}:{part}"
            for step in definition.steps
            if isinstance(step, AgentStep)
            for part in ("start", "done?", "tools", "next", "output", "resume?", "resumed", "continue", "continued")
        ]
        # A workflow with compensations undoes them on its failure path, before RecordFailure.
        ids += ["Compensate"] if definition.compensated_steps() else []
        # A step that may pause the run waits in a task of its own while paused.
        ids += [f"{step.id}:paused" for step in _same_level(list(definition.steps)) if getattr(step, "on_error", None)]
        # A distributed map first writes its list to S3, for its ItemReader.
        ids += [f"{step.id}:items" for step in definition.steps if isinstance(step, MapStep) and step.distributed]
        # An approval waits in its own state, then on timeout rejects (expired pass), escalates, or
        # fails (a pass naming the error, on to the failure path).
        timeout_states = {"reject": ["expired"], "escalate": ["escalated", "expired"], "fail": ["undecided"]}
        ids += [
            f"{step.id} {part}"
            for step in _same_level(list(definition.steps))
            if isinstance(step, ApprovalStep)
            for part in timeout_states[step.on_timeout]
        ]
        assert set(states) == set(ids) | BOOKKEEPING_STATES
        assert len(states) == len(ids) + len(BOOKKEEPING_STATES)


def test_a_sequence_of_tasks_runs_in_order_and_ends_by_recording_success(
    state_machine_definitions: dict[str, dict[str, Any]],
) -> None:
    asl = _asl(state_machine_definitions, "document-analysis")
    ids = ["extract", "study", "report"]  # `study` is a Parallel of the two model calls
    assert asl["StartAt"] == ids[0]
    assert [asl["States"][step_id]["Next"] for step_id in ids] == [*ids[1:], "RecordSuccess"]
    assert asl["States"]["RecordSuccess"]["End"] is True
    assert asl["States"]["RecordFailure"]["Next"] == "Failed"
    assert asl["States"]["Failed"]["Type"] == "Fail"


def test_every_step_task_retries_and_only_top_level_states_catch_into_record_failure(
    state_machine_definitions: dict[str, dict[str, Any]], definitions: list[WorkflowDefinition]
) -> None:
    for definition in definitions:
        # The failure path starts with the compensations, where the workflow has any.
        first = "Compensate" if definition.compensated_steps() else "RecordFailure"
        catch = [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": first}]
        states = state_machine_definitions[_machine_name(definition)]["States"]
        tasks = _task_states(states)
        top_level = {step.id for step in _same_level(list(definition.steps))}
        for step in walk(list(definition.steps)):
            if not isinstance(step, LlmStep | ToolStep):
                continue
            task = tasks[step.id]
            assert task["TimeoutSeconds"] == step.timeout_seconds
            assert task["Retry"][0]["ErrorEquals"] == ["StepInProgress"]
            if step.retry.max_attempts:
                assert task["Retry"][1]["ErrorEquals"] == [e for e in step.retry.errors if e != "StepInProgress"]
                assert task["Retry"][1]["MaxAttempts"] == step.retry.max_attempts
            if step.id in top_level:
                # A step that may pause catches its declared errors into its paused state first.
                pausing = (
                    [{"ErrorEquals": step.on_error.pause, "ResultPath": "$.error", "Next": f"{step.id}:paused"}]
                    if step.on_error
                    else []
                )
                assert task["Catch"] == pausing + catch
            else:  # the enclosing Map or Parallel state catches, or a collecting branch's Pass state
                assert all(c["Next"].endswith(" failed") for c in task.get("Catch", []))
        for name in top_level:
            if states[name]["Type"] in ("Map", "Parallel"):
                assert states[name]["Catch"] == catch


def test_a_map_runs_its_steps_per_item_with_the_iteration_index_in_the_scope(
    state_machine_definitions: dict[str, dict[str, Any]],
) -> None:
    states = _asl(state_machine_definitions, "document-batch")["States"]
    assert set(states) == {"analyse", "gather"} | BOOKKEEPING_STATES
    analyse = states["analyse"]
    assert analyse["Type"] == "Map" and analyse["MaxConcurrency"] == 4
    assert analyse["ItemsPath"] == "$.input.documents"
    # A value lives in a slot from its step to its last reader: `analyse` until `gather`, which
    # then takes the same slot.
    assert analyse["ResultPath"] == "$.slots.s0" and analyse["Next"] == "gather"
    assert analyse["ItemSelector"] == {
        "run.$": "$.run",
        "scope.$": "States.Format('analyse[{}]/', $$.Map.Item.Index)",
        "item.$": "$$.Map.Item.Value",
    }
    processor = analyse["ItemProcessor"]
    assert processor["ProcessorConfig"] == {"Mode": "INLINE"}
    assert list(processor["States"]) == ["extract", "summarise", "entities", "report"]
    extract, report = processor["States"]["extract"], processor["States"]["report"]
    assert extract["Parameters"]["scope.$"] == "$.scope"
    assert extract["Parameters"]["sources"] == {"item.$": "$.item"}
    assert extract["ResultPath"] == "$.slots.s0"  # the iteration's state is a frame of its own
    assert report["ResultPath"] == "$" and report["End"] is True  # the iteration's output
    assert states["gather"] == {
        "Type": "Pass",
        "Parameters": {"reports.$": "$.slots.s0"},
        "ResultPath": "$.slots.s0",
        "Next": "RecordSuccess",
    }
    assert states["RecordSuccess"]["Parameters"]["output.$"] == "$.slots.s0"


def test_a_map_copies_into_each_iteration_only_the_outer_roots_its_steps_read(
    state_machine_definitions: dict[str, dict[str, Any]],
) -> None:
    states = _asl(state_machine_definitions, "language-map")["States"]
    assert states["not_before"] == {"Type": "Wait", "TimestampPath": "$.input.not_before", "Next": "count"}
    count = states["count"]
    assert count["MaxConcurrency"] == 5
    assert count["ItemSelector"]["input.$"] == "$.input"
    words = count["ItemProcessor"]["States"]["words"]
    assert words["Parameters"]["sources"] == {"item.$": "$.item", "input.$": "$.input"}


def test_a_distributed_map_runs_standard_child_executions(state_machine_definitions: dict[str, dict[str, Any]]) -> None:
    tally_all = _asl(state_machine_definitions, "language-distributed")["States"]["tally_all"]
    assert tally_all["ItemProcessor"]["ProcessorConfig"] == {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}
    assert tally_all["MaxConcurrency"] == 50


def test_a_choice_compiles_its_conditions_to_choice_rules_and_its_branches_rejoin(
    state_machine_definitions: dict[str, dict[str, Any]],
) -> None:
    states = _asl(state_machine_definitions, "language-choice")["States"]
    route = states["route"]
    assert route["Type"] == "Choice"
    assert route["Choices"] == [
        {"Variable": "$.slots.s0.entities[0]", "IsPresent": False, "Next": "general"},
        {"Variable": "$.input.ticket", "StringMatches": "Billing*", "Next": "billing"},
        {
            "And": [
                {"Variable": "$.input.priority", "NumericGreaterThanEquals": 3},
                {"Not": {"Variable": "$.input.ticket", "StringEquals": "ignore me"}},
            ],
            "Next": "page_later",
        },
    ]
    assert route["Default"] == "named"
    assert states["page_later"] == {"Type": "Wait", "Seconds": 1, "Next": "escalate"}
    for last in ("general", "billing", "escalate", "named"):  # each branch's output is the choice's
        assert states[last]["Type"] == "Pass"
        # classify is last read by the choice itself, so the choice's output takes its slot
        assert states[last]["ResultPath"] == "$.slots.s0" and states[last]["Next"] == "audit"
    assert states["billing"]["Parameters"] == {"team": "billing", "ticket.$": "$.input.ticket"}
    assert states["general"]["Parameters"] == {"team": "general", "tags": ["triage"]}
    assert states["classify"]["ResultPath"] == "$.slots.s0"  # the choice reads it
    # Without `otherwise`, no match goes straight on; the output of `audit` is read by nobody.
    assert states["audit"]["Default"] == "confirm"
    assert states["flag"]["ResultPath"] is None and states["flag"]["Next"] == "confirm"
    assert states["named"]["Next"] == states["escalate"]["Next"] == "audit"


def test_a_parallel_names_its_branch_outputs_and_composes_scopes(
    state_machine_definitions: dict[str, dict[str, Any]],
) -> None:
    for workflow, suffix in (("language-parallel-fail-fast", "fail"), ("language-parallel-collect", "collect")):
        states = _asl(state_machine_definitions, workflow)["States"]
        assert set(states) == {f"fanout_{suffix}"} | BOOKKEEPING_STATES
        fanout = states[f"fanout_{suffix}"]
        assert fanout["Type"] == "Parallel"
        assert fanout["ResultSelector"] == {"stats.$": "$[0]", "docs.$": "$[1]"}
        stats, docs = fanout["Branches"]
        assert stats["States"][f"stats_{suffix}"]["Parameters"]["scope"] == f"fanout_{suffix}.stats/"
        each = docs["States"][f"each_{suffix}"]
        assert (
            each["ItemSelector"]["scope.$"]
            == f"States.Format('fanout_{suffix}.docs/each_{suffix}[{{}}]/', $$.Map.Item.Index)"
        )
        failed = {"Type": "Pass", "Parameters": {"error.$": "$.error"}, "End": True}
        if suffix == "fail":
            assert set(stats["States"]) == {"stats_fail"} and "Catch" not in stats["States"]["stats_fail"]
            assert "Catch" not in each
        else:
            # Only the failure path has an extra state: the branch's error becomes its output.
            assert stats["States"]["fanout_collect.stats failed"] == failed
            assert docs["States"]["fanout_collect.docs failed"] == failed
            assert each["Catch"] == [
                {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "fanout_collect.docs failed"}
            ]
            assert "Catch" not in each["ItemProcessor"]["States"]["extract_collect"]


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
        # The other references are the partition in the ARN of `approval` tasks' waitForTaskToken resource.
        functions = {ref["Fn::GetAtt"][0] for ref in refs if "Fn::GetAtt" in ref}
        assert functions == {constants.STEP_FUNCTION_ID, constants.FINISH_FUNCTION_ID}


def test_a_step_waits_out_a_live_lease_before_its_own_retry_policy_applies(
    state_machine_definitions: dict[str, dict[str, Any]],
) -> None:
    states = _task_states(state_machine_definitions[f"{constants.STACK_NAME}-document-analysis"]["States"])
    first_retrier = states["summarise"]["Retry"][0]
    assert first_retrier["ErrorEquals"] == ["StepInProgress"]
    assert first_retrier["MaxAttempts"] == lease_wait_attempts(120)
    waited = sum(min(5 * 2**i, 60) for i in range(first_retrier["MaxAttempts"]))
    assert waited >= 120 + 30  # the step's timeout plus the lease margin
    assert all("StepInProgress" not in retrier["ErrorEquals"] for retrier in states["summarise"]["Retry"][1:])


@pytest.mark.parametrize(
    ("condition", "rule"),
    [
        ({"var": "$.input.n", "equals": 3}, {"Variable": "$.input.n", "NumericEquals": 3}),
        ({"var": "$.input.ok", "equals": True}, {"Variable": "$.input.ok", "BooleanEquals": True}),
        ({"var": "$.input.s", "equals": None}, {"Variable": "$.input.s", "IsNull": True}),
        (
            {"var": "$.input.s", "not_equals": "x"},
            {"Not": {"Variable": "$.input.s", "StringEquals": "x"}},
        ),
        ({"var": "$.input.n", "less_than": 2.5}, {"Variable": "$.input.n", "NumericLessThan": 2.5}),
        ({"var": "$.input.d", "less_than_or_equal": "2026"}, {"Variable": "$.input.d", "StringLessThanEquals": "2026"}),
        ({"var": "$.input.s", "greater_than": "m"}, {"Variable": "$.input.s", "StringGreaterThan": "m"}),
        ({"var": "$.input.s", "is_present": False}, {"Variable": "$.input.s", "IsPresent": False}),
        (
            {"any": [{"var": "$.item.a", "matches": "*.pdf"}, {"var": "$.steps.x.n", "greater_than": 1}]},
            {
                "Or": [
                    {"Variable": "$.item.a", "StringMatches": "*.pdf"},
                    {"Variable": "$.steps.x.n", "NumericGreaterThan": 1},
                ]
            },
        ),
    ],
)
def test_conditions_compile_to_the_choice_rule_of_their_values_type(condition, rule) -> None:
    assert choice_rule(Condition.model_validate(condition)).render_condition() == rule


def test_an_approval_waits_for_its_task_token_until_its_deadline_then_takes_its_timeout_path(
    state_machine_definitions: dict[str, dict[str, Any]],
) -> None:
    states = _asl(state_machine_definitions, "approval-timeouts")["States"]
    request = states["quick_escalate"]
    assert request["Resource"].endswith(":states:::lambda:invoke.waitForTaskToken")
    assert request["TimeoutSeconds"] == 1
    assert request["Parameters"]["Payload"]["task_token.$"] == "$$.Task.Token"
    assert request["Parameters"]["Payload"]["approval_action"] == "request"
    assert request["Parameters"]["Payload"]["entered_at.$"] == "$$.State.EnteredTime"
    assert all("States.Timeout" not in retry["ErrorEquals"] for retry in request["Retry"])
    assert [catch["ErrorEquals"] for catch in request["Catch"]] == [["States.Timeout"], ["States.ALL"]]
    assert request["Catch"][0]["Next"] == "quick_escalate escalated"
    escalated = states["quick_escalate escalated"]
    assert escalated["Parameters"]["Payload"]["approval_action"] == "escalate"
    timeout = {"ErrorEquals": ["States.Timeout"], "ResultPath": None, "Next": "quick_escalate expired"}
    assert escalated["Catch"][0] == timeout
    assert states["quick_reject"]["Catch"][0]["Next"] == "quick_reject expired"
    assert states["quick_reject expired"]["Parameters"]["outcome"] == "expired"
    assert states["quick_reject expired"]["Parameters"]["proposal.$"] == "States.StringToJson('null')"
    # fail: the deadline goes down the workflow's failure path, with a named error.
    assert [catch["ErrorEquals"] for catch in states["quick_fail"]["Catch"]] == [["States.Timeout"], ["States.ALL"]]
    assert states["quick_fail"]["Catch"][0]["Next"] == "quick_fail undecided"
    undecided = states["quick_fail undecided"]
    assert undecided["Parameters"] == {
        "Error": "Sutram.ApprovalTimedOut",
        "Cause": "no one decided on approval step quick_fail before its deadline",
    }
    assert undecided["ResultPath"] == "$.error" and undecided["Next"] == "RecordFailure"
