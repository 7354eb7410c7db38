"""cdk.json and the synthesized template as a whole: same defaults everywhere, and cfn-lint clean."""

from __future__ import annotations

import json
from typing import Any

from cfnlint.api import ManualArgs, lint

from infra import constants
from infra.synth import cdk_json_context
from tests.support import REPO

# CDK emits DependsOn on a function's role next to the Fn::GetAtt of that role: redundant, harmless.
IGNORED_LINT_RULES = ["W3005"]


def test_cdk_json_runs_the_app_with_the_documented_defaults() -> None:
    cdk_json = json.loads((REPO / "cdk.json").read_text())
    assert cdk_json["app"].endswith("app.py")
    context = cdk_json_context()
    assert context[constants.CONTEXT_MODEL_PROVIDER] == constants.DEFAULT_MODEL_PROVIDER
    assert context[constants.CONTEXT_MODEL_ID] == constants.DEFAULT_MODEL_ID
    assert context[constants.CONTEXT_OFFLOAD_THRESHOLD] == constants.DEFAULT_OFFLOAD_THRESHOLD


def test_template_passes_cfn_lint(template: dict[str, Any]) -> None:
    matches = lint(json.dumps(template), config=ManualArgs(regions=["us-east-1"], ignore_checks=IGNORED_LINT_RULES))
    assert [str(match) for match in matches] == []
