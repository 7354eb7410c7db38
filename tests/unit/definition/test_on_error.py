"""`on_error.pause`: which errors pause a run instead of failing it, and where a step may declare it."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from sutram.definition import LlmStep, WorkflowDefinition

PAUSING = {"id": "ask", "type": "llm", "prompt": "Hi", "on_error": {"pause": ["ModelUnavailable"]}}


def test_a_top_level_step_declares_the_errors_that_pause_the_run() -> None:
    definition = WorkflowDefinition.model_validate({"name": "w", "steps": [PAUSING]})
    step = definition.steps[0]
    assert isinstance(step, LlmStep) and step.on_error is not None
    assert step.on_error.pause == ["ModelUnavailable"]


@pytest.mark.parametrize("container", ["map", "parallel"])
def test_a_step_inside_a_map_or_a_parallel_cannot_pause_the_run(container: str) -> None:
    nested = (
        {"id": "each", "type": "map", "items": "$.input.xs", "steps": [PAUSING]}
        if container == "map"
        else {"id": "both", "type": "parallel", "branches": {"one": [PAUSING]}}
    )
    with pytest.raises(ValidationError, match="field 'on_error': only a step outside any map or parallel can pause"):
        WorkflowDefinition.model_validate({"name": "w", "steps": [nested]})


def test_an_empty_pause_list_is_refused() -> None:
    with pytest.raises(ValidationError, match="pause"):
        WorkflowDefinition.model_validate({"name": "w", "steps": [PAUSING | {"on_error": {"pause": []}}]})
