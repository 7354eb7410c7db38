"""The link-signing keys: read from Secrets Manager at run time, cached for a bounded time, and
rotated by the rotate handler so that a link signed before a rotation still verifies after it."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws

from localcloud.moto_patches import ACCOUNT, REGION, install_invoke_seam
from sutram.approvals.links import InvalidLink, LinkClaims, sign, verify
from sutram.handlers.rotate import rotate
from sutram.store.signing_keys import SigningKeys

NOW = datetime(2026, 12, 2, tzinfo=UTC)
CLAIMS = LinkClaims(
    approval_id="ap-1", tenant="acme", outcome="approve", approver="finance", expires_at=2_000_000_000, nonce="n"
)


@pytest.fixture
def secret(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, str]]:
    """The secret as the stack creates it, with the rotate handler as its rotation function: moto's
    RotateSecret drives the protocol, invoking the handler for each step."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws(config={"lambda": {"use_docker": False}}):
        client = boto3.client("secretsmanager")
        role = boto3.client("iam").create_role(RoleName="rotate", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        boto3.client("lambda").create_function(
            FunctionName="rotate", Runtime="python3.13", Role=role, Handler="sutram.handlers.rotate.handler",
            Code={"ZipFile": b"PK\x05\x06" + b"\x00" * 18},
        )  # fmt: skip
        install_invoke_seam(
            lambda _, event: (rotate(client, event["SecretId"], event["ClientRequestToken"], event["Step"]), None)
        )
        arn = client.create_secret(Name="links", SecretString=json.dumps({"key": "first-key"}))["ARN"]
        yield client, arn


def rotate_fully(client: Any, arn: str) -> None:
    """A rotation, as Secrets Manager runs it on its schedule."""
    function = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:rotate"
    client.rotate_secret(SecretId=arn, RotationLambdaARN=function, RotationRules={"AutomaticallyAfterDays": 30})


def test_links_are_signed_with_the_current_key_and_verified_under_it(secret: tuple[Any, str]) -> None:
    client, arn = secret
    keys = SigningKeys(client, arn)
    assert keys.current() == "first-key" and keys.accepted() == ("first-key",)
    assert verify(sign(CLAIMS, keys.current()), keys.accepted(), NOW) == CLAIMS


def test_after_a_rotation_a_link_signed_before_it_still_verifies_and_new_links_use_the_new_key(
    secret: tuple[Any, str],
) -> None:
    client, arn = secret
    before = sign(CLAIMS, SigningKeys(client, arn).current())

    rotate_fully(client, arn)
    keys = SigningKeys(client, arn)  # a sandbox started after the rotation (or one whose cache expired)

    assert keys.current() not in ("first-key", "pending") and len(keys.current()) >= 48
    assert keys.accepted() == (keys.current(), "first-key")
    assert verify(before, keys.accepted(), NOW) == CLAIMS
    rotate_fully(client, arn)  # two rotations later, the first key is gone
    with pytest.raises(InvalidLink):
        verify(before, SigningKeys(client, arn).accepted(), NOW)


def test_a_warm_sandbox_sees_a_rotation_once_its_cached_keys_are_older_than_max_age(
    secret: tuple[Any, str],
) -> None:
    client, arn = secret
    cached, uncached = SigningKeys(client, arn), SigningKeys(client, arn, max_age=0)
    assert cached.current() == uncached.current() == "first-key"

    rotate_fully(client, arn)

    assert cached.current() == "first-key"  # within KEY_CACHE_SECONDS
    assert uncached.current() != "first-key"


def test_a_retried_rotation_step_changes_nothing_and_an_unknown_version_is_refused(secret: tuple[Any, str]) -> None:
    client, arn = secret
    rotate_fully(client, arn)
    current = client.describe_secret(SecretId=arn)["VersionIdsToStages"]
    version = next(v for v, stages in current.items() if "AWSCURRENT" in stages)
    value = client.get_secret_value(SecretId=arn)["SecretString"]

    for step in ("createSecret", "finishSecret"):  # Secrets Manager retries a step that timed out
        rotate(client, arn, version, step)

    assert client.get_secret_value(SecretId=arn)["SecretString"] == value
    with pytest.raises(ValueError, match="is not being rotated"):
        rotate(client, arn, uuid.uuid4().hex, "createSecret")


def test_a_secret_without_a_key_is_an_error_that_names_it(secret: tuple[Any, str]) -> None:
    client, _ = secret
    arn = client.create_secret(Name="empty", SecretString="{}")["ARN"]
    with pytest.raises(ValueError, match="holds no key"):
        SigningKeys(client, arn).current()


def test_expiry_still_applies_whatever_the_key(secret: tuple[Any, str]) -> None:
    client, arn = secret
    keys = SigningKeys(client, arn)
    claims = CLAIMS.model_copy(update={"expires_at": int((NOW + timedelta(hours=1)).timestamp())})
    with pytest.raises(InvalidLink, match="expired"):
        verify(sign(claims, keys.current()), keys.accepted(), NOW + timedelta(hours=2))
