"""Resume, abort and fork a run, and settle a call of unknown outcome.

resume ─> the run's current execution has ended (or died without saying so)
       ─> its completed steps fit the version it resumes on (compatibility.py)
       ─> the run item: RUNNING again, execution n + 1 (conditional: one resume wins)
       ─> StartExecution "<run id>-<n + 1>" with the same input: done steps return checkpoints
abort  ─> StopExecution (error Sutram.Aborted, the reason as cause) ─> the run item: ABORTED
fork   ─> a new run, input and version of its parent, whose checkpoints start as copies of the
          parent's for every step before the fork point (some outputs replaced, if asked)
resolve ─> an at-most-once call of unknown outcome: record what it produced, or allow one more
           call (who decided is recorded); then resume the run
"""

from __future__ import annotations

import json
import re
from typing import Any

from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError

from sutram.recovery.compatibility import first_mismatch
from sutram.recovery.errors import (
    InvalidForkPoint,
    InvalidInputs,
    OutcomeKnown,
    RunNotResumable,
    RunNotRunning,
    VersionMismatch,
)
from sutram.recovery.models import (
    MAX_INPUTS_BYTES,
    AbortRequest,
    ForkRequest,
    ReplayRequest,
    ResolveRequest,
    ResumeRequest,
)
from sutram.runs.catalog import Workflow
from sutram.runs.errors import StartFailed
from sutram.runs.models import RunSummary, StepView
from sutram.runs.service import (
    RunsBackend,
    existing_run,
    live_version,
    new_run_id,
    start_execution,
    step_view,
    summary,
)
from sutram.store.checkpoints import SUCCEEDED, NotUnknown, StepKey
from sutram.store.dynamo import canonical, expiry, iso
from sutram.store.keys import step_path
from sutram.store.runs import ABORTED_ERROR, PAUSED, RUNNING, RunMoved, RunRecord

logger = Logger(child=True)

ENDED = ("FAILED", "TIMED_OUT", "ABORTED")  # execution statuses a run may be resumed from
_TOP_LEVEL = re.compile(r"^[a-z][a-z0-9_]*")


def _execution_status(backend: RunsBackend, record: RunRecord) -> str:
    if record.execution_arn is None:
        return "FAILED"  # never started: nothing runs
    try:
        return str(backend.executions.describe_execution(executionArn=record.execution_arn)["status"])
    except (ClientError, BotoCoreError):
        logger.exception("DescribeExecution failed", extra={"run_id": record.run_id})
        raise StartFailed("the run's execution could not be read; retry") from None


# --- resume -------------------------------------------------------------------------------------


def resume_run(backend: RunsBackend, tenant: str, run_id: str, request: ResumeRequest) -> RunSummary:
    record = existing_run(backend, tenant, run_id)
    if request.inputs and record.status == PAUSED:
        raise RunNotResumable(
            "a paused run goes on in its own execution, with its own inputs; abort it, then resume it with inputs"
        )
    if record.status == PAUSED and request.version in (None, record.version):
        unpaused = _unpause(backend, record)
        if unpaused is not None:
            return unpaused
        record = existing_run(backend, tenant, run_id)  # its execution is gone: a new one, below
    if record.status == "SUCCEEDED":
        raise RunNotResumable("the run succeeded; fork it to run steps again")
    if record.status == "COMPENSATED":
        raise RunNotResumable("the run's side effects were undone (compensated); fork it to run steps again")
    if record.status == RUNNING and _execution_status(backend, record) not in ENDED:
        raise RunNotResumable("the run is running; abort it first to resume it")
    workflow = backend.workflows.get(record.workflow)
    version = record.version
    if request.version is not None and request.version != record.version:
        live = live_version(backend, workflow)
        if request.version != live:
            raise VersionMismatch(
                f"a run resumes on its own version ({record.version}) or the live one ({live})", field="version"
            )
        mismatch = first_mismatch(workflow.definition, backend.checkpoints.list_steps(tenant, run_id))
        if mismatch:
            raise VersionMismatch(f"version {live}: {mismatch}", field="version")
        version = live
    inputs = _corrected_inputs(backend, record, request)
    now = iso(backend.now())
    try:
        backend.runs.reopen(tenant, run_id, execution=record.execution, at=now)
    except RunMoved:
        raise RunNotResumable("the run changed meanwhile (resumed or aborted by someone else); read it again") from None
    if version is not None and version != record.version:
        backend.runs.set_version(tenant, run_id, version)
    if inputs is not None:
        backend.runs.set_inputs(tenant, run_id, inputs)
    update = {"status": RUNNING, "execution": record.execution + 1, "version": version, "updated_at": now}
    resumed = record.model_copy(update=update | ({"inputs": inputs} if inputs is not None else {}))
    start_execution(backend, workflow, resumed, named=False)
    logger.info("run resumed", extra={"run_id": run_id, "execution": resumed.execution, "version": version})
    return summary(resumed.model_copy(update={"finished_at": None, "error": None}))


def _corrected_inputs(backend: RunsBackend, record: RunRecord, request: ResumeRequest) -> str | None:
    """The run's corrected arguments with the request's added, as JSON; only for steps not completed."""
    if not request.inputs:
        return None
    completed = {
        step_path(item["sk"])
        for item in backend.checkpoints.list_steps(record.tenant, record.run_id)
        if item.get("status") == SUCCEEDED
    }
    for path in request.inputs:
        if path in completed:
            raise InvalidInputs(f"inputs.{path}: the step completed; fork the run to change it", field=f"inputs.{path}")
    inputs = (json.loads(record.inputs) if record.inputs else {}) | request.inputs
    text = canonical(inputs)
    if len(text.encode()) > MAX_INPUTS_BYTES:
        raise InvalidInputs(f"inputs: {len(text.encode())} bytes of JSON, more than {MAX_INPUTS_BYTES}", field="inputs")
    return text


def _unpause(backend: RunsBackend, record: RunRecord) -> RunSummary | None:
    """Let the paused execution go on (its step runs again); None when that execution is gone."""
    now = iso(backend.now())
    try:
        token = backend.runs.unpause(record.tenant, record.run_id, at=now)
    except RunMoved:
        raise RunNotResumable("the run changed meanwhile (resumed or aborted by someone else); read it again") from None
    try:
        backend.executions.send_task_success(taskToken=token, output="{}")
    except ClientError as exc:
        if exc.response["Error"]["Code"] not in ("TaskTimedOut", "TaskDoesNotExist", "InvalidToken"):
            raise
        logger.info("the paused execution is gone; resuming in a new one", extra={"run_id": record.run_id})
        return None
    logger.info("paused run resumed", extra={"run_id": record.run_id})
    update = {"status": RUNNING, "updated_at": now, "error": None, "paused_step": None}
    return summary(record.model_copy(update=update))


# --- abort --------------------------------------------------------------------------------------


def abort_run(backend: RunsBackend, tenant: str, run_id: str, request: AbortRequest, by: str) -> RunSummary:
    record = existing_run(backend, tenant, run_id)
    if record.status not in (RUNNING, PAUSED):
        raise RunNotRunning(f"the run is {record.status}, not running")
    if record.execution_arn is not None:
        try:
            backend.executions.stop_execution(
                executionArn=record.execution_arn, error=ABORTED_ERROR, cause=request.reason
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ExecutionDoesNotExist":
                logger.exception("StopExecution failed", extra={"run_id": run_id})
                raise StartFailed("the run's execution could not be stopped; retry") from None
    now = iso(backend.now())
    try:
        backend.runs.abort(tenant, run_id, execution=record.execution, at=now, reason=request.reason, by=by)
    except RunMoved:
        raise RunNotRunning("the run ended or was resumed meanwhile; read it again") from None
    logger.info("run aborted", extra={"run_id": run_id, "by": by})
    error = {"error": ABORTED_ERROR, "cause": request.reason}
    return summary(
        record.model_copy(update={"status": "ABORTED", "finished_at": now, "updated_at": now, "error": error})
    )


# --- fork ---------------------------------------------------------------------------------------


def fork_run(backend: RunsBackend, tenant: str, run_id: str, request: ForkRequest) -> RunSummary:
    parent = existing_run(backend, tenant, run_id)
    workflow = backend.workflows.get(parent.workflow)
    top_level = [step.id for step in workflow.definition.steps]
    if request.step not in top_level:
        raise InvalidForkPoint(
            f"{request.step!r} is not a top-level step of {parent.workflow!r} ({', '.join(top_level)})", field="step"
        )
    before = set(top_level[: top_level.index(request.step)])
    reused = [
        item
        for item in backend.checkpoints.list_steps(tenant, run_id)
        if item.get("status") == SUCCEEDED and _top_level(step_path(item["sk"])) in before
    ]
    paths = {step_path(item["sk"]) for item in reused}
    for path in request.outputs:
        if path not in paths:
            raise InvalidForkPoint(
                f"outputs.{path}: not a completed step before {request.step!r} in run {run_id}",
                field=f"outputs.{path}",
            )
    replaced = {
        path: canonical(backend.artifacts.offload_if_large(tenant, value, where=f"outputs.{path}"))
        for path, value in request.outputs.items()
    }
    fork = _start_from(
        backend,
        workflow,
        parent,
        reused,
        outputs=replaced,
        version=parent.version,
        forked_from={"run_id": run_id, "step": request.step},
    )
    backend.runs.add_fork(tenant, run_id, fork.run_id)
    logger.info("run forked", extra={"run_id": fork.run_id, "parent": run_id, "step": request.step})
    return summary(fork)


# --- resolve an unknown outcome ------------------------------------------------------------------


def resolve_outcome(backend: RunsBackend, tenant: str, run_id: str, request: ResolveRequest, by: str) -> StepView:
    existing_run(backend, tenant, run_id)
    key = StepKey(tenant, run_id, request.step)
    output = None
    if request.action == "record":
        output = backend.artifacts.offload_if_large(tenant, request.output, where="output")
    try:
        item = backend.checkpoints.resolve(key, by=by, output=output, retry=request.action == "retry")
    except NotUnknown:
        raise OutcomeKnown(
            f"step {request.step!r} has no at-most-once call of unknown outcome to resolve", field="step"
        ) from None
    logger.info("unknown outcome resolved", extra={"run_id": run_id, "step": request.step, "action": request.action})
    return step_view(backend.artifacts, tenant, item)


# --- replay -------------------------------------------------------------------------------------


def replay_run(backend: RunsBackend, tenant: str, run_id: str, request: ReplayRequest) -> RunSummary:
    """A new run that executes `request.version` (by default the recorded run's own) against the
    recorded run's model and tool results and approval decisions: it calls nothing and asks nobody,
    and fails with ReplayDiverged at the first step that asks something else or did not run."""
    recorded = existing_run(backend, tenant, run_id)
    if recorded.status in (RUNNING, PAUSED):
        raise RunNotResumable(f"the run is {recorded.status}; replay it once it has ended")
    workflow = backend.workflows.get(recorded.workflow)
    finished = [item for item in backend.checkpoints.list_steps(tenant, run_id) if item.get("status") == SUCCEEDED]
    version = request.version or recorded.version
    replay = _start_from(backend, workflow, recorded, finished, version=version, replay_of=run_id)
    logger.info("run replayed", extra={"run_id": replay.run_id, "replay_of": run_id, "version": replay.version})
    return summary(replay)


def _start_from(
    backend: RunsBackend,
    workflow: Workflow,
    parent: RunRecord,
    checkpoints: list[dict[str, Any]],
    *,
    version: int | None,
    outputs: dict[str, str] | None = None,
    **lineage: Any,
) -> RunRecord:
    """Start a new run with `parent`'s input whose checkpoints begin as copies of `checkpoints`
    (with `outputs` replaced): a fork or a replay, as `lineage` says."""
    now = backend.now()
    run = RunRecord(
        run_id=new_run_id(now),
        tenant=parent.tenant,
        workflow=parent.workflow,
        status=RUNNING,
        version=version,
        created_at=iso(now),
        updated_at=iso(now),
        input=parent.input,
        expires_at=expiry(now.timestamp()),
        **lineage,
    )
    backend.runs.create(run)
    backend.checkpoints.copy_into(
        parent.tenant, run.run_id, checkpoints, source_run_id=parent.run_id, outputs=outputs or {}
    )
    start_execution(backend, workflow, run, named=version != parent.version)
    return run


def _top_level(path: str) -> str:
    match = _TOP_LEVEL.match(path)
    return match.group(0) if match else ""
