"""Versions on the local cloud: the template's versions and aliases, and a deploy of a changed
workflow while a run is going. The going run finishes on the version it started on; new runs get
the new version; a run may still name the old one."""

from __future__ import annotations

import copy
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from localcloud.cloud import LocalCloud
from localcloud.template import resources_of_type
from sutram import wiring
from sutram.runs import service as runs
from tests.integration.support import start, wait_for_end

WORKFLOW = "document-analysis"
V1_PROMPT, V2_PROMPT = "in two sentences.", "in one sentence."


def _machine_arn(cloud: LocalCloud) -> str:
    return next(arn for name, arn in cloud.state_machines.items() if name.endswith(f"-{WORKFLOW}"))


def _changed(template: dict[str, Any]) -> dict[str, Any]:
    """The template after the summarise step's prompt changed, as `cdk synth` would write it."""
    changed = copy.deepcopy(template)
    for resource in resources_of_type(changed, "AWS::StepFunctions::StateMachine").values():
        if resource["Properties"]["StateMachineName"].endswith(f"-{WORKFLOW}"):
            parts = resource["Properties"]["DefinitionString"]["Fn::Join"][1]
            parts[:] = [part.replace(V1_PROMPT, V2_PROMPT) if isinstance(part, str) else part for part in parts]
    return changed


def _start(title: str, version: int | None = None) -> tuple[str, str]:
    """Start a run of WORKFLOW on a document titled `title`: its run id and execution ARN."""
    document = {"title": title, "content": "Ada Lovelace met Charles Babbage in London. They wrote about engines."}
    return start(WORKFLOW, {"document": document}, version=version)


def _wait(started: tuple[str, str]) -> runs.RunRecord:
    """The record of a started run, once it has succeeded."""
    run_id, execution_arn = started
    wait_for_end(run_id, execution_arn)
    finished = wiring.runs_backend().runs.get("acme", run_id)
    assert finished is not None and finished.status == "SUCCEEDED"
    return finished


def _summarised(model_calls: Any, title: str, prompt_end: str) -> int:
    return int(model_calls.counts[f'Summarise the document "{title}" {prompt_end}'])


def test_each_workflow_starts_with_version_1_behind_its_live_alias(cloud: LocalCloud) -> None:
    sfn = boto3.client("stepfunctions")
    for arn in cloud.state_machines.values():
        (alias,) = sfn.list_state_machine_aliases(stateMachineArn=arn)["stateMachineAliases"]
        assert alias["stateMachineAliasArn"] == f"{arn}:live"
        routing = sfn.describe_state_machine_alias(stateMachineAliasArn=alias["stateMachineAliasArn"])
        assert routing["routingConfiguration"] == [{"stateMachineVersionArn": f"{arn}:1", "weight": 100}]


def test_an_unpublished_version_cannot_be_started(cloud: LocalCloud) -> None:
    with pytest.raises(ClientError, match="StateMachineDoesNotExist"):
        boto3.client("stepfunctions").start_execution(stateMachineArn=f"{_machine_arn(cloud)}:9", name="never")


def test_a_run_going_during_a_deploy_finishes_on_its_version_and_new_runs_get_the_new_one(
    cloud: LocalCloud, template: dict[str, Any], model_calls: Any
) -> None:
    with cloud.held():  # no step of the run can start until the deploy is done
        going = _start("Before")
        assert cloud.redeploy(_changed(template)) == [_machine_arn(cloud).rsplit(":", 1)[1]]
        assert cloud.redeploy(_changed(template)) == []  # an unchanged definition publishes nothing

    going = _wait(going)
    after = _wait(_start("After"))
    pinned = _wait(_start("Pinned", version=1))

    assert (going.version, after.version, pinned.version) == (1, 2, 1)
    assert _summarised(model_calls, "Before", V1_PROMPT) == 1
    assert _summarised(model_calls, "After", V2_PROMPT) == 1
    assert _summarised(model_calls, "Pinned", V1_PROMPT) == 1
    assert runs.get_run(wiring.runs_backend(), "acme", going.run_id).version == 1
    alias = boto3.client("stepfunctions").describe_state_machine_alias(
        stateMachineAliasArn=f"{_machine_arn(cloud)}:live"
    )
    assert alias["routingConfiguration"] == [{"stateMachineVersionArn": f"{_machine_arn(cloud)}:2", "weight": 100}]
