"""Whether a run's completed steps still fit a workflow definition: the condition for resuming it
on another version. A checkpoint fits when the definition has a step at its path (map indexes and
agent turns included) of the same type."""

from __future__ import annotations

import re
from typing import Any

from sutram.definition import (
    AgentStep,
    AnyStep,
    ChoiceStep,
    LlmStep,
    MapStep,
    ParallelStep,
    ToolStep,
    WorkflowDefinition,
    child_lists,
)
from sutram.store.checkpoints import SUCCEEDED
from sutram.store.keys import step_path


def checkpoint_patterns(definition: WorkflowDefinition) -> list[tuple[re.Pattern[str], str]]:
    """(path pattern, step type) of every checkpoint the definition's runs can write."""
    patterns: list[tuple[str, str]] = []

    def visit(steps: list[AnyStep], prefix: str) -> None:
        nonlocal patterns
        for step in steps:
            here = prefix + re.escape(step.id)
            if isinstance(step, LlmStep | ToolStep):
                patterns.append((here, step.type))
            if isinstance(step, ToolStep) and step.compensate is not None:
                patterns.append((here + "/compensate", "compensation"))
            elif isinstance(step, AgentStep):
                patterns += [(here + r"/turn-\d{4}", "agent_turn"), (here + r"/turn-\d{4}/call-\d{3}", "agent_tool")]
            elif isinstance(step, MapStep):
                visit(list(step.steps), here + r"\[\d+\]/")
            elif isinstance(step, ParallelStep):
                for name, steps_of_branch in step.branches.items():
                    visit(list(steps_of_branch), here + re.escape(f".{name}/"))
            elif isinstance(step, ChoiceStep):  # a choice's branches run in its own scope
                for _, nested in child_lists(step):
                    visit(nested, prefix)

    visit(list(definition.steps), "")
    return [(re.compile(pattern), step_type) for pattern, step_type in patterns]


def first_mismatch(definition: WorkflowDefinition, checkpoints: list[dict[str, Any]]) -> str | None:
    """Why the first completed checkpoint (in start order) does not fit `definition`, or None."""
    patterns = checkpoint_patterns(definition)
    for item in checkpoints:
        if item.get("status") != SUCCEEDED:
            continue
        path, step_type = step_path(item["sk"]), item.get("step_type")
        types = {kind for pattern, kind in patterns if pattern.fullmatch(path)}
        if not types:
            return f"completed step {path!r} is not in this version"
        if step_type not in types:
            return f"completed step {path!r} was a {step_type} step, and is a {'/'.join(sorted(types))} step here"
    return None
