"""Compile a workflow definition into a Step Functions Standard state machine.

Every step is one state, and the success path has nothing else but a final `RecordSuccess` task:

    step 1 ─> step 2 ─> ... ─> step N ─> RecordSuccess
       └─────────┴─── Catch ───────┘ ─> RecordFailure ─> Failed

`llm` and `tool` steps are Lambda Tasks; `choice` is a Choice state whose branches rejoin at the
next step; `parallel` and `map` are Parallel and Map states around the same compilation of their
nested steps (a distributed map is preceded by a task that writes its list to S3, which its
ItemReader reads); `wait` is a Wait state and `transform` a Pass state. Inside a map or a
parallel, tasks have no Catch: the Map or Parallel state catches for them (or, for a parallel with
`on_failure: collect`, a Pass state at the end of the branch turns the error into its output).
An `agent` step is a loop of states (agent.py), an `approval` step a task that waits for a
decision (approvals.py).

Each Task sends the step Lambda the run, its scope (which prefixes its checkpoint key), the
step's own spec and only the state roots its input mapping reads (payloads.py). A step's result
is kept in state from the step to its last reader, in a slot it shares with values whose lives do
not overlap (frames.py), or goes to where its list's output goes: the run's, the enclosing
choice's, a map iteration's or a parallel branch's.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import ArnFormat, Aws, Duration, Fn, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as sfn_tasks
from constructs import Construct

from infra import constants, nag
from infra.workflow.agent import agent_states
from infra.workflow.approvals import approval_states
from infra.workflow.conditions import choice_rule
from infra.workflow.frames import Frame
from infra.workflow.lambda_task import Retries, lambda_task
from infra.workflow.payloads import (
    COMPENSATION_PATH,
    ERROR_PATH,
    RUN_PATH,
    Scope,
    compensate_payload,
    failure_payload,
    items_payload,
    pause_payload,
    step_payload,
    success_payload,
)
from sutram import expressions
from sutram.definition import (
    AgentStep,
    AnyStep,
    ApprovalStep,
    ChoiceStep,
    LlmStep,
    MapStep,
    ParallelStep,
    RetryPolicy,
    ToolStep,
    TransformStep,
    WaitStep,
    WorkflowDefinition,
    roots_from_outside,
)
from sutram.definition.reads import kept_paths


def _state_key(state: sfn.INextable) -> Any:
    """One key per state, whichever jsii proxy of it this is (a choice's default transition has no node)."""
    node = getattr(state, "node", None)
    return node.path if node is not None else id(state)


def _parameters(output: dict[str, Any], frame: Frame) -> dict[str, Any]:
    """A transform's output as Parameters: an expression becomes a `key.$` path, the rest is literal."""
    parameters: dict[str, Any] = {}
    for key, value in output.items():
        if expressions.is_expression(value):
            parameters[f"{key}.$"] = frame.path(value)
        else:
            parameters[key] = _parameters(value, frame) if isinstance(value, dict) else value
    return parameters


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
        bucket: s3.IBucket,
    ) -> None:
        super().__init__(scope, construct_id)
        self.definition = definition
        compensated = bool(definition.compensated_steps())
        record_failure = self._finish_task("RecordFailure", finish_function, failure_payload(compensated))
        record_failure.next(
            sfn.Fail(self, "Failed", error="Sutram.StepFailed", cause="A step failed; see the run's steps")
        )
        failed: sfn.IChainable = record_failure
        if compensated:
            # Undo the completed compensated steps first (each exactly once), then record the failure.
            compensate = lambda_task(
                self,
                "Compensate",
                function=step_function,
                payload=compensate_payload(definition),
                result_path=COMPENSATION_PATH,
                retries=Retries.finish(),
            )
            compensate.add_catch(record_failure, errors=["States.ALL"], result_path=COMPENSATION_PATH)
            failed = compensate.next(record_failure)
        frame = Frame(list(definition.steps))
        output = frame.result_path(definition.steps[-1])
        succeeded = self._finish_task("RecordSuccess", finish_function, success_payload(output))

        self._step_function = step_function
        self._bucket = bucket
        self._kept = kept_paths(definition)
        self._continues = False  # set by a top-level agent: the machine may start itself
        chain = self._sequence(list(definition.steps), Scope(), frame, output, failed).next(succeeded)

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
            # Every event, never its data: inputs and outputs hold tenants' content and task tokens.
            logs=sfn.LogOptions(destination=log_group, level=sfn.LogLevel.ALL, include_execution_data=False),
        )
        # The executions CDK lets a distributed map start, written as CDK writes them (the partition,
        # region and account as tokens, whatever the stack's environment).
        name = Fn.select(6, Fn.split(":", self.state_machine.state_machine_arn))
        executions = nag.flat(self, f"arn:{Aws.PARTITION}:states:{Aws.REGION}:{Aws.ACCOUNT_ID}:execution:{name}")
        child_runs = (
            "A distributed map runs its iterations as child executions of this state machine, named at run "
            "time; CDK's grant covers only this machine's executions."
        )
        nag.acknowledge(
            self.state_machine,
            {
                f"IAM5[Resource::{executions}:*]": child_runs,
                f"IAM5[Resource::{executions}/*:*]": child_runs,
                "IAM5[Resource::*]": "Step Functions' log delivery (logs:*LogDelivery, DescribeLogGroups, "
                "ResourcePolicies) and X-Ray actions support no resource-level permissions.",
                f"IAM5[Resource::<{step_function.node.id}.Arn>:*]": "CDK's invoke grant covers the versions "
                "and aliases of Sutram's own step function, and no other function.",
                f"IAM5[Resource::<{finish_function.node.id}.Arn>:*]": "CDK's invoke grant covers the versions "
                "and aliases of Sutram's own finish function, and no other function.",
            },
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
            nag.acknowledge(
                self.state_machine,
                {
                    f"IAM5[Resource::{nag.flat(self, machine)}:*]": "An agent continues its run in a fresh "
                    "execution of this same state machine, on the version the run started on.",
                },
            )

    def _sequence(
        self, steps: list[AnyStep], scope: Scope, frame: Frame, result_path: str, on_error: sfn.IChainable | None
    ) -> sfn.Chain:
        """Chain `steps`; the last one's output goes to `result_path`, the others' to their slot in
        `frame` if a later step reads it. `on_error` is where a failure goes, None to fail the
        enclosing Map or Parallel state."""
        chain: sfn.Chain | None = None
        for index, step in enumerate(steps):
            path = result_path if index == len(steps) - 1 else frame.result_path(step)
            state = self._state(step, scope, frame, path, on_error)
            chain = sfn.Chain.start(state) if chain is None else chain.next(state)
        assert chain is not None  # a step list is never empty
        return chain

    def _state(
        self, step: AnyStep, scope: Scope, frame: Frame, result_path: str, on_error: sfn.IChainable | None
    ) -> sfn.IChainable:
        if isinstance(step, ChoiceStep):
            choice = sfn.Choice(self, step.id, state_name=step.id, comment=step.description or None)
            chains = []
            for branch in step.choices:
                chains.append(self._sequence(list(branch.then), scope, frame, result_path, on_error))
                choice.when(choice_rule(branch.when, frame.path), chains[-1])
            if step.otherwise:
                chains.append(self._sequence(list(step.otherwise), scope, frame, result_path, on_error))
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
                else sfn.WaitTime.timestamp_path(frame.path(str(step.until)))
            )
            return sfn.Wait(self, step.id, state_name=step.id, time=time, comment=step.description or None)
        if isinstance(step, TransformStep):
            return sfn.Pass(
                self,
                step.id,
                state_name=step.id,
                comment=step.description or None,
                parameters=_parameters(step.output, frame),
                result_path=result_path,
            )
        if isinstance(step, ParallelStep):
            return self._parallel(step, scope, frame, result_path, on_error)
        if isinstance(step, MapStep):
            return self._map(step, scope, frame, result_path, on_error)
        if isinstance(step, AgentStep):
            return self._agent(step, scope, frame, result_path, on_error)
        if isinstance(step, ApprovalStep):
            return approval_states(
                self,
                self.definition,
                step,
                step_function=self._step_function,
                scope=scope,
                frame=frame,
                result_path=result_path,
                on_error=on_error,
            )
        task = lambda_task(
            self,
            step.id,
            function=self._step_function,
            payload=step_payload(self.definition, step, scope, frame, self._kept.get(step.id)),
            result_path=result_path,
            retries=Retries.step(step.timeout_seconds, step.retry),
            timeout_seconds=step.timeout_seconds,
        )
        if isinstance(step, LlmStep | ToolStep) and step.on_error is not None:
            # Its declared errors, once retries are exhausted, pause the run: a waiting task records
            # it PAUSED with its token, and when an operator resumes it the step runs again.
            paused = lambda_task(
                self,
                f"{step.id}:paused",
                function=self._step_function,
                payload=pause_payload(step),
                result_path=sfn.JsonPath.DISCARD,
                retries=Retries.request(step.retry),
                timeout_seconds=constants.PAUSE_TIMEOUT_SECONDS,
                wait_for_token=True,
            )
            task.add_catch(paused, errors=list(step.on_error.pause), result_path=ERROR_PATH)
            paused.next(task)
            if on_error is not None:
                paused.add_catch(on_error, errors=["States.ALL"], result_path=ERROR_PATH)
        if on_error is not None:
            task.add_catch(on_error, errors=["States.ALL"], result_path=ERROR_PATH)
        return task

    def _parallel(
        self, step: ParallelStep, scope: Scope, frame: Frame, result_path: str, on_error: sfn.IChainable | None
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
            parallel.branch(self._sequence(list(steps), scope.branch(f"{step.id}.{name}/"), frame, "$", collect))
        if on_error is not None:
            parallel.add_catch(on_error, errors=["States.ALL"], result_path=ERROR_PATH)
        return parallel

    def _map(
        self, step: MapStep, scope: Scope, frame: Frame, result_path: str, on_error: sfn.IChainable | None
    ) -> sfn.IChainable:
        # Each iteration sees only what its steps read: the run, its scope and item, and the outer
        # roots its steps read, so an iteration's state is as small as a top-level step's.
        inner = Frame(list(step.steps), outside=roots_from_outside(list(step.steps)), iteration=True)
        options: dict[str, Any] = {
            "state_name": step.id,
            "comment": step.description or None,
            "max_concurrency": step.max_concurrency,
            "item_selector": {
                "run.$": RUN_PATH,
                "scope.$": scope.iteration(step.id),
                "item.$": "$$.Map.Item.Value",
                **frame.seed(inner),
            },
            "result_path": result_path,
        }
        map_state: sfn.MapBase
        stage: sfn_tasks.LambdaInvoke | None = None
        if step.distributed:
            # The list may be far larger than a state: a task writes it to S3, the ItemReader reads it.
            staged = frame.items_path(step)
            stage = lambda_task(
                self,
                f"{step.id}:items",
                function=self._step_function,
                payload=items_payload(step, scope, frame, self._kept.get(f"items:{step.id}")),
                result_path=staged,
                retries=Retries.step(60, RetryPolicy()),
                timeout_seconds=constants.STAGE_ITEMS_TIMEOUT_SECONDS,
            )
            reader = sfn.S3JsonItemReader(bucket=self._bucket, key=sfn.JsonPath.string_at(f"{staged}.key"))
            # As CDK's S3JsonItemReader writes its grant.
            objects = nag.flat(self, f"arn:{Aws.PARTITION}:s3:::{self._bucket.bucket_name}/*")
            nag.acknowledge(
                self,
                {
                    f"IAM5[Resource::{objects}]": "A distributed map's ItemReader reads the list its staging task "
                    "wrote under a content hash known only at run time; CDK grants s3:GetObject alone (no list, "
                    "write or delete)."
                },
            )
            map_state = sfn.DistributedMap(
                self, step.id, map_execution_type=sfn.StateMachineType.STANDARD, item_reader=reader, **options
            )
        else:
            map_state = sfn.Map(self, step.id, items_path=frame.path(step.items), **options)
        map_state.item_processor(self._sequence(list(step.steps), Scope("", in_map=True), inner, "$", None))
        for state in (stage, map_state):
            if state is not None and on_error is not None:
                state.add_catch(on_error, errors=["States.ALL"], result_path=ERROR_PATH)
        if stage is None:
            return map_state
        return sfn.Chain.start(stage).next(map_state)

    def _agent(
        self, step: AgentStep, scope: Scope, frame: Frame, result_path: str, on_error: sfn.IChainable | None
    ) -> sfn.Chain:
        def catch(state: sfn_tasks.LambdaInvoke | sfn.Map) -> None:
            if on_error is not None:
                state.add_catch(on_error, errors=["States.ALL"], result_path=ERROR_PATH)

        first, last = agent_states(
            self,
            step,
            step_function=self._step_function,
            payload_common=step_payload(self.definition, step, scope, frame, self._kept.get(step.id)),
            loop=frame.loop_path(step),
            result_path=result_path,
            add_retries=Retries.step(step.timeout_seconds, step.retry),
            add_request_retries=Retries.request(step.retry),
            add_catch=catch,
            continuation=scope.top_level,
        )
        if scope.top_level:
            self._continues = True
        return sfn.Chain.custom(first, [last], last)

    def _finish_task(self, name: str, function: lambda_.IFunction, payload: dict[str, Any]) -> sfn_tasks.LambdaInvoke:
        return lambda_task(
            self, name, function=function, payload=payload, result_path=sfn.JsonPath.DISCARD, retries=Retries.finish()
        )
