"""Human approvals: one DynamoDB item per approval an `approval` step or a gated tool call asks for
(keys: sutram.store.keys), listed by status, newest first, through the `gsi1` index.

The Step Functions task token that resumes the waiting run is stored on the item as `task_token`,
and is not a field of `ApprovalRecord`: only `token_for` and `decide` read it, so a record can be
serialized anywhere without leaking it. A decision is taken once: `decide` is a conditional update
from `pending`, refused after the deadline, so a late or second decision is answered with the
first one (or with the expiry) and the run is resumed at most once.
"""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import datetime
from typing import Any, Literal

from boto3.dynamodb.conditions import Key
from botocore.exceptions import ClientError
from pydantic import BaseModel

from sutram.store import cursors, keys
from sutram.store.dynamo import expiry, is_condition_failure, iso_z, utc_now

# The largest proposal, and edited proposal, as JSON: both fit one DynamoDB item (400 KB) with the
# rest of the record, and the decision fits the SendTaskSuccess output (256 KB) that resumes the run.
MAX_PROPOSAL_BYTES = 128 * 1024
PENDING: Literal["pending"] = "pending"
Status = Literal["pending", "approved", "rejected", "expired", "escalated"]
Outcome = Literal["approve", "reject"]
_JSON_FIELDS = ("proposal", "proposal_schema", "decision")  # stored as JSON text: DynamoDB has no floats


class Decision(BaseModel):
    outcome: Outcome
    by: str
    at: str  # ISO-8601 UTC
    comment: str = ""
    edited_proposal: Any = None  # the proposal as the approver changed it, or None if unchanged


class ApprovalRecord(BaseModel):
    approval_id: str
    tenant: str
    run_id: str
    workflow: str
    step_path: str
    summary: str
    proposal: Any
    proposal_schema: dict[str, Any] | None = None
    group: str
    created_at: str  # ISO-8601 UTC
    expires_at: str  # ISO-8601 UTC: the decision deadline
    status: Status = PENDING
    decision: Decision | None = None
    timeout_action: Literal["reject", "escalate", "fail"] = "reject"
    escalate_to: str | None = None

    def past_deadline(self, now: datetime) -> bool:
        return now >= datetime.fromisoformat(self.expires_at)

    def to_item(self, task_token: str) -> dict[str, Any]:
        item = self.model_dump(mode="json")
        for name in _JSON_FIELDS:
            item[name] = json.dumps(item[name])
        # `expires_at` is the table's TTL attribute (epoch seconds); the deadline is kept as `deadline`.
        deadline = item.pop("expires_at")
        return item | {
            **keys.approval_key(self.tenant, self.approval_id),
            "gsi1pk": keys.approvals_index_pk(self.tenant),
            "gsi1sk": keys.approvals_index_sk(self.status, self.created_at, self.approval_id),
            "deadline": deadline,
            # The TTL: items expire the retention period after their deadline.
            "expires_at": expiry(datetime.fromisoformat(deadline).timestamp()),
            "task_token": task_token,
        }

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> ApprovalRecord:
        fields = {name: value for name, value in item.items() if name in cls.model_fields and name != "expires_at"}
        for name in _JSON_FIELDS:
            if isinstance(fields.get(name), str):
                fields[name] = json.loads(fields[name])
        return cls.model_validate(fields | {"expires_at": item["deadline"]})


class ApprovalError(Exception):
    """A decision that cannot be taken."""


class ApprovalNotFound(ApprovalError):
    """No such approval for this tenant."""


class ApprovalExpired(ApprovalError):
    """The deadline passed (or the approval was escalated) before a decision."""

    def __init__(self, record: ApprovalRecord) -> None:
        super().__init__(f"approval {record.approval_id} is {record.status}; its deadline was {record.expires_at}")
        self.record = record


class AlreadyDecided(ApprovalError):
    """The approval was decided before; `record.decision` is the first decision."""

    def __init__(self, record: ApprovalRecord) -> None:
        outcome = record.decision.outcome if record.decision else record.status
        super().__init__(f"approval {record.approval_id} was already decided: {outcome}")
        self.record = record


def proposal_bytes(proposal: Any) -> int:
    """The size of a proposal as the approval stores it."""
    return len(json.dumps(proposal).encode())


def approval_id_for(tenant: str, run_id: str, step_path: str) -> str:
    """The same id for every delivery of the same step of the same run."""
    digest = hashlib.sha256(f"{tenant}\n{run_id}\n{step_path}".encode()).digest()
    return "ap-" + base64.b32encode(digest[:20]).decode().lower()


class ApprovalStore:
    def __init__(self, table: Any) -> None:
        self._table = table

    def open(self, record: ApprovalRecord, task_token: str) -> ApprovalRecord:
        """Record a pending approval with the token that resumes the run. A retried request finds
        it and replaces only the token (each delivery of the task has a new one, and the old one
        is dead); the record, pending, decided or expired, is returned as it stands."""
        try:
            self._table.put_item(Item=record.to_item(task_token), ConditionExpression="attribute_not_exists(pk)")
            return record
        except ClientError as exc:
            if not is_condition_failure(exc):
                raise
        updated = self._table.update_item(
            Key=self._key(record.tenant, record.approval_id),
            UpdateExpression="SET task_token = :token",
            ExpressionAttributeValues={":token": task_token},
            ReturnValues="ALL_NEW",
        )
        return ApprovalRecord.from_item(updated["Attributes"])

    def get(self, tenant: str, approval_id: str) -> ApprovalRecord | None:
        item = self._item(tenant, approval_id)
        return ApprovalRecord.from_item(item) if item else None

    def token_for(self, tenant: str, approval_id: str) -> str | None:
        item = self._item(tenant, approval_id)
        return str(item["task_token"]) if item else None

    def list(
        self, tenant: str, status: Status = PENDING, limit: int = 50, cursor: str | None = None
    ) -> tuple[list[ApprovalRecord], str | None]:
        """A tenant's approvals with this status, newest first, and a cursor to the next page (or None)."""
        query: dict[str, Any] = {
            "IndexName": keys.INDEX,
            "KeyConditionExpression": Key("gsi1pk").eq(keys.approvals_index_pk(tenant))
            & Key("gsi1sk").begins_with(f"{status}#"),
            "ScanIndexForward": False,
            "Limit": limit,
        }
        if cursor:
            query["ExclusiveStartKey"] = cursors.decode(
                cursor,
                gsi1pk=keys.approvals_index_pk(tenant),
                pk_prefix=keys.approval_pk(tenant, ""),
                sk=keys.APPROVAL_SK,
            )
        page = self._table.query(**query)
        last = page.get("LastEvaluatedKey")
        next_cursor = cursors.encode(last) if last else None
        return [ApprovalRecord.from_item(item) for item in page["Items"]], next_cursor

    def decide(
        self,
        tenant: str,
        approval_id: str,
        outcome: Outcome,
        by: str,
        comment: str = "",
        edited_proposal: Any = None,
        now: datetime | None = None,
    ) -> tuple[ApprovalRecord, str]:
        """Take the decision, once, before the deadline. Returns the decided record and the task
        token to resume the run with (see `sutram.approvals.decisions.complete`)."""
        now = now or utc_now()
        record = self.get(tenant, approval_id)
        if record is None:
            raise ApprovalNotFound(f"no approval {approval_id}")
        if record.status != PENDING:
            raise AlreadyDecided(record) if record.decision else ApprovalExpired(record)
        if record.past_deadline(now):
            raise ApprovalExpired(record.model_copy(update={"status": "expired"}))
        decision = Decision(outcome=outcome, by=by, at=iso_z(now), comment=comment, edited_proposal=edited_proposal)
        status = "approved" if outcome == "approve" else "rejected"
        try:
            updated = self._table.update_item(
                Key=self._key(tenant, approval_id),
                UpdateExpression="SET #status = :status, decision = :decision, gsi1sk = :index_sk",
                ConditionExpression="#status = :pending AND deadline > :now",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={
                    ":status": status,
                    ":decision": json.dumps(decision.model_dump(mode="json")),
                    ":index_sk": keys.approvals_index_sk(status, record.created_at, approval_id),
                    ":pending": PENDING,
                    ":now": iso_z(now),
                },
                ReturnValues="ALL_NEW",
            )
        except ClientError as exc:
            if not is_condition_failure(exc):
                raise
            # Someone else decided (or expired it) between our read and our write.
            return self.decide(tenant, approval_id, outcome, by, comment, edited_proposal, now)
        item = updated["Attributes"]
        return ApprovalRecord.from_item(item), str(item["task_token"])

    def expire(self, tenant: str, approval_id: str, status: Literal["expired", "escalated"]) -> ApprovalRecord | None:
        """Mark a pending approval as expired or escalated; a decided one is returned unchanged."""
        record = self.get(tenant, approval_id)
        if record is None or record.status != PENDING:
            return record
        return self._move(record, status, from_statuses=(PENDING,))

    def lapse(self, record: ApprovalRecord) -> ApprovalRecord | None:
        """Mark a decided approval `expired` because its run stopped waiting (its deadline passed,
        or the execution was stopped) before the decision reached it. The decision stays, for the
        record, with the status saying it had no effect."""
        return self._move(record, "expired", from_statuses=("approved", "rejected"))

    def _move(self, record: ApprovalRecord, status: Status, from_statuses: tuple[Status, ...]) -> ApprovalRecord | None:
        """Set the status (and the listing index) if it is still one of `from_statuses`; else the
        record as it now stands."""
        allowed = {f":from{i}": value for i, value in enumerate(from_statuses)}
        try:
            updated = self._table.update_item(
                Key=self._key(record.tenant, record.approval_id),
                UpdateExpression="SET #status = :status, gsi1sk = :index_sk",
                ConditionExpression=f"#status IN ({', '.join(allowed)})",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={
                    ":status": status,
                    ":index_sk": keys.approvals_index_sk(status, record.created_at, record.approval_id),
                    **allowed,
                },
                ReturnValues="ALL_NEW",
            )
        except ClientError as exc:
            if not is_condition_failure(exc):
                raise
            return self.get(record.tenant, record.approval_id)
        return ApprovalRecord.from_item(updated["Attributes"])

    def _key(self, tenant: str, approval_id: str) -> dict[str, str]:
        return keys.approval_key(tenant, approval_id)

    def _item(self, tenant: str, approval_id: str) -> dict[str, Any] | None:
        item: dict[str, Any] | None = self._table.get_item(Key=self._key(tenant, approval_id)).get("Item")
        return item
