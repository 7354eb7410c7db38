"""Turn a synthesized CloudFormation template into local resource specs.

The local cloud creates resources straight from the template's properties rather than through
CloudFormation, resolving the few intrinsic functions CDK emits (Ref, Fn::GetAtt, Fn::Join,
Fn::Select, Fn::Split is not used) against the local account's names and ARNs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class UnsupportedIntrinsic(ValueError):
    pass


def resolve(value: Any, ref: Callable[[str], str], get_att: Callable[[str, str], str], pseudo: dict[str, str]) -> Any:
    """Resolve intrinsics in `value`. `ref`/`get_att` map logical ids to local physical values."""
    if isinstance(value, list):
        return [resolve(item, ref, get_att, pseudo) for item in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        ((name, argument),) = value.items()
        if name == "Ref":
            return pseudo[argument] if argument in pseudo else ref(argument)
        if name == "Fn::GetAtt":
            logical_id, attribute = argument if isinstance(argument, list) else argument.split(".", 1)
            return get_att(logical_id, attribute)
        if name == "Fn::Join":
            separator, parts = argument
            return separator.join(str(resolve(part, ref, get_att, pseudo)) for part in parts)
        if name == "Fn::Select":
            index, items = argument
            return resolve(items, ref, get_att, pseudo)[int(index)]
        if name.startswith("Fn::"):
            raise UnsupportedIntrinsic(f"{name} is not supported by the local cloud")
    return {key: resolve(item, ref, get_att, pseudo) for key, item in value.items()}


def resources_of_type(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {
        logical_id: resource
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == resource_type
    }
