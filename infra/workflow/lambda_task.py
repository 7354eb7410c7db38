"""The one way a state machine invokes a Lambda: `lambda_task`, with the Retry list `Retries` gives it.

Every Lambda Task of a workflow is built here: a step's task, an agent's turn and tool-call tasks,
the waitForTaskToken tasks that wait for a human decision, and RecordSuccess / RecordFailure. What
they differ in is an option: whether the task waits for its token, its timeout, where its result
goes, and which retry policy applies:

    Retries.step(timeout, policy)   a step's task: first wait out a lease a duplicate holds
                                    (StepInProgress), then the step's own policy
    Retries.request(policy)         a task that waits for a decision: the step's policy without
                                    States.Timeout, which is the deadline passing, for a Catch
    Retries.finish()                RecordSuccess / RecordFailure: the default policy

The task's payload comes from infra.workflow.payloads (one builder per sutram.contracts model).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aws_cdk import Duration
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as sfn_tasks
from constructs import Construct

from sutram.definition import RetryPolicy
from sutram.errors import StepInProgress
from sutram.settings import DEFAULT_LEASE_MARGIN_SECONDS

LEASE_WAIT_INTERVAL = 5  # seconds before the first retry of a step whose lease another attempt holds
LEASE_WAIT_MAX_DELAY = 60  # seconds, the longest wait between those retries

# What adds a task's retriers: a `Retries`, or any function of the task (agent_states takes hooks).
RetryHook = Callable[[sfn_tasks.LambdaInvoke], None]


def lease_wait_attempts(timeout_seconds: int) -> int:
    """Retries of StepInProgress needed to outlast a lease held by a duplicate of the same delivery."""
    lease, waited, attempts = timeout_seconds + DEFAULT_LEASE_MARGIN_SECONDS, 0, 0
    while waited < lease:
        waited += min(LEASE_WAIT_INTERVAL * 2**attempts, LEASE_WAIT_MAX_DELAY)
        attempts += 1
    return attempts


@dataclass(frozen=True)
class Retries:
    """The retriers of a Lambda task, in order: the lease wait (for a step's lease of
    `lease_seconds`), then `policy` (never StepInProgress, which the lease wait owns; without
    States.Timeout and States.ALL unless `retry_timeouts`). Calling it adds them to a task."""

    policy: RetryPolicy | None = None
    lease_seconds: int | None = None  # the step's timeout, when a duplicate may hold its lease
    retry_timeouts: bool = True

    @classmethod
    def step(cls, timeout_seconds: int, policy: RetryPolicy) -> Retries:
        """A step's task (an `llm` or `tool` step, an agent's turn or tool call)."""
        return cls(policy, lease_seconds=timeout_seconds)

    @classmethod
    def request(cls, policy: RetryPolicy) -> Retries:
        """A task that waits for a decision: its timeout is the deadline passing, for its Catch to
        handle, never a reason to ask again."""
        return cls(policy, retry_timeouts=False)

    @classmethod
    def finish(cls) -> Retries:
        """RecordSuccess / RecordFailure. The default policy covers Lambda throttling and crashes,
        which the service-exception default does not: a run whose end is never recorded would stay
        RUNNING for ever."""
        return cls(RetryPolicy())

    def __call__(self, task: sfn_tasks.LambdaInvoke) -> None:
        if self.lease_seconds is not None:
            # First in the list, so the workflow's own policy never gives up on a live lease too early.
            task.add_retry(
                errors=[StepInProgress.__name__],
                interval=Duration.seconds(LEASE_WAIT_INTERVAL),
                max_attempts=lease_wait_attempts(self.lease_seconds),
                backoff_rate=2.0,
                max_delay=Duration.seconds(LEASE_WAIT_MAX_DELAY),
                jitter_strategy=sfn.JitterType.NONE,
            )
        policy = self.policy
        if policy is None:
            return
        skipped = {StepInProgress.__name__} | (set() if self.retry_timeouts else {"States.Timeout", "States.ALL"})
        errors = [error for error in policy.errors if error not in skipped]
        if policy.max_attempts > 0 and errors:
            task.add_retry(
                errors=errors,
                interval=Duration.seconds(policy.interval_seconds),
                max_attempts=policy.max_attempts,
                backoff_rate=policy.backoff_rate,
                max_delay=Duration.seconds(policy.max_delay_seconds) if policy.max_delay_seconds else None,
                jitter_strategy=sfn.JitterType.FULL if policy.jitter == "full" else sfn.JitterType.NONE,
            )


NO_RETRIES = Retries()


def lambda_task(
    scope: Construct,
    name: str,
    *,
    function: lambda_.IFunction,
    payload: dict[str, Any],
    result_path: str,
    retries: RetryHook = NO_RETRIES,
    timeout_seconds: int | None = None,
    wait_for_token: bool = False,
    comment: str | None = None,
) -> sfn_tasks.LambdaInvoke:
    """A Task state `name` invoking `function` with `payload` (JSON with `.$` paths).

    Its result goes to `result_path`: the function's response, or, with `wait_for_token`
    (`lambda:invoke.waitForTaskToken`), the output sent back with SendTaskSuccess; the function
    then only records the request with the token its payload carries, and no Lambda runs while the
    task waits. `timeout_seconds` ends the task with States.Timeout (for a waiting task: its
    deadline). Service exceptions are never retried implicitly: `retries` adds every retrier."""
    if wait_for_token and "task_token" not in payload:
        raise ValueError(f"{name}: a waitForTaskToken task's payload must carry its task_token")
    task = sfn_tasks.LambdaInvoke(
        scope,
        name,
        state_name=name,
        comment=comment,
        lambda_function=function,
        payload=sfn.TaskInput.from_object(payload),
        # With waitForTaskToken the result is what SendTaskSuccess sends, never the Lambda response.
        payload_response_only=None if wait_for_token else True,
        integration_pattern=sfn.IntegrationPattern.WAIT_FOR_TASK_TOKEN if wait_for_token else None,
        retry_on_service_exceptions=False,
        result_path=result_path,
        task_timeout=sfn.Timeout.duration(Duration.seconds(timeout_seconds)) if timeout_seconds is not None else None,
    )
    retries(task)
    return task
