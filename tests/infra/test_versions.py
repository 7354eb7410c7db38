"""Versions: every workflow publishes a version per changed definition, keeps the old ones, and routes
new runs through its `live` alias; the api function knows both ARNs and may start any version."""

from __future__ import annotations

import json
from typing import Any

from infra import constants
from sutram.definition import WorkflowDefinition
from tests.infra.support import joined, role_statements, statement_actions


def _resources(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {key: value for key, value in template["Resources"].items() if value["Type"] == resource_type}


def _machine_of(template: dict[str, Any], workflow: str) -> str:
    machines = _resources(template, "AWS::StepFunctions::StateMachine")
    (logical_id,) = [
        key for key, value in machines.items() if value["Properties"]["StateMachineName"].endswith(workflow)
    ]
    return logical_id


def _api_map(template: dict[str, Any], variable: str) -> dict[str, Any]:
    """An api function JSON map, with each intrinsic as the logical id it names."""
    value = template["Resources"][constants.API_FUNCTION_ID]["Properties"]["Environment"]["Variables"][variable]
    return dict(json.loads(joined(value, lambda part: part.get("Ref") or part["Fn::GetAtt"][0])))


def test_each_workflow_has_one_version_that_follows_its_revision_and_is_retained(
    template: dict[str, Any], definitions: list[WorkflowDefinition]
) -> None:
    versions = _resources(template, "AWS::StepFunctions::StateMachineVersion")
    assert len(versions) == len(definitions)
    for definition in definitions:
        machine = _machine_of(template, definition.name)
        (version,) = [v for v in versions.values() if v["Properties"]["StateMachineArn"] == {"Ref": machine}]
        assert version["Properties"]["StateMachineRevisionId"] == {"Fn::GetAtt": [machine, "StateMachineRevisionId"]}
        assert (version["DeletionPolicy"], version["UpdateReplacePolicy"]) == ("Retain", "Retain")


def test_each_workflow_has_a_live_alias_routing_every_run_to_its_version(
    template: dict[str, Any], definitions: list[WorkflowDefinition]
) -> None:
    versions = _resources(template, "AWS::StepFunctions::StateMachineVersion")
    aliases = _resources(template, "AWS::StepFunctions::StateMachineAlias")
    assert len(aliases) == len(definitions)
    routed = []
    for alias in aliases.values():
        assert alias["Properties"]["Name"] == constants.LIVE_ALIAS
        (route,) = alias["Properties"]["RoutingConfiguration"]
        assert route["Weight"] == 100
        routed.append(route["StateMachineVersionArn"]["Fn::GetAtt"][0])
    assert sorted(routed) == sorted(versions)


def test_the_api_function_knows_each_workflows_state_machine_and_alias(
    template: dict[str, Any], definitions: list[WorkflowDefinition]
) -> None:
    machines = _api_map(template, constants.ENV_STATE_MACHINES)
    aliases = _api_map(template, constants.ENV_WORKFLOW_ALIASES)
    names = {definition.name for definition in definitions}
    assert set(machines) == set(aliases) == names
    for name in names:
        assert machines[name] == _machine_of(template, name)
        alias = template["Resources"][aliases[name]]
        assert alias["Type"] == "AWS::StepFunctions::StateMachineAlias"
        version = alias["Properties"]["RoutingConfiguration"][0]["StateMachineVersionArn"]["Fn::GetAtt"][0]
        assert template["Resources"][version]["Properties"]["StateMachineArn"] == {"Ref": machines[name]}


def _api_statements(template: dict[str, Any], action: str) -> list[dict[str, Any]]:
    statements = role_statements(template, constants.API_FUNCTION_ID)
    return [statement for statement in statements if action in statement_actions(statement)]


def test_the_api_function_may_start_versions_and_read_aliases_but_not_the_unqualified_machines(
    template: dict[str, Any], definitions: list[WorkflowDefinition]
) -> None:
    (start,) = _api_statements(template, "states:StartExecution")
    resources = start["Resource"] if isinstance(start["Resource"], list) else [start["Resource"]]
    # Every version and alias of each workflow's state machine, by its name: `<ARN>:*`, never `<ARN>`.
    arn = ["arn:", {"Ref": "AWS::Partition"}, ":states:", {"Ref": "AWS::Region"}, ":", {"Ref": "AWS::AccountId"}]
    assert sorted(resources, key=json.dumps) == sorted(
        ({"Fn::Join": ["", [*arn, f":stateMachine:Sutram-{definition.name}:*"]]} for definition in definitions),
        key=json.dumps,
    )
    (describe,) = _api_statements(template, "states:DescribeStateMachineAlias")
    aliases = describe["Resource"] if isinstance(describe["Resource"], list) else [describe["Resource"]]
    assert {alias["Fn::GetAtt"][0] for alias in aliases} == set(
        _resources(template, "AWS::StepFunctions::StateMachineAlias")
    )
    # Resume reads an execution's status and abort stops it: this stack's executions only.
    (executions,) = _api_statements(template, "states:StopExecution")
    assert "states:DescribeExecution" in executions["Action"]
    assert sorted(executions["Resource"], key=json.dumps) == sorted(
        ({"Fn::Join": ["", [*arn, f":execution:Sutram-{definition.name}:*"]]} for definition in definitions),
        key=json.dumps,
    )
