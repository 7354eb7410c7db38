"""Runs start on a published workflow version: the one the `live` alias routes to, or one the caller
names. The run records it, and reading the run shows it."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from sutram import wiring
from sutram.api.app import app
from sutram.runs import routes as runs_routes
from tests.unit.support.api import TRIVIAL_ASL, ApiEnvironment
from tests.unit.support.api import run_item as _run_item

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")

CHANGED_ASL = {"StartAt": "Changed", "States": {"Changed": {"Type": "Succeed"}}}


class RecordingStepFunctions:
    """The real client, noting the ARN each StartExecution names."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.started: list[str] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def start_execution(self, **request: Any) -> Any:
        self.started.append(request["stateMachineArn"])
        return self._client.start_execution(**request)


@pytest.fixture
def started(api: ApiEnvironment, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    recorder = RecordingStepFunctions(api.stepfunctions)
    real_backend = wiring.runs_backend
    monkeypatch.setitem(
        app.dependency_overrides, runs_routes.backend, lambda: dataclasses.replace(real_backend(), executions=recorder)
    )
    return recorder.started


def test_a_run_starts_on_the_version_the_alias_routes_to_and_records_it(
    api: ApiEnvironment, started: list[str]
) -> None:
    first = api.start()
    version_2 = api.publish(CHANGED_ASL)
    second = api.start()

    assert (first.status, second.status) == (201, 201)
    assert started == [f"{api.state_machine_arn}:1", version_2]
    assert (first.body["version"], second.body["version"]) == (1, 2)
    assert _run_item(api, first.body["run_id"])["version"] == 1
    shown = api.call("GET", f"/runs/{second.body['run_id']}")
    assert (shown.status, shown.body["version"]) == (200, 2)


def test_a_named_version_runs_even_after_a_newer_one_is_live(api: ApiEnvironment, started: list[str]) -> None:
    api.publish(CHANGED_ASL)

    result = api.start(version=1)

    assert result.status == 201
    assert started == [f"{api.state_machine_arn}:1"]
    assert result.body["version"] == 1
    assert api.call("GET", f"/runs/{result.body['run_id']}").body["version"] == 1
    assert [run["version"] for run in api.call("GET", "/runs").body["runs"]] == [1]


def test_an_unpublished_version_answers_404_and_leaves_no_run(api: ApiEnvironment) -> None:
    result = api.start(version=7, key="k-7")

    assert result.status == 404
    assert result.body == {
        "error": {
            "code": "version_not_found",
            "message": "workflow 'document-analysis' has no version 7",
            "field": "version",
        }
    }
    assert api.table.scan()["Items"] == []
    assert api.executions() == []


@pytest.mark.parametrize("version", [0, "two"])
def test_a_version_that_is_not_a_positive_integer_answers_400(api: ApiEnvironment, version: Any) -> None:
    result = api.call("POST", "/workflows/document-analysis/runs", body={"input": {}, "version": version})

    assert result.status == 400
    assert result.body["error"]["code"] == "invalid_request"
    assert result.body["error"]["field"] == "version"


def test_the_same_idempotency_key_with_another_version_answers_409(api: ApiEnvironment) -> None:
    api.publish(TRIVIAL_ASL)
    assert api.start(key="k", version=1).status == 201

    assert api.start(key="k", version=2).status == 409
    assert api.start(key="k", version=1).status == 200


def test_a_key_used_without_a_version_replays_after_a_deploy_on_the_version_it_started(
    api: ApiEnvironment, started: list[str]
) -> None:
    first = api.start(key="k")
    api.publish(CHANGED_ASL)

    replay = api.start(key="k")

    assert (replay.status, replay.body["version"]) == (200, 1)
    assert replay.body["run_id"] == first.body["run_id"]
    assert started == [f"{api.state_machine_arn}:1"]
