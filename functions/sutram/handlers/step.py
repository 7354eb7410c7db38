"""Lambda handler for `llm` and `tool` steps."""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from sutram import aws
from sutram.models import get_provider
from sutram.settings import get_settings
from sutram.steps import StepEvent, StepRuntime, run_step

logger = Logger()
tracer = Tracer()
metrics = Metrics()


@cache
def _runtime() -> StepRuntime:
    settings = get_settings()
    return StepRuntime(
        checkpoints=aws.checkpoint_store(),
        artifacts=aws.artifact_store(),
        providers=cache(get_provider),
        default_provider=settings.default_model_provider,
        default_model_id=settings.default_model_id,
        lease_margin_seconds=settings.lease_margin_seconds,
        faults=settings.faults,
    )


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> Any:
    step_event = StepEvent.model_validate(event)
    logger.append_keys(tenant=step_event.run.tenant, run_id=step_event.run.run_id, step=step_event.step.id)
    return run_step(step_event, _runtime())
