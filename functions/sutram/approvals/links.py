"""Signed callback links: approve or reject one approval from an e-mail or chat message, without an API session.

A link is `<base_url>/callbacks/approvals/<token>`; the token is `<payload>.<signature>`, both base64url,
the payload the JSON of `LinkClaims` (approval id, tenant, outcome, the approver it names, expiry, nonce)
and the signature HMAC-SHA256 of the payload under the current signing key (sutram.store.signing_keys).
`verify` accepts the current or the previous key, and refuses a token that is malformed, forged or
altered (signature), or expired. A link expires 24 hours after it is made,
or at the approval's deadline if that comes first.

Single use: an approval is decided at most once (`ApprovalStore.decide` is a conditional write), so
using either link of a pair, or any link a second time, answers `already_decided` and changes nothing.
The nonce makes every link distinct, so two messages about one approval never share a URL.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict, ValidationError

from sutram.store.approvals import ApprovalRecord, Outcome

LINK_LIFETIME = timedelta(hours=24)
CALLBACK_PATH = "/callbacks/approvals/"


class InvalidLink(Exception):
    """The token is malformed, forged, altered or expired."""


class LinkClaims(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    approval_id: str
    tenant: str
    outcome: Outcome
    approver: str  # who the link was sent to: the approval's group
    expires_at: int  # Unix seconds
    nonce: str


def make_links(record: ApprovalRecord, base_url: str, now: datetime, secret: str) -> dict[str, str]:
    """{"approve": url, "reject": url} for a pending approval."""
    if not secret:
        raise ValueError("no signing key is configured (SUTRAM_CALLBACK_SECRET_ARN)")
    expires = min(now + LINK_LIFETIME, datetime.fromisoformat(record.expires_at))
    links: dict[str, str] = {}
    for outcome in ("approve", "reject"):
        claims = LinkClaims(
            approval_id=record.approval_id,
            tenant=record.tenant,
            outcome=outcome,  # type: ignore[arg-type]
            approver=record.group,
            expires_at=int(expires.timestamp()),
            nonce=secrets.token_urlsafe(12),
        )
        links[outcome] = base_url.rstrip("/") + CALLBACK_PATH + sign(claims, secret)
    return links


def sign(claims: LinkClaims, secret: str) -> str:
    payload = _encode(json.dumps(claims.model_dump(), separators=(",", ":"), sort_keys=True).encode())
    return f"{payload}.{_encode(_mac(payload, secret))}"


def verify(token: str, keys: Sequence[str], now: datetime) -> LinkClaims:
    """The claims of a token signed with one of `keys`; InvalidLink otherwise."""
    payload, _, signature = token.partition(".")
    try:
        mac = _decode(signature)
        valid = any(hmac.compare_digest(mac, _mac(payload, key)) for key in keys if key)
        claims = LinkClaims.model_validate_json(_decode(payload)) if valid else None
    except (ValueError, binascii.Error, ValidationError):
        claims = None
    if claims is None:
        raise InvalidLink("the link is not valid")
    if now.timestamp() >= claims.expires_at:
        raise InvalidLink("the link has expired")
    return claims


def _mac(payload: str, secret: str) -> bytes:
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).digest()


def _encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
