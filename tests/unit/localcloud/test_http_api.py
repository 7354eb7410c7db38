"""localcloud.http_api, the local HTTP adapter: API Gateway proxy events from HTTP requests, and the
Cognito authorizer's checks on real ID tokens issued by moto's Cognito; and localcloud.lambda_context."""

from __future__ import annotations

import gzip
import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from typing import Any

import boto3
import pytest
from joserfc.jwk import RSAKey
from moto import mock_aws

from localcloud.http_api import CognitoIdTokenVerifier
from localcloud.lambda_context import LocalLambdaContext
from sutram.handlers.api import handler as api_handler
from tests.support import signed_token
from tests.unit.support.api import VALID_INPUT, WORKFLOW, api_environment, claims_for
from tests.unit.support.aws import use_shared_boto3_session
from tests.unit.support.http import serving

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")

UNAUTHORIZED = {"message": "Unauthorized"}


@dataclass
class UserPool:
    pool_id: str
    client_id: str
    id_token: str
    access_token: str
    other_client_token: str


def _moto_signing_key() -> RSAKey:
    compressed = resources.files("moto") / "cognitoidp" / "resources" / "jwks-private.json.gz"
    return RSAKey.import_key(json.loads(gzip.decompress(compressed.read_bytes())))


def _login(cognito: Any, client_id: str) -> dict[str, str]:
    response = cognito.initiate_auth(
        ClientId=client_id,
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": "ana", "PASSWORD": "Correct-horse-1"},
    )
    return dict(response["AuthenticationResult"])


@pytest.fixture
def user_pool(monkeypatch: pytest.MonkeyPatch) -> Iterator[UserPool]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        use_shared_boto3_session()
        cognito = boto3.client("cognito-idp", region_name="us-east-1")
        pool_id = cognito.create_user_pool(
            PoolName="sutram", Schema=[{"Name": "tenant", "AttributeDataType": "String", "Mutable": False}]
        )["UserPool"]["Id"]
        client_ids = [
            cognito.create_user_pool_client(
                UserPoolId=pool_id, ClientName=name, ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH"]
            )["UserPoolClient"]["ClientId"]
            for name in ("cli", "another-app")
        ]
        cognito.admin_create_user(
            UserPoolId=pool_id,
            Username="ana",
            MessageAction="SUPPRESS",
            UserAttributes=[{"Name": "custom:tenant", "Value": "acme"}],
        )
        cognito.admin_set_user_password(UserPoolId=pool_id, Username="ana", Password="Correct-horse-1", Permanent=True)
        for group in ("operators", "admins"):
            cognito.create_group(UserPoolId=pool_id, GroupName=group)
            cognito.admin_add_user_to_group(UserPoolId=pool_id, Username="ana", GroupName=group)
        tokens = _login(cognito, client_ids[0])
        yield UserPool(
            pool_id, client_ids[0], tokens["IdToken"], tokens["AccessToken"], _login(cognito, client_ids[1])["IdToken"]
        )


class RecordingHandler:
    """A Lambda handler that answers with the event it received."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        self.events.append(event)
        return {
            "statusCode": 200,
            "multiValueHeaders": {"Content-Type": ["application/json"], "X-Request-Id": [context.aws_request_id]},
            "body": json.dumps({"ok": True}),
            "isBase64Encoded": False,
        }


def _request(url: str, *, token: str | None = None, method: str = "GET", body: bytes | None = None) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json", **({"Authorization": token} if token else {})}
    request = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.fixture
def recording(user_pool: UserPool) -> Iterator[tuple[RecordingHandler, str]]:
    handler = RecordingHandler()
    verifier = CognitoIdTokenVerifier.for_moto(user_pool_id=user_pool.pool_id, client_ids=[user_pool.client_id])
    with serving(handler, verifier) as base_url:
        yield handler, base_url


def test_a_valid_id_token_reaches_the_handler_with_its_claims_in_a_rest_proxy_event(
    user_pool: UserPool, recording: tuple[RecordingHandler, str]
) -> None:
    handler, base_url = recording

    status, body = _request(
        f"{base_url}/workflows/{WORKFLOW}/runs?a=1&a=2&b=", token=user_pool.id_token, method="POST", body=b'{"x": 1}'
    )

    assert (status, body) == (200, {"ok": True})
    (event,) = handler.events
    claims = event["requestContext"]["authorizer"]["claims"]
    assert claims["custom:tenant"] == "acme"
    assert claims["cognito:username"] == "ana"
    assert sorted(claims["cognito:groups"].split(",")) == ["admins", "operators"]
    assert claims["token_use"] == "id"
    assert claims["aud"] == user_pool.client_id
    assert all(isinstance(value, str) for value in claims.values())
    assert event["resource"] == "/{proxy+}"
    assert event["path"] == f"/workflows/{WORKFLOW}/runs"
    assert event["pathParameters"] == {"proxy": f"workflows/{WORKFLOW}/runs"}
    assert event["httpMethod"] == "POST"
    assert event["queryStringParameters"] == {"a": "2", "b": ""}
    assert event["multiValueQueryStringParameters"] == {"a": ["1", "2"], "b": [""]}
    assert event["headers"]["Authorization"] == user_pool.id_token
    assert event["multiValueHeaders"]["Content-Type"] == ["application/json"]
    assert (event["body"], event["isBase64Encoded"]) == ('{"x": 1}', False)
    assert event["requestContext"]["stage"] == "v1"
    assert event["requestContext"]["path"] == f"/v1/workflows/{WORKFLOW}/runs"
    assert event["requestContext"]["identity"]["sourceIp"] == "127.0.0.1"
    assert event["requestContext"]["requestId"]


def _signed_like_moto(claims: dict[str, Any]) -> str:
    return signed_token(claims, kid="dummy", key=_moto_signing_key())


def _claims_of(user_pool: UserPool, **changes: Any) -> dict[str, Any]:
    """The claims of ana's ID token from the pool's client, as moto's Cognito issues them."""
    now = int(time.time())
    issued = {
        "iss": f"https://cognito-idp.us-east-1.amazonaws.com/{user_pool.pool_id}",
        "aud": user_pool.client_id,
        "iat": now,
        "exp": now + 3600,
    }
    return claims_for("acme") | issued | changes


def _forged(user_pool: UserPool) -> str:
    return signed_token(_claims_of(user_pool, **{"custom:tenant": "globex"}), kid="dummy")


@pytest.mark.parametrize(
    "token_of",
    [
        pytest.param(lambda pool: None, id="missing"),
        pytest.param(lambda pool: "not-a-jwt", id="garbage"),
        pytest.param(_forged, id="forged-signature"),
        pytest.param(lambda pool: _signed_like_moto(_claims_of(pool, exp=int(time.time()) - 10)), id="expired"),
        pytest.param(lambda pool: _signed_like_moto(_claims_of(pool, iss="https://elsewhere/pool")), id="other-issuer"),
        pytest.param(lambda pool: pool.access_token, id="access-token"),
        pytest.param(lambda pool: pool.other_client_token, id="other-app-client"),
        pytest.param(lambda pool: pool.id_token[:-4] + "AAAA", id="tampered"),
    ],
)
def test_an_unusable_token_gets_401_without_calling_the_handler(
    user_pool: UserPool, recording: tuple[RecordingHandler, str], token_of: Any
) -> None:
    handler, base_url = recording

    status, body = _request(f"{base_url}/runs", token=token_of(user_pool))

    assert (status, body) == (401, UNAUTHORIZED)
    assert handler.events == []


def test_a_token_signed_with_moto_key_and_valid_claims_is_accepted(
    user_pool: UserPool, recording: tuple[RecordingHandler, str]
) -> None:
    handler, base_url = recording

    assert _request(f"{base_url}/runs", token=_signed_like_moto(_claims_of(user_pool)))[0] == 200
    assert handler.events[0]["requestContext"]["authorizer"]["claims"]["custom:tenant"] == "acme"


def test_a_path_outside_the_stage_gets_403(recording: tuple[RecordingHandler, str], user_pool: UserPool) -> None:
    handler, base_url = recording

    status, body = _request(base_url.removesuffix("/v1") + "/runs", token=user_pool.id_token)

    assert (status, body) == (403, {"message": "Missing Authentication Token"})
    assert handler.events == []


def test_the_real_api_handler_served_locally_starts_and_reads_a_run(
    monkeypatch: pytest.MonkeyPatch, user_pool: UserPool
) -> None:
    with api_environment(monkeypatch):
        verifier = CognitoIdTokenVerifier.for_moto(user_pool_id=user_pool.pool_id, client_ids=[user_pool.client_id])
        with serving(api_handler, verifier) as base_url:
            status, run = _request(
                f"{base_url}/workflows/{WORKFLOW}/runs",
                token=user_pool.id_token,
                method="POST",
                body=json.dumps({"input": VALID_INPUT}).encode(),
            )
            read_status, read = _request(f"{base_url}/runs/{run['run_id']}", token=user_pool.id_token)

    assert status == 201
    assert read_status == 200
    assert read["input"] == VALID_INPUT


def test_the_lambda_context_stand_in_has_what_powertools_reads() -> None:
    context = LocalLambdaContext(function_name="sutram-api", timeout_seconds=3)

    assert context.invoked_function_arn == "arn:aws:lambda:us-east-1:123456789012:function:sutram-api"
    assert context.memory_limit_in_mb == 512
    assert context.aws_request_id
    assert 0 < context.get_remaining_time_in_millis() <= 3000
