"""cdk.json and the synthesized template as a whole: same defaults everywhere, and cfn-lint clean."""

from __future__ import annotations

import json
from typing import Any

from cfnlint.api import ManualArgs, lint
from cfnlint.config import ConfigFileArgs

from infra import constants
from infra.synth import cdk_json_context
from tests.support import REPO

# The checks `make synth` ignores too, each with its reason: one list, in .cfnlintrc.
CFN_LINT_CONFIG = REPO / ".cfnlintrc"


def test_cdk_json_runs_the_app_with_the_documented_defaults() -> None:
    cdk_json = json.loads((REPO / "cdk.json").read_text())
    assert cdk_json["app"].endswith("app.py")
    context = cdk_json_context()
    assert context[constants.CONTEXT_MODEL_PROVIDER] == constants.DEFAULT_MODEL_PROVIDER
    assert context[constants.CONTEXT_MODEL_ID] == constants.DEFAULT_MODEL_ID
    assert context[constants.CONTEXT_OFFLOAD_THRESHOLD] == constants.DEFAULT_OFFLOAD_THRESHOLD
    assert context[constants.CONTEXT_LAMBDA_PYTHON] == constants.LAMBDA_RUNTIME_PYTHON


def test_template_passes_cfn_lint_with_the_checks_make_synth_ignores(template: dict[str, Any]) -> None:
    ignored = ConfigFileArgs(config_file=CFN_LINT_CONFIG).file_args.get("ignore_checks")
    assert ignored, f"{CFN_LINT_CONFIG}: no ignore_checks read"
    matches = lint(json.dumps(template), config=ManualArgs(regions=["us-east-1"], ignore_checks=ignored))
    assert [str(match) for match in matches] == []
