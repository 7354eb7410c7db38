"""Runs: start a workflow run, read it, list a tenant's runs and its steps, and record how it ended.

Starting a run is two writes that must agree, a run item in DynamoDB and a Step Functions
execution named after the run:

    the version to run: the one asked for, or the one the workflow's alias routes to
    conditional put of the run item (RUNNING, version, no execution_arn)
        ├─ item already there ─> same Idempotency-Key and input? return it (200), else 409
        └─> StartExecution(<state machine ARN>:<version>, name=run_id) ─> record execution_arn ─> 201
                 └─ fails ─> delete the item (still without execution_arn) ─> 503 (404 for an unknown version)

On a failed start the item is deleted rather than marked FAILED: the client was told nothing was
started, and a retry with the same Idempotency-Key must then really start the run instead of
returning a dead one. A start interrupted between the two writes (the Lambda crashed) leaves an
item without execution_arn; a retry with the same key finishes the start, because StartExecution
with the same name and input is itself idempotent; it starts the version the item records.

A run starts on a published version, never on the state machine's latest definition: a deploy that
changes the workflow publishes a new version and moves the alias (infra/versions.py), and runs
already going finish on the version they started on.

Every function takes the tenant from the authenticated caller; every key is built from it, so a
run of another tenant is simply not found.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError

from sutram import schemas
from sutram.contracts import CompensationReport, ExecutionError, FinishTask, PauseTask, RunRef
from sutram.definition import WorkflowDefinition
from sutram.errors import TooLargeForState
from sutram.rest.errors import InvalidCursor
from sutram.runs.catalog import Workflow, WorkflowCatalog
from sutram.runs.errors import (
    IdempotencyKeyReused,
    InvalidRunInput,
    RunAlreadyFinished,
    RunIdTaken,
    RunNotFound,
    StartFailed,
    VersionNotFound,
)
from sutram.runs.models import (
    ArtifactLink,
    ForkedFrom,
    RunDetail,
    RunError,
    RunLinks,
    RunPage,
    RunSummary,
    StartRunRequest,
    StepList,
    StepUsage,
    StepView,
    UsageTotals,
)
from sutram.store import artifacts, cursors
from sutram.store.artifacts import ArtifactStore
from sutram.store.checkpoints import AT_MOST_ONCE, IN_FLIGHT, CheckpointStore, step_status
from sutram.store.dynamo import canonical, expiry, from_epoch, iso, utc_now
from sutram.store.keys import step_path
from sutram.store.runs import (
    COMPENSATED,
    RUNNING,
    SUCCEEDED,
    RunEndedOtherwise,
    RunMissing,
    RunMoved,
    RunRecord,
    RunStatus,
    RunStore,
)

logger = Logger(child=True)


RUN_ID = re.compile(r"^r-[0-9a-z]{26}$")
MAX_CAUSE_CHARS = 4000  # a failure's cause as shown to clients; the full one stays in the execution history
_CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"


# --- what the logic needs -----------------------------------------------------------------------


@dataclass(frozen=True)
class RunsBackend:
    """What the runs logic works with (built by the composition root, sutram.wiring)."""

    runs: RunStore
    workflows: WorkflowCatalog
    executions: Any  # a boto3 Step Functions client
    artifacts: ArtifactStore
    checkpoints: CheckpointStore
    now: Callable[[], datetime] = field(default=utc_now)


# --- starting a run -----------------------------------------------------------------------------


@dataclass(frozen=True)
class StartedRun:
    run: RunSummary
    created: bool  # False: an earlier request with the same Idempotency-Key created it


def start_run(
    backend: RunsBackend, tenant: str, workflow_name: str, request: StartRunRequest, idempotency_key: str | None
) -> StartedRun:
    workflow = backend.workflows.get(workflow_name)
    check_run_input(workflow.definition, request.input)
    now = backend.now()
    if idempotency_key is None:
        run_id, request_hash = new_run_id(now), None
    else:
        run_id = idempotent_run_id(tenant, workflow_name, idempotency_key)
        # The version only counts when one is named, so keys used before versions existed still match.
        named = {"version": request.version} if request.version is not None else {}
        request_hash = _sha256_hex(canonical({"idempotency_key": idempotency_key, "input": request.input} | named))
    try:
        stored_input = backend.artifacts.offload_if_large(tenant, request.input, workflow.kept_input, "input")
    except TooLargeForState as exc:
        raise InvalidRunInput(str(exc), field="input") from None
    record = RunRecord(
        run_id=run_id,
        tenant=tenant,
        workflow=workflow_name,
        status=RUNNING,
        version=request.version or live_version(backend, workflow),
        created_at=iso(now),
        updated_at=iso(now),
        input=canonical(stored_input),
        idempotency_key_hash=request_hash,
        expires_at=expiry(now.timestamp()),
    )
    if backend.runs.create(record):
        start_execution(backend, workflow, record, named=request.version is not None)
        return StartedRun(summary(record), created=True)

    existing = backend.runs.get(tenant, run_id)
    if existing is None:  # a concurrent request with the same key failed to start it and discarded it
        raise StartFailed("the run could not be started; retry (with the same Idempotency-Key)")
    if existing.idempotency_key_hash != request_hash:
        raise IdempotencyKeyReused(
            "this Idempotency-Key was already used with a different input; use a new key for a new run",
            field="Idempotency-Key",
        )
    if existing.status == RUNNING and existing.execution_arn is None:
        start_execution(
            backend, workflow, existing, named=request.version is not None
        )  # finish a start that was interrupted
    return StartedRun(summary(existing), created=False)


def check_run_input(definition: WorkflowDefinition, run_input: dict[str, Any]) -> None:
    reserved = _reserved_key(run_input, "input")
    if reserved is not None:
        raise InvalidRunInput(f"{reserved} is reserved", field=reserved)
    if definition.input_schema is None:
        return
    try:
        schemas.check(definition.input_schema, run_input, "input")
    except schemas.SchemaMismatch as exc:
        raise InvalidRunInput(exc.message, field=exc.field) from None


def _reserved_key(value: Any, where: str) -> str | None:
    """Where `value` holds the key artifact references are told apart by, if anywhere: steps load
    any reference they meet, so the input may not contain one that did not come from Sutram."""
    if isinstance(value, dict):
        if artifacts.REF in value:
            return f"{where}.{artifacts.REF}"
        found = (_reserved_key(part, f"{where}.{name}") for name, part in value.items())
    elif isinstance(value, list):
        found = (_reserved_key(part, f"{where}[{index}]") for index, part in enumerate(value))
    else:
        return None
    return next((path for path in found if path is not None), None)


def new_run_id(now: datetime) -> str:
    """A random id that sorts by creation time: 48 bits of milliseconds, 80 random bits (like a ULID)."""
    value = (int(now.timestamp() * 1000) << 80) | int.from_bytes(os.urandom(10), "big")
    return "r-" + "".join(_CROCKFORD[(value >> shift) & 31] for shift in range(125, -1, -5))


def idempotent_run_id(tenant: str, workflow: str, idempotency_key: str) -> str:
    """The same tenant, workflow and key always name the same run (and so the same execution)."""
    digest = hashlib.sha256("\n".join((tenant, workflow, idempotency_key)).encode()).digest()
    return "r-" + base64.b32encode(digest).decode().lower()[:26]


def live_version(backend: RunsBackend, workflow: Workflow) -> int:
    """The version the workflow's alias routes a new run to (by weight, should it route to two)."""
    try:
        alias = backend.executions.describe_state_machine_alias(stateMachineAliasArn=workflow.alias_arn)
    except (ClientError, BotoCoreError):
        logger.exception("DescribeStateMachineAlias failed", extra={"alias": workflow.alias_arn})
        raise StartFailed("the run could not be started; retry (with the same Idempotency-Key)") from None
    routes = alias["routingConfiguration"]
    (route,) = random.choices(routes, weights=[route["weight"] for route in routes])
    return int(route["stateMachineVersionArn"].rsplit(":", 1)[1])


def start_execution(backend: RunsBackend, workflow: Workflow, record: RunRecord, *, named: bool) -> None:
    """Start the record's version as its current execution (`record.execution`: 0, then one more
    per resume, each named after the run); `named`: the caller asked for the version (so it may
    not exist)."""
    run = RunRef(
        tenant=record.tenant,
        run_id=record.run_id,
        workflow=record.workflow,
        execution=record.execution,
        replay_of=record.replay_of,
        inputs=json.loads(record.inputs) if record.inputs else None,
    )
    execution_input = {"run": run.model_dump(exclude_defaults=True), "input": json.loads(record.input)}
    version = record.version or live_version(backend, workflow)
    name = record.run_id if record.execution == 0 else f"{record.run_id}-{record.execution}"
    try:
        response = backend.executions.start_execution(
            stateMachineArn=workflow.version_arn(version), name=name, input=canonical(execution_input)
        )
    except (ClientError, BotoCoreError) as exc:
        logger.exception("StartExecution failed; discarding the unstarted run", extra={"run_id": record.run_id})
        backend.runs.discard_unstarted(record.tenant, record.run_id)
        code = exc.response["Error"]["Code"] if isinstance(exc, ClientError) else None
        if named and code == "StateMachineDoesNotExist":
            raise VersionNotFound(f"workflow {record.workflow!r} has no version {version}", field="version") from None
        if code == "ExecutionAlreadyExists":
            raise RunIdTaken(
                f"an execution named {record.run_id} already exists with another input or has ended; "
                "use a new Idempotency-Key",
                field="Idempotency-Key",
            ) from None
        raise StartFailed("the run could not be started; retry (with the same Idempotency-Key)") from None
    backend.runs.record_execution(record.tenant, record.run_id, response["executionArn"], version)


# --- reading runs and steps ---------------------------------------------------------------------


def get_run(backend: RunsBackend, tenant: str, run_id: str) -> RunDetail:
    record = existing_run(backend, tenant, run_id)
    steps = backend.checkpoints.list_steps(tenant, run_id)
    usage = UsageTotals()
    for step in steps:
        if step.get("usage"):
            step_usage = StepUsage.model_validate(step["usage"])
            usage.input_tokens += step_usage.input_tokens
            usage.output_tokens += step_usage.output_tokens
            usage.cached_tokens += step_usage.cached_tokens
            usage.model_calls += 1
    run_input, input_artifact = _inline_or_link(backend.artifacts, tenant, record.input)
    output, output_artifact = _inline_or_link(backend.artifacts, tenant, record.output)
    return RunDetail(
        **summary(record).model_dump(),
        input=run_input,
        input_artifact=input_artifact,
        output=output,
        output_artifact=output_artifact,
        usage=usage,
        steps_completed=sum(1 for step in steps if step_status(step) == SUCCEEDED),
        forks=record.forks or [],
        aborted_by=record.aborted_by,
        paused_step=record.paused_step,
        compensation=record.compensation,
    )


def list_steps(backend: RunsBackend, tenant: str, run_id: str) -> StepList:
    existing_run(backend, tenant, run_id)
    items = backend.checkpoints.list_steps(tenant, run_id)
    return StepList(steps=[step_view(backend.artifacts, tenant, item) for item in items])


def list_runs(
    backend: RunsBackend,
    tenant: str,
    *,
    workflow: str | None,
    status: str | None,
    limit: int,
    cursor: str | None,
    forked_from: str | None = None,
) -> RunPage:
    """One page of the tenant's runs, newest first (see RunStore.page); `forked_from`: only forks of that run."""
    try:
        records, next_cursor = backend.runs.page(
            tenant, workflow=workflow, status=status, limit=limit, cursor=cursor, forked_from=forked_from
        )
    except cursors.InvalidCursor as exc:
        raise InvalidCursor(str(exc), field="cursor") from None
    return RunPage(runs=[summary(record) for record in records], next_cursor=next_cursor)


def existing_run(backend: RunsBackend, tenant: str, run_id: str) -> RunRecord:
    record = backend.runs.get(tenant, run_id) if RUN_ID.match(run_id) else None
    if record is None:
        raise RunNotFound("no such run")  # the same answer whether it is unknown or another tenant's
    return record


def summary(record: RunRecord) -> RunSummary:
    return RunSummary(
        run_id=record.run_id,
        workflow=record.workflow,
        status=record.status,
        version=record.version,
        execution=record.execution,
        forked_from=ForkedFrom.model_validate(record.forked_from) if record.forked_from else None,
        replay_of=record.replay_of,
        created_at=datetime.fromisoformat(record.created_at),
        updated_at=datetime.fromisoformat(record.updated_at),
        finished_at=datetime.fromisoformat(record.finished_at) if record.finished_at else None,
        error=RunError.model_validate(record.error) if record.error else None,
        links=RunLinks(run=f"/runs/{record.run_id}", steps=f"/runs/{record.run_id}/steps"),
    )


def step_view(store: ArtifactStore, tenant: str, item: dict[str, Any]) -> StepView:
    started_at, finished_at = item.get("started_at"), item.get("finished_at")
    output, output_artifact = _inline_or_link(store, tenant, item.get("output"))
    return StepView(
        id=step_path(item["sk"]),
        type=item.get("step_type"),
        status=step_status(item),
        attempts=int(item.get("attempt", 0)),
        started_at=from_epoch(started_at),
        finished_at=from_epoch(finished_at),
        duration_ms=int((Decimal(finished_at) - Decimal(started_at)) * 1000) if started_at and finished_at else None,
        usage=StepUsage.model_validate(item["usage"]) if item.get("usage") else None,
        output=output,
        output_artifact=output_artifact,
        error=item.get("error"),
        delivery=_delivery(item),
        outcome_unknown=bool(item.get(IN_FLIGHT)) and item.get("status") == "running",
        resolved_by=item.get("resolved_by"),
        copied_from=item.get("copied_from"),
    )


def _delivery(item: dict[str, Any]) -> Literal["at_least_once", "at_most_once"] | None:
    if item.get(AT_MOST_ONCE):
        return "at_most_once"
    return "at_least_once" if item.get("step_type") in ("tool", "agent_tool") else None


def _inline_or_link(store: ArtifactStore, tenant: str, stored: str | None) -> tuple[Any, ArtifactLink | None]:
    """A stored value as (inline value, None) or (None, link to its artifact)."""
    if stored is None:
        return None, None
    value = json.loads(stored)
    key = artifacts.own_key(tenant, value)
    if (
        key is None
    ):  # only the tenant's own artifacts are linked: a value that merely looks like a reference stays inline
        return value, None
    return None, ArtifactLink(key=key, bytes=int(value.get(artifacts.SIZE, 0)), url=store.presigned_url(key))


# --- recording how a run ended (called by the state machine's RecordSuccess/RecordFailure) --------


def finish_run(backend: RunsBackend, task: FinishTask) -> None:
    outcome: dict[str, Any]
    status: RunStatus = task.status
    if task.status == SUCCEEDED:
        # The output as one value, inline or one artifact: a map's list of offloaded iteration
        # outputs, or a transform's copied references, are read back and stored whole.
        tenant = task.run.tenant
        whole = backend.artifacts.load_all(tenant, task.output, strict=False)
        output = backend.artifacts.offload_if_large(tenant, whole)
        outcome = {"output": canonical(output)}
    else:
        error = task.error or ExecutionError()
        outcome = {"error": {"error": error.Error, "cause": _readable_cause(error.Cause)}}
        report = _compensation_report(task.compensation)
        if report is not None and (report["undone"] or report["not_undone"]):
            outcome["compensation"] = report
            status = COMPENSATED  # failed, and its side effects were undone (or tried to be)
    try:
        backend.runs.finish(task.run.tenant, task.run.run_id, status, iso(backend.now()), outcome)
    except RunMissing as exc:
        raise RunNotFound(str(exc)) from None
    except RunEndedOtherwise as exc:
        raise RunAlreadyFinished(str(exc)) from None


def pause_run(backend: RunsBackend, task: PauseTask) -> None:
    """Record that the run waits, paused at a step by an error it declares (`on_error.pause`), with
    the token that resumes it (sutram.recovery resumes or aborts it)."""
    error = {"error": task.error.Error, "cause": _readable_cause(task.error.Cause)}
    try:
        backend.runs.pause(
            task.run.tenant,
            task.run.run_id,
            execution=task.run.execution,
            step=task.scope + task.step_id,
            error=error,
            token=task.task_token,
            at=iso(backend.now()),
        )
    except RunMoved as exc:
        raise RunAlreadyFinished(str(exc)) from None
    logger.info("run paused", extra={"run_id": task.run.run_id, "step": task.step_id, "error": task.error.Error})


def _compensation_report(compensation: dict[str, Any] | None) -> dict[str, Any] | None:
    """The compensate task's report; when the task itself failed, its error as what was not undone."""
    if compensation is None:
        return None
    if "undone" in compensation:
        return CompensationReport.model_validate(compensation).model_dump()
    cause = _readable_cause(compensation.get("Cause"))
    return {"undone": [], "not_undone": [{"step": "*", "error": f"{compensation.get('Error')}: {cause}"}]}


def _readable_cause(cause: str | None) -> str:
    """A Lambda error's Cause is JSON with errorMessage and a stack trace: keep the message."""
    if not cause:
        return ""
    try:
        parsed = json.loads(cause)
    except ValueError:
        parsed = None
    message = parsed.get("errorMessage") if isinstance(parsed, dict) else None
    return str(message if message is not None else cause)[:MAX_CAUSE_CHARS]


# --- small helpers ------------------------------------------------------------------------------


def _sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()
