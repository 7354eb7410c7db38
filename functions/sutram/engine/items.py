"""A distributed map's list, written to S3 for its ItemReader.

The task reads the map's `items` expression (loading every artifact on the way), writes the list
as one JSON array, each large item offloaded on its own with the parts Step Functions reads kept
(`keep`), and answers where it is. Nothing is checkpointed: the array is content-addressed, so
running the task again writes the same object.
"""

from __future__ import annotations

from typing import Any

from sutram import expressions
from sutram.contracts import ItemsTask
from sutram.errors import InvalidStepInput
from sutram.store.artifacts import REF, ArtifactStore, encode


def stage_items(task: ItemsTask, artifacts: ArtifactStore) -> dict[str, Any]:
    """{"bucket", "key", "count"}: the S3 object the map reads its items from."""
    tenant = task.run.tenant
    try:
        value = expressions.evaluate(task.items, task.roots, lambda part: artifacts.load(tenant, part))
    except expressions.ExpressionError as exc:
        raise InvalidStepInput(f"map {task.map_id!r} items: {exc}") from None
    items = artifacts.load_all(tenant, value)
    if not isinstance(items, list):
        raise InvalidStepInput(f"map {task.map_id!r} items: {task.items} is a {type(items).__name__}, not a list")
    staged = [
        artifacts.offload_if_large(tenant, item, task.keep, f"map {task.map_id!r} item {index}")
        for index, item in enumerate(items)
    ]
    reference = artifacts.put(tenant, encode(staged))
    return {"bucket": artifacts.bucket, "key": reference[REF], "count": len(staged)}
