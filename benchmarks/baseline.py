"""The bare baseline: a Lambda task that does one GetItem and one conditional PutItem, nothing else.

It is what any hand-written checkpointing step would cost at minimum, measured in the same run
as Sutram's steps so the ratio of their times is meaningful on a noisy machine.
"""

from __future__ import annotations

import os
from functools import cache
from typing import Any

import boto3


@cache
def _table() -> Any:
    return boto3.resource("dynamodb").Table(os.environ["SUTRAM_TABLE"])


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    key = {"pk": f"BASELINE#{event['run']}", "sk": f"STEP#{event['step']}"}
    _table().get_item(Key=key)
    _table().put_item(Item={**key, "value": event["step"]}, ConditionExpression="attribute_not_exists(pk)")
    return {"step": event["step"]}


def definition(function_arn: str, steps: int) -> dict[str, Any]:
    """An ASL chain of `steps` Task states invoking the baseline function."""
    states = {
        f"s{index}": {
            "Type": "Task",
            "Resource": function_arn,
            "Parameters": {"run.$": "$$.Execution.Name", "step": f"s{index}"},
            "ResultPath": "$.last",
            **({"Next": f"s{index + 1}"} if index < steps else {"End": True}),
        }
        for index in range(1, steps + 1)
    }
    return {"StartAt": "s1", "States": states}
