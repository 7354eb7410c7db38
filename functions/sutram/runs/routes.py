"""The runs routes: start a run, list runs, read a run and its steps."""

from __future__ import annotations

from http import HTTPStatus
from typing import Annotated

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.depends import Depends
from aws_lambda_powertools.event_handler.openapi.params import Body, Header, Query

from sutram.definition import WORKFLOW_NAME
from sutram.rest.auth import CurrentCaller
from sutram.rest.errors import INVALID, NOT_FOUND, UNAUTHENTICATED, ErrorBody, documented
from sutram.runs import service
from sutram.runs.models import RunDetail, RunPage, RunStatus, RunSummary, StartRunRequest, StepList
from sutram.runs.service import RunsBackend

router = Router()


def backend() -> RunsBackend:
    """What the routes work with: the API handler overrides this with the composition root's."""
    raise NotImplementedError("the runs routes are wired by sutram.handlers.api (app.dependency_overrides)")


Backend = Annotated[RunsBackend, Depends(backend)]


@router.post(
    "/workflows/<name>/runs",
    summary="Start a run",
    responses=documented(
        http_201=("Started", RunSummary),
        http_200=("Already started by an earlier request with this Idempotency-Key", RunSummary),
        http_400=INVALID,
        http_401=UNAUTHENTICATED,
        http_404=("No such workflow, or no such version of it", ErrorBody),
        http_409=("Idempotency-Key already used with another input", ErrorBody),
        http_503=("Not started; retry with the same Idempotency-Key", ErrorBody),
    ),
)
def start_run(
    name: str,
    request: Annotated[StartRunRequest, Body()],
    caller: CurrentCaller,
    runs: Backend,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", min_length=1, max_length=255)] = None,
) -> Response[RunSummary]:
    started = service.start_run(runs, caller.tenant, name, request, idempotency_key)
    status = HTTPStatus.CREATED if started.created else HTTPStatus.OK
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=started.run)


@router.get(
    "/runs",
    summary="List runs, newest first",
    responses=documented(http_200=("A page of runs", RunPage), http_400=INVALID, http_401=UNAUTHENTICATED),
)
def list_runs(
    caller: CurrentCaller,
    runs: Backend,
    workflow: Annotated[str | None, Query(pattern=WORKFLOW_NAME)] = None,
    status: Annotated[RunStatus | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=2048)] = None,
    forked_from: Annotated[str | None, Query(pattern=service.RUN_ID.pattern)] = None,
) -> RunPage:
    return service.list_runs(
        runs, caller.tenant, workflow=workflow, status=status, limit=limit, cursor=cursor, forked_from=forked_from
    )


@router.get(
    "/runs/<run_id>",
    summary="A run: status, input, output, error and usage totals",
    responses=documented(http_200=("The run", RunDetail), http_401=UNAUTHENTICATED, http_404=NOT_FOUND),
)
def get_run(run_id: str, caller: CurrentCaller, runs: Backend) -> RunDetail:
    return service.get_run(runs, caller.tenant, run_id)


@router.get(
    "/runs/<run_id>/steps",
    summary="A run's steps in the order they started",
    responses=documented(http_200=("The run's steps", StepList), http_401=UNAUTHENTICATED, http_404=NOT_FOUND),
)
def list_steps(run_id: str, caller: CurrentCaller, runs: Backend) -> StepList:
    return service.list_steps(runs, caller.tenant, run_id)
