"""sutram.store.checkpoints, the checkpoint protocol: a lease, one result, and no second spend."""

from __future__ import annotations

import pytest

from sutram.errors import OutcomeUnknown, StepInProgress, TransientStepError
from sutram.store import checkpoints
from sutram.store.checkpoints import AlreadyRecorded, CheckpointStore, StepKey

KEY = StepKey("acme", "run-1", "summarise")


@pytest.fixture
def store(table) -> CheckpointStore:
    return CheckpointStore(table, retention_seconds=3600)


def claim(store: CheckpointStore, *, lease: int = 60, at_most_once: bool = False):
    return store.claim(KEY, step_type="llm", lease_seconds=lease, at_most_once=at_most_once)


def test_first_claim_takes_attempt_one(store):
    assert claim(store).attempt == 1


def test_a_recorded_result_is_returned_instead_of_a_new_claim(store):
    store.complete(claim(store), {"summary": "done"}, usage=None)

    assert claim(store) == AlreadyRecorded(output={"summary": "done"})


def test_a_concurrent_duplicate_is_refused_while_the_lease_is_live(store):
    claim(store)

    with pytest.raises(StepInProgress, match="attempt 1 holds the lease"):
        claim(store)


def test_an_expired_lease_is_taken_over_by_the_next_attempt(store, monkeypatch):
    claim(store, lease=10)
    later = checkpoints._now() + 11
    monkeypatch.setattr(checkpoints, "_now", lambda: later)

    assert claim(store).attempt == 2


def test_a_released_lease_can_be_claimed_at_once(store):
    store.release(claim(store), "TransientStepError: throttled")

    assert claim(store).attempt == 2


def test_a_result_from_a_lost_lease_is_refused(store, monkeypatch):
    first = claim(store, lease=10)
    later = checkpoints._now() + 11
    monkeypatch.setattr(checkpoints, "_now", lambda: later)
    claim(store)  # attempt 2 takes over

    with pytest.raises(TransientStepError, match="lease lost"):
        store.complete(first, "stale", usage=None)


def test_at_most_once_never_reclaims_an_attempt_whose_call_may_have_started(store, monkeypatch):
    store.mark_in_flight(claim(store, lease=10, at_most_once=True))
    later = checkpoints._now() + 11
    monkeypatch.setattr(checkpoints, "_now", lambda: later)

    with pytest.raises(OutcomeUnknown, match="never recorded an outcome"):
        claim(store, at_most_once=True)


def test_at_most_once_retries_an_attempt_that_crashed_before_its_call(store, monkeypatch):
    claim(store, lease=10, at_most_once=True)  # crashed while resolving its input, say
    later = checkpoints._now() + 11
    monkeypatch.setattr(checkpoints, "_now", lambda: later)

    assert claim(store, at_most_once=True).attempt == 2


def test_an_attempt_that_lost_its_lease_cannot_mark_itself_in_flight(store, monkeypatch):
    first = claim(store, lease=10, at_most_once=True)
    later = checkpoints._now() + 11
    monkeypatch.setattr(checkpoints, "_now", lambda: later)
    claim(store, at_most_once=True)  # attempt 2 takes over

    with pytest.raises(TransientStepError, match="nothing was called"):
        store.mark_in_flight(first)


def test_at_most_once_may_retry_after_a_clean_failure(store):
    store.release(claim(store, at_most_once=True), "StepFailed: refused")

    assert claim(store, at_most_once=True).attempt == 2


def test_usage_is_recorded_with_the_result(store, table):
    usage = {"provider": "scripted", "model_id": "m", "input_tokens": 10, "output_tokens": 4, "cached_tokens": 2}
    store.complete(claim(store), "text", usage=usage)

    item = table.get_item(Key=KEY.item_key)["Item"]
    assert item["status"] == "succeeded"
    assert item["usage"] == usage
    assert "lease_expires_at" not in item


def test_a_later_step_functions_delivery_takes_over_a_live_lease_at_once(store):
    store.claim(KEY, step_type="llm", lease_seconds=600, at_most_once=False, delivery=0)  # crashed

    retry = store.claim(KEY, step_type="llm", lease_seconds=600, at_most_once=False, delivery=1)

    assert retry.attempt == 2


def test_a_resumed_runs_new_execution_takes_over_a_lease_of_the_previous_one_whatever_its_delivery(store):
    # The first execution crashed on its third delivery; the resumed execution counts from 0 again.
    store.claim(KEY, step_type="llm", lease_seconds=600, at_most_once=False, delivery=2, execution=0)

    resumed = store.claim(KEY, step_type="llm", lease_seconds=600, at_most_once=False, delivery=0, execution=1)

    assert resumed.attempt == 2
    with pytest.raises(StepInProgress):  # while the old execution's late duplicate does not
        store.claim(KEY, step_type="llm", lease_seconds=600, at_most_once=False, delivery=5, execution=0)


def test_a_duplicate_of_the_same_delivery_waits_for_the_lease(store):
    store.claim(KEY, step_type="llm", lease_seconds=600, at_most_once=False, delivery=1)

    with pytest.raises(StepInProgress):
        store.claim(KEY, step_type="llm", lease_seconds=600, at_most_once=False, delivery=1)


def test_at_most_once_reports_outcome_unknown_to_a_later_delivery(store):
    store.mark_in_flight(store.claim(KEY, step_type="tool", lease_seconds=600, at_most_once=True, delivery=0))

    with pytest.raises(OutcomeUnknown):
        store.claim(KEY, step_type="tool", lease_seconds=600, at_most_once=True, delivery=1)
