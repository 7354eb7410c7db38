"""Run items: one per run (keys: sutram.store.keys), listed newest first through the `gsi1` index.

Conditional-check failures become answers here: `create` says whether the run id was free, and
`finish` refuses to move a run that already ended another way.
"""

from __future__ import annotations

from typing import Any, Literal

from aws_lambda_powertools import Logger
from boto3.dynamodb.conditions import Attr, Key
from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict

from sutram.store import cursors, keys
from sutram.store.dynamo import is_condition_failure

logger = Logger(child=True)

RunStatus = Literal["RUNNING", "PAUSED", "SUCCEEDED", "FAILED", "COMPENSATED", "ABORTED"]
RUNNING: RunStatus = "RUNNING"
PAUSED: RunStatus = "PAUSED"  # waiting at zero compute for an operator to resume or abort it
SUCCEEDED: RunStatus = "SUCCEEDED"
FAILED: RunStatus = "FAILED"
ABORTED: RunStatus = "ABORTED"
COMPENSATED: RunStatus = "COMPENSATED"  # failed, and its completed side effects were undone
ABORTED_ERROR = "Sutram.Aborted"  # a run's error when an operator aborted it
FILTERED_READ_SIZE = 100  # items read per query when filters may drop some
MAX_QUERIES_PER_PAGE = 10  # bound on the reads behind one page of a filtered listing


class RunMissing(LookupError):
    """`finish` found no run item."""


class RunEndedOtherwise(RuntimeError):
    """`finish` found the run already ended with another status."""


class RunMoved(RuntimeError):
    """`reopen` or `abort` found the run in another state than the caller saw (a concurrent change)."""


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
    # Which execution of the run is the current one: 0, then one more per resume (contracts.RunRef).
    execution: int = 0
    forked_from: dict[str, str] | None = None  # {"run_id", "step"}: the run and step it was forked at
    forks: list[str] | None = None  # the runs forked from this one, oldest first
    replay_of: str | None = None  # the recorded run this one replays
    inputs: str | None = None  # JSON: arguments corrected on resume, by step path (contracts.RunRef)
    compensation: dict[str, Any] | None = None  # COMPENSATED: {"undone": [...], "not_undone": [...]}
    aborted_by: str | None = None
    paused_step: str | None = None  # while PAUSED: the step whose error paused the run
    # (The token that resumes a paused run, `pause_token`, stays in the item: it is never read into the record.)
    idempotency_key_hash: str | None = None
    expires_at: int

    def to_item(self) -> dict[str, Any]:
        return {
            **keys.run_key(self.tenant, self.run_id),
            "gsi1pk": keys.runs_index_pk(self.tenant),
            "gsi1sk": keys.runs_index_sk(self.created_at, self.run_id),
            **self.model_dump(exclude_none=True),
        }


def _is_current(execution: int) -> str:
    """The condition that the run's current execution is `execution` (runs from before resumes have none)."""
    return "execution = :execution" + (" OR attribute_not_exists(execution)" if execution == 0 else "")


class RunStore:
    def __init__(self, table: Any) -> None:
        self._table = table

    def create(self, record: RunRecord) -> bool:
        """Put a new run item; False when an item with that run id already exists."""
        try:
            self._table.put_item(Item=record.to_item(), ConditionExpression="attribute_not_exists(pk)")
        except ClientError as exc:
            if is_condition_failure(exc):
                return False
            raise
        return True

    def get(self, tenant: str, run_id: str) -> RunRecord | None:
        item = self._table.get_item(Key=keys.run_key(tenant, run_id), ConsistentRead=True).get("Item")
        return RunRecord.model_validate(item) if item else None

    def record_execution(self, tenant: str, run_id: str, execution_arn: str, version: int) -> None:
        """The started execution and its version (the put has it, unless the item predates versions)."""
        self._table.update_item(
            Key=keys.run_key(tenant, run_id),
            UpdateExpression="SET execution_arn = :arn, version = :version",
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeValues={":arn": execution_arn, ":version": version},
        )

    def reopen(self, tenant: str, run_id: str, *, execution: int, at: str) -> None:
        """Make an ended run (or one whose execution died without recording it) RUNNING again as
        execution `execution + 1`, on the condition that `execution` is still its current one: of
        two concurrent resumes, one wins."""
        current = _is_current(execution)
        try:
            self._table.update_item(
                Key=keys.run_key(tenant, run_id),
                UpdateExpression="SET #status = :running, execution = :next, updated_at = :at "
                "REMOVE finished_at, #error, #output",
                ConditionExpression=f"attribute_exists(pk) AND #status <> :succeeded AND ({current})",
                ExpressionAttributeNames={"#status": "status", "#error": "error", "#output": "output"},
                ExpressionAttributeValues={
                    ":running": RUNNING,
                    ":succeeded": SUCCEEDED,
                    ":execution": execution,
                    ":next": execution + 1,
                    ":at": at,
                },
            )
        except ClientError as exc:
            if not is_condition_failure(exc):
                raise
            raise RunMoved(f"run {run_id} changed meanwhile") from None

    def pause(
        self, tenant: str, run_id: str, *, execution: int, step: str, error: dict[str, str], token: str, at: str
    ) -> None:
        """Move the current execution's RUNNING run to PAUSED at `step`, keeping the token that resumes it."""
        current = _is_current(execution)
        try:
            self._table.update_item(
                Key=keys.run_key(tenant, run_id),
                UpdateExpression="SET #status = :paused, paused_step = :step, #error = :error, pause_token = :token, "
                "updated_at = :at",
                ConditionExpression=f"attribute_exists(pk) AND #status = :running AND ({current})",
                ExpressionAttributeNames={"#status": "status", "#error": "error"},
                ExpressionAttributeValues={
                    ":paused": PAUSED,
                    ":running": RUNNING,
                    ":execution": execution,
                    ":step": step,
                    ":error": error,
                    ":token": token,
                    ":at": at,
                },
            )
        except ClientError as exc:
            if not is_condition_failure(exc):
                raise
            raise RunMoved(f"run {run_id} is not running") from None

    def unpause(self, tenant: str, run_id: str, *, at: str) -> str:
        """Move a PAUSED run back to RUNNING; the token that resumes its waiting execution."""
        try:
            answer = self._table.update_item(
                Key=keys.run_key(tenant, run_id),
                UpdateExpression="SET #status = :running, updated_at = :at REMOVE paused_step, #error, pause_token",
                ConditionExpression="attribute_exists(pk) AND #status = :paused",
                ExpressionAttributeNames={"#status": "status", "#error": "error"},
                ExpressionAttributeValues={":running": RUNNING, ":paused": PAUSED, ":at": at},
                ReturnValues="ALL_OLD",
            )
        except ClientError as exc:
            if not is_condition_failure(exc):
                raise
            raise RunMoved(f"run {run_id} is not paused") from None
        return str(answer["Attributes"]["pause_token"])

    def set_version(self, tenant: str, run_id: str, version: int) -> None:
        """The version a resumed run goes on with."""
        self._table.update_item(
            Key=keys.run_key(tenant, run_id),
            UpdateExpression="SET version = :version",
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeValues={":version": version},
        )

    def set_inputs(self, tenant: str, run_id: str, inputs: str) -> None:
        """The arguments a resumed run's steps take instead of their input mappings'."""
        self._table.update_item(
            Key=keys.run_key(tenant, run_id),
            UpdateExpression="SET inputs = :inputs",
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeValues={":inputs": inputs},
        )

    def abort(self, tenant: str, run_id: str, *, execution: int, at: str, reason: str, by: str) -> None:
        """Move the current execution's RUNNING run to ABORTED, with who and why."""
        current = _is_current(execution)
        try:
            self._table.update_item(
                Key=keys.run_key(tenant, run_id),
                UpdateExpression="SET #status = :aborted, finished_at = :at, updated_at = :at, #error = :error, "
                "aborted_by = :by REMOVE pause_token, paused_step",
                ConditionExpression=f"attribute_exists(pk) AND #status IN (:running, :paused) AND ({current})",
                ExpressionAttributeNames={"#status": "status", "#error": "error"},
                ExpressionAttributeValues={
                    ":aborted": ABORTED,
                    ":running": RUNNING,
                    ":paused": PAUSED,
                    ":execution": execution,
                    ":at": at,
                    ":error": {"error": ABORTED_ERROR, "cause": reason},
                    ":by": by,
                },
            )
        except ClientError as exc:
            if not is_condition_failure(exc):
                raise
            raise RunMoved(f"run {run_id} changed meanwhile") from None

    def add_fork(self, tenant: str, run_id: str, fork_id: str) -> None:
        """Record that `fork_id` was forked from this run."""
        self._table.update_item(
            Key=keys.run_key(tenant, run_id),
            UpdateExpression="SET forks = list_append(if_not_exists(forks, :none), :fork)",
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeValues={":none": [], ":fork": [fork_id]},
        )

    def discard_unstarted(self, tenant: str, run_id: str) -> None:
        """Delete a run item whose execution never started (and only such an item)."""
        try:
            self._table.delete_item(
                Key=keys.run_key(tenant, run_id),
                ConditionExpression="#status = :running AND attribute_not_exists(execution_arn)",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={":running": RUNNING},
            )
        except ClientError as exc:
            if not is_condition_failure(exc):
                raise

    def finish(self, tenant: str, run_id: str, status: RunStatus, at: str, outcome: dict[str, Any]) -> None:
        """Move a RUNNING run to its final status. Repeating the same final status is a no-op."""
        assignments = ", ".join(f"#{name} = :{name}" for name in outcome)
        try:
            self._table.update_item(
                Key=keys.run_key(tenant, run_id),
                UpdateExpression=f"SET #status = :status, finished_at = :at, updated_at = :at, {assignments} "
                "REMOVE pause_token, paused_step",
                ConditionExpression="attribute_exists(pk) AND #status IN (:running, :paused)",
                ExpressionAttributeNames={"#status": "status", **{f"#{name}": name for name in outcome}},
                ExpressionAttributeValues={
                    ":status": status,
                    ":running": RUNNING,
                    ":paused": PAUSED,
                    ":at": at,
                    **{f":{name}": value for name, value in outcome.items()},
                },
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if not is_condition_failure(exc):
                raise
            current = exc.response.get("Item", {}).get("status", {}).get("S")
            if current is None:
                raise RunMissing(f"run {run_id} of tenant {tenant} does not exist") from None
            if current != status:
                raise RunEndedOtherwise(f"run {run_id} already finished as {current}, not {status}") from None
            logger.info("run already recorded as finished", extra={"run_id": run_id, "status": status})

    def page(
        self,
        tenant: str,
        *,
        workflow: str | None,
        status: str | None,
        limit: int,
        cursor: str | None,
        forked_from: str | None = None,
    ) -> tuple[list[RunRecord], str | None]:
        """One page of the tenant's runs, newest first, and the cursor of the next (or None). Filters
        are applied while reading, so a page is filled from as many index reads as it takes, up to
        MAX_QUERIES_PER_PAGE; a page may then hold fewer than `limit` runs and still have a cursor.
        An invalid cursor raises cursors.InvalidCursor."""
        filtered = bool(workflow or status or forked_from)
        start_key = (
            cursors.decode(cursor, gsi1pk=keys.runs_index_pk(tenant), pk_prefix=keys.run_pk(tenant, ""), sk=keys.RUN_SK)
            if cursor
            else None
        )
        runs: list[RunRecord] = []
        for _ in range(MAX_QUERIES_PER_PAGE):
            records, last_key = self._query_newest_first(
                tenant,
                start_key=start_key,
                read_limit=max(limit, FILTERED_READ_SIZE) if filtered else limit,
                workflow=workflow,
                status=status,
                forked_from=forked_from,
            )
            for index, record in enumerate(records):
                runs.append(record)
                if len(runs) == limit:
                    more = index < len(records) - 1 or last_key is not None
                    return runs, cursors.encode(record.to_item()) if more else None
            if last_key is None:
                return runs, None
            start_key = last_key
        # The read bound was reached: a cursor where reading stopped, even if the page holds fewer than `limit` runs.
        return runs, cursors.encode(start_key) if start_key else None

    def _query_newest_first(
        self,
        tenant: str,
        *,
        start_key: dict[str, str] | None,
        read_limit: int,
        workflow: str | None,
        status: str | None,
        forked_from: str | None,
    ) -> tuple[list[RunRecord], dict[str, str] | None]:
        query: dict[str, Any] = {
            "IndexName": keys.INDEX,
            "KeyConditionExpression": Key("gsi1pk").eq(keys.runs_index_pk(tenant)),
            "ScanIndexForward": False,
            "Limit": read_limit,
        }
        filters = (("workflow", workflow), ("status", status), ("forked_from.run_id", forked_from))
        conditions = [Attr(name).eq(value) for name, value in filters if value]
        if conditions:
            combined = conditions[0]
            for condition in conditions[1:]:
                combined = combined & condition
            query["FilterExpression"] = combined
        if start_key:
            query["ExclusiveStartKey"] = start_key
        page = self._table.query(**query)
        return [RunRecord.model_validate(item) for item in page["Items"]], page.get("LastEvaluatedKey")
