"""Shared set-up for the API, runs and CLI tests: moto resources shaped like the stack's, and a
way to call the API handler with API Gateway REST proxy events. (No tests of its own.)"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
from moto import mock_aws

from localcloud.lambda_context import LocalLambdaContext
from localcloud.moto_patches import start_executions_on_versions
from sutram import wiring

REPO = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
WORKFLOW = "document-analysis"
TRIVIAL_ASL = {"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}
VALID_INPUT = {"document": {"title": "Q3 report", "content": "Revenue grew in Lisbon."}}
# mock_aws gives every test a fresh default boto3 session, which reloads each service model (~50 ms
# a client); one session shared across tests keeps the loaded models.
_SHARED_SESSION = boto3.Session()


def use_shared_boto3_session() -> None:
    """Call inside mock_aws, which restores its own default session when it stops."""
    boto3.DEFAULT_SESSION = _SHARED_SESSION


def create_table(dynamodb: Any, name: str) -> None:
    """The single table as the stack declares it: pk/sk, and gsi1 (gsi1pk/gsi1sk, all attributes)."""
    dynamodb.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": name, "AttributeType": "S"} for name in ("pk", "sk", "gsi1pk", "gsi1sk")
        ],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "gsi1",
                "KeySchema": [
                    {"AttributeName": "gsi1pk", "KeyType": "HASH"},
                    {"AttributeName": "gsi1sk", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
    )


@dataclass
class ApiResult:
    status: int
    body: Any
    headers: dict[str, Any]


def api_event(
    method: str,
    path: str,
    *,
    claims: dict[str, str] | None,
    body: Any = None,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    url = urlsplit(path)
    query = parse_qs(url.query, keep_blank_values=True) or None
    all_headers = {"Content-Type": "application/json", **(headers or {})}
    context: dict[str, Any] = {"stage": "v1", "requestId": "test-request", "identity": {"sourceIp": "127.0.0.1"}}
    if claims is not None:
        context["authorizer"] = {"claims": claims}
    return {
        "resource": "/{proxy+}",
        "path": url.path,
        "httpMethod": method,
        "headers": all_headers,
        "multiValueHeaders": {name: [value] for name, value in all_headers.items()},
        "queryStringParameters": {name: values[-1] for name, values in query.items()} if query else None,
        "multiValueQueryStringParameters": query,
        "pathParameters": {"proxy": url.path.lstrip("/")},
        "requestContext": context,
        "body": json.dumps(body) if body is not None and not isinstance(body, str) else body,
        "isBase64Encoded": False,
    }


def claims_for(tenant: str | None, user: str = "ana") -> dict[str, str]:
    claims = {"cognito:username": user, "sub": f"sub-{user}", "token_use": "id"}
    return claims if tenant is None else {**claims, "custom:tenant": tenant}


@dataclass
class ApiEnvironment:
    state_machine_arn: str  # published as version 1, which the alias `live` routes to
    alias_arn: str
    table: Any
    s3: Any
    stepfunctions: Any

    def call(
        self,
        method: str,
        path: str,
        *,
        tenant: str | None = "acme",
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> ApiResult:
        from sutram.handlers.api import handler

        event = api_event(method, path, claims=claims_for(tenant), body=body, headers=headers)
        response = handler(event, LocalLambdaContext(function_name="sutram-api"))
        headers_out = {**response.get("headers", {}), **response.get("multiValueHeaders", {})}
        return ApiResult(
            response["statusCode"], json.loads(response["body"]) if response["body"] else None, headers_out
        )

    def start(
        self, tenant: str = "acme", run_input: Any = None, key: str | None = None, version: int | None = None
    ) -> ApiResult:
        return self.call(
            "POST",
            f"/workflows/{WORKFLOW}/runs",
            tenant=tenant,
            body={"input": run_input or VALID_INPUT} | ({"version": version} if version is not None else {}),
            headers={"Idempotency-Key": key} if key else None,
        )

    def publish(self, asl: dict[str, Any]) -> str:
        """Deploy a changed definition: a new version, which the alias then routes to. Its ARN."""
        arn: str = self.stepfunctions.update_state_machine(
            stateMachineArn=self.state_machine_arn, definition=json.dumps(asl), publish=True
        )["stateMachineVersionArn"]
        self.stepfunctions.update_state_machine_alias(
            stateMachineAliasArn=self.alias_arn, routingConfiguration=[{"stateMachineVersionArn": arn, "weight": 100}]
        )
        return arn

    def finish(self, run_id: str, tenant: str = "acme", **outcome: Any) -> dict[str, Any]:
        from sutram.handlers.finish import handler

        event = {"run": {"tenant": tenant, "run_id": run_id, "workflow": WORKFLOW}, **outcome}
        result: dict[str, Any] = handler(event, LocalLambdaContext(function_name="sutram-finish"))
        return result

    def executions(self) -> list[dict[str, Any]]:
        return list(self.stepfunctions.list_executions(stateMachineArn=self.state_machine_arn)["executions"])


@contextmanager
def api_environment(
    monkeypatch: pytest.MonkeyPatch, *, offload_threshold_bytes: int = 8192
) -> Iterator[ApiEnvironment]:
    # Unique names: this mock may nest inside the session's local cloud, which shares moto's state.
    suffix = uuid.uuid4().hex[:8]
    table_name, bucket_name = f"sutram-test-{suffix}", f"sutram-test-{suffix}"
    for name, value in {
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "SUTRAM_TABLE": table_name,
        "SUTRAM_BUCKET": bucket_name,
        "SUTRAM_OFFLOAD_THRESHOLD_BYTES": str(offload_threshold_bytes),
        "SUTRAM_WORKFLOWS_DIR": str(REPO / "workflows"),
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_SERVICE_NAME": "sutram-test",
        "POWERTOOLS_METRICS_NAMESPACE": "SutramTest",
        "POWERTOOLS_METRICS_DISABLED": "true",
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        use_shared_boto3_session()
        create_table(boto3.client("dynamodb"), table_name)
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=bucket_name)
        stepfunctions = boto3.client("stepfunctions")
        start_executions_on_versions()
        created = stepfunctions.create_state_machine(
            name=f"sutram-{WORKFLOW}-{suffix}",
            definition=json.dumps(TRIVIAL_ASL),
            roleArn="arn:aws:iam::123456789012:role/sutram-workflows",
            publish=True,
        )
        arn = created["stateMachineArn"]
        alias_arn = stepfunctions.create_state_machine_alias(
            name="live",
            routingConfiguration=[{"stateMachineVersionArn": created["stateMachineVersionArn"], "weight": 100}],
        )["stateMachineAliasArn"]
        monkeypatch.setenv("SUTRAM_STATE_MACHINES", json.dumps({WORKFLOW: arn}))
        monkeypatch.setenv("SUTRAM_WORKFLOW_ALIASES", json.dumps({WORKFLOW: alias_arn}))
        wiring.reset()
        try:
            yield ApiEnvironment(arn, alias_arn, boto3.resource("dynamodb").Table(table_name), s3, stepfunctions)
        finally:
            wiring.reset()
