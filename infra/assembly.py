"""Reading a synthesized cloud assembly (`cdk.out`): the stack's template, and the staged asset
directory each Lambda function's code comes from.

`python -m infra.assembly [cdk.out]` prints both (`make synth` does, after synthesizing).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from infra import constants

LAMBDA_FUNCTION = "AWS::Lambda::Function"


def template_path(outdir: Path, stack_name: str = constants.STACK_NAME) -> Path:
    return outdir / f"{stack_name}.template.json"


def _template(outdir: Path, stack_name: str) -> dict[str, Any]:
    template: dict[str, Any] = json.loads(template_path(outdir, stack_name).read_text())
    return template


def _functions(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        logical_id: resource["Properties"]
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == LAMBDA_FUNCTION
    }


def function_handlers(outdir: Path, stack_name: str = constants.STACK_NAME) -> dict[str, str]:
    """The `Handler` of each Lambda function, by logical id."""
    return {logical_id: props["Handler"] for logical_id, props in _functions(_template(outdir, stack_name)).items()}


def function_assets(outdir: Path, stack_name: str = constants.STACK_NAME) -> dict[str, Path]:
    """The staged asset directory of each Lambda function's code, by logical id: the file asset of the
    assets manifest whose S3 object key the function's `Code.S3Key` names."""
    manifest = json.loads((outdir / f"{stack_name}.assets.json").read_text())
    by_key = {
        destination["objectKey"]: outdir / asset["source"]["path"]
        for asset in manifest["files"].values()
        for destination in asset["destinations"].values()
    }
    assets = {}
    for logical_id, props in _functions(_template(outdir, stack_name)).items():
        key = props["Code"].get("S3Key")
        if not isinstance(key, str) or key not in by_key:
            raise ValueError(f"{outdir}: the code of {logical_id} is not a file asset of the assembly ({key!r})")
        assets[logical_id] = by_key[key]
    return assets


def main(argv: list[str]) -> int:
    outdir = Path(argv[0] if argv else "cdk.out")
    assets = function_assets(outdir)
    print(f"template: {template_path(outdir)}")
    for asset in sorted(set(assets.values())):
        users = ", ".join(sorted(logical_id for logical_id, path in assets.items() if path == asset))
        print(f"asset:    {asset}  (code of {users})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
