"""The recovery routes: resume, abort and fork a run of the caller's tenant."""

from __future__ import annotations

from http import HTTPStatus
from typing import Annotated

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body

from sutram.recovery import service
from sutram.recovery.models import AbortRequest, ForkRequest, ReplayRequest, ResolveRequest, ResumeRequest
from sutram.rest.auth import CurrentCaller
from sutram.rest.errors import INVALID, NOT_FOUND, UNAUTHENTICATED, ErrorBody, documented
from sutram.runs.models import RunSummary, StepView
from sutram.runs.routes import Backend

router = Router()


@router.post(
    "/runs/<run_id>/resume",
    summary="Resume a failed, aborted or timed-out run from its checkpoints",
    responses=documented(
        http_200=("Resumed: a new execution of the same run", RunSummary),
        http_400=INVALID,
        http_401=UNAUTHENTICATED,
        http_404=NOT_FOUND,
        http_409=("The run is running or succeeded, or its steps do not fit the version asked for", ErrorBody),
        http_503=("Not resumed; retry", ErrorBody),
    ),
)
def resume_run(
    run_id: str, caller: CurrentCaller, runs: Backend, request: Annotated[ResumeRequest, Body()]
) -> RunSummary:
    return service.resume_run(runs, caller.tenant, run_id, request)


@router.post(
    "/runs/<run_id>/abort",
    summary="Abort a running run, with a reason",
    responses=documented(
        http_200=("Aborted", RunSummary),
        http_400=INVALID,
        http_401=UNAUTHENTICATED,
        http_404=NOT_FOUND,
        http_409=("The run is not running", ErrorBody),
        http_503=("Not aborted; retry", ErrorBody),
    ),
)
def abort_run(
    run_id: str, caller: CurrentCaller, runs: Backend, request: Annotated[AbortRequest, Body()]
) -> RunSummary:
    return service.abort_run(runs, caller.tenant, run_id, request, by=caller.user)


@router.post(
    "/runs/<run_id>/fork",
    summary="Fork a run at a step: a new run that reuses every step before it",
    responses=documented(
        http_201=("Forked: the new run", RunSummary),
        http_400=INVALID,
        http_401=UNAUTHENTICATED,
        http_404=NOT_FOUND,
        http_503=("Not forked; retry", ErrorBody),
    ),
)
def fork_run(
    run_id: str, caller: CurrentCaller, runs: Backend, request: Annotated[ForkRequest, Body()]
) -> Response[RunSummary]:
    forked = service.fork_run(runs, caller.tenant, run_id, request)
    return Response(status_code=HTTPStatus.CREATED, content_type=content_types.APPLICATION_JSON, body=forked)


@router.post(
    "/runs/<run_id>/resolve",
    summary="Settle an at-most-once call whose outcome is unknown: record its output, or allow one more call",
    responses=documented(
        http_200=("The step, settled; resume the run to go on", StepView),
        http_400=INVALID,
        http_401=UNAUTHENTICATED,
        http_404=NOT_FOUND,
        http_409=("The step has no call of unknown outcome", ErrorBody),
    ),
)
def resolve_outcome(
    run_id: str, caller: CurrentCaller, runs: Backend, request: Annotated[ResolveRequest, Body()]
) -> StepView:
    return service.resolve_outcome(runs, caller.tenant, run_id, request, by=caller.user)


@router.post(
    "/runs/<run_id>/replay",
    summary="Replay an ended run on a version, against its recorded results: no model or tool is called",
    responses=documented(
        http_201=("The replay: a new run; it succeeds if every step asked what the recorded run asked", RunSummary),
        http_400=INVALID,
        http_401=UNAUTHENTICATED,
        http_404=("No such run, or no such version", ErrorBody),
        http_409=("The run has not ended", ErrorBody),
        http_503=("Not started; retry", ErrorBody),
    ),
)
def replay_run(
    run_id: str, caller: CurrentCaller, runs: Backend, request: Annotated[ReplayRequest, Body()]
) -> Response[RunSummary]:
    replay = service.replay_run(runs, caller.tenant, run_id, request)
    return Response(status_code=HTTPStatus.CREATED, content_type=content_types.APPLICATION_JSON, body=replay)
