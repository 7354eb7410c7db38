"""Synthesize the stack in-process and return its CloudFormation template (tests, local cloud).

The context in cdk.json (feature flags, Sutram settings) applies here as it does to `cdk synth`,
so the local cloud runs the same template a deployment would get.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from aws_cdk import App

from infra import constants, nag
from infra.bundling import REPO_ROOT
from infra.stack import SutramStack


def cdk_json_context() -> dict[str, Any]:
    context: dict[str, Any] = json.loads((REPO_ROOT / "cdk.json").read_text())["context"]
    return context


def synth_template(
    workflows_dir: Path = REPO_ROOT / "workflows",
    *,
    bundle: bool = False,
    context: dict[str, Any] | None = None,
    outdir: Path | None = None,
) -> dict[str, Any]:
    """The template of the Sutram stack for `workflows_dir`; `context` overrides cdk.json's. The cloud
    assembly (template, staged assets) is kept in `outdir` if given, else thrown away."""
    if outdir is not None:
        return _synth(workflows_dir, bundle, context, outdir)
    with tempfile.TemporaryDirectory(prefix="sutram-synth-") as temporary:
        return _synth(workflows_dir, bundle, context, Path(temporary))


def _synth(workflows_dir: Path, bundle: bool, context: dict[str, Any] | None, outdir: Path) -> dict[str, Any]:
    app = App(outdir=str(outdir), context=cdk_json_context() | (context or {}))
    nag.check(app)
    SutramStack(app, constants.STACK_NAME, workflows_dir=workflows_dir, bundle=bundle)
    template: dict[str, Any] = app.synth().get_stack_by_name(constants.STACK_NAME).template
    return template
