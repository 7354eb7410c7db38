"""sutram.approvals.links, the signed approval callback links: what they carry, and every way a link
is refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from sutram.approvals.links import CALLBACK_PATH, InvalidLink, LinkClaims, make_links, sign, verify
from sutram.store.approvals import ApprovalRecord
from tests.support import b64url_json, from_b64url_json
from tests.unit.support.approvals import approval_record

SECRET = "s3cret-for-tests"
NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def record(deadline: datetime) -> ApprovalRecord:
    return approval_record(
        approval_id="ap-1", created_at=NOW, expires_at=deadline, summary="Refund 120 EUR", proposal={"amount": 120}
    )


def token_of(url: str) -> str:
    prefix, _, token = url.partition(CALLBACK_PATH)
    assert prefix == "https://api.example/v1"
    return token


def test_a_pair_of_links_names_the_approval_tenant_outcome_and_group_and_lasts_24_hours() -> None:
    links = make_links(record(NOW + timedelta(days=3)), "https://api.example/v1/", NOW, SECRET)

    claims = {outcome: verify(token_of(url), [SECRET], NOW) for outcome, url in links.items()}
    assert {outcome: (c.approval_id, c.tenant, c.outcome, c.approver) for outcome, c in claims.items()} == {
        "approve": ("ap-1", "acme", "approve", "finance"),
        "reject": ("ap-1", "acme", "reject", "finance"),
    }
    assert claims["approve"].expires_at == int((NOW + timedelta(hours=24)).timestamp())
    assert claims["approve"].nonce != claims["reject"].nonce


def test_a_link_expires_at_the_approval_deadline_when_that_comes_first() -> None:
    deadline = NOW + timedelta(hours=2)
    url = make_links(record(deadline), "https://api.example/v1", NOW, SECRET)["approve"]

    assert verify(token_of(url), [SECRET], deadline - timedelta(seconds=1)).outcome == "approve"
    with pytest.raises(InvalidLink, match="expired"):
        verify(token_of(url), [SECRET], deadline)


def test_every_link_is_distinct() -> None:
    first = make_links(record(NOW + timedelta(days=1)), "https://api.example/v1", NOW, SECRET)
    second = make_links(record(NOW + timedelta(days=1)), "https://api.example/v1", NOW, SECRET)
    assert first["approve"] != second["approve"]


def _altered(token: str) -> str:
    payload, _, signature = token.partition(".")
    claims = from_b64url_json(payload)
    claims["outcome"] = "reject" if claims["outcome"] == "approve" else "approve"
    return f"{b64url_json(claims)}.{signature}"


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(_altered, id="altered payload"),
        pytest.param(lambda token: token.partition(".")[0] + ".AAAA", id="wrong signature"),
        pytest.param(lambda token: token.partition(".")[0], id="no signature"),
        pytest.param(lambda token: "not a token", id="garbage"),
        pytest.param(lambda token: "", id="empty"),
    ],
)
def test_an_altered_or_malformed_link_is_refused(tamper: object) -> None:
    url = make_links(record(NOW + timedelta(days=1)), "https://api.example/v1", NOW, SECRET)["approve"]
    with pytest.raises(InvalidLink, match="not valid"):
        verify(tamper(token_of(url)), [SECRET], NOW)  # type: ignore[operator]


def test_a_link_signed_with_another_secret_is_refused_and_no_secret_accepts_nothing() -> None:
    claims = LinkClaims(
        approval_id="ap-1", tenant="acme", outcome="approve", approver="finance", expires_at=2_000_000_000, nonce="n"
    )
    assert verify(sign(claims, SECRET), [SECRET], NOW) == claims
    with pytest.raises(InvalidLink):
        verify(sign(claims, "another-secret"), [SECRET], NOW)
    with pytest.raises(InvalidLink):
        verify(sign(claims, SECRET), [], NOW)
    with pytest.raises(ValueError, match="SUTRAM_CALLBACK_SECRET"):
        make_links(record(NOW + timedelta(days=1)), "https://api.example/v1", NOW, "")


def test_a_link_signed_with_the_previous_key_is_accepted_after_a_rotation_and_another_key_is_not():
    claims = LinkClaims(
        approval_id="ap-1", tenant="acme", outcome="approve", approver="finance", expires_at=2_000_000_000, nonce="n"
    )
    before_rotation = sign(claims, "old-key")

    assert verify(before_rotation, ["new-key", "old-key"], NOW) == claims
    with pytest.raises(InvalidLink):
        verify(before_rotation, ["new-key"], NOW)
