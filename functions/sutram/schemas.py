"""Check a value against a JSON Schema (a run's input, an edited proposal) and say which field is
wrong; check that a schema a definition declares is one."""

from __future__ import annotations

import re
from typing import Any

import fastjsonschema
from aws_lambda_powertools.utilities.validation import validate
from aws_lambda_powertools.utilities.validation.exceptions import SchemaValidationError


class SchemaMismatch(ValueError):
    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


def check(schema: dict[str, Any], value: Any, root: str) -> None:
    """Raise SchemaMismatch naming the offending field as `<root>.<path>` (a missing required
    property is named itself) and saying what is wrong with it."""
    try:
        validate(event=value, schema=schema)
    except SchemaValidationError as exc:
        path = [str(part) for part in (exc.path or [])[1:]]  # fastjsonschema names the root "data"
        missing = None
        if exc.rule == "required" and isinstance(exc.value, dict) and isinstance(exc.rule_definition, list):
            missing = next((name for name in exc.rule_definition if name not in exc.value), None)
        field = ".".join([root, *path, *([missing] if missing else [])])
        if missing:
            message = f"{field} is required"
        else:
            message = re.sub(r"^data\b", root, exc.validation_message or "") or f"the {root} does not match its schema"
        raise SchemaMismatch(message, field) from None


def check_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """`schema` itself, if it is a JSON Schema every value can be checked against; ValueError saying
    what is wrong with it otherwise."""
    try:
        fastjsonschema.compile(schema)
    except fastjsonschema.JsonSchemaDefinitionException as exc:
        raise ValueError(f"not a valid JSON Schema: {exc}") from None
    return schema
