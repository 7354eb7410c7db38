"""Compile an `agent` step into its loop of states.

    <id>:start ─> <id> (turn) ─> <id>:done? ──done──> <id>:output ─> (next step)
                    ^                 └─ else ─> <id>:tools (Map: <id>:call per tool call)
                    └──────── <id>:next (turn + 1) <──┘

The turn and call tasks invoke the step Lambda with the `agent_turn` or `agent_tool` task; it runs
`sutram.engine.agent`. A call of a tool with `approval` rules answers {needs_approval: true} the
first time; the iteration then asks for a decision on a `.waitForTaskToken` task of that tool, and
the call runs again with the decision in `$.approval` (sutram.approvals.requests):

    <id>:call ─> <id>:approval? ──needs one──> <id>:approve <tool> ─> <id>:call
                       │                        └─ deadline ─> [<id>:escalate <tool> ─>] <id>:no decision ─┘
                       └─ else ─> <id>:called

The loop's state is small and lives in a slot of its own (`loop`, infra.workflow.frames): {turn,
done, tool_calls: [{id, name, call}], result?}; the conversation stays in DynamoDB. The agent's
output, {answer, finish_reason, turns}, goes to the step's result path. The tasks' payloads come
from infra.workflow.payloads.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as sfn_tasks
from constructs import Construct

from infra.constants import APPROVAL_TIMED_OUT
from infra.workflow.lambda_task import NO_RETRIES, RetryHook, lambda_task
from infra.workflow.payloads import (
    EXPIRED_DECISION,
    ApprovalAction,
    agent_tool_payload,
    agent_turn_payload,
    tool_approval_payload,
    tool_calls_item_selector,
)
from sutram.definition import AgentStep, AgentTool


def _nothing(state: sfn_tasks.LambdaInvoke | sfn.Map) -> None:
    del state


def agent_states(
    scope: Construct,
    step: AgentStep,
    *,
    step_function: lambda_.IFunction,
    payload_common: dict[str, Any],
    loop: str,
    result_path: str,
    add_retries: RetryHook = NO_RETRIES,
    add_request_retries: RetryHook = NO_RETRIES,
    add_catch: Callable[[sfn_tasks.LambdaInvoke | sfn.Map], None] = _nothing,
    continuation: bool = False,
) -> tuple[sfn.State, sfn.Pass]:
    """The agent's states, from its first to its last. `payload_common` is the step's task payload
    as for any step ({run, delivery, step, sources, scope}: payloads.step_payload); the loop's
    state lives at `loop`; the agent's output ({answer, finish_reason, turns}) goes to
    `result_path`; `add_retries` gives the turn and the call tasks their retriers (a workflow's:
    lambda_task.Retries.step), `add_request_retries` the approval tasks of gated tools
    (Retries.request), `add_catch` catches for the turn task and the tools Map (a Catch cannot
    leave a Map iteration).

    With `continuation` (a top-level agent), a turn that would pass the execution's budget of
    history events ends the execution by starting a fresh one of the same state machine with the
    same run and input and `resume: {<id>: turn}`; earlier steps then return their checkpoints
    and the loop starts again at that turn."""
    start = sfn.Pass(
        scope, f"{step.id}:start", result=sfn.Result.from_object({"turn": 0, "first_turn": 0}), result_path=loop
    )
    turn = lambda_task(
        scope,
        step.id,
        function=step_function,
        payload=agent_turn_payload(payload_common, loop),
        result_path=loop,
        retries=add_retries,
        timeout_seconds=step.timeout_seconds,
    )
    gated = step.gated_tools
    call = lambda_task(
        scope,
        f"{step.id}:call",
        function=step_function,
        payload=agent_tool_payload(payload_common, gated=bool(gated)),
        result_path="$.called" if gated else sfn.JsonPath.DISCARD,
        retries=add_retries,
        timeout_seconds=step.timeout_seconds,
    )
    if gated:
        call.next(_approval_states(scope, step, gated, step_function, payload_common, call, add_request_retries))
    tools = sfn.Map(
        scope,
        f"{step.id}:tools",
        items_path=f"{loop}.tool_calls",
        item_selector=tool_calls_item_selector(payload_common, loop, gated=bool(gated)),
        max_concurrency=0 if step.parallel_tool_calls else 1,  # 0: as many as there are calls
        result_path=sfn.JsonPath.DISCARD,
    ).item_processor(call)
    next_turn = sfn.Pass(
        scope,
        f"{step.id}:next",
        parameters={"turn.$": f"States.MathAdd({loop}.turn, 1)", "first_turn.$": f"{loop}.first_turn"},
        result_path=loop,
    )
    output = sfn.Pass(
        scope,
        f"{step.id}:output",
        input_path=f"{loop}.result",
        result_path=result_path,
    )
    for catching in (turn, tools):
        add_catch(catching)
    done = sfn.Choice(scope, f"{step.id}:done?")
    if continuation:
        continuing = sfn.Condition.and_(
            sfn.Condition.is_present(f"{loop}.continue"), sfn.Condition.boolean_equals(f"{loop}.continue", True)
        )
        done.when(continuing, _continue_in_new_execution(scope, step, loop))
    done.when(sfn.Condition.boolean_equals(f"{loop}.done", True), output).otherwise(tools)
    tools.next(next_turn).next(turn)
    start.next(turn).next(done)
    if not continuation:
        return start, output
    resumed = sfn.Pass(
        scope,
        f"{step.id}:resumed",
        parameters={"turn.$": f"$.resume.{step.id}", "first_turn.$": f"$.resume.{step.id}"},
        result_path=loop,
    )
    resumed.next(turn)
    entry = sfn.Choice(scope, f"{step.id}:resume?")
    entry.when(sfn.Condition.is_present(f"$.resume.{step.id}"), resumed).otherwise(start)
    return entry, output


def _approval_states(
    scope: Construct,
    step: AgentStep,
    gated: list[AgentTool],
    function: lambda_.IFunction,
    payload_common: dict[str, Any],
    call: sfn_tasks.LambdaInvoke,
    add_request_retries: RetryHook,
) -> sfn.Choice:
    """After a call: a Choice that ends the iteration, or, when the call answered that it needs a
    decision, goes to its tool's waitForTaskToken task; the task puts the decision at `$.approval`
    and goes back to the call. A missed deadline takes the tool's `on_timeout` path: reject (the
    `no decision` pass), escalate (a second task asking `escalate_to`, then reject), or fail (a
    Fail state named `APPROVAL_TIMED_OUT`: the tools Map fails, and the agent with it)."""

    def ask(action: ApprovalAction, name: str, deadline: int) -> sfn_tasks.LambdaInvoke:
        task = lambda_task(
            scope,
            name,
            function=function,
            payload=tool_approval_payload(payload_common, action),
            result_path="$.approval",
            retries=add_request_retries,
            timeout_seconds=deadline,
            wait_for_token=True,
        )
        task.next(call)
        return task

    needs_approval = sfn.Condition.is_present("$.called.needs_approval")
    choice = sfn.Choice(scope, f"{step.id}:approval?")
    no_decision: sfn.Pass | None = None
    for tool in gated:
        rules = tool.approval
        assert rules is not None
        request = ask("request", f"{step.id}:approve {tool.name}", rules.timeout_seconds)
        if rules.on_timeout == "fail":
            undecided = sfn.Fail(
                scope,
                f"{step.id}:{tool.name} undecided",
                error=APPROVAL_TIMED_OUT,
                cause=f"no one decided on a call of {tool.name} by agent {step.id} before its approval deadline",
            )
            request.add_catch(undecided, errors=["States.Timeout"], result_path=sfn.JsonPath.DISCARD)
        else:
            if no_decision is None:
                no_decision = sfn.Pass(
                    scope, f"{step.id}:no decision", parameters=EXPIRED_DECISION, result_path="$.approval"
                )
                no_decision.next(call)
            expired: sfn.IChainable = no_decision
            if rules.on_timeout == "escalate":
                escalate = ask("escalate", f"{step.id}:escalate {tool.name}", rules.escalation_deadline)
                escalate.add_catch(no_decision, errors=["States.Timeout"], result_path=sfn.JsonPath.DISCARD)
                expired = escalate
            request.add_catch(expired, errors=["States.Timeout"], result_path=sfn.JsonPath.DISCARD)
        this_tool = sfn.Condition.string_equals("$.called.name", tool.name)
        choice.when(sfn.Condition.and_(needs_approval, this_tool), request)
    return choice.otherwise(sfn.Succeed(scope, f"{step.id}:called"))


def _continue_in_new_execution(scope: Construct, step: AgentStep, loop: str) -> sfn.IChainable:
    """Start the same state machine (the same version: `$$.StateMachine.Id`) for the same run."""
    start = sfn.CustomState(
        scope,
        f"{step.id}:continue",
        state_json={
            "Type": "Task",
            "Resource": "arn:aws:states:::states:startExecution",
            "Parameters": {
                "StateMachineArn.$": "$$.StateMachine.Id",
                "Name.$": f"States.Format('{{}}-{step.id}-{{}}', $.run.run_id, {loop}.turn)",
                "Input": {
                    "run.$": "$.run",
                    "input.$": "$.input",
                    "resume": {f"{step.id}.$": f"{loop}.turn"},
                    "AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID.$": "$$.Execution.Id",
                },
            },
            "ResultPath": None,
        },
    )
    return start.next(sfn.Succeed(scope, f"{step.id}:continued", comment="the run goes on in a new execution"))
