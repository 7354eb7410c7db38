"""The recovery routes on moto: resume a run as a new execution of the same run, abort one with
its reason, fork one at a step with its earlier checkpoints copied."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from sutram import wiring
from sutram.errors import OutcomeUnknown
from sutram.store.checkpoints import AlreadyRecorded, Claimed, StepKey
from tests.unit.support.api import TRIVIAL_ASL, ApiEnvironment, api_environment, run_item


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Iterator[ApiEnvironment]:
    with api_environment(monkeypatch) as environment:
        yield environment


def complete(run_id: str, path: str, output: Any, step_type: str = "llm", usage: dict[str, Any] | None = None) -> None:
    store = wiring.checkpoint_store()
    claim = store.claim(StepKey("acme", run_id, path), step_type=step_type, lease_seconds=60, at_most_once=False)
    store.complete(claim, output, usage)


def failed_run(api: ApiEnvironment) -> str:
    run_id: str = api.start().body["run_id"]
    complete(run_id, "extract", {"title": "Q3 report", "text": "Revenue grew."}, "tool")
    api.finish(run_id, status="FAILED", error={"Error": "StepFailed", "Cause": "summarise: the model is down"})
    return run_id


def execution_input(api: ApiEnvironment, name: str) -> dict[str, Any]:
    (execution,) = [e for e in api.executions() if e["name"] == name]
    return dict(json.loads(api.stepfunctions.describe_execution(executionArn=execution["executionArn"])["input"]))


# --- resume -------------------------------------------------------------------------------------


def test_a_failed_run_resumes_as_the_next_execution_of_the_same_run(api: ApiEnvironment) -> None:
    run_id = failed_run(api)

    resumed = api.call("POST", f"/runs/{run_id}/resume", body={})

    assert resumed.status == 200
    assert (resumed.body["run_id"], resumed.body["status"], resumed.body["execution"]) == (run_id, "RUNNING", 1)
    assert resumed.body["error"] is None and resumed.body["finished_at"] is None
    item = run_item(api, run_id)
    assert (item["status"], item["execution"], "error" in item) == ("RUNNING", 1, False)
    assert item["execution_arn"].endswith(f":{run_id}-1")
    started = execution_input(api, f"{run_id}-1")
    assert started["run"] == {"tenant": "acme", "run_id": run_id, "workflow": "document-analysis", "execution": 1}
    assert started["input"] == execution_input(api, run_id)["input"]


def test_a_second_resume_of_the_same_failure_is_refused_and_a_succeeded_run_is_not_resumable(
    api: ApiEnvironment,
) -> None:
    run_id = failed_run(api)
    assert api.call("POST", f"/runs/{run_id}/resume", body={}).status == 200

    again = api.call("POST", f"/runs/{run_id}/resume", body={})  # the run is running again
    assert (again.status, again.body["error"]["code"]) == (409, "run_not_resumable")

    done = api.start(key="done").body["run_id"]
    api.finish(done, status="SUCCEEDED", output={"ok": True})
    succeeded = api.call("POST", f"/runs/{done}/resume", body={})
    assert succeeded.status == 409
    assert succeeded.body["error"]["message"] == "the run succeeded; fork it to run steps again"


def test_another_tenants_run_cannot_be_resumed_aborted_or_forked(api: ApiEnvironment) -> None:
    run_id = failed_run(api)

    for action, body in (("resume", {}), ("abort", {"reason": "x"}), ("fork", {"step": "study"})):
        answer = api.call("POST", f"/runs/{run_id}/{action}", tenant="globex", body=body)
        assert (answer.status, answer.body["error"]["code"]) == (404, "run_not_found")
    assert run_item(api, run_id)["status"] == "FAILED"


def test_resuming_on_a_version_other_than_the_runs_own_or_the_live_one_is_refused(api: ApiEnvironment) -> None:
    run_id = failed_run(api)

    answer = api.call("POST", f"/runs/{run_id}/resume", body={"version": 7})

    assert answer.status == 409
    assert (answer.body["error"]["code"], answer.body["error"]["field"]) == ("version_mismatch", "version")
    assert run_item(api, run_id)["status"] == "FAILED"


# --- abort --------------------------------------------------------------------------------------


def test_abort_stops_the_execution_and_records_who_and_why_once(api: ApiEnvironment) -> None:
    run_id = api.start().body["run_id"]

    aborted = api.call("POST", f"/runs/{run_id}/abort", body={"reason": "wrong customer"})

    assert aborted.status == 200
    assert aborted.body["status"] == "ABORTED"
    assert aborted.body["error"] == {"error": "Sutram.Aborted", "cause": "wrong customer"}
    (execution,) = api.executions()
    description = api.stepfunctions.describe_execution(executionArn=execution["executionArn"])
    assert description["status"] == "ABORTED"
    assert api.call("GET", f"/runs/{run_id}").body["aborted_by"] == "ana"
    again = api.call("POST", f"/runs/{run_id}/abort", body={"reason": "twice"})
    assert (again.status, again.body["error"]["message"]) == (409, "the run is ABORTED, not running")
    assert api.call("POST", f"/runs/{run_id}/abort", body={}).status == 400  # a reason is required

    assert api.call("POST", f"/runs/{run_id}/resume", body={}).body["execution"] == 1  # and it resumes


# --- fork ---------------------------------------------------------------------------------------


def test_a_fork_is_a_new_run_starting_with_copies_of_the_checkpoints_before_the_fork_point(
    api: ApiEnvironment,
) -> None:
    parent = failed_run(api)
    complete(parent, "study.summary/summarise", "A summary.", usage={"input_tokens": 10, "output_tokens": 5})

    forked = api.call(
        "POST", f"/runs/{parent}/fork", body={"step": "study", "outputs": {"extract": {"title": "T", "text": "Fixed."}}}
    )

    assert forked.status == 201
    fork_id = forked.body["run_id"]
    assert fork_id != parent and forked.body["forked_from"] == {"run_id": parent, "step": "study"}
    steps = api.call("GET", f"/runs/{fork_id}/steps").body["steps"]
    assert [(step["id"], step["output"]) for step in steps] == [("extract", {"title": "T", "text": "Fixed."})]
    parent_steps = api.call("GET", f"/runs/{parent}/steps").body["steps"]
    assert parent_steps[0]["output"] == {"title": "Q3 report", "text": "Revenue grew."}  # never changed
    assert api.call("GET", f"/runs/{parent}").body["forks"] == [fork_id]
    assert execution_input(api, fork_id)["run"]["run_id"] == fork_id


def test_a_fork_point_must_be_a_top_level_step_and_replaced_outputs_completed_steps_before_it(
    api: ApiEnvironment,
) -> None:
    parent = failed_run(api)

    nested = api.call("POST", f"/runs/{parent}/fork", body={"step": "summarise"})
    assert (nested.status, nested.body["error"]["field"]) == (400, "step")
    assert "not a top-level step of 'document-analysis' (extract, study, report)" in nested.body["error"]["message"]

    later = api.call("POST", f"/runs/{parent}/fork", body={"step": "extract", "outputs": {"extract": {}}})
    assert (later.status, later.body["error"]["field"]) == (400, "outputs.extract")
    assert api.call("GET", f"/runs/{parent}").body["forks"] == []


def test_resuming_on_the_live_version_checks_that_every_completed_step_is_still_in_it(api: ApiEnvironment) -> None:
    fits = failed_run(api)  # completed: extract (a tool step, as in the workflow's file)
    stale = failed_run(api)
    complete(stale, "study.summary/condense", "A step the new version renamed.")
    api.publish(TRIVIAL_ASL)  # version 2 goes live

    refused = api.call("POST", f"/runs/{stale}/resume", body={"version": 2})
    resumed = api.call("POST", f"/runs/{fits}/resume", body={"version": 2})

    assert refused.status == 409
    assert (
        refused.body["error"]["message"] == "version 2: completed step 'study.summary/condense' is not in this version"
    )
    assert (resumed.status, resumed.body["version"], run_item(api, fits)["version"]) == (200, 2, 2)


# --- an unknown outcome -------------------------------------------------------------------------


def unknown_outcome(run_id: str, path: str) -> StepKey:
    """An at-most-once call that started and crashed: the next delivery stops with OutcomeUnknown."""
    store, key = wiring.checkpoint_store(), StepKey("acme", run_id, path)
    store.mark_in_flight(store.claim(key, step_type="tool", lease_seconds=60, at_most_once=True, delivery=0))
    with pytest.raises(OutcomeUnknown):
        store.claim(key, step_type="tool", lease_seconds=60, at_most_once=True, delivery=1)
    return key


def test_an_unknown_outcome_is_recorded_by_an_operator_and_the_step_then_returns_it(api: ApiEnvironment) -> None:
    run_id = api.start().body["run_id"]
    key = unknown_outcome(run_id, "place_order")
    (listed,) = api.call("GET", f"/runs/{run_id}/steps").body["steps"]
    assert (listed["delivery"], listed["outcome_unknown"]) == ("at_most_once", True)

    body = {"step": "place_order", "action": "record", "output": {"order": "PO-7"}}
    settled = api.call("POST", f"/runs/{run_id}/resolve", body=body)

    assert settled.status == 200
    assert settled.body["status"] == "SUCCEEDED" and settled.body["output"] == {"order": "PO-7"}
    assert (settled.body["resolved_by"], settled.body["outcome_unknown"]) == ("ana", False)
    again = wiring.checkpoint_store().claim(key, step_type="tool", lease_seconds=60, at_most_once=True, delivery=0)
    assert again == AlreadyRecorded(output={"order": "PO-7"})  # the resumed run never calls it
    twice = api.call("POST", f"/runs/{run_id}/resolve", body=body)
    assert (twice.status, twice.body["error"]["code"]) == (409, "outcome_known")


def test_an_operator_may_authorise_one_more_call_of_an_unknown_outcome(api: ApiEnvironment) -> None:
    run_id = api.start().body["run_id"]
    key = unknown_outcome(run_id, "place_order")

    settled = api.call("POST", f"/runs/{run_id}/resolve", body={"step": "place_order", "action": "retry"})

    assert (settled.status, settled.body["status"], settled.body["resolved_by"]) == (200, "FAILED", "ana")
    retry = wiring.checkpoint_store().claim(key, step_type="tool", lease_seconds=60, at_most_once=True, delivery=0)
    assert isinstance(retry, Claimed) and retry.attempt == 2
    nothing = api.call("POST", f"/runs/{run_id}/resolve", body={"step": "extract", "action": "retry"})
    assert (nothing.status, nothing.body["error"]["field"]) == (409, "step")


def test_the_forks_of_a_run_are_listed_by_lineage(api: ApiEnvironment) -> None:
    parent = failed_run(api)
    other = failed_run(api)
    forks = [api.call("POST", f"/runs/{parent}/fork", body={"step": "study"}).body["run_id"] for _ in range(2)]
    api.call("POST", f"/runs/{other}/fork", body={"step": "study"})

    listed = api.call("GET", f"/runs?forked_from={parent}").body["runs"]

    assert sorted(run["run_id"] for run in listed) == sorted(forks)
    assert all(run["forked_from"] == {"run_id": parent, "step": "study"} for run in listed)
    assert api.call("GET", "/runs?forked_from=nope").status == 400


def test_corrected_inputs_go_with_the_resumed_execution_and_only_for_steps_not_completed(api: ApiEnvironment) -> None:
    run_id = failed_run(api)  # extract completed; study failed
    fixed = {"text": "Revenue grew."}

    completed = api.call("POST", f"/runs/{run_id}/resume", body={"inputs": {"extract": {"document": {}}}})
    resumed = api.call("POST", f"/runs/{run_id}/resume", body={"inputs": {"study.summary/summarise": fixed}})

    assert (completed.status, completed.body["error"]["field"]) == (400, "inputs.extract")
    assert resumed.status == 200
    started = execution_input(api, f"{run_id}-1")
    assert started["run"]["inputs"] == {"study.summary/summarise": fixed}
