"""The API Lambda handler called with API Gateway REST proxy events, against moto resources shaped
like the stack's: a workflow's state machine published as version 1 behind its `live` alias."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest

from localcloud.lambda_context import LocalLambdaContext
from localcloud.moto_patches import start_executions_on_versions
from sutram import wiring
from tests.unit.support.aws import aws_resources

WORKFLOW = "document-analysis"
TRIVIAL_ASL = {"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}
VALID_INPUT = {"document": {"title": "Q3 report", "content": "Revenue grew in Lisbon."}}


@dataclass
class ApiResult:
    status: int
    body: Any
    headers: dict[str, Any]
    text: str | None = None  # the body as sent


def claims_for(tenant: str | None, user: str = "ana", groups: str | None = None) -> dict[str, str]:
    """The ID token claims the Cognito authorizer hands the API: `tenant` None leaves out custom:tenant."""
    claims = {"cognito:username": user, "sub": f"sub-{user}", "token_use": "id"}
    if tenant is not None:
        claims["custom:tenant"] = tenant
    if groups:
        claims["cognito:groups"] = groups
    return claims


def api_event(
    method: str,
    path: str,
    *,
    claims: dict[str, str] | None,
    body: Any = None,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """`body`: a value sent as JSON, a str sent as is, or bytes sent base64-encoded (as API Gateway
    hands on a binary body)."""
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
        "body": base64.b64encode(body).decode()
        if isinstance(body, bytes)
        else json.dumps(body)
        if body is not None and not isinstance(body, str)
        else body,
        "isBase64Encoded": isinstance(body, bytes),
    }


def call_api(
    method: str, path: str, *, claims: dict[str, str] | None, body: Any = None, headers: dict[str, str] | None = None
) -> ApiResult:
    """The API handler's answer to a request of a caller with `claims` (None: not signed in)."""
    from sutram.handlers.api import handler

    event = api_event(method, path, claims=claims, body=body, headers=headers)
    response = handler(event, LocalLambdaContext(function_name="sutram-api"))
    text = response["body"]
    headers_out = {**response.get("headers", {}), **response.get("multiValueHeaders", {})}
    return ApiResult(response["statusCode"], json.loads(text) if text else None, headers_out, text)


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
        return call_api(method, path, claims=claims_for(tenant), body=body, headers=headers)

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


def run_item(api: ApiEnvironment, run_id: str) -> dict[str, Any]:
    """The table item of acme's run `run_id`."""
    return dict(api.table.get_item(Key={"pk": f"TENANT#acme#RUN#{run_id}", "sk": "RUN"})["Item"])


@contextmanager
def api_environment(
    monkeypatch: pytest.MonkeyPatch, *, offload_threshold_bytes: int = 8192
) -> Iterator[ApiEnvironment]:
    """aws_resources, and the workflow's state machine published as version 1 behind its `live` alias."""
    with aws_resources(monkeypatch, offload_threshold_bytes=offload_threshold_bytes) as name:
        stepfunctions = boto3.client("stepfunctions")
        start_executions_on_versions()
        created = stepfunctions.create_state_machine(
            name=f"sutram-{WORKFLOW}-{uuid.uuid4().hex[:8]}",
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
        yield ApiEnvironment(arn, alias_arn, boto3.resource("dynamodb").Table(name), boto3.client("s3"), stepfunctions)
