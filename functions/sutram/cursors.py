"""Opaque pagination cursors over the `gsi1` index, bound to the tenant that received them.

A cursor is the index position DynamoDB returned (LastEvaluatedKey), base64url-encoded JSON. On
the way back it is accepted only if it is well formed and every key belongs to the caller's
tenant, so a cursor can neither be forged into another tenant's items nor leak them.
"""

from __future__ import annotations

import base64
import binascii
import json

INDEX_KEYS = frozenset({"pk", "sk", "gsi1pk", "gsi1sk"})


def encode(position: dict[str, str]) -> str:
    return base64.urlsafe_b64encode(json.dumps(position, sort_keys=True).encode()).decode().rstrip("=")


def decode(cursor: str, *, gsi1pk: str, pk_prefix: str, sk: str) -> dict[str, str] | None:
    """The index position a cursor names, or None if it is malformed or not the caller's."""
    try:
        position = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, binascii.Error):
        return None
    if (
        not isinstance(position, dict)
        or set(position) != INDEX_KEYS
        or not all(isinstance(value, str) for value in position.values())
        or position["gsi1pk"] != gsi1pk
        or not position["pk"].startswith(pk_prefix)
        or position["sk"] != sk
    ):
        return None
    return position
