"""Large values live in S3, content-addressed under the tenant's prefix.

A value whose JSON exceeds the offload threshold is replaced in Step Functions state and in the
checkpoint by a small reference: {"$artifact": "<key>", "bytes": n}. Steps that read it get
the value back transparently through `load`.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from sutram.errors import InvalidStepInput
from sutram.store.dynamo import canonical

REF = "$artifact"
CACHE_ENTRIES = 64  # artifacts kept per Lambda sandbox (each at most a few MB; see offload threshold)


def encode(value: Any) -> bytes:
    return canonical(value).encode()


def is_ref(value: Any) -> bool:
    return isinstance(value, dict) and REF in value


def tenant_prefix(tenant: str) -> str:
    return f"tenants/{tenant}/artifacts/"


def own_key(tenant: str, value: Any) -> str | None:
    """The artifact key a value refers to, if it is a reference into the tenant's own prefix."""
    key = value.get(REF) if is_ref(value) else None
    if not isinstance(key, str) or not key.startswith(tenant_prefix(tenant)) or ".." in key:
        return None
    return key


class ArtifactStore:
    def __init__(self, s3_client: Any, bucket: str, threshold_bytes: int) -> None:
        self._s3 = s3_client
        self._bucket = bucket
        self._threshold = threshold_bytes
        self._cache: dict[str, bytes] = {}  # artifact key -> body, oldest first

    def offload_if_large(self, tenant: str, value: Any) -> Any:
        body = encode(value)
        if len(body) <= self._threshold:
            return value
        key = f"{tenant_prefix(tenant)}sha256/{hashlib.sha256(body).hexdigest()}.json"
        # Same content, same key: re-writing after a retry is harmless.
        self._s3.put_object(Bucket=self._bucket, Key=key, Body=body, ContentType="application/json")
        return {REF: key, "bytes": len(body)}

    def load(self, tenant: str, value: Any) -> Any:
        if not is_ref(value):
            return value
        key = own_key(tenant, value)
        if key is None:
            raise InvalidStepInput("artifact reference outside the tenant's prefix")
        body = self._cache.get(key)
        if body is None:
            body = self._s3.get_object(Bucket=self._bucket, Key=key)["Body"].read()
            # Keys name their content (sha256), so a cached body can never be stale. Agent turns
            # re-read earlier results; the cache spares them the S3 round trips within a sandbox.
            if len(self._cache) >= CACHE_ENTRIES:
                self._cache.pop(next(iter(self._cache)))
            self._cache[key] = body
        return json.loads(body)

    def presigned_url(self, key: str, expires_seconds: int = 900) -> str:
        return str(
            self._s3.generate_presigned_url(
                "get_object", Params={"Bucket": self._bucket, "Key": key}, ExpiresIn=expires_seconds
            )
        )
