"""Loading workflow files: YAML to `WorkflowDefinition`, with errors that name the file, the
step and the field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from sutram.definition.workflow import WorkflowDefinition


class DefinitionError(ValueError):
    """An invalid workflow definition; the message names the file, the step and the field."""


_STEP_LISTS = ("steps", "then", "otherwise")


def _describe(error: ErrorDetails, raw: Any) -> str:
    """`step 'x' (steps[1].steps[0]), field 'input': message`, however deep the step is nested."""
    node, path, where, field = raw, "", "", ""
    previous: list[Any] = []
    at_step = False
    for part in error["loc"]:
        # pydantic inserts the union member's tag ("llm", "tool", ...) right after a step's index
        if at_step and isinstance(node, dict) and part == node.get("type"):
            at_step = False
            continue
        parent, grandparent = (previous[-1] if previous else None), (previous[-2] if len(previous) > 1 else None)
        in_step_list = isinstance(part, int) and (parent in _STEP_LISTS or grandparent == "branches")
        segment = f"[{part}]" if isinstance(part, int) else f".{part}"
        path, field = (path + segment).lstrip("."), (field + segment).lstrip(".")
        previous.append(part)
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            node = None
        if in_step_list:
            step_id = node.get("id") if isinstance(node, dict) else None
            where = f"step {step_id!r} ({path})" if step_id else path
            field = ""
        at_step = in_step_list
    if error["type"] in ("union_tag_invalid", "union_tag_not_found"):
        field = f"{field}.type".lstrip(".")
    message = error["msg"].removeprefix("Value error, ")
    if not error["loc"] and message.startswith("step "):
        return message  # a cross-step check, which names its own location
    parts = [part for part in (where, f"field {field!r}" if field else "") if part]
    return f"{', '.join(parts) or 'workflow'}: {message}"


def parse_definition(raw: Any, source: str) -> WorkflowDefinition:
    try:
        return WorkflowDefinition.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(_describe(error, raw) for error in exc.errors())
        raise DefinitionError(f"{source}: {problems}") from None


def load_definition(path: Path) -> WorkflowDefinition:
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise DefinitionError(f"{path}: not valid YAML: {exc}") from None
    definition = parse_definition(raw, str(path))
    if definition.name != path.stem.replace("_", "-"):
        raise DefinitionError(f"{path}: field 'name' is {definition.name!r}; it must match the file name")
    return definition


def load_all(directory: Path) -> list[WorkflowDefinition]:
    return [load_definition(path) for path in sorted(directory.glob("*.yaml"))]
