"""Lambda handler for the HTTP API (API Gateway REST proxy events).

It wires each capability's routes to this sandbox's backends (sutram.wiring). Request counts and
latencies come from API Gateway's own metrics; this handler adds none."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from sutram import wiring
from sutram.api.app import app, resolve
from sutram.approvals import routes as approvals
from sutram.runs import routes as runs

logger = Logger()
tracer = Tracer()

app.dependency_overrides[runs.backend] = wiring.runs_backend
app.dependency_overrides[approvals.backend] = wiring.approvals_backend


# Never log the event, whatever POWERTOOLS_LOGGER_LOG_EVENT says: it carries the caller's ID token,
# and a callback request carries a signed approval link in its path.
@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True, log_event=False)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return resolve(event, context)
