"""sutram.engine.steps, the llm and tool steps: exactly-once model calls across crashes, offload,
delivery modes."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from sutram import wiring
from sutram.contracts import StepTask as StepEvent
from sutram.engine.steps import run_step
from sutram.errors import InvalidStepInput, OutcomeUnknown, StepFailed
from sutram.models import ModelRequest, ModelResponse, Usage
from sutram.store.artifacts import REF, SIZE
from sutram.tools import ToolContext, tool
from tests.unit.support.engine import RUN, set_faults


class CountingModel:
    name = "counting"

    def __init__(self, text: str = "a summary") -> None:
        self.calls: list[ModelRequest] = []
        self.text = text

    def complete(self, request: ModelRequest) -> ModelResponse:
        self.calls.append(request)
        return ModelResponse(text=self.text, model_id=request.model_id, usage=Usage(input_tokens=12, output_tokens=3))


class Note(BaseModel):
    text: str


side_effects: list[str] = []


@tool("unit_send_once", delivery="at_most_once")
def send_once(args: Note, context: ToolContext) -> dict[str, Any]:
    side_effects.append(args.text)
    if args.text == "crash":
        raise SystemExit("runtime killed mid-call")
    return {"sent": args.text, "key": context.idempotency_key}


@tool("unit_repeat")
def repeat(args: Note, context: ToolContext) -> str:
    return args.text * 2000


@pytest.fixture
def model(aws_env, monkeypatch) -> CountingModel:
    counting = CountingModel()
    monkeypatch.setattr(wiring.step_runtime(), "providers", lambda name: counting)
    return counting


def llm_event(**step: Any) -> StepEvent:
    spec = {"id": "summarise", "type": "llm", "prompt": "Summarise {{text}}", "input": {"text": "$.input.text"}} | step
    return StepEvent.model_validate({"run": RUN, "step": spec, "sources": {"input": {"text": "the report"}}})


def test_an_llm_step_renders_its_prompt_and_records_usage(model, table):
    assert run_step(llm_event(), wiring.step_runtime()) == "a summary"

    assert model.calls[0].prompt == "Summarise the report"
    item = table.get_item(Key={"pk": "TENANT#acme#RUN#run-1", "sk": "STEP#summarise"})["Item"]
    assert item["usage"]["input_tokens"] == 12 and item["usage"]["output_tokens"] == 3


def test_a_crash_after_the_model_call_is_retried_without_calling_the_model_again(model, monkeypatch):
    set_faults(monkeypatch, "summarise@after_model_call")

    with pytest.raises(SystemExit):
        run_step(llm_event(), wiring.step_runtime())
    retried = run_step(llm_event(), wiring.step_runtime())

    assert retried == "a summary"
    assert len(model.calls) == 1


def test_a_crash_before_the_call_leaves_the_model_uncalled_and_the_retry_calls_it_once(model, monkeypatch):
    set_faults(monkeypatch, "summarise@before_call")
    monkeypatch.setattr(wiring.step_runtime(), "lease_margin_seconds", 0)

    with pytest.raises(SystemExit):
        run_step(llm_event(timeout_seconds=1), wiring.step_runtime())
    assert model.calls == []


def test_json_output_that_is_not_json_fails_the_step_clearly(model):
    with pytest.raises(StepFailed, match="did not return JSON"):
        run_step(llm_event(output="json"), wiring.step_runtime())


def test_a_missing_input_value_names_the_expression(model):
    event = llm_event(input={"text": "$.input.missing"})
    with pytest.raises(InvalidStepInput, match=r"'\$.input.missing': no value at 'missing'"):
        run_step(event, wiring.step_runtime())


def test_a_large_output_goes_to_s3_and_round_trips(aws_env):
    event = StepEvent.model_validate(
        {
            "run": RUN,
            "step": {"id": "big", "type": "tool", "tool": "unit_repeat", "input": {"text": "ab"}},
        }
    )
    output = run_step(event, wiring.step_runtime())

    assert output[REF].startswith("tenants/acme/artifacts/sha256/") and output[SIZE] == 4002
    assert wiring.artifact_store().load("acme", output) == "ab" * 2000
    # A later step reading a field through the reference gets the value itself.
    reader = llm_event(input={"text": "$.steps.big"})
    reader = reader.model_copy(update={"sources": {"steps": {"big": output}}})
    counting = CountingModel()
    wiring.step_runtime().providers = lambda name: counting
    run_step(reader, wiring.step_runtime())
    assert counting.calls[0].prompt == "Summarise " + "ab" * 2000


def test_another_tenants_artifact_cannot_be_read(aws_env):
    with pytest.raises(InvalidStepInput, match="outside the tenant's prefix"):
        wiring.artifact_store().load("acme", {REF: "tenants/globex/artifacts/sha256/x.json", SIZE: 1})


def test_an_at_most_once_tool_that_died_mid_call_stops_with_outcome_unknown(aws_env, monkeypatch):
    monkeypatch.setattr(wiring.step_runtime(), "lease_margin_seconds", 0)
    event = StepEvent.model_validate(
        {
            "run": RUN,
            "step": {
                "id": "notify",
                "type": "tool",
                "tool": "unit_send_once",
                "input": {"text": "crash"},
                "timeout_seconds": 1,
            },
        }
    )
    side_effects.clear()
    with pytest.raises(SystemExit):
        run_step(event, wiring.step_runtime())

    from sutram.store import checkpoints

    later = checkpoints._now() + 2
    monkeypatch.setattr(checkpoints, "_now", lambda: later)
    with pytest.raises(OutcomeUnknown):
        run_step(event, wiring.step_runtime())
    assert side_effects == ["crash"]


def test_an_at_most_once_tool_whose_runtime_died_before_the_call_is_simply_retried(aws_env, monkeypatch):
    set_faults(monkeypatch, "notify@before_call")
    event = StepEvent.model_validate(
        {"run": RUN, "step": {"id": "notify", "type": "tool", "tool": "unit_send_once", "input": {"text": "once"}}}
    )
    side_effects.clear()
    with pytest.raises(SystemExit):
        run_step(event, wiring.step_runtime())  # the first delivery dies before the tool is called
    retried = event.model_copy(update={"delivery": 1})  # Step Functions retries

    assert run_step(retried, wiring.step_runtime())["sent"] == "once"
    assert side_effects == ["once"]


def test_tools_receive_an_idempotency_key_stable_for_the_step(aws_env):
    event = StepEvent.model_validate(
        {
            "run": RUN,
            "step": {"id": "notify", "type": "tool", "tool": "unit_send_once", "input": {"text": "hi"}},
        }
    )
    assert run_step(event, wiring.step_runtime()) == {"sent": "hi", "key": "run-1/notify"}


def test_an_artifact_read_twice_is_fetched_from_s3_once(aws_env):
    store = wiring.artifact_store()
    reference = store.offload_if_large("acme", "x" * 5000)
    calls: list[str] = []
    original = store._s3.get_object
    store._s3.get_object = lambda **kwargs: calls.append(kwargs["Key"]) or original(**kwargs)

    assert store.load("acme", reference) == store.load("acme", reference) == "x" * 5000
    assert calls == [reference[REF]]
