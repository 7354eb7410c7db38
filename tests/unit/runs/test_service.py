"""Runs without HTTP: run ids (sutram.runs.service), cursors (sutram.store.cursors), and the finish
handler recording how a run ended."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from sutram.runs import service as runs
from sutram.store import cursors, keys
from tests.unit.support.api import ApiEnvironment
from tests.unit.support.api import run_item as _run_item

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")


# --- ids and cursors ----------------------------------------------------------------------------


def test_an_idempotency_key_always_names_the_same_run_per_tenant_and_workflow() -> None:
    run_id = runs.idempotent_run_id("acme", "document-analysis", "k-1")

    assert runs.RUN_ID.match(run_id)
    assert run_id == runs.idempotent_run_id("acme", "document-analysis", "k-1")
    assert run_id != runs.idempotent_run_id("globex", "document-analysis", "k-1")
    assert run_id != runs.idempotent_run_id("acme", "other", "k-1")
    assert run_id != runs.idempotent_run_id("acme", "document-analysis", "k-2")


def test_random_run_ids_sort_by_creation_time() -> None:
    start = datetime(2025, 1, 1, tzinfo=UTC)
    ids = [runs.new_run_id(start + timedelta(milliseconds=step)) for step in range(0, 5000, 7)]

    assert all(runs.RUN_ID.match(run_id) for run_id in ids)
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)


def test_a_cursor_round_trips_for_its_tenant_only() -> None:
    position = {
        "pk": "TENANT#acme#RUN#r-00000000000000000000000000",
        "sk": "RUN",
        "gsi1pk": "TENANT#acme",
        "gsi1sk": "2025-01-01T00:00:00.000+00:00#r-00000000000000000000000000",
    }
    cursor = cursors.encode(position)

    def decode(cursor: str, tenant: str) -> dict[str, str]:
        return cursors.decode(
            cursor, gsi1pk=keys.runs_index_pk(tenant), pk_prefix=keys.run_pk(tenant, ""), sk=keys.RUN_SK
        )

    assert decode(cursor, "acme") == position
    with pytest.raises(cursors.InvalidCursor):
        decode(cursor, "acme-corp")
    with pytest.raises(cursors.InvalidCursor):
        decode(cursor[:-3], "acme")


# --- the finish handler -------------------------------------------------------------------------


def test_finish_records_success_with_the_output(api: ApiEnvironment) -> None:
    run_id = api.start().body["run_id"]

    result = api.finish(run_id, status="SUCCEEDED", output={"report": "ok"})

    assert result == {"run_id": run_id, "status": "SUCCEEDED"}
    item = _run_item(api, run_id)
    assert item["status"] == "SUCCEEDED"
    assert json.loads(str(item["output"])) == {"report": "ok"}
    assert item["finished_at"] == item["updated_at"]
    assert datetime.fromisoformat(str(item["finished_at"])) >= datetime.fromisoformat(str(item["created_at"]))
    run = api.call("GET", f"/runs/{run_id}").body
    assert run["status"] == "SUCCEEDED"
    assert run["output"] == {"report": "ok"}
    assert run["finished_at"] is not None


def test_finish_records_failure_with_the_error_message_from_the_lambda_cause(api: ApiEnvironment) -> None:
    run_id = api.start().body["run_id"]
    cause = json.dumps(
        {
            "errorMessage": "step 'entities': the model did not return JSON",
            "errorType": "StepFailed",
            "stackTrace": ['  File "/var/task/sutram/steps.py", line 1'],
        }
    )

    api.finish(run_id, status="FAILED", error={"Error": "StepFailed", "Cause": cause})

    item = _run_item(api, run_id)
    assert item["status"] == "FAILED"
    assert item["error"] == {"error": "StepFailed", "cause": "step 'entities': the model did not return JSON"}
    assert "output" not in item
    assert api.call("GET", f"/runs/{run_id}").body["error"] == item["error"]


def test_a_repeated_finish_with_the_same_status_is_a_no_op(api: ApiEnvironment) -> None:
    run_id = api.start().body["run_id"]
    api.finish(run_id, status="SUCCEEDED", output=1)
    before = _run_item(api, run_id)

    again = api.finish(run_id, status="SUCCEEDED", output=2)

    assert again == {"run_id": run_id, "status": "SUCCEEDED"}
    assert _run_item(api, run_id) == before


def test_finishing_with_another_status_after_the_run_ended_fails_loudly(api: ApiEnvironment) -> None:
    run_id = api.start().body["run_id"]
    api.finish(run_id, status="SUCCEEDED", output=1)

    with pytest.raises(runs.RunAlreadyFinished, match="already finished as SUCCEEDED"):
        api.finish(run_id, status="FAILED", error={"Error": "States.Timeout", "Cause": "late"})
    assert _run_item(api, run_id)["status"] == "SUCCEEDED"


def test_finishing_an_unknown_run_fails_and_creates_nothing(api: ApiEnvironment) -> None:
    with pytest.raises(runs.RunNotFound):
        api.finish("r-00000000000000000000000000", status="SUCCEEDED", output=1)
    assert api.table.scan()["Items"] == []


def test_a_finish_event_without_a_valid_status_is_rejected(api: ApiEnvironment) -> None:
    run_id = api.start().body["run_id"]

    with pytest.raises(ValueError, match="status"):
        api.finish(run_id, status="DONE")
    assert _run_item(api, run_id)["status"] == "RUNNING"
