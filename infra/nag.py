"""cdk-nag's AwsSolutions rules on every synth of the app (`cdk synth`, `make synth`, the tests):
a finding fails the synth, unless the construct it is about acknowledges it with the reason it
does not apply (`acknowledge`, next to the construct in question).

    python -m infra.nag [cdk.out]    the acknowledged findings, with their reasons (what a reviewer
                                     reads); `make synth` prints them
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from aws_cdk import Acknowledgment, App, Stack, Validations
from cdk_nag import AwsSolutionsChecks
from constructs import IConstruct

from infra.assembly import template_path

PACK = "AwsSolutions"


def check(app: App) -> None:
    """Run the AwsSolutions pack on every stack of `app` when it synthesizes."""
    Validations.of(app).add_plugins(AwsSolutionsChecks(app, write_suppressions_to_cloud_formation=True))


def acknowledge(scope: IConstruct, findings: dict[str, str]) -> None:
    """Accept these findings on `scope` and its children, each with its reason: {rule: reason},
    the rule as cdk-nag names it (`IAM5[Resource::*]`, `APIG2`)."""
    Validations.of(scope).acknowledge(
        *(Acknowledgment(id=f"{PACK}::{PACK}-{rule}", reason=reason) for rule, reason in findings.items())
    )


def flat(scope: IConstruct, value: Any) -> str:
    """`value` (an ARN, tokens and all) as cdk-nag writes it in a finding: `<Ref>`, `<Id.Attr>`,
    the rest as JSON (cdk-nag's flattenCfnReference), so an acknowledgment names exactly one resource."""

    def visit(node: Any) -> str:
        if isinstance(node, str):
            return node.replace("${", "<").replace("}", ">")
        if "Fn::Join" in node:
            delimiter, items = node["Fn::Join"]
            return str(delimiter).join(visit(item) for item in items)
        if "Fn::GetAtt" in node:
            resource, attribute = node["Fn::GetAtt"]
            return f"<{visit(resource)}.{visit(attribute)}>"
        if "Ref" in node:
            return f"<{visit(node['Ref'])}>"
        return json.dumps(node, separators=(",", ":"))

    return visit(Stack.of(scope).resolve(value))


def acknowledged(template: dict[str, Any]) -> dict[str, tuple[str, list[str]]]:
    """The findings a synthesized template accepts (cdk-nag writes them into each resource's
    Metadata): {rule: (reason, [logical ids])}."""
    found: dict[str, tuple[str, list[str]]] = {}
    for logical_id, resource in template["Resources"].items():
        for rule in resource.get("Metadata", {}).get("cdk_nag", {}).get("rules_to_suppress", []):
            found.setdefault(rule["id"].removeprefix(f"{PACK}::"), (rule["reason"], []))[1].append(logical_id)
    return found


def main(argv: list[str]) -> int:
    outdir = Path(argv[0] if argv else "cdk.out")
    findings = acknowledged(json.loads(template_path(outdir).read_text()))
    for rule, (reason, resources) in sorted(findings.items()):
        print(f"{rule}  ({len(resources)} resources)\n    {reason}")
    print(f"{len(findings)} acknowledged findings; every other AwsSolutions finding fails the synth")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
