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
from datetime import UTC, datetime
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any, Literal

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.validation import validate
from aws_lambda_powertools.utilities.validation.exceptions import SchemaValidationError
from boto3.dynamodb.conditions import Attr, Key
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel, ConfigDict

from sutram import artifacts, aws, cursors, keys
from sutram.api.models import (
    ArtifactLink,
    RunDetail,
    RunError,
    RunLinks,
    RunPage,
    RunStatus,
    RunSummary,
    StartRunRequest,
    StepList,
    StepUsage,
    StepView,
    UsageTotals,
)
from sutram.artifacts import ArtifactStore
from sutram.checkpoints import CheckpointStore
from sutram.definition import WORKFLOW_NAME, DefinitionError, WorkflowDefinition, load_definition
from sutram.errors import SutramError
from sutram.settings import get_settings
from sutram.steps import RunRef

logger = Logger()

RUNNING, SUCCEEDED, FAILED = "RUNNING", "SUCCEEDED", "FAILED"
RUN_ID = re.compile(r"^r-[0-9a-z]{26}$")
MAX_CAUSE_CHARS = 4000  # a failure's cause as shown to clients; the full one stays in the execution history
FILTERED_READ_SIZE = 100  # items read per query when filters may drop some
MAX_QUERIES_PER_PAGE = 10  # bound on the reads behind one page of a filtered listing
_CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"


# --- errors the API turns into 4xx/5xx bodies ---------------------------------------------------


class RunsError(SutramError):
    code = "error"

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class WorkflowNotFound(RunsError):
    code = "workflow_not_found"


class RunNotFound(RunsError):
    code = "run_not_found"


class VersionNotFound(RunsError):
    code = "version_not_found"


class InvalidRunInput(RunsError):
    code = "invalid_input"


class InvalidCursor(RunsError):
    code = "invalid_cursor"


class IdempotencyKeyReused(RunsError):
    code = "idempotency_key_reused"


class RunIdTaken(RunsError):
    code = "run_id_taken"


class StartFailed(RunsError):
    code = "start_failed"


class RunAlreadyFinished(RunsError):
    code = "run_already_finished"


# --- the stored run -----------------------------------------------------------------------------


class RunRecord(BaseModel):
    """The run item (sk "RUN"), less its keys. `input`/`output` are JSON text: a value or an artifact ref."""

    model_config = ConfigDict(extra="ignore")

    run_id: str
    tenant: str
    workflow: str
    status: RunStatus
    version: int | None = None  # None only for runs started before workflows had versions
    created_at: str
    updated_at: str
    finished_at: str | None = None
    input: str
    output: str | None = None
    error: dict[str, str] | None = None
    execution_arn: str | None = None
    idempotency_key_hash: str | None = None
    expires_at: int

    def to_item(self) -> dict[str, Any]:
        return {
            "pk": keys.run_pk(self.tenant, self.run_id),
            "sk": keys.RUN_SK,
            "gsi1pk": keys.tenant_runs_pk(self.tenant),
            "gsi1sk": f"{self.created_at}#{self.run_id}",
            **self.model_dump(exclude_none=True),
        }


class RunRepository:
    """The run items of the single table; turns conditional-check failures into answers."""

    def __init__(self, table: Any) -> None:
        self._table = table

    def create(self, record: RunRecord) -> bool:
        """Put a new run item; False when an item with that run id already exists."""
        try:
            self._table.put_item(Item=record.to_item(), ConditionExpression="attribute_not_exists(pk)")
        except ClientError as exc:
            if _is_condition_failure(exc):
                return False
            raise
        return True

    def get(self, tenant: str, run_id: str) -> RunRecord | None:
        item = self._table.get_item(Key=_run_key(tenant, run_id), ConsistentRead=True).get("Item")
        return RunRecord.model_validate(item) if item else None

    def record_execution(self, tenant: str, run_id: str, execution_arn: str, version: int) -> None:
        """The started execution and its version (the put has it, unless the item predates versions)."""
        self._table.update_item(
            Key=_run_key(tenant, run_id),
            UpdateExpression="SET execution_arn = :arn, version = :version",
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeValues={":arn": execution_arn, ":version": version},
        )

    def discard_unstarted(self, tenant: str, run_id: str) -> None:
        """Delete a run item whose execution never started (and only such an item)."""
        try:
            self._table.delete_item(
                Key=_run_key(tenant, run_id),
                ConditionExpression="#status = :running AND attribute_not_exists(execution_arn)",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={":running": RUNNING},
            )
        except ClientError as exc:
            if not _is_condition_failure(exc):
                raise

    def finish(self, tenant: str, run_id: str, status: str, at: str, outcome: dict[str, Any]) -> None:
        """Move a RUNNING run to its final status. Repeating the same final status is a no-op."""
        assignments = ", ".join(f"#{name} = :{name}" for name in outcome)
        try:
            self._table.update_item(
                Key=_run_key(tenant, run_id),
                UpdateExpression=f"SET #status = :status, finished_at = :at, updated_at = :at, {assignments}",
                ConditionExpression="attribute_exists(pk) AND #status = :running",
                ExpressionAttributeNames={"#status": "status", **{f"#{name}": name for name in outcome}},
                ExpressionAttributeValues={
                    ":status": status,
                    ":running": RUNNING,
                    ":at": at,
                    **{f":{name}": value for name, value in outcome.items()},
                },
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if not _is_condition_failure(exc):
                raise
            current = exc.response.get("Item", {}).get("status", {}).get("S")
            if current is None:
                raise RunNotFound(f"run {run_id} of tenant {tenant} does not exist") from None
            if current != status:
                raise RunAlreadyFinished(f"run {run_id} already finished as {current}, not {status}") from None
            logger.info("run already recorded as finished", extra={"run_id": run_id, "status": status})

    def query_newest_first(
        self,
        tenant: str,
        *,
        start_key: dict[str, str] | None,
        read_limit: int,
        workflow: str | None,
        status: str | None,
    ) -> tuple[list[RunRecord], dict[str, str] | None]:
        query: dict[str, Any] = {
            "IndexName": keys.RUNS_INDEX,
            "KeyConditionExpression": Key("gsi1pk").eq(keys.tenant_runs_pk(tenant)),
            "ScanIndexForward": False,
            "Limit": read_limit,
        }
        conditions = [Attr(name).eq(value) for name, value in (("workflow", workflow), ("status", status)) if value]
        if conditions:
            combined = conditions[0]
            for condition in conditions[1:]:
                combined = combined & condition
            query["FilterExpression"] = combined
        if start_key:
            query["ExclusiveStartKey"] = start_key
        page = self._table.query(**query)
        return [RunRecord.model_validate(item) for item in page["Items"]], page.get("LastEvaluatedKey")


def _run_key(tenant: str, run_id: str) -> dict[str, str]:
    return {"pk": keys.run_pk(tenant, run_id), "sk": keys.RUN_SK}


def _is_condition_failure(exc: ClientError) -> bool:
    return bool(exc.response["Error"]["Code"] == "ConditionalCheckFailedException")


# --- workflows ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Workflow:
    definition: WorkflowDefinition
    state_machine_arn: str
    alias_arn: str  # routes new runs to the live version

    def version_arn(self, version: int) -> str:
        return f"{self.state_machine_arn}:{version}"


class WorkflowCatalog:
    """The workflows this deployment runs: a definition file, a state machine and its alias for each."""

    def __init__(self, directory: Path, state_machines: dict[str, str], aliases: dict[str, str]) -> None:
        self._directory = directory
        self._state_machines = state_machines
        self._aliases = aliases

    def get(self, name: str) -> Workflow:
        arn, alias_arn = self._state_machines.get(name), self._aliases.get(name)
        if arn is None or alias_arn is None or not re.match(WORKFLOW_NAME, name):
            raise WorkflowNotFound(f"no workflow named {name!r}")
        # A definition's file is named after it, with "-" or "_" (see load_definition).
        candidates = [self._directory / f"{stem}.yaml" for stem in (name, name.replace("-", "_"))]
        path = next((candidate for candidate in candidates if candidate.exists()), None)
        if path is None:
            logger.error("a deployed workflow has no definition file", extra={"workflow": name})
            raise WorkflowNotFound(f"no workflow named {name!r}")
        return Workflow(_definition(path), arn, alias_arn)


@cache
def _definition(path: Path) -> WorkflowDefinition:
    try:
        return load_definition(path)
    except DefinitionError:
        logger.exception("a deployed workflow definition does not load")
        raise


# --- what the logic needs -----------------------------------------------------------------------


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class RunsBackend:
    runs: RunRepository
    workflows: WorkflowCatalog
    executions: Any  # a boto3 Step Functions client
    artifacts: ArtifactStore
    checkpoints: CheckpointStore
    now: Callable[[], datetime] = field(default=_utc_now)


def default_backend() -> RunsBackend:
    """The backend over this sandbox's cached clients (see sutram.aws; tests reset them)."""
    settings = get_settings()
    return RunsBackend(
        runs=RunRepository(aws.table()),
        workflows=WorkflowCatalog(settings.workflows_dir, settings.state_machines, settings.workflow_aliases),
        executions=aws.client("stepfunctions"),
        artifacts=aws.artifact_store(),
        checkpoints=aws.checkpoint_store(),
    )


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
        request_hash = _sha256_hex(_canonical({"idempotency_key": idempotency_key, "input": request.input} | named))
    stored_input = backend.artifacts.offload_if_large(tenant, request.input)
    record = RunRecord(
        run_id=run_id,
        tenant=tenant,
        workflow=workflow_name,
        status=RUNNING,
        version=request.version or live_version(backend, workflow),
        created_at=_iso(now),
        updated_at=_iso(now),
        input=_canonical(stored_input),
        idempotency_key_hash=request_hash,
        expires_at=int(now.timestamp()) + aws.RETENTION_SECONDS,
    )
    if backend.runs.create(record):
        _start_execution(backend, workflow, record, named=request.version is not None)
        return StartedRun(_summary(record), created=True)

    existing = backend.runs.get(tenant, run_id)
    if existing is None:  # a concurrent request with the same key failed to start it and discarded it
        raise StartFailed("the run could not be started; retry (with the same Idempotency-Key)")
    if existing.idempotency_key_hash != request_hash:
        raise IdempotencyKeyReused(
            "this Idempotency-Key was already used with a different input; use a new key for a new run",
            field="Idempotency-Key",
        )
    if existing.status == RUNNING and existing.execution_arn is None:
        _start_execution(
            backend, workflow, existing, named=request.version is not None
        )  # finish a start that was interrupted
    return StartedRun(_summary(existing), created=False)


def check_run_input(definition: WorkflowDefinition, run_input: dict[str, Any]) -> None:
    if artifacts.REF in run_input:
        raise InvalidRunInput(f"input.{artifacts.REF} is reserved", field=f"input.{artifacts.REF}")
    if definition.input_schema is None:
        return
    try:
        validate(event=run_input, schema=definition.input_schema)
    except SchemaValidationError as exc:
        path = [str(part) for part in (exc.path or [])[1:]]  # fastjsonschema names the root "data"
        missing = None
        if exc.rule == "required" and isinstance(exc.value, dict) and isinstance(exc.rule_definition, list):
            missing = next((name for name in exc.rule_definition if name not in exc.value), None)
        field_path = ".".join(["input", *path, *([missing] if missing else [])])
        if missing:
            message = f"{field_path} is required"
        else:
            message = re.sub(r"^data\b", "input", exc.validation_message or "does not match the input schema")
        raise InvalidRunInput(message, field=field_path) from None


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


def _start_execution(backend: RunsBackend, workflow: Workflow, record: RunRecord, *, named: bool) -> None:
    """Start the record's version; `named`: the caller asked for it (so it may not exist)."""
    execution_input = {
        "run": RunRef(tenant=record.tenant, run_id=record.run_id, workflow=record.workflow).model_dump(),
        "input": json.loads(record.input),
    }
    version = record.version or live_version(backend, workflow)
    try:
        response = backend.executions.start_execution(
            stateMachineArn=workflow.version_arn(version), name=record.run_id, input=_canonical(execution_input)
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
    record = _existing_run(backend, tenant, run_id)
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
        **_summary(record).model_dump(),
        input=run_input,
        input_artifact=input_artifact,
        output=output,
        output_artifact=output_artifact,
        usage=usage,
        steps_completed=sum(1 for step in steps if str(step.get("status", "")).upper() == SUCCEEDED),
    )


def list_steps(backend: RunsBackend, tenant: str, run_id: str) -> StepList:
    _existing_run(backend, tenant, run_id)
    items = backend.checkpoints.list_steps(tenant, run_id)
    return StepList(steps=[_step_view(backend.artifacts, tenant, item) for item in items])


def list_runs(
    backend: RunsBackend, tenant: str, *, workflow: str | None, status: str | None, limit: int, cursor: str | None
) -> RunPage:
    """One page of the tenant's runs, newest first. Filters are applied while reading, so a page is
    filled from as many index reads as it takes, up to MAX_QUERIES_PER_PAGE; a page may then hold
    fewer than `limit` runs and still have a next_cursor."""
    filtered = bool(workflow or status)
    start_key = decode_cursor(cursor, tenant) if cursor else None
    runs: list[RunSummary] = []
    for _ in range(MAX_QUERIES_PER_PAGE):
        records, last_key = backend.runs.query_newest_first(
            tenant,
            start_key=start_key,
            read_limit=max(limit, FILTERED_READ_SIZE) if filtered else limit,
            workflow=workflow,
            status=status,
        )
        for index, record in enumerate(records):
            runs.append(_summary(record))
            if len(runs) == limit:
                more = index < len(records) - 1 or last_key is not None
                return RunPage(runs=runs, next_cursor=encode_cursor(_index_key(record)) if more else None)
        if last_key is None:
            return RunPage(runs=runs, next_cursor=None)
        start_key = last_key
    # The read bound was reached: a cursor where reading stopped, even if the page holds fewer than `limit` runs.
    return RunPage(runs=runs, next_cursor=encode_cursor(start_key) if start_key else None)


def encode_cursor(index_key: dict[str, str]) -> str:
    return cursors.encode(index_key)


def decode_cursor(cursor: str, tenant: str) -> dict[str, str]:
    """The index position a cursor names, if it is well formed and belongs to this tenant."""
    position = cursors.decode(
        cursor, gsi1pk=keys.tenant_runs_pk(tenant), pk_prefix=keys.run_pk(tenant, ""), sk=keys.RUN_SK
    )
    if position is None:
        raise InvalidCursor("the cursor is not one this API returned to you", field="cursor")
    return position


def _index_key(record: RunRecord) -> dict[str, str]:
    item = record.to_item()
    return {name: item[name] for name in cursors.INDEX_KEYS}


def _existing_run(backend: RunsBackend, tenant: str, run_id: str) -> RunRecord:
    record = backend.runs.get(tenant, run_id) if RUN_ID.match(run_id) else None
    if record is None:
        raise RunNotFound("no such run")  # the same answer whether it is unknown or another tenant's
    return record


def _summary(record: RunRecord) -> RunSummary:
    return RunSummary(
        run_id=record.run_id,
        workflow=record.workflow,
        status=record.status,
        version=record.version,
        created_at=datetime.fromisoformat(record.created_at),
        updated_at=datetime.fromisoformat(record.updated_at),
        finished_at=datetime.fromisoformat(record.finished_at) if record.finished_at else None,
        error=RunError.model_validate(record.error) if record.error else None,
        links=RunLinks(run=f"/runs/{record.run_id}", steps=f"/runs/{record.run_id}/steps"),
    )


def _step_view(store: ArtifactStore, tenant: str, item: dict[str, Any]) -> StepView:
    started_at, finished_at = item.get("started_at"), item.get("finished_at")
    output, output_artifact = _inline_or_link(store, tenant, item.get("output"))
    return StepView(
        id=item["sk"].removeprefix(keys.STEP_PREFIX),
        type=item.get("step_type"),
        status=str(item["status"]).upper(),
        attempts=int(item.get("attempt", 0)),
        started_at=_from_epoch(started_at),
        finished_at=_from_epoch(finished_at),
        duration_ms=int((Decimal(finished_at) - Decimal(started_at)) * 1000) if started_at and finished_at else None,
        usage=StepUsage.model_validate(item["usage"]) if item.get("usage") else None,
        output=output,
        output_artifact=output_artifact,
        error=item.get("error"),
    )


def _inline_or_link(store: ArtifactStore, tenant: str, stored: str | None) -> tuple[Any, ArtifactLink | None]:
    """A stored value as (inline value, None) or (None, link to its artifact)."""
    if stored is None:
        return None, None
    value = json.loads(stored)
    key = value.get(artifacts.REF) if artifacts.is_ref(value) else None
    # Only the tenant's own artifacts are linked: a value that merely looks like a reference stays inline.
    if not isinstance(key, str) or not key.startswith(artifacts.tenant_prefix(tenant)) or ".." in key:
        return value, None
    return None, ArtifactLink(key=key, bytes=int(value.get("bytes", 0)), url=store.presigned_url(key))


# --- recording how a run ended (called by the state machine's RecordSuccess/RecordFailure) --------


class ExecutionError(BaseModel):
    Error: str = "States.Unknown"
    Cause: str | None = None


class FinishEvent(BaseModel):
    run: RunRef
    status: Literal["SUCCEEDED", "FAILED"]
    output: Any = None
    error: ExecutionError | None = None


def finish_run(backend: RunsBackend, event: FinishEvent) -> None:
    outcome: dict[str, Any]
    if event.status == SUCCEEDED:
        outcome = {"output": _canonical(event.output)}
    else:
        error = event.error or ExecutionError()
        outcome = {"error": {"error": error.Error, "cause": _readable_cause(error.Cause)}}
    backend.runs.finish(event.run.tenant, event.run.run_id, event.status, _iso(backend.now()), outcome)


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


def _canonical(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def _sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _iso(moment: datetime) -> str:
    # Fixed width (milliseconds, +00:00), so the strings sort like the times they name.
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


def _from_epoch(seconds: Any) -> datetime | None:
    return datetime.fromtimestamp(float(seconds), UTC) if seconds is not None else None
