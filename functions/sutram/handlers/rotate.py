"""Lambda handler that rotates the signing-key secret of approval callback links, as Secrets
Manager's rotation protocol asks (createSecret, setSecret, testSecret, finishSecret).

A new version holds a fresh key and keeps the current one as `previous` (sutram.store.signing_keys),
so links signed before the rotation stay valid until they expire. Nothing outside the secret uses
the key, so setSecret and testSecret only check the new version.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from sutram import wiring

logger = Logger()
KEY_BYTES = 48


# The event names the secret and the version; the log says which step ran, never a value.
@logger.inject_lambda_context(log_event=False)
def handler(event: dict[str, Any], context: LambdaContext) -> None:
    rotate(wiring.client("secretsmanager"), event["SecretId"], event["ClientRequestToken"], event["Step"])


def rotate(client: Any, secret_id: str, version: str, step: str) -> None:
    """One step of rotating `secret_id` to `version`."""
    stages = client.describe_secret(SecretId=secret_id).get("VersionIdsToStages", {})
    if version not in stages:
        raise ValueError(f"version {version} of {secret_id} is not being rotated")
    if "AWSCURRENT" in stages[version]:
        return  # already the current version: a retried step
    if step == "createSecret":
        _create(client, secret_id, version)
    elif step in ("setSecret", "testSecret"):
        _check(client, secret_id, version)
    elif step == "finishSecret":
        current = next(v for v, names in stages.items() if "AWSCURRENT" in names)
        client.update_secret_version_stage(
            SecretId=secret_id, VersionStage="AWSCURRENT", MoveToVersionId=version, RemoveFromVersionId=current
        )
        # Secrets Manager drops the label itself once the rotation succeeds; dropping it here too
        # leaves no half-finished rotation behind whoever runs the protocol.
        client.update_secret_version_stage(SecretId=secret_id, VersionStage="AWSPENDING", RemoveFromVersionId=version)
    else:
        raise ValueError(f"unknown rotation step {step!r}")
    logger.info("rotation step done", extra={"step": step, "version": version})


def _create(client: Any, secret_id: str, version: str) -> None:
    try:
        client.get_secret_value(SecretId=secret_id, VersionId=version, VersionStage="AWSPENDING")
        return  # created by an earlier try of this step
    except client.exceptions.ResourceNotFoundException:
        pass
    current = json.loads(client.get_secret_value(SecretId=secret_id, VersionStage="AWSCURRENT")["SecretString"])
    value = {"key": secrets.token_urlsafe(KEY_BYTES), "previous": current["key"]}
    client.put_secret_value(
        SecretId=secret_id, ClientRequestToken=version, SecretString=json.dumps(value), VersionStages=["AWSPENDING"]
    )


def _check(client: Any, secret_id: str, version: str) -> None:
    value = json.loads(
        client.get_secret_value(SecretId=secret_id, VersionId=version, VersionStage="AWSPENDING")["SecretString"]
    )
    if not value.get("key") or not value.get("previous"):
        raise ValueError(f"version {version} of {secret_id} holds no key")
