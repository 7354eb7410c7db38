"""Lambda handler for the state machine's RecordSuccess and RecordFailure tasks: record how a run ended."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from sutram import wiring
from sutram.contracts import FinishTask
from sutram.runs.service import finish_run

logger = Logger()
tracer = Tracer()
metrics = Metrics()


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, str]:
    finish = FinishTask.model_validate(event)
    logger.append_keys(tenant=finish.run.tenant, run_id=finish.run.run_id, status=finish.status)
    finish_run(wiring.runs_backend(), finish)
    metrics.add_dimension(name="workflow", value=finish.run.workflow)
    metrics.add_metric(
        name="RunsSucceeded" if finish.status == "SUCCEEDED" else "RunsFailed", unit=MetricUnit.Count, value=1
    )
    return {"run_id": finish.run.run_id, "status": finish.status}
