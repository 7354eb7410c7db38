"""Infra-tier helpers: reading the synthesized template's intrinsics and IAM policies."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def joined(value: dict[str, Any], intrinsic: Callable[[dict[str, Any]], str]) -> str:
    """The text of an Fn::Join with an empty separator, each intrinsic in it written as `intrinsic`
    renders it (the template knows no ARN or name yet)."""
    return "".join(part if isinstance(part, str) else intrinsic(part) for part in value["Fn::Join"][1])


def statement_actions(statement: dict[str, Any]) -> list[str]:
    """The actions of an IAM policy statement, one or many."""
    action = statement["Action"]
    return [action] if isinstance(action, str) else list(action)


def role_statements(template: dict[str, Any], function_id: str) -> list[dict[str, Any]]:
    """The statements of every IAM policy attached to the role of the function `function_id`."""
    role = template["Resources"][function_id]["Properties"]["Role"]["Fn::GetAtt"][0]
    return [
        statement
        for resource in template["Resources"].values()
        if resource["Type"] == "AWS::IAM::Policy" and {"Ref": role} in resource["Properties"]["Roles"]
        for statement in resource["Properties"]["PolicyDocument"]["Statement"]
    ]
