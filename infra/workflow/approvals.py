"""Compile an `approval` step: a `lambda:invoke.waitForTaskToken` Task whose timeout is the
decision deadline, and what a missed deadline does.

The step Lambda records the approval with the task token and returns at once, and the task ends
when the decision is sent with SendTaskSuccess. On `States.Timeout` the step's `on_timeout` path
runs:

    reject      <id> ─deadline─> <id> expired (a Pass giving the `expired` outcome)
    escalate    <id> ─deadline─> <id> escalated (asks `escalate_to`) ─deadline─> <id> expired
    fail        <id> ─deadline─> <id> undecided ─> the failure path (or a Fail state in a map or a branch)

The gated tool calls of agents wait the same way (infra.workflow.agent).
"""

from __future__ import annotations

from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as sfn_tasks
from constructs import Construct

from infra import constants
from infra.workflow.frames import Frame
from infra.workflow.lambda_task import Retries, lambda_task
from infra.workflow.payloads import ERROR_PATH, EXPIRED_DECISION, ApprovalAction, Scope, approval_payload
from sutram.definition import ApprovalStep, WorkflowDefinition


def approval_states(
    construct: Construct,
    definition: WorkflowDefinition,
    step: ApprovalStep,
    *,
    step_function: lambda_.IFunction,
    scope: Scope,
    frame: Frame,
    result_path: str,
    on_error: sfn.IChainable | None,
) -> sfn.Chain:
    """The step's states; the decision goes to `result_path`. `on_error` is where a failure goes,
    None to fail the enclosing Map or Parallel state."""

    def ask(name: str, action: ApprovalAction, on_timeout: sfn.IChainable) -> sfn_tasks.LambdaInvoke:
        """One waiting task: `request` asks `group`, `escalate` asks `escalate_to`."""
        task = lambda_task(
            construct,
            name,
            function=step_function,
            payload=approval_payload(definition, step, scope, frame, action),
            result_path=result_path,
            retries=Retries.request(step.retry),
            timeout_seconds=step.timeout_seconds if action == "request" else step.escalation_deadline,
            wait_for_token=True,
            comment=step.description or None,
        )
        task.add_catch(on_timeout, errors=["States.Timeout"], result_path=sfn.JsonPath.DISCARD)
        if on_error is not None:
            task.add_catch(on_error, errors=["States.ALL"], result_path=ERROR_PATH)
        return task

    if step.on_timeout == "fail":
        request = ask(step.id, "request", _undecided(construct, step, on_error))
        return sfn.Chain.custom(request, [request], request)
    expired = sfn.Pass(
        construct,
        f"{step.id} expired",
        state_name=f"{step.id} expired",
        parameters=EXPIRED_DECISION,
        result_path=result_path,
    )
    if step.on_timeout == "reject":
        request = ask(step.id, "request", expired)
        return sfn.Chain.custom(request, [request, expired], expired)
    escalated = ask(f"{step.id} escalated", "escalate", expired)
    request = ask(step.id, "request", escalated)
    return sfn.Chain.custom(request, [request, escalated, expired], expired)


def _undecided(construct: Construct, step: ApprovalStep, on_error: sfn.IChainable | None) -> sfn.IChainable:
    """Where a missed deadline goes with `on_timeout: fail`: the workflow's failure path with a
    named error, or, where there is none (in a map or a branch), a Fail state with that error."""
    name, cause = f"{step.id} undecided", f"no one decided on approval step {step.id} before its deadline"
    if on_error is None:
        return sfn.Fail(construct, name, state_name=name, error=constants.APPROVAL_TIMED_OUT, cause=cause)
    error = sfn.Pass(
        construct,
        name,
        state_name=name,
        parameters={"Error": constants.APPROVAL_TIMED_OUT, "Cause": cause},
        result_path=ERROR_PATH,
    )
    return error.next(on_error)
