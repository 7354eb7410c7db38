"""The local cloud a benchmark runs on: its workflow definitions, synthesized with CDK."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import yaml


def local_cloud(definitions: list[dict[str, Any]], prefix: str) -> Any:
    """A started LocalCloud whose state machines are these definitions, with the scripted model."""
    from infra.synth import synth_template
    from localcloud.cloud import LocalCloud

    workflows = Path(tempfile.mkdtemp(prefix=prefix))
    for definition in definitions:
        (workflows / f"{definition['name']}.yaml").write_text(yaml.safe_dump(definition, sort_keys=False))
    print(f"synthesizing {len(definitions)} workflow(s) with CDK ...", flush=True)
    template = synth_template(workflows, bundle=False, context={"sutram:modelProvider": "scripted"})
    return LocalCloud(template, environment={"SUTRAM_WORKFLOWS_DIR": str(workflows)}).start()
