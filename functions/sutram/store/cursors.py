"""Opaque pagination cursors over the `gsi1` index, bound to the tenant that received them.

A cursor is the index position DynamoDB returned (LastEvaluatedKey), base64url-encoded JSON. On
the way back it is accepted only if it is well formed and every key belongs to the caller's
tenant, so a cursor can neither be forged into another tenant's items nor leak them.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from sutram.store.keys import INDEX_KEYS


class InvalidCursor(ValueError):
    """A listing cursor this store did not hand out for this tenant."""

    def __init__(self) -> None:
        super().__init__("the cursor is not one this API returned to you")


def encode(position: dict[str, Any]) -> str:
    index_key = {name: str(position[name]) for name in INDEX_KEYS}
    return base64.urlsafe_b64encode(json.dumps(index_key, sort_keys=True).encode()).decode().rstrip("=")


def decode(cursor: str, *, gsi1pk: str, pk_prefix: str, sk: str) -> dict[str, str]:
    """The index position a cursor names; InvalidCursor if it is malformed or not the caller's."""
    try:
        position = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, binascii.Error):
        raise InvalidCursor() from None
    if (
        not isinstance(position, dict)
        or set(position) != INDEX_KEYS
        or not all(isinstance(value, str) for value in position.values())
        or position["gsi1pk"] != gsi1pk
        or not position["pk"].startswith(pk_prefix)
        or position["sk"] != sk
    ):
        raise InvalidCursor()
    return position
