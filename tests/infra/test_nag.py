"""cdk-nag's AwsSolutions rules hold every synth: the stack passes them with each exception
acknowledged, with its reason, on the construct it is about; a new finding fails the synth."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_s3 as s3

from infra import nag

# Every finding the stack accepts; adding one is a reviewed change of this list.
ACKNOWLEDGED_RULES = {"APIG2", "COG2", "IAM4", "IAM5", "S1"}


def test_the_stack_passes_with_every_exception_acknowledged_with_its_reason(template: dict[str, Any]) -> None:
    findings = nag.acknowledged(template)

    assert {rule.removeprefix("AwsSolutions-").split("[")[0] for rule in findings} == ACKNOWLEDGED_RULES
    assert all(len(reason) >= 60 for reason, _ in findings.values()), "each reason must convince a reviewer"
    iam5 = [rule for rule in findings if rule.startswith("AwsSolutions-IAM5")]
    assert all(rule.endswith("]") and "[Resource::" in rule for rule in iam5)  # never the whole rule


def _bucket_app(acknowledged: dict[str, str]) -> App:
    app = App()
    nag.check(app)
    bucket = s3.Bucket(Stack(app, "Planted"), "Bare")  # no access logs, no TLS-only policy
    nag.acknowledge(bucket, acknowledged)
    return app


def test_a_finding_fails_the_synth_until_it_is_acknowledged() -> None:
    with pytest.raises(RuntimeError, match=r"ValidationFailed: ERROR .* SSL.*\n   Planted/Bare/Resource"):
        _bucket_app({"S1": "a test bucket"}).synth()  # S10 (TLS only) is still open

    _bucket_app({"S1": "a test bucket", "S10": "a test bucket"}).synth()
