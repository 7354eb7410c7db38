"""Step checkpoints: one DynamoDB item per executed step, written at most twice.

1. `claim` takes an in-progress lease (conditional update). If the step already has a result,
   the same request returns it instead (ReturnValuesOnConditionCheckFailure), so a re-executed
   step costs one request and never calls its model or tool again.
2. `complete` writes the result, conditional on still holding the lease.

A failed attempt releases its lease (`release`); a crashed attempt's lease expires after the
step's timeout plus a margin, and only then may another attempt take over.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from sutram import keys
from sutram.errors import OutcomeUnknown, StepInProgress, TransientStepError

RUNNING, SUCCEEDED, FAILED = "running", "succeeded", "failed"


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
    attempt: int


@dataclass(frozen=True)
class AlreadyRecorded:
    output: Any  # the recorded state value: inline JSON or an artifact reference


def _now() -> float:
    return time.time()


class CheckpointStore:
    def __init__(self, table: Any, retention_seconds: int) -> None:
        self._table = table
        self._retention = retention_seconds

    def claim(
        self, key: StepKey, *, step_type: str, lease_seconds: int, at_most_once: bool
    ) -> Claimed | AlreadyRecorded:
        now = _now()
        # An at-most-once step may only be re-claimed after an attempt that ended cleanly.
        takeover = "#status = :failed" if at_most_once else "(#status <> :succeeded AND lease_expires_at < :now)"
        try:
            response = self._table.update_item(
                Key=key.item_key,
                UpdateExpression=(
                    "SET #status = :running, attempt = if_not_exists(attempt, :zero) + :one, "
                    "lease_expires_at = :lease, started_at = if_not_exists(started_at, :now), "
                    "step_type = :type, expires_at = :expires REMOVE #error"
                ),
                ConditionExpression=f"attribute_not_exists(pk) OR {takeover}",
                ExpressionAttributeNames={"#status": "status", "#error": "error"},
                ExpressionAttributeValues={
                    ":running": RUNNING,
                    ":zero": 0,
                    ":one": 1,
                    ":lease": int(now + lease_seconds),
                    ":now": _decimal_seconds(now),
                    ":type": step_type,
                    ":expires": int(now + self._retention),
                    **({":failed": FAILED} if at_most_once else {":succeeded": SUCCEEDED}),
                },
                ReturnValues="UPDATED_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            return self._existing(key, exc.response.get("Item", {}), now, at_most_once)
        return Claimed(attempt=int(response["Attributes"]["attempt"]))

    @staticmethod
    def _existing(key: StepKey, item: dict[str, Any], now: float, at_most_once: bool) -> AlreadyRecorded:
        status = item.get("status", {}).get("S")
        if status == SUCCEEDED:
            return AlreadyRecorded(output=json.loads(item["output"]["S"]))
        lease_expires_at = int(item.get("lease_expires_at", {}).get("N", "0"))
        if status == RUNNING and at_most_once and lease_expires_at < now:
            raise OutcomeUnknown(
                f"step {key.path!r} of run {key.run_id}: an at-most-once attempt started and never "
                "recorded an outcome; check the target system, then fork or fail the run"
            )
        raise StepInProgress(
            f"step {key.path!r} of run {key.run_id}: attempt {item.get('attempt', {}).get('N', '?')} "
            f"holds the lease until {lease_expires_at}"
        )

    def complete(self, key: StepKey, attempt: int, output: Any, usage: dict[str, Any] | None) -> None:
        now = _now()
        names = {"#status": "status", "#output": "output"}
        values: dict[str, Any] = {
            ":succeeded": SUCCEEDED,
            ":running": RUNNING,
            ":attempt": attempt,
            ":output": json.dumps(output, separators=(",", ":")),
            ":now": _decimal_seconds(now),
        }
        expression = "SET #status = :succeeded, #output = :output, finished_at = :now"
        if usage is not None:
            expression += ", #usage = :usage"
            names["#usage"] = "usage"
            values[":usage"] = usage
        try:
            self._table.update_item(
                Key=key.item_key,
                UpdateExpression=expression + " REMOVE lease_expires_at",
                ConditionExpression="#status = :running AND attempt = :attempt",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            # Our lease expired and another attempt took over: let Step Functions retry,
            # which returns whatever that attempt records.
            raise TransientStepError(f"step {key.path!r}: lease lost before the result was written") from None

    def release(self, key: StepKey, attempt: int, error: str) -> None:
        try:
            self._table.update_item(
                Key=key.item_key,
                UpdateExpression="SET #status = :failed, #error = :error, lease_expires_at = :zero",
                ConditionExpression="#status = :running AND attempt = :attempt",
                ExpressionAttributeNames={"#status": "status", "#error": "error"},
                ExpressionAttributeValues={
                    ":failed": FAILED,
                    ":running": RUNNING,
                    ":attempt": attempt,
                    ":error": error[:2000],
                    ":zero": 0,
                },
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise

    def list_steps(self, tenant: str, run_id: str) -> list[dict[str, Any]]:
        """The run's checkpoints in the order their steps first started."""
        from boto3.dynamodb.conditions import Key

        items: list[dict[str, Any]] = []
        query: dict[str, Any] = {
            "KeyConditionExpression": Key("pk").eq(keys.run_pk(tenant, run_id))
            & Key("sk").begins_with(keys.STEP_PREFIX)
        }
        while True:
            page = self._table.query(**query)
            items.extend(page["Items"])
            if "LastEvaluatedKey" not in page:
                break
            query["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return sorted(items, key=lambda item: (item.get("started_at", 0), item["sk"]))


def _decimal_seconds(now: float) -> Any:
    from decimal import Decimal

    return Decimal(str(round(now, 3)))
