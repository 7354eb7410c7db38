"""A workflow's published versions and the alias that new runs start on.

    state machine (latest definition) ─> StateMachineVersion ─> alias `live` (100%)

The version resource follows the state machine's revision id, so CloudFormation replaces it, and
Step Functions publishes a new version, only when a deploy changes the definition. A replaced
version is retained, not deleted: executions started on it finish on it, and the API can still
start that version by number (`<state machine ARN>:<n>`).
"""

from __future__ import annotations

from typing import cast

from aws_cdk import RemovalPolicy
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra import constants


class LiveVersion(Construct):
    """The latest published version of a state machine, and the alias routing every new run to it."""

    def __init__(self, scope: Construct, construct_id: str, *, state_machine: sfn.StateMachine) -> None:
        super().__init__(scope, construct_id)
        self.state_machine = state_machine
        revision = cast(sfn.CfnStateMachine, state_machine.node.default_child)
        self.version = sfn.CfnStateMachineVersion(
            self,
            "Version",
            state_machine_arn=state_machine.state_machine_arn,
            state_machine_revision_id=revision.attr_state_machine_revision_id,
        )
        self.version.apply_removal_policy(RemovalPolicy.RETAIN)  # DeletionPolicy and UpdateReplacePolicy
        self.alias = sfn.CfnStateMachineAlias(
            self,
            "Alias",
            name=constants.LIVE_ALIAS,
            routing_configuration=[
                sfn.CfnStateMachineAlias.RoutingConfigurationVersionProperty(
                    state_machine_version_arn=self.version.attr_arn, weight=100
                )
            ],
        )

    @property
    def alias_arn(self) -> str:
        return self.alias.attr_arn
