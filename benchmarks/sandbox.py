"""The benchmarks' extension of the local cloud's sandboxes (LocalCloud(extensions=[...])).

Loaded into every sandbox after the handler, it registers the benchmarks' tools (benchmarks/tools.py)
with the asset's tool registry, and counts the AWS requests the function's code makes (botocore's
before-call event), which travel back with each invocation's answer (LocalCloud.observations):

    requests        by "service.Operation"
    write_units     DynamoDB write requests by item: "step" (sort key STEP#...), "run", "baseline"
    write_bytes     bytes of those requests, by the same items
    item_bytes      bytes of each PutItem of a step item, by step path
    approval_bytes  bytes of write requests on approval items
    s3_put_bytes    bytes of S3 PutObject bodies

This file runs inside the sandbox: it imports the asset's sutram, and nothing of the benchmarks
but the tools' file, by path.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import threading
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import boto3

WRITE_OPERATIONS = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}

_counts: defaultdict[str, Counter[str]] = defaultdict(Counter)
_lock = threading.Lock()


def _count(params: dict[str, Any], model: Any, **_: Any) -> None:
    service, operation = model.service_model.service_name, model.name
    body = params.get("body") or b""
    body = body.encode() if isinstance(body, str) else bytes(body) if isinstance(body, bytes | bytearray) else b""
    with _lock:
        _counts["requests"][f"{service}.{operation}"] += 1
        if service == "dynamodb" and operation in WRITE_OPERATIONS:
            payload = json.loads(body) if body else {}
            item = payload.get("Key") or payload.get("Item") or {}
            sort_key, partition_key = item.get("sk", {}).get("S", ""), item.get("pk", {}).get("S", "")
            kind = (
                "baseline"
                if partition_key.startswith("BASELINE#")
                else "step"
                if sort_key.startswith("STEP#")
                else "run"
            )
            _counts["write_units"][kind] += 1
            _counts["write_bytes"][kind] += len(body)
            if operation == "PutItem" and sort_key.startswith("STEP#"):
                _counts["item_bytes"][sort_key.removeprefix("STEP#")] += len(body)
            if b"#APPROVAL#" in body:
                _counts["approval_bytes"]["total"] += len(body)
        if service == "s3" and operation == "PutObject":
            _counts["s3_put_bytes"]["total"] += len(body)


def observe() -> dict[str, dict[str, int]]:
    with _lock:
        counts = {kind: dict(counter) for kind, counter in _counts.items()}
        _counts.clear()
    return counts


def _load_tools() -> None:
    spec = importlib.util.spec_from_file_location("benchmark_tools", Path(__file__).with_name("tools.py"))
    assert spec is not None and spec.loader is not None
    module = sys.modules[spec.name] = importlib.util.module_from_spec(spec)  # pydantic resolves annotations there
    spec.loader.exec_module(module)


_load_tools()
boto3._get_default_session().events.register("before-call", _count)
