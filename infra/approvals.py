"""The state that waits for a human decision, for `approval` steps (infra.workflow) and for the
gated tool calls of agents (infra.agent)."""

from __future__ import annotations

from typing import Any

from aws_cdk import Duration
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct


def decision_task(
    scope: Construct,
    name: str,
    *,
    function: lambda_.IFunction,
    payload: dict[str, Any],
    deadline_seconds: int,
    result_path: str,
    comment: str | None = None,
) -> tasks.LambdaInvoke:
    """A `lambda:invoke.waitForTaskToken` task: the step Lambda records the approval with the task
    token and returns at once; the task ends when the decision is sent back (SendTaskSuccess) or
    when `deadline_seconds` pass (States.Timeout). No Lambda runs while it waits."""
    return tasks.LambdaInvoke(
        scope,
        name,
        state_name=name,
        comment=comment,
        lambda_function=function,
        integration_pattern=sfn.IntegrationPattern.WAIT_FOR_TASK_TOKEN,
        payload=sfn.TaskInput.from_object(
            payload
            | {
                "task_token": sfn.JsonPath.task_token,
                # The deadline counts from here, so the record's never falls after the task's timeout.
                "entered_at": sfn.JsonPath.string_at("$$.State.EnteredTime"),
            }
        ),
        retry_on_service_exceptions=False,
        result_path=result_path,
        task_timeout=sfn.Timeout.duration(Duration.seconds(deadline_seconds)),
    )
