"""sutram.store.approvals: one pending record per step, one decision, no decision after the deadline."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from sutram.store.approvals import (
    AlreadyDecided,
    ApprovalExpired,
    ApprovalNotFound,
    ApprovalRecord,
    ApprovalStore,
    approval_id_for,
)
from sutram.store.cursors import InvalidCursor
from tests.unit.support.approvals import approval_record

NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


@pytest.fixture
def store(table) -> ApprovalStore:
    return ApprovalStore(table)


def record(step_path: str = "approve_refund", *, created: datetime = NOW, hours: int = 24) -> ApprovalRecord:
    return approval_record(
        step_path,
        run_id="run-1",
        created_at=created,
        expires_at=created + timedelta(hours=hours),
        proposal_schema={"type": "object"},
    )


def test_approval_ids_are_deterministic_per_step():
    assert approval_id_for("acme", "run-1", "a") == approval_id_for("acme", "run-1", "a")
    assert approval_id_for("acme", "run-1", "a") != approval_id_for("acme", "run-1", "b")
    assert approval_id_for("acme", "run-1", "a").startswith("ap-")


def test_open_stores_the_record_and_keeps_the_token_out_of_it(store):
    opened = store.open(record(), "token-1")

    assert store.get("acme", opened.approval_id) == opened
    assert store.token_for("acme", opened.approval_id) == "token-1"
    assert "token-1" not in json.dumps(opened.model_dump(mode="json"))


def test_a_retried_request_replaces_only_the_token_of_a_pending_approval(store):
    first = store.open(record(), "token-1")

    again = store.open(record(created=NOW + timedelta(minutes=5)), "token-2")

    assert again == first  # same creation time and deadline
    assert store.token_for("acme", first.approval_id) == "token-2"


def test_a_retried_request_after_the_decision_returns_the_decided_record_and_keeps_its_token(store):
    opened = store.open(record(), "token-1")
    decided, _ = store.decide("acme", opened.approval_id, "approve", "ana", now=NOW)

    assert store.open(record(), "token-2") == decided
    # The live token is the new delivery's: the API can tell that its own SendTaskSuccess came late.
    assert store.token_for("acme", opened.approval_id) == "token-2"


def test_a_decision_that_never_reached_the_run_lapses_to_expired_and_stays_on_record(store):
    opened = store.open(record(), "token-1")
    decided, _ = store.decide("acme", opened.approval_id, "approve", "ana", now=NOW)

    lapsed = store.lapse(decided)

    assert lapsed is not None and lapsed.status == "expired" and lapsed.decision == decided.decision
    expired, _ = store.list("acme", "expired", limit=10)
    assert [approval.approval_id for approval in expired] == [opened.approval_id]
    assert store.list("acme", "approved", limit=10) == ([], None)


def test_decide_once_returns_the_token_and_a_second_decision_gets_the_first(store):
    opened = store.open(record(), "token-1")

    decided, token = store.decide(
        "acme", opened.approval_id, "approve", "ana", "ok", {"order": 42, "amount": 100}, now=NOW
    )

    assert token == "token-1"
    assert decided.status == "approved"
    assert decided.decision is not None
    assert decided.decision.model_dump() == {
        "outcome": "approve",
        "by": "ana",
        "at": "2026-01-05T09:00:00.000Z",
        "comment": "ok",
        "edited_proposal": {"order": 42, "amount": 100},
    }
    with pytest.raises(AlreadyDecided) as raised:
        store.decide("acme", opened.approval_id, "reject", "bob", now=NOW + timedelta(minutes=1))
    assert raised.value.record == decided


def test_a_decision_after_the_deadline_is_refused(store):
    opened = store.open(record(hours=1), "token-1")

    with pytest.raises(ApprovalExpired) as raised:
        store.decide("acme", opened.approval_id, "approve", "ana", now=NOW + timedelta(hours=1))

    assert raised.value.record.status == "expired"
    assert store.get("acme", opened.approval_id).status == "pending"  # nothing was written


def test_an_expired_or_escalated_approval_cannot_be_decided(store):
    opened = store.open(record(), "token-1")

    assert store.expire("acme", opened.approval_id, "escalated").status == "escalated"
    with pytest.raises(ApprovalExpired):
        store.decide("acme", opened.approval_id, "approve", "ana", now=NOW)


def test_expire_leaves_a_decided_approval_alone(store):
    opened = store.open(record(), "token-1")
    decided, _ = store.decide("acme", opened.approval_id, "reject", "ana", now=NOW)

    assert store.expire("acme", opened.approval_id, "expired") == decided


def test_unknown_and_other_tenants_approvals_are_not_found(store):
    opened = store.open(record(), "token-1")

    with pytest.raises(ApprovalNotFound):
        store.decide("globex", opened.approval_id, "approve", "ana", now=NOW)
    assert store.get("globex", opened.approval_id) is None
    assert store.token_for("acme", "ap-missing") is None


def test_pending_approvals_are_listed_newest_first_in_pages(store):
    opened = [store.open(record(f"step_{n}", created=NOW + timedelta(minutes=n)), f"t{n}") for n in range(5)]
    store.decide("acme", opened[2].approval_id, "approve", "ana", now=NOW)

    first, cursor = store.list("acme", "pending", limit=2)
    second, cursor = store.list("acme", "pending", limit=2, cursor=cursor)
    rest, _ = store.list("acme", "pending", limit=2, cursor=cursor)

    pending = [r.step_path for r in first + second + rest]
    assert pending == ["step_4", "step_3", "step_1", "step_0"]
    assert [r.step_path for r in store.list("acme", "approved")[0]] == ["step_2"]
    assert store.list("globex", "pending") == ([], None)


def test_a_cursor_of_another_tenant_is_refused(store):
    for n in range(3):
        store.open(record(f"step_{n}", created=NOW + timedelta(minutes=n)), f"t{n}")
    _, cursor = store.list("acme", "pending", limit=1)

    with pytest.raises(InvalidCursor):
        store.list("globex", "pending", cursor=cursor)
    with pytest.raises(InvalidCursor):
        store.list("acme", "pending", cursor="garbage")
