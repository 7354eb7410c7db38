"""Start a complete local Sutram: synthesized cloud assembly, local cloud, demo users, HTTP API.

Shared by `python -m localcloud serve` and `python -m localcloud demo`.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import boto3

from localcloud.cloud import LocalCloud
from localcloud.http_api import CognitoIdTokenVerifier, LocalApiServer, serve

REPO = Path(__file__).resolve().parent.parent
LOCAL_CONFIG = REPO / ".sutram" / "local.json"
LOCAL_CONTEXT = {"sutram:modelProvider": "scripted", "sutram:modelId": "sutram.scripted-v1"}
# Two tenants, so isolation can be tried by hand: ada works for acme, grace for globex.
DEMO_USERS = {"ada": ("acme", ["approvers"]), "grace": ("globex", [])}
DEMO_PASSWORD = "Local-demo-1!"


@dataclass
class LocalSession:
    cloud: LocalCloud
    server: LocalApiServer
    api_url: str
    tokens: dict[str, str]  # user name -> ID token
    temporary: list[Path] = field(default_factory=list)  # removed on stop

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()  # release the listening socket, not just the serving thread
        self.cloud.stop()
        for path in self.temporary:
            shutil.rmtree(path, ignore_errors=True)


def synthesize(workflows_dir: Path, outdir: Path) -> Path:
    """The cloud assembly of the stack for `workflows_dir`, as the local cloud runs it (LOCAL_CONTEXT),
    written to `outdir`: its template and its Lambda asset, without the dependencies (the sandboxes
    take them from this environment)."""
    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
    from infra.synth import synth_template

    synth_template(workflows_dir, bundle=False, context=LOCAL_CONTEXT, outdir=outdir)
    return outdir


def start(*, port: int = 0, workflows_dir: Path | None = None, assembly: Path | None = None) -> LocalSession:
    """Start the local cloud, the demo users and the API. `assembly`: a cloud assembly synthesized
    from `workflows_dir` (the tests synthesize once per session); synthesized here when omitted."""
    temporary = []
    if assembly is None:
        assembly = synthesize(workflows_dir or REPO / "workflows", Path(tempfile.mkdtemp(prefix="sutram-cdk-out-")))
        temporary.append(assembly)
    cloud = LocalCloud.from_assembly(assembly).start()
    pool_id, client_id = _user_pool()
    tokens = {
        user: _id_token(pool_id, client_id, user, tenant, groups) for user, (tenant, groups) in DEMO_USERS.items()
    }
    api = cloud.function_named("sutram.handlers.api.handler")
    verifier = CognitoIdTokenVerifier.for_moto(user_pool_id=pool_id, client_ids=[client_id])
    server, api_url = serve(lambda event: cloud.invoke(api.name, event), port=port, authenticator=verifier)
    return LocalSession(cloud, server, api_url, tokens, temporary)


def write_cli_config(session: LocalSession, user: str = "ada") -> Path:
    """Let the `sutram` CLI find the local API and a token without any flags."""
    LOCAL_CONFIG.parent.mkdir(exist_ok=True)
    LOCAL_CONFIG.write_text(json.dumps({"api_url": session.api_url, "token": session.tokens[user]}, indent=2))
    return LOCAL_CONFIG


def _user_pool() -> tuple[str, str]:
    client = boto3.client("cognito-idp")
    pool_id = client.list_user_pools(MaxResults=1)["UserPools"][0]["Id"]
    client_id = client.list_user_pool_clients(UserPoolId=pool_id, MaxResults=1)["UserPoolClients"][0]["ClientId"]
    return pool_id, client_id


def _id_token(pool_id: str, client_id: str, user: str, tenant: str, groups: list[str]) -> str:
    client = boto3.client("cognito-idp")
    client.admin_create_user(
        UserPoolId=pool_id,
        Username=user,
        MessageAction="SUPPRESS",
        UserAttributes=[
            {"Name": "custom:tenant", "Value": tenant},
            {"Name": "email", "Value": f"{user}@{tenant}.example"},
        ],
    )
    client.admin_set_user_password(UserPoolId=pool_id, Username=user, Password=DEMO_PASSWORD, Permanent=True)
    for group in groups:
        with contextlib.suppress(client.exceptions.GroupExistsException):
            client.create_group(GroupName=group, UserPoolId=pool_id)
        client.admin_add_user_to_group(UserPoolId=pool_id, Username=user, GroupName=group)
    result = client.admin_initiate_auth(
        UserPoolId=pool_id,
        ClientId=client_id,
        AuthFlow="ADMIN_USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": user, "PASSWORD": DEMO_PASSWORD},
    )
    return str(result["AuthenticationResult"]["IdToken"])
