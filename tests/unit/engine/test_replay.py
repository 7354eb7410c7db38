"""Replay in the step engine: a replayed step returns the recorded result without calling anything,
and stops with ReplayDiverged, showing both requests, when it asks something else or never ran."""

from __future__ import annotations

from typing import Any

import pytest

from sutram import wiring
from sutram.contracts import StepTask
from sutram.engine.steps import run_step
from sutram.errors import ReplayDiverged
from tests.unit.engine.test_steps import CountingModel

RECORDED = {"tenant": "acme", "run_id": "run-1", "workflow": "unit"}
REPLAY = {"tenant": "acme", "run_id": "run-2", "workflow": "unit", "replay_of": "run-1"}


@pytest.fixture
def model(aws_env: None, monkeypatch: pytest.MonkeyPatch) -> CountingModel:
    counting = CountingModel()
    monkeypatch.setattr(wiring.step_runtime(), "providers", lambda name: counting)
    return counting


def task(run: dict[str, Any], prompt: str = "Summarise {{text}}", step_id: str = "summarise") -> StepTask:
    spec = {"id": step_id, "type": "llm", "prompt": prompt, "input": {"text": "$.input.text"}}
    return StepTask.model_validate({"run": run, "step": spec, "sources": {"input": {"text": "the report"}}})


def replay_of_recorded_run() -> None:
    """The replay run starts with copies of the recorded run's checkpoints (as replay_run makes them)."""
    store = wiring.checkpoint_store()
    items = store.list_steps("acme", "run-1")
    store.copy_into("acme", "run-2", items, source_run_id="run-1", outputs={})


def test_a_replayed_step_that_asks_the_same_returns_the_recorded_result_and_calls_nothing(model) -> None:
    recorded = run_step(task(RECORDED), wiring.step_runtime())
    replay_of_recorded_run()

    assert run_step(task(REPLAY), wiring.step_runtime()) == recorded
    assert len(model.calls) == 1  # the recorded run's call only


def test_a_changed_prompt_stops_the_replay_at_that_step_showing_both_requests(model) -> None:
    run_step(task(RECORDED), wiring.step_runtime())
    replay_of_recorded_run()

    with pytest.raises(ReplayDiverged) as diverged:
        run_step(task(REPLAY, prompt="Summarise briefly: {{text}}"), wiring.step_runtime())

    message = str(diverged.value)
    assert message.startswith("step 'summarise' asks something else than in run run-1.\nrecorded: ")
    assert '"prompt":"Summarise the report"' in message.split("\nnow: ")[0]
    assert '"prompt":"Summarise briefly: the report"' in message.split("\nnow: ")[1]
    assert len(model.calls) == 1


def test_a_step_the_recorded_run_never_ran_stops_the_replay_without_calling_the_model(model) -> None:
    run_step(task(RECORDED), wiring.step_runtime())
    replay_of_recorded_run()

    with pytest.raises(ReplayDiverged, match="step 'translate' did not run in run run-1: a replay calls nothing"):
        run_step(task(REPLAY, step_id="translate"), wiring.step_runtime())
    assert len(model.calls) == 1
