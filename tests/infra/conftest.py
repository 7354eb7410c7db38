"""Infra-tier fixtures: views of the session's synthesized template (tests/conftest.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Template

from sutram.definition import WorkflowDefinition, load_all
from tests.infra.support import joined


@pytest.fixture(scope="session")
def cdk_template(template: dict[str, Any]) -> Template:
    return Template.from_json(template)


@pytest.fixture(scope="session")
def definitions(workflows_dir: Path) -> list[WorkflowDefinition]:
    return load_all(workflows_dir)


@pytest.fixture(scope="session")
def state_machine_definitions(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """ASL of every state machine by its name, with intrinsics (function ARNs) as `<Ref>` text."""
    machines = {}
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::StepFunctions::StateMachine":
            text = joined(resource["Properties"]["DefinitionString"], lambda _: "<Ref>")
            machines[resource["Properties"]["StateMachineName"]] = json.loads(text)
    return machines
