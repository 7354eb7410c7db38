"""The local cloud a benchmark runs on: its workflow definitions, synthesized with CDK, and what its
sandboxes count (benchmarks/sandbox.py)."""

from __future__ import annotations

import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

SANDBOX_EXTENSION = Path(__file__).with_name("sandbox.py")


def local_cloud(definitions: list[dict[str, Any]], prefix: str) -> Any:
    """A started LocalCloud whose state machines are these definitions, with the scripted model,
    whose sandboxes know the benchmarks' tools and count their AWS requests."""
    from localcloud.cloud import LocalCloud
    from localcloud.session import synthesize

    workflows = Path(tempfile.mkdtemp(prefix=prefix))
    for definition in definitions:
        (workflows / f"{definition['name']}.yaml").write_text(yaml.safe_dump(definition, sort_keys=False))
    print(f"synthesizing {len(definitions)} workflow(s) with CDK ...", flush=True)
    assembly = synthesize(workflows, Path(tempfile.mkdtemp(prefix=f"{prefix}cdk-out-")))
    return LocalCloud.from_assembly(assembly, extensions=[SANDBOX_EXTENSION]).start()


class Traffic:
    """The AWS requests the sandboxes made since the last reset (benchmarks/sandbox.py counts them)."""

    def __init__(self, cloud: Any) -> None:
        self._cloud = cloud
        self.reset()

    def reset(self) -> None:
        kinds = ("requests", "write_units", "write_bytes", "item_bytes", "approval_bytes", "s3_put_bytes")
        self._tallies = {kind: self._cloud.tally(kind) for kind in kinds}

    @property
    def requests(self) -> Counter[str]:
        """By "service.Operation"."""
        return self._counts("requests")

    @property
    def write_units(self) -> Counter[str]:
        """DynamoDB write requests by item: "step", "run", "baseline"."""
        return self._counts("write_units")

    @property
    def write_bytes(self) -> Counter[str]:
        return self._counts("write_bytes")

    @property
    def item_bytes(self) -> Counter[str]:
        """Bytes of each PutItem of a step item, by step path."""
        return self._counts("item_bytes")

    @property
    def approval_bytes(self) -> int:
        return self._counts("approval_bytes")["total"]

    @property
    def s3_put_bytes(self) -> int:
        return self._counts("s3_put_bytes")["total"]

    def _counts(self, kind: str) -> Counter[str]:
        counts: Counter[str] = self._tallies[kind].counts
        return counts
