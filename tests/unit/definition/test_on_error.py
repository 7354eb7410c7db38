"""`on_error.pause` and `compensate`: what a step does when the run fails, and where it may say so."""

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


ORDER = {
    "id": "order",
    "type": "tool",
    "tool": "place_order",
    "input": {"item": "desk", "quantity": 1, "supplier": "Contoso", "unit_price_cents": 100},
    "compensate": {"tool": "cancel_order", "input": {"po_number": "$.steps.order.po_number", "reason": "failed"}},
}


def test_a_tool_step_declares_its_compensation_which_reads_its_own_output() -> None:
    definition = WorkflowDefinition.model_validate({"name": "w", "steps": [ORDER]})
    assert [step.id for step in definition.compensated_steps()] == ["order"]


def test_a_compensation_inside_a_map_or_reading_a_later_step_is_refused() -> None:
    in_map = {"id": "each", "type": "map", "items": "$.input.xs", "steps": [ORDER]}
    with pytest.raises(ValidationError, match="field 'compensate': only a step outside any map or parallel"):
        WorkflowDefinition.model_validate({"name": "w", "steps": [in_map]})
    later = ORDER | {"compensate": {"tool": "cancel_order", "input": {"po_number": "$.steps.later.po"}}}
    with pytest.raises(ValidationError, match=r"compensate\.input'.*not an earlier step"):
        WorkflowDefinition.model_validate({"name": "w", "steps": [later]})
    with pytest.raises(ValidationError, match="unknown tool 'uncancel'"):
        WorkflowDefinition.model_validate({"name": "w", "steps": [ORDER | {"compensate": {"tool": "uncancel"}}]})
