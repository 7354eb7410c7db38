"""Lambda handler for `llm` and `tool` steps, the turns and tool calls of `agent` steps, and the
approval requests of `approval` steps and of agents' gated tool calls."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from sutram import agent_runtime, approval_step, aws, tool_approvals
from sutram.steps import StepEvent, run_step

logger = Logger()
tracer = Tracer()
metrics = Metrics()


# Never log the event, whatever POWERTOOLS_LOGGER_LOG_EVENT says: approval requests carry task tokens.
@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> Any:
    metrics.add_metric(name="StepInvocations", unit=MetricUnit.Count, value=1)
    if event.get("agent_action") == "approval":  # a gated tool call of an agent waits for a decision
        return tool_approvals.request_tool_approval(event, aws.step_runtime(), aws.approval_runtime())
    if "agent_action" in event:  # a turn or a tool call of an `agent` step
        return agent_runtime.handle(event, aws.step_runtime())
    if "approval_action" in event:  # an `approval` step asks for a decision; the run waits for it
        return approval_step.request_approval(event, aws.approval_runtime())
    step_event = StepEvent.model_validate(event)
    logger.append_keys(tenant=step_event.run.tenant, run_id=step_event.run.run_id, step=step_event.step.id)
    return run_step(step_event, aws.step_runtime())
