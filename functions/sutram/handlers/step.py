"""Lambda handler for every task a workflow's state machine gives the step function: `llm` and
`tool` steps, the turns and tool calls of `agent` steps, the approval requests of `approval`
steps and of agents' gated tool calls, the staging of a distributed map's items, and the pause
of a run at a step. It dispatches on the payload's `task` field (sutram.contracts.Task)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from sutram import wiring
from sutram.approvals.requests import request_approval, request_tool_approval
from sutram.contracts import (
    AgentToolTask,
    AgentTurnTask,
    ApprovalTask,
    CompensateTask,
    ItemsTask,
    PauseTask,
    StepTask,
    Task,
    ToolApprovalTask,
    parse_task,
)
from sutram.engine.agent import run_agent_tool, run_agent_turn
from sutram.engine.compensation import compensate
from sutram.engine.items import stage_items
from sutram.engine.steps import run_step
from sutram.runs.service import pause_run

logger = Logger()
tracer = Tracer()
metrics = Metrics()


# Never log the event, whatever POWERTOOLS_LOGGER_LOG_EVENT says: approval requests carry task tokens.
@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> Any:
    metrics.add_metric(name="StepInvocations", unit=MetricUnit.Count, value=1)
    return dispatch(parse_task(event))


def dispatch(task: Task) -> Any:
    """Run a task with this sandbox's runtimes."""
    match task:
        case StepTask():
            logger.append_keys(tenant=task.run.tenant, run_id=task.run.run_id, step=task.step.id)
            return run_step(task, wiring.step_runtime())
        case AgentTurnTask():
            return run_agent_turn(task, wiring.step_runtime())
        case AgentToolTask():
            return run_agent_tool(task, wiring.step_runtime())
        case ApprovalTask():  # the run waits for the decision
            return request_approval(task, wiring.approval_runtime())
        case ToolApprovalTask():  # a gated tool call waits for the decision
            return request_tool_approval(task, wiring.step_runtime(), wiring.approval_runtime())
        case ItemsTask():
            return stage_items(task, wiring.artifact_store())
        case CompensateTask():  # the run failed: undo its completed side effects
            return compensate(task, wiring.step_runtime())
        case PauseTask():  # the run waits for an operator
            return pause_run(wiring.runs_backend(), task)
    raise ValueError(f"the step function does not run {task.task!r} tasks")
