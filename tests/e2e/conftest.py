"""End-to-end tier: a complete local Sutram per test module, driven only the way a client drives it.

    the session's synthesized template ─> LocalCloud (moto: DynamoDB, S3, Step Functions, Lambda, Cognito)
    demo users ada (tenant acme) and grace (tenant globex) ─> real ID tokens from moto's Cognito
    the API handler ─> served over HTTP on 127.0.0.1 behind a Cognito-authorizer look-alike

Tests talk to it with `requests` (and the `sutram` command); they look inside the cloud only to
check what a client cannot see: Step Functions executions and their histories, model calls.
"""

from __future__ import annotations

import json
import os
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests

from localcloud import session as local
from localcloud.observe import ModelCallCounter, count_model_calls
from sutram import wiring

RUN_TIMEOUT_SECONDS = 20.0
POLL_SECONDS = 0.02
HTTP_TIMEOUT_SECONDS = 10.0


class Api:
    """A client of the local API over real HTTP that remembers which runs it started, per user."""

    def __init__(self, session: local.LocalSession) -> None:
        self.url = session.api_url
        self.tokens = session.tokens
        self.started: dict[str, list[str]] = defaultdict(list)

    def request(
        self,
        method: str,
        path: str,
        *,
        user: str | None = "ada",
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> requests.Response:
        """`user=None` sends no token of a demo user (pass your own Authorization header, or none)."""
        auth = {"Authorization": self.tokens[user]} if user else {}
        return requests.request(
            method, self.url + path, headers={**auth, **(headers or {})}, timeout=HTTP_TIMEOUT_SECONDS, **kwargs
        )

    def get(self, path: str, *, user: str | None = "ada", **params: Any) -> requests.Response:
        return self.request("GET", path, user=user, params=params or None)

    def start(
        self,
        run_input: dict[str, Any],
        *,
        user: str = "ada",
        workflow: str = "document-analysis",
        idempotency_key: str | None = None,
    ) -> requests.Response:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key is not None else None
        response = self.request(
            "POST", f"/workflows/{workflow}/runs", user=user, json={"input": run_input}, headers=headers
        )
        if response.status_code == 201:
            self.started[user].append(response.json()["run_id"])
        return response

    def wait(self, run_id: str, *, user: str = "ada", timeout: float = RUN_TIMEOUT_SECONDS) -> dict[str, Any]:
        """Poll GET /runs/{id} until the run has ended; its final detail."""
        deadline = time.monotonic() + timeout
        while True:
            response = self.get(f"/runs/{run_id}", user=user)
            assert response.status_code == 200, response.text
            run: dict[str, Any] = response.json()
            if run["status"] != "RUNNING":
                return run
            assert time.monotonic() < deadline, f"run {run_id} still RUNNING after {timeout}s"
            time.sleep(POLL_SECONDS)

    def run_to_end(self, run_input: dict[str, Any], *, user: str = "ada", **kwargs: Any) -> dict[str, Any]:
        response = self.start(run_input, user=user, **kwargs)
        assert response.status_code == 201, response.text
        return self.wait(response.json()["run_id"], user=user)

    def settle(self) -> None:
        """Wait for every run this client started, so no execution outlives the cloud it runs in."""
        for user, run_ids in self.started.items():
            for run_id in run_ids:
                self.wait(run_id, user=user)


class CloudView:
    """What only the operator sees: Step Functions executions, their histories, Lambda invocations."""

    def __init__(self, session: local.LocalSession) -> None:
        self._cloud = session.cloud
        self._api_function = session.cloud.function_named("sutram.handlers.api.handler").name

    @property
    def api_invocations(self) -> int:
        """How many requests reached the API Lambda handler (the authorizer stops the rest)."""
        return self._cloud.invocations[self._api_function]

    @property
    def offload_threshold_bytes(self) -> int:
        return int(self._cloud.functions[self._api_function].environment["SUTRAM_OFFLOAD_THRESHOLD_BYTES"])

    def state_machine_arn(self, workflow: str) -> str:
        # The deployment's own map, as the API Lambda reads it (SUTRAM_STATE_MACHINES).
        environment = self._cloud.functions[self._api_function].environment
        return str(json.loads(environment["SUTRAM_STATE_MACHINES"])[workflow])

    def executions(self, workflow: str = "document-analysis") -> list[dict[str, Any]]:
        paginator = boto3.client("stepfunctions").get_paginator("list_executions")
        return [
            execution
            for page in paginator.paginate(stateMachineArn=self.state_machine_arn(workflow))
            for execution in page["executions"]
        ]

    def history(self, run_id: str, workflow: str = "document-analysis") -> list[dict[str, Any]]:
        (execution,) = [e for e in self.executions(workflow) if e["name"] == run_id]
        sfn = boto3.client("stepfunctions")
        return list(sfn.get_execution_history(executionArn=execution["executionArn"], maxResults=1000)["events"])

    def lambda_invocations(self, run_id: str, state: str) -> int:
        """How many times Step Functions invoked the Lambda function of `state` (retries included)."""
        invocations, current = 0, None
        for event in self.history(run_id):
            if event["type"].endswith("StateEntered"):
                current = event["stateEnteredEventDetails"]["name"]
            elif event["type"] == "LambdaFunctionScheduled" and current == state:
                invocations += 1
        return invocations

    def lambda_failures(self, run_id: str) -> list[str]:
        return [
            event["lambdaFunctionFailedEventDetails"]["error"]
            for event in self.history(run_id)
            if event["type"] == "LambdaFunctionFailed"
        ]


@pytest.fixture(scope="module")
def sutram(template: dict[str, Any], workflows_dir: Path) -> Iterator[local.LocalSession]:
    """A local Sutram for this module, from the template the test session synthesized once."""
    environment_before = dict(os.environ)
    session = local.start(template=template, workflows_dir=workflows_dir)
    try:
        yield session
    finally:
        session.stop()
        # The local cloud configures this process like a Lambda sandbox; leave it as it was found.
        os.environ.clear()
        os.environ.update(environment_before)
        wiring.reset()


@pytest.fixture(scope="module")
def api(sutram: local.LocalSession) -> Iterator[Api]:
    client = Api(sutram)
    yield client
    client.settle()


@pytest.fixture(scope="module")
def cloud(sutram: local.LocalSession) -> CloudView:
    return CloudView(sutram)


@pytest.fixture(autouse=True)
def fresh_step_runtime() -> Iterator[None]:
    """Each test gets the step runtime as deployed: no fault or counter of another test survives."""
    wiring.reset()
    yield
    wiring.reset()


@pytest.fixture
def model_calls(fresh_step_runtime: None) -> ModelCallCounter:
    """Counts the model calls the step Lambdas make, by the first line of each prompt."""
    return count_model_calls()


@pytest.fixture
def inject_faults(fresh_step_runtime: None, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Like deploying with SUTRAM_FAULTS=spec: crash a step at a named point on its first attempt."""

    def inject(spec: str) -> None:
        monkeypatch.setattr(wiring.step_runtime(), "faults", spec)

    return inject
