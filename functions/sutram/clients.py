"""boto3 clients and resources, created once per Lambda sandbox and reused across invocations.

This module imports nothing from Sutram: it is the bottom layer, below every store and provider.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import boto3


@cache
def client(service: str) -> Any:
    return boto3.client(service)


@cache
def table(name: str) -> Any:
    return boto3.resource("dynamodb").Table(name)


def reset() -> None:
    """Forget cached clients (tests, and the local cloud after reconfiguring)."""
    client.cache_clear()
    table.cache_clear()
