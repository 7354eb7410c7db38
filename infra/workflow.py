"""Compile a workflow definition into a Step Functions Standard state machine.

Every step is one state, and the success path has nothing else but a final `RecordSuccess` task:

    step 1 ─> step 2 ─> ... ─> step N ─> RecordSuccess
       └─────────┴─── Catch ───────┘ ─> RecordFailure ─> Failed

`llm` and `tool` steps are Lambda Tasks; `choice` is a Choice state whose branches rejoin at the
next step; `parallel` and `map` are Parallel and Map states around the same compilation of their
nested steps; `wait` is a Wait state and `transform` a Pass state. Inside a map or a parallel,
tasks have no Catch: the Map or Parallel state catches for them (or, for a parallel with
`on_failure: collect`, a Pass state at the end of the branch turns the error into its output).

An `approval` step is a `lambda:invoke.waitForTaskToken` Task whose timeout is the decision
deadline: the step Lambda records the approval with the task token and returns at once, and the
task ends when the decision is sent with SendTaskSuccess. On `States.Timeout` the step's
`on_timeout` path runs: `reject`, a Pass state giving the `expired` outcome; `escalate`, a second
such Task asking `escalate_to` (whose own timeout gives `expired`); `fail`, the failure path.

Each Task sends the step Lambda the run, its scope (which prefixes its checkpoint key), the
step's own spec and only the state roots its input mapping reads. A step's result is kept in
state only if a later step reads it, or if it is the last of its list, whose output becomes the
output of the run, of the enclosing choice, of a map iteration or of a parallel branch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aws_cdk import ArnFormat, Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from infra import constants
from infra.agent import agent_states
from infra.approvals import decision_task
from sutram import expressions
from sutram.contracts import ApprovalTask, FinishTask, StepTask, task_name
from sutram.definition import (
    AgentStep,
    AnyStep,
    ApprovalStep,
    ChoiceStep,
    Condition,
    MapStep,
    ParallelStep,
    RetryPolicy,
    TransformStep,
    WaitStep,
    WorkflowDefinition,
    roots_from_outside,
)
from sutram.errors import StepInProgress
from sutram.settings import DEFAULT_LEASE_MARGIN_SECONDS

RUN_PATH = "$.run"
RESULT_ROOT = "$.steps"
ERROR_PATH = "$.error"
SCOPE_PATH = "$.scope"
LEASE_WAIT_INTERVAL = 5  # seconds before the first retry of a step whose lease another attempt holds
LEASE_WAIT_MAX_DELAY = 60  # seconds, the longest wait between those retries


@dataclass(frozen=True)
class Scope:
    """Where a step runs, as its checkpoint path prefix. Outside any map it is known when compiling
    ("fanout.docs/"); inside a map it starts with the iteration's own scope, which the Map state's
    ItemSelector computes at run time into `$.scope` ("analyse[3]/"), followed by `suffix`."""

    suffix: str = ""
    in_map: bool = False

    def payload(self) -> dict[str, str]:
        if not self.in_map:
            return {"scope": self.suffix}
        return {"scope.$": _format(f"{{}}{self.suffix}", SCOPE_PATH) if self.suffix else SCOPE_PATH}

    def branch(self, text: str) -> Scope:
        return Scope(self.suffix + text, self.in_map)

    def iteration(self, map_id: str) -> str:
        """The ItemSelector expression of the scope of a map's current iteration."""
        text = f"{self.suffix}{map_id}[{{}}]/"
        if self.in_map:
            return _format(f"{{}}{text}", SCOPE_PATH, "$$.Map.Item.Index")
        return _format(text, "$$.Map.Item.Index")


def _state_key(state: sfn.INextable) -> Any:
    """One key per state, whichever jsii proxy of it this is (a choice's default transition has no node)."""
    node = getattr(state, "node", None)
    return node.path if node is not None else id(state)


def _format(template: str, *paths: str) -> str:
    # Step ids and branch names are [a-z0-9_], so the template needs no escaping.
    return f"States.Format('{template}', {', '.join(paths)})"


def _sources(roots: list[str]) -> dict[str, Any]:
    """`.$` paths copying the given state roots: {"input.$": "$.input", "steps": {"x.$": "$.steps.x"}}."""
    sources: dict[str, Any] = {f"{root}.$": f"$.{root}" for root in roots if not root.startswith("steps.")}
    steps = {f"{root.split('.', 1)[1]}.$": f"$.{root}" for root in roots if root.startswith("steps.")}
    return sources | ({"steps": steps} if steps else {})


def step_payload(definition: WorkflowDefinition, step: AnyStep, scope: Scope = Scope()) -> dict[str, Any]:
    """The task payload for a step, as JSON with `.$` paths (what the Lambda receives)."""
    return {
        "task": task_name(StepTask),
        "run.$": RUN_PATH,
        # Which delivery of this task this is (0 first, then 1 per Retry): a later delivery may take
        # over the lease of an earlier one, which Step Functions has given up on.
        "delivery.$": "$$.State.RetryCount",
        **scope.payload(),
        "step": step.model_dump(mode="json", exclude_defaults=True, exclude={"retry", "description"})
        | {"id": step.id, "type": step.type},
        "sources": _sources(definition.roots_needed_by(step)),
    }


def _parameters(output: dict[str, Any]) -> dict[str, Any]:
    """A transform's output as Parameters: an expression becomes a `key.$` path, the rest is literal."""
    parameters: dict[str, Any] = {}
    for key, value in output.items():
        if expressions.is_expression(value):
            parameters[f"{key}.$"] = value
        else:
            parameters[key] = _parameters(value) if isinstance(value, dict) else value
    return parameters


_COMPARISONS = {
    # comparison: (for strings, for numbers)
    "greater_than": (sfn.Condition.string_greater_than, sfn.Condition.number_greater_than),
    "greater_than_or_equal": (sfn.Condition.string_greater_than_equals, sfn.Condition.number_greater_than_equals),
    "less_than": (sfn.Condition.string_less_than, sfn.Condition.number_less_than),
    "less_than_or_equal": (sfn.Condition.string_less_than_equals, sfn.Condition.number_less_than_equals),
}


def choice_rule(condition: Condition) -> sfn.Condition:
    """A definition's condition as an ASL Choice rule; the value's type picks the comparison."""
    if condition.all is not None:
        return sfn.Condition.and_(*(choice_rule(child) for child in condition.all))
    if condition.any is not None:
        return sfn.Condition.or_(*(choice_rule(child) for child in condition.any))
    if condition.not_ is not None:
        return sfn.Condition.not_(choice_rule(condition.not_))
    var, comparison = condition.var, condition.comparison
    assert var is not None and comparison is not None  # the definition's validator guarantees both
    if comparison == "is_present":
        return sfn.Condition.is_present(var) if condition.is_present else sfn.Condition.is_not_present(var)
    if comparison == "matches":
        return sfn.Condition.string_matches(var, str(condition.matches))
    if comparison in ("equals", "not_equals"):
        value = getattr(condition, comparison)
        if value is None:
            rule = sfn.Condition.is_null(var)
        elif isinstance(value, bool):
            rule = sfn.Condition.boolean_equals(var, value)
        elif isinstance(value, int | float):
            rule = sfn.Condition.number_equals(var, value)
        else:
            rule = sfn.Condition.string_equals(var, value)
        return rule if comparison == "equals" else sfn.Condition.not_(rule)
    value = getattr(condition, comparison)
    for_string, for_number = _COMPARISONS[comparison]
    return for_string(var, value) if isinstance(value, str) else for_number(var, value)


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
                "task": task_name(FinishTask),
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
                "task": task_name(FinishTask),
                "run.$": RUN_PATH,
                "status": "SUCCEEDED",
                "output.$": f"{RESULT_ROOT}.{last}",
            },
        )

        self._step_function = step_function
        self._kept = definition.outputs_read_later()
        self._continues = False  # set by a top-level agent: the machine may start itself
        chain = self._sequence(list(definition.steps), Scope(), f"{RESULT_ROOT}.{last}", failed).next(succeeded)

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
        if self._continues:
            # A long agent loop continues the run in a fresh execution of this machine (any version).
            machine = Stack.of(self).format_arn(
                service="states",
                resource="stateMachine",
                resource_name=f"{Stack.of(self).stack_name}-{definition.name}",
                arn_format=ArnFormat.COLON_RESOURCE_NAME,
            )
            self.state_machine.add_to_role_policy(
                iam.PolicyStatement(actions=["states:StartExecution"], resources=[machine, f"{machine}:*"])
            )

    def _sequence(
        self, steps: list[AnyStep], scope: Scope, result_path: str, on_error: sfn.IChainable | None
    ) -> sfn.Chain:
        """Chain `steps`; the last one's output goes to `result_path`, the others' to `$.steps.<id>`
        if a later step reads it. `on_error` is where a failure goes, None to fail the enclosing
        Map or Parallel state."""
        chain: sfn.Chain | None = None
        for index, step in enumerate(steps):
            if index == len(steps) - 1:
                path = result_path
            else:
                path = f"{RESULT_ROOT}.{step.id}" if step.id in self._kept else sfn.JsonPath.DISCARD
            state = self._state(step, scope, path, on_error)
            chain = sfn.Chain.start(state) if chain is None else chain.next(state)
        assert chain is not None  # a step list is never empty
        return chain

    def _state(self, step: AnyStep, scope: Scope, result_path: str, on_error: sfn.IChainable | None) -> sfn.IChainable:
        if isinstance(step, ChoiceStep):
            choice = sfn.Choice(self, step.id, state_name=step.id, comment=step.description or None)
            chains = []
            for branch in step.choices:
                chains.append(self._sequence(list(branch.then), scope, result_path, on_error))
                choice.when(choice_rule(branch.when), chains[-1])
            if step.otherwise:
                chains.append(self._sequence(list(step.otherwise), scope, result_path, on_error))
                choice.otherwise(chains[-1])
            # Without `otherwise`, no matching rule goes straight on to the next step.
            after = choice.afterwards(include_otherwise=not step.otherwise)
            # `afterwards` follows only normal transitions, so it misses an end reached by a Catch
            # (an approval's timeout path): the branches' own chains name all their ends.
            ends = {_state_key(end): end for end in [*after.end_states, *(e for c in chains for e in c.end_states)]}
            return sfn.Chain.custom(choice, list(ends.values()), choice)
        if isinstance(step, WaitStep):
            time = (
                sfn.WaitTime.duration(Duration.seconds(step.seconds))
                if step.seconds is not None
                else sfn.WaitTime.timestamp_path(str(step.until))
            )
            return sfn.Wait(self, step.id, state_name=step.id, time=time, comment=step.description or None)
        if isinstance(step, TransformStep):
            return sfn.Pass(
                self,
                step.id,
                state_name=step.id,
                comment=step.description or None,
                parameters=_parameters(step.output),
                result_path=result_path,
            )
        if isinstance(step, ParallelStep):
            return self._parallel(step, scope, result_path, on_error)
        if isinstance(step, MapStep):
            return self._map(step, scope, result_path, on_error)
        if isinstance(step, AgentStep):
            return self._agent(step, scope, result_path, on_error)
        if isinstance(step, ApprovalStep):
            return self._approval(step, scope, result_path, on_error)
        task = tasks.LambdaInvoke(
            self,
            step.id,
            state_name=step.id,
            lambda_function=self._step_function,
            payload=sfn.TaskInput.from_object(step_payload(self.definition, step, scope)),
            payload_response_only=True,
            retry_on_service_exceptions=False,
            result_path=result_path,
            task_timeout=sfn.Timeout.duration(Duration.seconds(step.timeout_seconds)),
        )
        _add_lease_wait(task, step.timeout_seconds)
        _add_retry(task, step.retry)
        if on_error is not None:
            task.add_catch(on_error, errors=["States.ALL"], result_path=ERROR_PATH)
        return task

    def _parallel(
        self, step: ParallelStep, scope: Scope, result_path: str, on_error: sfn.IChainable | None
    ) -> sfn.Parallel:
        names = list(step.branches)
        parallel = sfn.Parallel(
            self,
            step.id,
            state_name=step.id,
            comment=step.description or None,
            result_path=result_path,
            # Branch outputs come as a list in branch order; the step's output names them.
            result_selector={f"{name}.$": f"$[{index}]" for index, name in enumerate(names)},
        )
        for name, steps in step.branches.items():
            collect: sfn.IChainable | None = None
            if step.on_failure == "collect":
                # Only on the failure path: the branch's output becomes {"error": {"Error", "Cause"}}.
                collect = sfn.Pass(
                    self,
                    f"{step.id}.{name} failed",
                    state_name=f"{step.id}.{name} failed",
                    parameters={"error.$": ERROR_PATH},
                )
            parallel.branch(self._sequence(list(steps), scope.branch(f"{step.id}.{name}/"), "$", collect))
        if on_error is not None:
            parallel.add_catch(on_error, errors=["States.ALL"], result_path=ERROR_PATH)
        return parallel

    def _map(self, step: MapStep, scope: Scope, result_path: str, on_error: sfn.IChainable | None) -> sfn.MapBase:
        # Each iteration sees only what its steps read: the run, its scope and item, and the outer
        # roots its steps read, so an iteration's state is as small as a top-level step's.
        item_selector = {
            "run.$": RUN_PATH,
            "scope.$": scope.iteration(step.id),
            "item.$": "$$.Map.Item.Value",
            **_sources(roots_from_outside(list(step.steps))),
        }
        options: dict[str, Any] = {
            "state_name": step.id,
            "comment": step.description or None,
            "items_path": step.items,
            "max_concurrency": step.max_concurrency,
            "item_selector": item_selector,
            "result_path": result_path,
        }
        map_state: sfn.MapBase
        if step.distributed:
            map_state = sfn.DistributedMap(self, step.id, map_execution_type=sfn.StateMachineType.STANDARD, **options)
        else:
            map_state = sfn.Map(self, step.id, **options)
        map_state.item_processor(self._sequence(list(step.steps), Scope("", in_map=True), "$", None))
        if on_error is not None:
            map_state.add_catch(on_error, errors=["States.ALL"], result_path=ERROR_PATH)
        return map_state

    def _agent(self, step: AgentStep, scope: Scope, result_path: str, on_error: sfn.IChainable | None) -> sfn.Chain:
        def retries(task: tasks.LambdaInvoke) -> None:
            _add_lease_wait(task, step.timeout_seconds)
            _add_retry(task, step.retry)

        def catch(state: tasks.LambdaInvoke | sfn.Map) -> None:
            if on_error is not None:
                state.add_catch(on_error, errors=["States.ALL"], result_path=ERROR_PATH)

        first, last = agent_states(
            self,
            step,
            step_function=self._step_function,
            payload_common=step_payload(self.definition, step, scope),
            result_path=result_path,
            add_retries=retries,
            add_request_retries=lambda task: _add_request_retry(task, step.retry),
            add_catch=catch,
            continuation=not scope.in_map and not scope.suffix,
        )
        if not scope.in_map and not scope.suffix:
            self._continues = True
        return sfn.Chain.custom(first, [last], last)

    def _approval(
        self, step: ApprovalStep, scope: Scope, result_path: str, on_error: sfn.IChainable | None
    ) -> sfn.Chain:
        if step.on_timeout == "fail":
            undecided = self._undecided(step, on_error)
            request = self._approval_task(step, step.id, "request", scope, result_path, undecided, on_error)
            return sfn.Chain.custom(request, [request], request)
        expired = sfn.Pass(
            self,
            f"{step.id} expired",
            state_name=f"{step.id} expired",
            parameters=constants.EXPIRED_DECISION,
            result_path=result_path,
        )
        if step.on_timeout == "reject":
            request = self._approval_task(step, step.id, "request", scope, result_path, expired, on_error)
            return sfn.Chain.custom(request, [request, expired], expired)
        name = f"{step.id} escalated"
        escalated = self._approval_task(step, name, "escalate", scope, result_path, expired, on_error)
        request = self._approval_task(step, step.id, "request", scope, result_path, escalated, on_error)
        return sfn.Chain.custom(request, [request, escalated, expired], expired)

    def _undecided(self, step: ApprovalStep, on_error: sfn.IChainable | None) -> sfn.IChainable:
        """Where a missed deadline goes with `on_timeout: fail`: the workflow's failure path with a
        named error, or, where there is none (in a map or a branch), a Fail state with that error."""
        name, cause = f"{step.id} undecided", f"no one decided on approval step {step.id} before its deadline"
        if on_error is None:
            return sfn.Fail(self, name, state_name=name, error=constants.APPROVAL_TIMED_OUT, cause=cause)
        error = sfn.Pass(
            self,
            name,
            state_name=name,
            parameters={"Error": constants.APPROVAL_TIMED_OUT, "Cause": cause},
            result_path=ERROR_PATH,
        )
        return error.next(on_error)

    def _approval_task(
        self,
        step: ApprovalStep,
        name: str,
        action: str,
        scope: Scope,
        result_path: str,
        on_timeout: sfn.IChainable | None,
        on_error: sfn.IChainable | None,
    ) -> tasks.LambdaInvoke:
        """One waitForTaskToken Task: `request` asks `group`, `escalate` asks `escalate_to`."""
        payload = step_payload(self.definition, step, scope)
        del payload["delivery.$"]  # the approval is keyed by its step, and each delivery brings a new token
        deadline = step.timeout_seconds if action == "request" else step.escalation_deadline
        task = decision_task(
            self,
            name,
            function=self._step_function,
            payload=payload | {"task": task_name(ApprovalTask), "approval_action": action},
            deadline_seconds=deadline,
            result_path=result_path,
            comment=step.description or None,
        )
        _add_request_retry(task, step.retry)
        if on_timeout is not None:
            task.add_catch(on_timeout, errors=["States.Timeout"], result_path=sfn.JsonPath.DISCARD)
        if on_error is not None:
            task.add_catch(on_error, errors=["States.ALL"], result_path=ERROR_PATH)
        return task

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


def _add_request_retry(task: tasks.LambdaInvoke, policy: RetryPolicy) -> None:
    """Retries for a task that waits for a decision: its timeout is the deadline passing, for its
    Catch to handle, never a reason to ask again."""
    errors = [error for error in policy.errors if error not in ("States.Timeout", "States.ALL")]
    _add_retry(task, policy.model_copy(update={"errors": errors}))


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
