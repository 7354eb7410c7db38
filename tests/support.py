"""Helpers several tiers share (no tests of its own): where the repository is, waiting for something
to be there, what an execution's history tells about its Lambda invocations, the `sutram` command run
in this process, and the base64url JSON and signed JWTs
that ID tokens and cursors are made of."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

import boto3
import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey

from cli import main as cli

REPO = Path(__file__).resolve().parent.parent
T = TypeVar("T")


# --- waiting ---------------------------------------------------------------------------------------


def wait_for(probe: Callable[[], T | None], *, timeout: float, interval: float, failure: str) -> T:
    """What `probe` returns once it returns something other than None, asked every `interval`
    seconds; fails with `failure` once `timeout` seconds have passed."""
    deadline = time.monotonic() + timeout
    while (value := probe()) is None:
        assert time.monotonic() < deadline, failure
        time.sleep(interval)
    return value


# --- execution histories ---------------------------------------------------------------------------


def execution_history(execution_arn: str) -> list[dict[str, Any]]:
    """The events of a Step Functions execution, oldest first."""
    sfn = boto3.client("stepfunctions")
    return list(sfn.get_execution_history(executionArn=execution_arn, maxResults=1000)["events"])


def lambda_invocations(history: list[dict[str, Any]], state: str) -> int:
    """How many times Step Functions invoked the Lambda function of `state` (retries included).

    The branches of a Parallel state interleave their events, so an invocation belongs to the state
    its chain of `previousEventId` leads back to, not to the state entered last."""
    by_id = {event["id"]: event for event in history}

    def entered(event: dict[str, Any] | None) -> str | None:
        while event is not None and not event["type"].endswith("StateEntered"):
            event = by_id.get(event.get("previousEventId"))
        return None if event is None else str(event["stateEnteredEventDetails"]["name"])

    return sum(1 for event in history if event["type"] == "LambdaFunctionScheduled" and entered(event) == state)


def lambda_failures(history: list[dict[str, Any]]) -> list[str]:
    """The error of each failed Lambda invocation, in order."""
    return [
        event["lambdaFunctionFailedEventDetails"]["error"]
        for event in history
        if event["type"] == "LambdaFunctionFailed"
    ]


# --- the `sutram` command --------------------------------------------------------------------------


def without_user_configuration(monkeypatch: pytest.MonkeyPatch, *, home: Path, cwd: Path) -> None:
    """No ~/.sutram/config.json, .sutram/local.json or SUTRAM_* variable of the developer's leaks in."""
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(cwd)
    for name in ("SUTRAM_API_URL", "SUTRAM_TOKEN"):
        monkeypatch.delenv(name, raising=False)


def run_cli(capsys: pytest.CaptureFixture[str], api_url: str, token: str, *args: str) -> tuple[int, str, str]:
    """`sutram ARGS --api API_URL --token TOKEN` in this process: its exit code, stdout and stderr."""
    capsys.readouterr()
    code = cli.main([*args, "--api", api_url, "--token", token])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# --- base64url JSON and JWTs -----------------------------------------------------------------------


def b64url_json(value: Any) -> str:
    """`value` as unpadded base64url JSON, as a JWT part or a cursor carries it."""
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


def from_b64url_json(text: str) -> Any:
    """The JSON value of unpadded base64url text."""
    return json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))


def jwt_parts(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The header and the claims of a JWT, unverified."""
    header, payload, _ = token.split(".")
    return from_b64url_json(header), from_b64url_json(payload)


@cache
def foreign_key() -> RSAKey:
    """An RSA key that no user pool signs with."""
    return RSAKey.generate_key(2048, parameters={"kid": "dummy"})


def signed_token(claims: dict[str, Any], *, kid: str, key: RSAKey | None = None) -> str:
    """`claims` as an RS256 JWT whose header names key `kid`, signed with `key` (by default one no
    user pool knows)."""
    return jwt.encode({"alg": "RS256", "kid": kid}, claims, key or foreign_key())
