"""Serve a Lambda function over HTTP on this machine the way API Gateway (REST API, Lambda proxy
integration, Cognito user pools authorizer) does.

    HTTP request ──> stage prefix? ──> Authorization: <ID token> verified ──> proxy event ──> invoke
         <── HTTP response <── {statusCode, headers, multiValueHeaders, body, isBase64Encoded}

As in API Gateway, a missing or invalid token is answered 401 {"message": "Unauthorized"} without
invoking the function, and the verified claims reach it as strings under
`requestContext.authorizer.claims`. A function error or a malformed proxy response is answered 502
{"message": "Internal server error"}. Requests are served concurrently; the function's sandboxes
(LocalCloud.invoke) run one request each at a time.
"""

from __future__ import annotations

import base64
import gzip
import json
import threading
import time
import uuid
from collections.abc import Callable, Collection, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, urlsplit

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

#: Takes the Authorization header's value; returns the verified claims, or None to refuse.
Authenticator = Callable[[str], Mapping[str, Any] | None]
#: Invokes the function with a proxy event; returns (payload, function error or None).
Invoke = Callable[[dict[str, Any]], tuple[Any, str | None]]

PROXY_RESOURCE = "/{proxy+}"
_TIME_CLAIMS = ("exp", "iat")
_BINARY_TYPES = ("application/octet-stream", "image/", "audio/", "video/", "application/zip", "application/pdf")


class CognitoIdTokenVerifier:
    """Verifies a Cognito user pool ID token as API Gateway's Cognito authorizer does: signature
    against the pool's JWKS, issuer, expiry, `token_use == "id"` and an audience among the app clients."""

    def __init__(
        self,
        *,
        user_pool_id: str,
        client_ids: Collection[str],
        jwks: Mapping[str, Any],
        clock: Callable[[], int] | None = None,
    ) -> None:
        region = user_pool_id.split("_", 1)[0]
        self.issuer = f"https://cognito-idp.{region}.amazonaws.com/{user_pool_id}"
        self._keys = KeySet.import_key_set(dict(jwks))  # type: ignore[arg-type]
        self._claims = jwt.JWTClaimsRegistry(
            now=clock or (lambda: int(time.time())),
            iss={"essential": True, "value": self.issuer},
            aud={"essential": True, "values": list(client_ids)},
            exp={"essential": True},
            token_use={"essential": True, "value": "id"},
        )

    @classmethod
    def for_moto(cls, *, user_pool_id: str, client_ids: Collection[str]) -> CognitoIdTokenVerifier:
        """A verifier for tokens issued by moto's Cognito, which signs with one fixed, published key."""
        return cls(user_pool_id=user_pool_id, client_ids=client_ids, jwks=moto_jwks())

    def __call__(self, authorization: str) -> dict[str, Any] | None:
        token = authorization.removeprefix("Bearer ").strip()
        try:
            decoded = jwt.decode(token, self._keys, algorithms=["RS256"])
            self._claims.validate(decoded.claims)
        except (JoseError, ValueError):
            return None
        return dict(decoded.claims)


def moto_jwks() -> dict[str, Any]:
    """The public JWKS moto's Cognito signs tokens with (shipped gzipped in recent moto versions)."""
    folder = resources.files("moto") / "cognitoidp" / "resources"
    compressed = folder / "jwks-public.json.gz"
    if compressed.is_file():
        return dict(json.loads(gzip.decompress(compressed.read_bytes())))
    return dict(json.loads((folder / "jwks-public.json").read_text()))


def api_gateway_claims(claims: Mapping[str, Any]) -> dict[str, str]:
    """Claims as a REST API's Cognito authorizer hands them on: every value a string."""
    flattened: dict[str, str] = {}
    for name, value in claims.items():
        if name in _TIME_CLAIMS and isinstance(value, int | float):
            flattened[name] = time.strftime("%a %b %d %H:%M:%S UTC %Y", time.gmtime(value))
        elif isinstance(value, list):
            flattened[name] = ",".join(str(item) for item in value)
        elif isinstance(value, bool):
            flattened[name] = str(value).lower()
        else:
            flattened[name] = str(value)
    return flattened


PUBLIC_PREFIX = "/callbacks/approvals/"


class LocalApiServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self,
        address: tuple[str, int],
        *,
        invoke: Invoke,
        authenticator: Authenticator | None,
        stage: str,
    ) -> None:
        super().__init__(address, _ProxyRequestHandler)
        self.invoke = invoke
        self.authenticator = authenticator
        self.stage = stage


def serve(
    invoke: Invoke,
    host: str = "127.0.0.1",
    port: int = 0,
    authenticator: Authenticator | None = None,
    *,
    stage: str = "v1",
) -> tuple[LocalApiServer, str]:
    """Serve the function `invoke` invokes, in a daemon thread; returns the server (call
    `shutdown()`) and the base URL, which ends with the stage like an API Gateway invoke URL. With no
    authenticator, requests reach the function without claims (an API without an authorizer)."""
    server = LocalApiServer((host, port), invoke=invoke, authenticator=authenticator, stage=stage)
    threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name=f"local-api-{server.server_port}", daemon=True
    ).start()
    return server, f"http://{host}:{server.server_port}/{stage}"


class _ProxyRequestHandler(BaseHTTPRequestHandler):
    server: LocalApiServer
    protocol_version = "HTTP/1.1"

    def __getattr__(self, name: str) -> Any:
        # API Gateway's proxy resource (ANY) hands every method to the function, which answers the
        # ones no route has with 405.
        if name.startswith("do_"):
            return self._proxy
        raise AttributeError(name)

    def log_message(self, format: str, *args: Any) -> None:  # quiet: the handler logs what matters
        del format, args

    def _proxy(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        url = urlsplit(self.path)
        stage_prefix = f"/{self.server.stage}"
        if url.path != stage_prefix and not url.path.startswith(stage_prefix + "/"):
            self._send(403, {"Content-Type": ["application/json"]}, b'{"message":"Missing Authentication Token"}')
            return
        claims = None
        path = url.path.removeprefix(stage_prefix) or "/"
        # As in API Gateway (infra/api.py): signed approval callback links skip the authorizer.
        if self.server.authenticator is not None and not path.startswith(PUBLIC_PREFIX):
            authorization = self.headers.get("Authorization")
            verified = self.server.authenticator(authorization) if authorization else None
            if verified is None:
                self._send(401, {"Content-Type": ["application/json"]}, b'{"message":"Unauthorized"}')
                return
            claims = api_gateway_claims(verified)
        result, error = self.server.invoke(self._proxy_event(path, url.query, body, claims))
        try:
            if error:
                raise ValueError(f"the function failed: {result!r:.500}")
            status, headers, payload = _http_response(result)
        except ValueError:  # API Gateway's answer to a failed or malformed Lambda response
            self._send(502, {"Content-Type": ["application/json"]}, b'{"message":"Internal server error"}')
            raise
        self._send(status, headers, payload)

    def _proxy_event(self, path: str, query: str, body: bytes, claims: dict[str, str] | None) -> dict[str, Any]:
        multi_headers: dict[str, list[str]] = {}
        for name, value in self.headers.items():
            multi_headers.setdefault(name, []).append(value)
        multi_query = parse_qs(query, keep_blank_values=True) or None
        resource = "/" if path == "/" else PROXY_RESOURCE
        content_type = self.headers.get("Content-Type", "")
        encoded_body, is_base64 = _event_body(body, content_type)
        now = time.time()
        request_context: dict[str, Any] = {
            "accountId": "123456789012",
            "apiId": "local",
            "resourceId": "local",
            "resourcePath": resource,
            "httpMethod": self.command,
            "path": f"/{self.server.stage}{path}",
            "stage": self.server.stage,
            "requestId": str(uuid.uuid4()),
            "requestTime": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "requestTimeEpoch": int(now * 1000),
            "protocol": self.request_version,
            "identity": {"sourceIp": self.client_address[0], "userAgent": self.headers.get("User-Agent")},
        }
        if claims is not None:
            request_context["authorizer"] = {"claims": claims}
        return {
            "resource": resource,
            "path": path,
            "httpMethod": self.command,
            "headers": {name: values[-1] for name, values in multi_headers.items()} or None,
            "multiValueHeaders": multi_headers or None,
            "queryStringParameters": {name: values[-1] for name, values in multi_query.items()}
            if multi_query
            else None,
            "multiValueQueryStringParameters": multi_query,
            "pathParameters": {"proxy": path.lstrip("/")} if resource == PROXY_RESOURCE else None,
            "stageVariables": None,
            "requestContext": request_context,
            "body": encoded_body,
            "isBase64Encoded": is_base64,
        }

    def _send(self, status: int, headers: Mapping[str, list[str]], payload: bytes) -> None:
        self.send_response(status)
        for name, values in headers.items():
            if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                for value in values:
                    self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)


def _event_body(body: bytes, content_type: str) -> tuple[str | None, bool]:
    if not body:
        return None, False
    if not content_type.startswith(_BINARY_TYPES):
        try:
            return body.decode("utf-8"), False
        except UnicodeDecodeError:
            pass
    return base64.b64encode(body).decode("ascii"), True


def _http_response(result: Any) -> tuple[int, dict[str, list[str]], bytes]:
    if not isinstance(result, dict) or not isinstance(result.get("statusCode"), int):
        raise ValueError(f"the handler returned no proxy response: {result!r:.200}")
    headers: dict[str, list[str]] = {name: [str(value)] for name, value in (result.get("headers") or {}).items()}
    for name, values in (result.get("multiValueHeaders") or {}).items():
        headers[name] = [str(value) for value in values]
    body = result.get("body") or ""
    payload = base64.b64decode(body) if result.get("isBase64Encoded") else str(body).encode("utf-8")
    return result["statusCode"], headers, payload
