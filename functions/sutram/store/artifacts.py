"""Large values live in S3, content-addressed under the tenant's prefix.

A value whose JSON exceeds the offload threshold is replaced in Step Functions state and in the
checkpoint by a small reference: {"$artifact": "<key>", "$bytes": n}, plus the parts of it that
Step Functions reads itself (`keep`, from sutram.definition.reads), each offloaded in turn if
large. A list an inline map iterates stays a list, each element offloaded on its own. Steps that
read a value get it back whole, references inside included, through `load_all`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

from sutram.errors import InvalidStepInput, TooLargeForState
from sutram.store.dynamo import canonical

REF = "$artifact"
SIZE = "$bytes"
CACHE_ENTRIES = 64  # artifacts kept per Lambda sandbox (each at most a few MB; see offload threshold)
# A list an inline map iterates is carried in state, one small reference per large element; past
# this, it belongs in a distributed map, which reads its list from S3. Step Functions' own limit
# for a state is 256 KiB.
MAX_LIST_BYTES = 64 * 1024
EVERY = "*"

Path = Sequence[str]


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

    @property
    def bucket(self) -> str:
        return self._bucket

    def offload_if_large(self, tenant: str, value: Any, keep: Sequence[Path] = (), where: str = "value") -> Any:
        """The value as it goes into state: itself if small, else its reference with the `keep`
        parts. `where` names it in an error ("input", "step 'extract' output")."""
        body = encode(value)
        if len(body) <= self._threshold:
            return value
        if isinstance(value, list) and any(path and path[0] == EVERY for path in keep):
            inner = _below(keep, EVERY)
            kept = [self.offload_if_large(tenant, element, inner, f"{where}[{i}]") for i, element in enumerate(value)]
            if len(encode(kept)) > MAX_LIST_BYTES:
                raise TooLargeForState(
                    f"{where}: a list of {len(value)} items that an inline map iterates or a state reads by "
                    f"index takes {len(encode(kept))} bytes in state even with each large item offloaded, "
                    f"more than {MAX_LIST_BYTES}; set `distributed: true` on the map, which reads its list from S3"
                )
            return kept
        reference = self.put(tenant, body)
        if isinstance(value, dict):
            for name in dict.fromkeys(path[0] for path in keep if path and path[0] in value):
                part = self.offload_if_large(tenant, value[name], _below(keep, name), f"{where}.{name}")
                reference[name] = part
        return reference

    def put(self, tenant: str, body: bytes) -> dict[str, Any]:
        """Store `body` (JSON) under its content hash; the reference to it."""
        key = f"{tenant_prefix(tenant)}sha256/{hashlib.sha256(body).hexdigest()}.json"
        # Same content, same key: re-writing after a retry is harmless.
        self._s3.put_object(Bucket=self._bucket, Key=key, Body=body, ContentType="application/json")
        return {REF: key, SIZE: len(body)}

    def load_all(self, tenant: str, value: Any, *, strict: bool = True) -> Any:
        """The value with every reference in it, at any depth, loaded back. A reference outside the
        tenant's prefix is refused, or with `strict=False` left as the plain value it then is."""
        if strict or own_key(tenant, value) is not None:
            value = self.load(tenant, value)
        if isinstance(value, dict):
            return {name: self.load_all(tenant, part, strict=strict) for name, part in value.items()}
        if isinstance(value, list):
            return [self.load_all(tenant, part, strict=strict) for part in value]
        return value

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


def _below(keep: Sequence[Path], name: str) -> list[Path]:
    """The kept paths under `name`, relative to it."""
    return [path[1:] for path in keep if len(path) > 1 and path[0] == name]
