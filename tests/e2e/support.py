"""End-to-end helpers: a client of the local API over real HTTP, and the operator's view of the
local cloud (what a client cannot see)."""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

import boto3
import requests

from localcloud import session as local
from tests.support import execution_history, lambda_failures, lambda_invocations, wait_for

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

        def ended() -> dict[str, Any] | None:
            response = self.get(f"/runs/{run_id}", user=user)
            assert response.status_code == 200, response.text
            run: dict[str, Any] = response.json()
            return None if run["status"] == "RUNNING" else run

        return wait_for(
            ended, timeout=timeout, interval=POLL_SECONDS, failure=f"run {run_id} still RUNNING after {timeout}s"
        )

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
        return execution_history(execution["executionArn"])

    def lambda_invocations(self, run_id: str, state: str) -> int:
        """How many times Step Functions invoked the Lambda function of `state` (retries included)."""
        return lambda_invocations(self.history(run_id), state)

    def lambda_failures(self, run_id: str) -> list[str]:
        return lambda_failures(self.history(run_id))
