"""Who is calling: the tenant, user and groups from the claims API Gateway's Cognito authorizer verified.

The tenant comes only from the verified `custom:tenant` claim, never from the body, a header or a
query parameter. API Gateway (REST) passes every claim as a string, so a list claim such as
`cognito:groups` arrives as "a,b" or "[a b]"; both, and a real list, are understood.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler.depends import Depends
from aws_lambda_powertools.event_handler.request import Request
from pydantic import BaseModel

from sutram.store import keys

logger = Logger()

TENANT_CLAIM = "custom:tenant"


class Unauthenticated(Exception):
    """The request carries no usable identity: answered with 401."""


class Caller(BaseModel):
    tenant: str
    user: str
    groups: tuple[str, ...] = ()


def caller_from_event(event: dict[str, Any]) -> Caller:
    claims = ((event.get("requestContext") or {}).get("authorizer") or {}).get("claims") or {}
    tenant = claims.get(TENANT_CLAIM)
    if not isinstance(tenant, str) or not keys.TENANT_ID.match(tenant):
        raise Unauthenticated("the caller's token has no valid custom:tenant claim")
    user = claims.get("cognito:username") or claims.get("sub")
    if not isinstance(user, str) or not user:
        raise Unauthenticated("the caller's token names no user")
    return Caller(tenant=tenant, user=user, groups=_list_claim(claims.get("cognito:groups")))


def _list_claim(value: Any) -> tuple[str, ...]:
    if isinstance(value, list):
        return tuple(str(item) for item in value)
    if not isinstance(value, str):
        return ()
    return tuple(part for part in re.split(r"[,\s]+", value.strip().strip("[]")) if part)


def current_caller(request: Request) -> Caller:
    """The route dependency: the verified caller, whose tenant and user every log line then carries."""
    caller = caller_from_event(request.resolved_event.raw_event)
    logger.append_keys(tenant=caller.tenant, user=caller.user)
    return caller


CurrentCaller = Annotated[Caller, Depends(current_caller)]
