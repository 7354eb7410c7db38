"""Step checkpoints: one DynamoDB item per executed step, written twice on the happy path.

1. `claim` puts an in-progress lease, conditional on the item not existing. If the step already
   ran, the same request returns the existing item (ReturnValuesOnConditionCheckFailure): a
   recorded result comes back without a model or tool call; a live lease of the same Step
   Functions delivery means a concurrent duplicate (StepInProgress); a released or expired lease,
   or one held by an earlier delivery that Step Functions has abandoned, or by an earlier
   execution of the run (before a resume), is taken over by a second, conditional put that bumps
   the attempt.
2. `complete` puts the finished item with its result, conditional on still holding the lease.

Both writes are whole-item puts on the step's own item; nothing else is written per step. A failed
attempt releases its lease (`release`); a crashed attempt's lease expires after the step's
timeout plus a margin, and only then may another attempt take over.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from boto3.dynamodb.conditions import Key
from botocore.exceptions import ClientError

from sutram.errors import OutcomeUnknown, StepInProgress, TransientStepError
from sutram.store import keys
from sutram.store.dynamo import RETENTION_SECONDS, epoch, is_condition_failure

# A checkpoint's status as stored; `step_status` gives it as the API shows every status (upper case).
RUNNING, SUCCEEDED, FAILED = "running", "succeeded", "failed"
_OWNED = "#status = :running AND attempt = :attempt"
IN_FLIGHT = "in_flight"  # set right before an at-most-once side effect starts
AT_MOST_ONCE = "at_most_once"  # the step's tool may never run twice (its delivery mode)
REQUEST_DIGEST, REQUEST = "request_digest", "request"  # what a finished step asked, hashed and in short
REQUEST_PREVIEW_CHARS = 2000


class NotUnknown(RuntimeError):
    """`resolve` found no at-most-once call of unknown outcome at that step."""


@dataclass(frozen=True)
class StepKey:
    tenant: str
    run_id: str
    path: str

    @property
    def item_key(self) -> dict[str, str]:
        return {"pk": keys.run_pk(self.tenant, self.run_id), "sk": keys.step_sk(self.path)}


@dataclass(frozen=True)
class Claimed:
    """This attempt holds the step's lease and must call `complete` or `release`."""

    attempt: int
    item: dict[str, Any]  # the lease item as written, the base of the final item


@dataclass(frozen=True)
class AlreadyRecorded:
    output: Any  # the recorded state value: inline JSON or an artifact reference
    request_digest: str | None = None  # what the step asked (its model request or tool call), hashed
    request: str | None = None  # the start of it, as JSON


def step_status(item: dict[str, Any]) -> str:
    """A checkpoint item's status in the API's case: RUNNING, SUCCEEDED or FAILED."""
    return str(item.get("status", "")).upper()


def _now() -> float:
    return time.time()


class CheckpointStore:
    def __init__(self, table: Any, retention_seconds: int = RETENTION_SECONDS) -> None:
        self._table = table
        self._retention = retention_seconds

    def claim(
        self,
        key: StepKey,
        *,
        step_type: str,
        lease_seconds: int,
        at_most_once: bool,
        delivery: int = 0,
        execution: int = 0,
    ) -> Claimed | AlreadyRecorded:
        """Take the step's lease. `delivery` is Step Functions' retry count for this task and
        `execution` the run's execution (0, then one more per resume): a lease held by an earlier
        delivery, or by any delivery of an earlier execution, belongs to an attempt Step Functions
        has already given up on (it crashed, failed, timed out or was stopped), so it is taken over
        without waiting for it to expire. The retry count starts at 0 again in a new execution."""
        now = _now()
        lease = {
            **key.item_key,
            "status": RUNNING,
            "attempt": 1,
            "delivery": delivery,
            "execution": execution,
            "step_type": step_type,
            **({AT_MOST_ONCE: True} if at_most_once else {}),
            "started_at": epoch(now),
            "lease_expires_at": int(now + lease_seconds),
            "expires_at": int(now) + self._retention,
        }
        try:
            self._table.put_item(
                Item=lease,
                ConditionExpression="attribute_not_exists(pk)",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
            return Claimed(attempt=1, item=lease)
        except ClientError as exc:
            if not is_condition_failure(exc):
                raise
            existing = exc.response.get("Item", {})
        status = existing.get("status", {}).get("S")
        if status == SUCCEEDED:
            return AlreadyRecorded(
                output=json.loads(existing["output"]["S"]),
                request_digest=existing.get(REQUEST_DIGEST, {}).get("S"),
                request=existing.get(REQUEST, {}).get("S"),
            )
        previous = int(existing.get("attempt", {}).get("N", "0"))
        lease_expires_at = int(existing.get("lease_expires_at", {}).get("N", "0"))
        held_by = (int(existing.get("execution", {}).get("N", "0")), int(existing.get("delivery", {}).get("N", "0")))
        superseded = (execution, delivery) > held_by
        if status == RUNNING and lease_expires_at >= now and not superseded:
            raise StepInProgress(
                f"step {key.path!r} of run {key.run_id}: attempt {previous} holds the lease until {lease_expires_at}"
            )
        if status == RUNNING and at_most_once and existing.get(IN_FLIGHT, {}).get("BOOL"):
            raise OutcomeUnknown(
                f"step {key.path!r} of run {key.run_id}: an at-most-once call started and never "
                "recorded an outcome; check the target system, then fork or fail the run"
            )
        return self._take_over(key, lease, previous, Decimal(existing["started_at"]["N"]))

    def _take_over(self, key: StepKey, lease: dict[str, Any], previous: int, started_at: Decimal) -> Claimed:
        item = {**lease, "attempt": previous + 1, "started_at": started_at}
        try:
            self._table.put_item(
                Item=item,
                ConditionExpression="attempt = :previous AND #status <> :succeeded",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={":previous": previous, ":succeeded": SUCCEEDED},
            )
        except ClientError as exc:
            if not is_condition_failure(exc):
                raise
            raise StepInProgress(f"step {key.path!r} of run {key.run_id}: another attempt took over first") from None
        return Claimed(attempt=previous + 1, item=item)

    def mark_in_flight(self, claim: Claimed) -> None:
        """Record that the at-most-once side effect is about to start: from now on a retry that finds
        this attempt without an outcome stops with OutcomeUnknown instead of calling again."""
        try:
            self._table.update_item(
                Key={"pk": claim.item["pk"], "sk": claim.item["sk"]},
                UpdateExpression="SET #in_flight = :true",
                ConditionExpression=_OWNED,
                ExpressionAttributeNames={"#status": "status", "#in_flight": IN_FLIGHT},
                ExpressionAttributeValues={":running": RUNNING, ":attempt": claim.attempt, ":true": True},
            )
        except ClientError as exc:
            if not is_condition_failure(exc):
                raise
            raise TransientStepError(
                f"step {claim.item['sk']!r}: lease lost before the call; nothing was called"
            ) from None

    def complete(self, claim: Claimed, output: Any, usage: dict[str, Any] | None, request: str | None = None) -> None:
        """Record the result; `request` (canonical JSON) is what the step asked, kept hashed and in short
        so that a replay can tell whether it asks the same."""
        item = {key: value for key, value in claim.item.items() if key != "lease_expires_at"}
        item |= {
            "status": SUCCEEDED,
            "output": json.dumps(output, separators=(",", ":")),
            "finished_at": epoch(_now()),
        }
        if request is not None:
            item[REQUEST_DIGEST] = hashlib.sha256(request.encode()).hexdigest()
            item[REQUEST] = request[:REQUEST_PREVIEW_CHARS]
        if usage is not None:
            item["usage"] = usage
        try:
            self._put_owned(claim, item)
        except ClientError as exc:
            if not is_condition_failure(exc):
                raise
            # Our lease expired and another attempt took over: let Step Functions retry,
            # which returns whatever that attempt records.
            raise TransientStepError(f"step {item['sk']!r}: lease lost before the result was written") from None

    def release(self, claim: Claimed, error: str) -> None:
        item = {**claim.item, "status": FAILED, "error": error[:2000], "lease_expires_at": 0}
        try:
            self._put_owned(claim, item)
        except ClientError as exc:
            if not is_condition_failure(exc):
                raise

    def _put_owned(self, claim: Claimed, item: dict[str, Any]) -> None:
        self._table.put_item(
            Item=item,
            ConditionExpression=_OWNED,
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={":running": RUNNING, ":attempt": claim.attempt},
        )

    def resolve(self, key: StepKey, *, by: str, output: Any = None, retry: bool = False) -> dict[str, Any]:
        """Settle an at-most-once call whose outcome is unknown (a lease in flight, never completed):
        record the `output` the side effect produced, or with `retry` let one more attempt call
        again. Who decided is recorded. The item as it now is."""
        if retry:
            update = "SET #status = :failed, lease_expires_at = :zero, resolved_by = :by, resolution = :retry"
            values: dict[str, Any] = {":failed": FAILED, ":zero": 0, ":retry": "retry"}
        else:
            update = (
                "SET #status = :succeeded, #output = :output, finished_at = :now, resolved_by = :by, "
                "resolution = :recorded REMOVE lease_expires_at"
            )
            values = {
                ":succeeded": SUCCEEDED,
                ":output": json.dumps(output, separators=(",", ":")),
                ":now": epoch(_now()),
                ":recorded": "recorded",
            }
        try:
            answer = self._table.update_item(
                Key=key.item_key,
                UpdateExpression=f"{update} REMOVE #in_flight" if retry else f"{update}, #in_flight",
                ConditionExpression="#in_flight = :true AND #status = :running",
                ExpressionAttributeNames={"#status": "status", "#in_flight": IN_FLIGHT}
                | ({} if retry else {"#output": "output"}),
                ExpressionAttributeValues=values | {":by": by, ":true": True, ":running": RUNNING},
                ReturnValues="ALL_NEW",
            )
        except ClientError as exc:
            if not is_condition_failure(exc):
                raise
            raise NotUnknown(f"step {key.path!r} of run {key.run_id} has no call of unknown outcome") from None
        return dict(answer["Attributes"])

    def recorded(self, key: StepKey) -> Any | None:
        """The recorded output of a finished step (inline JSON or an artifact reference), else None."""
        item = self._table.get_item(Key=key.item_key, ConsistentRead=True).get("Item")
        return json.loads(item["output"]) if item and item.get("status") == SUCCEEDED else None

    def copy_into(
        self, tenant: str, run_id: str, items: list[dict[str, Any]], *, source_run_id: str, outputs: dict[str, str]
    ) -> None:
        """Start run `run_id` (a fork) with copies of another run's finished checkpoints, each output
        replaced by `outputs[path]` (JSON text) where given. A copy carries no usage (the model call
        was the source run's) and names its source; a checkpoint never changes once written."""
        pk = keys.run_pk(tenant, run_id)
        for item in items:
            path = keys.step_path(item["sk"])
            copy = {name: value for name, value in item.items() if name not in ("usage", "pk")}
            copy |= {"pk": pk, "copied_from": source_run_id}
            if path in outputs:
                copy |= {"output": outputs[path], "output_replaced": True}
            self._table.put_item(Item=copy, ConditionExpression="attribute_not_exists(pk)")

    def list_steps(self, tenant: str, run_id: str) -> list[dict[str, Any]]:
        """The run's checkpoints in the order their steps first started."""
        items = self.list_under(tenant, run_id, "")
        return sorted(items, key=lambda item: (item.get("started_at", 0), item["sk"]))

    def list_under(
        self, tenant: str, run_id: str, path_prefix: str, *, consistent: bool = False
    ) -> list[dict[str, Any]]:
        """The run's checkpoints whose step path starts with `path_prefix`, in key order."""
        items: list[dict[str, Any]] = []
        query: dict[str, Any] = {
            "KeyConditionExpression": Key("pk").eq(keys.run_pk(tenant, run_id))
            & Key("sk").begins_with(keys.step_sk(path_prefix)),
            "ConsistentRead": consistent,
        }
        while True:
            page = self._table.query(**query)
            items.extend(page["Items"])
            if "LastEvaluatedKey" not in page:
                break
            query["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return items
