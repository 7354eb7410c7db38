"""Compile a workflow definition into a Step Functions Standard state machine.

One Task state per step, nothing else on the success path but a final `RecordSuccess` task:

    step 1 ─> step 2 ─> ... ─> step N ─> RecordSuccess
       └─────────┴─── Catch ───────┘ ─> RecordFailure ─> Failed

Each Task sends the step Lambda the run, the step's own spec and only the state roots its input
mapping reads. A step's result is kept in state only if a later step reads it (or it is the
run's output), so state stays small however long the workflow is.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from infra import constants
from sutram.definition import RetryPolicy, Step, WorkflowDefinition
from sutram.errors import StepInProgress
from sutram.settings import DEFAULT_LEASE_MARGIN_SECONDS

RUN_PATH = "$.run"
RESULT_ROOT = "$.steps"
ERROR_PATH = "$.error"
LEASE_WAIT_INTERVAL = 5  # seconds before the first retry of a step whose lease another attempt holds
LEASE_WAIT_MAX_DELAY = 60  # seconds, the longest wait between those retries


def step_payload(definition: WorkflowDefinition, step: Step) -> dict[str, Any]:
    """The task payload for a step, as JSON with `.$` paths (what the Lambda receives)."""
    sources: dict[str, Any] = {}
    step_sources: dict[str, str] = {}
    for root in definition.roots_needed_by(step):
        if root == "input":
            sources["input.$"] = "$.input"
        else:
            step_id = root.split(".", 1)[1]
            step_sources[f"{step_id}.$"] = f"{RESULT_ROOT}.{step_id}"
    if step_sources:
        sources["steps"] = step_sources
    return {
        "run.$": RUN_PATH,
        # Which delivery of this task this is (0 first, then 1 per Retry): a later delivery may take
        # over the lease of an earlier one, which Step Functions has given up on.
        "delivery.$": "$$.State.RetryCount",
        "step": step.model_dump(mode="json", exclude_defaults=True, exclude={"retry", "description"})
        | {"id": step.id, "type": step.type},
        "sources": sources,
    }


class WorkflowStateMachine(Construct):
    """A Standard state machine for one workflow definition."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        definition: WorkflowDefinition,
        step_function: lambda_.IFunction,
        finish_function: lambda_.IFunction,
    ) -> None:
        super().__init__(scope, construct_id)
        self.definition = definition
        failed = self._finish_task(
            "RecordFailure",
            finish_function,
            {
                "run.$": RUN_PATH,
                "status": "FAILED",
                "error.$": ERROR_PATH,
            },
        ).next(sfn.Fail(self, "Failed", error="Sutram.StepFailed", cause="A step failed; see the run's steps"))
        last = definition.steps[-1].id
        succeeded = self._finish_task(
            "RecordSuccess",
            finish_function,
            {
                "run.$": RUN_PATH,
                "status": "SUCCEEDED",
                "output.$": f"{RESULT_ROOT}.{last}",
            },
        )

        kept = definition.outputs_read_later()
        chain: sfn.IChainable | None = None
        for step in definition.steps:
            task = tasks.LambdaInvoke(
                self,
                step.id,
                state_name=step.id,
                lambda_function=step_function,
                payload=sfn.TaskInput.from_object(step_payload(definition, step)),
                payload_response_only=True,
                retry_on_service_exceptions=False,
                result_path=f"{RESULT_ROOT}.{step.id}" if step.id in kept else sfn.JsonPath.DISCARD,
                task_timeout=sfn.Timeout.duration(Duration.seconds(step.timeout_seconds)),
            )
            _add_lease_wait(task, step.timeout_seconds)
            _add_retry(task, step.retry)
            task.add_catch(failed, errors=["States.ALL"], result_path=ERROR_PATH)
            chain = task if chain is None else chain.next(task)  # type: ignore[attr-defined]
        assert chain is not None
        chain = chain.next(succeeded)  # type: ignore[attr-defined]

        log_group = logs.LogGroup(
            self,
            "Logs",
            retention=constants.LOG_RETENTION,
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            # Prefixed with the stack's name so that two stacks can share an account and region.
            state_machine_name=f"{Stack.of(self).stack_name}-{definition.name}",
            state_machine_type=sfn.StateMachineType.STANDARD,
            definition_body=sfn.DefinitionBody.from_chainable(chain),
            comment=definition.description or f"Sutram workflow {definition.name}",
            tracing_enabled=True,
            logs=sfn.LogOptions(destination=log_group, level=sfn.LogLevel.ERROR, include_execution_data=False),
        )

    def _finish_task(self, name: str, function: lambda_.IFunction, payload: dict[str, Any]) -> tasks.LambdaInvoke:
        task = tasks.LambdaInvoke(
            self,
            name,
            lambda_function=function,
            payload=sfn.TaskInput.from_object(payload),
            payload_response_only=True,
            retry_on_service_exceptions=False,
            result_path=sfn.JsonPath.DISCARD,
        )
        # The default policy covers Lambda throttling and crashes, which the service-exception
        # default does not: a run whose end is never recorded would stay RUNNING for ever.
        _add_retry(task, RetryPolicy())
        return task


def lease_wait_attempts(timeout_seconds: int) -> int:
    """Retries of StepInProgress needed to outlast a lease held by a duplicate of the same delivery."""
    lease, waited, attempts = timeout_seconds + DEFAULT_LEASE_MARGIN_SECONDS, 0, 0
    while waited < lease:
        waited += min(LEASE_WAIT_INTERVAL * 2**attempts, LEASE_WAIT_MAX_DELAY)
        attempts += 1
    return attempts


def _add_lease_wait(task: tasks.LambdaInvoke, timeout_seconds: int) -> None:
    # First in the list, so the workflow's own policy never gives up on a live lease too early.
    task.add_retry(
        errors=[StepInProgress.__name__],
        interval=Duration.seconds(LEASE_WAIT_INTERVAL),
        max_attempts=lease_wait_attempts(timeout_seconds),
        backoff_rate=2.0,
        max_delay=Duration.seconds(LEASE_WAIT_MAX_DELAY),
        jitter_strategy=sfn.JitterType.NONE,
    )


def _add_retry(task: tasks.LambdaInvoke, policy: RetryPolicy) -> None:
    errors = [error for error in policy.errors if error != StepInProgress.__name__]
    if policy.max_attempts > 0 and errors:
        task.add_retry(
            errors=errors,
            interval=Duration.seconds(policy.interval_seconds),
            max_attempts=policy.max_attempts,
            backoff_rate=policy.backoff_rate,
            max_delay=Duration.seconds(policy.max_delay_seconds) if policy.max_delay_seconds else None,
            jitter_strategy=sfn.JitterType.FULL if policy.jitter == "full" else sfn.JitterType.NONE,
        )
