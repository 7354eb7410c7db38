"""What every stored entity shares: the conditional-check test, the clock, the time formats and
the retention of items (DynamoDB TTL) and artifacts (S3 lifecycle)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from botocore.exceptions import ClientError

RETENTION_SECONDS = 90 * 24 * 3600  # run, step and approval items expire (DynamoDB TTL) after 90 days
RETENTION_DAYS = RETENTION_SECONDS // (24 * 3600)  # the artifacts' S3 lifecycle matches it


def is_condition_failure(exc: ClientError) -> bool:
    return bool(exc.response["Error"]["Code"] == "ConditionalCheckFailedException")


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    """A run's timestamps: fixed width (milliseconds, +00:00), so the strings sort like the times."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


def iso_z(moment: datetime) -> str:
    """An approval's timestamps: milliseconds, `Z`; they sort like the times too."""
    return iso(moment).replace("+00:00", "Z")


def epoch(moment: float) -> Decimal:
    """A checkpoint's timestamps: epoch seconds with milliseconds, as a DynamoDB number."""
    return Decimal(str(round(moment, 3)))


def from_epoch(seconds: Any) -> datetime | None:
    return datetime.fromtimestamp(float(seconds), UTC) if seconds is not None else None


def expiry(moment: float) -> int:
    """The TTL attribute (`expires_at`, epoch seconds) of an item written or due at `moment`."""
    return int(moment) + RETENTION_SECONDS


def canonical(value: Any) -> str:
    """JSON as it is stored and hashed: sorted keys, no spaces, UTF-8 as is."""
    return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
