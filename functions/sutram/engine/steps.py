"""`llm` and `tool` steps: resolve the input, call the model or the tool, once per step key.

The value returned is what Step Functions stores at the step's result path: the step's output
inline, or a reference to its S3 artifact when the output is over the offload threshold.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache
from typing import Any

from sutram.contracts import StepTask
from sutram.definition import LlmStep, ToolStep
from sutram.engine.work import Done, StepRuntime, Work, resolve, run_once
from sutram.errors import StepFailed
from sutram.store.checkpoints import Claimed, StepKey
from sutram.tools import ToolContext, get_tool


def run_step(task: StepTask, runtime: StepRuntime) -> Any:
    step, run = task.step, task.run
    key = StepKey(run.tenant, run.run_id, task.scope + step.id)

    at_most_once = isinstance(step, ToolStep) and get_tool(step.tool).delivery == "at_most_once"

    corrected = (run.inputs or {}).get(key.path)  # arguments an operator corrected on resume

    @cache  # the request and the work read the same arguments
    def arguments() -> dict[str, Any]:
        if corrected is not None:
            return corrected
        args: dict[str, Any] = resolve(step.input, run, step, task.roots, runtime.artifacts)
        return args

    def request() -> dict[str, Any]:
        """What the step asks, the same for the same input: its model request or its tool call."""
        args = arguments()
        if isinstance(step, LlmStep):
            json_output = step.output == "json"
            return {"model": runtime.model_request(step, args, json_output=json_output).model_dump(mode="json")}
        return {"tool": step.tool, "arguments": args}

    def work(claim: Claimed) -> Work:
        args = arguments()
        if isinstance(step, LlmStep):
            return _call_model(step, args, runtime)
        mark = (lambda: runtime.checkpoints.mark_in_flight(claim)) if at_most_once else (lambda: None)
        return _call_tool(step, args, key, claim.attempt, mark)

    done = run_once(
        runtime,
        key,
        step_type=step.type,
        timeout_seconds=step.timeout_seconds,
        delivery=task.delivery,
        run=run,
        at_most_once=at_most_once,
        work=work,
        fault_label=step.id,
        done_point="after_model_call" if isinstance(step, LlmStep) else "after_tool_call",
        keep=task.keep,
        request=request,
    )
    assert isinstance(done, Done)  # a step's work never hands over
    return done.output


def _call_model(step: LlmStep, args: dict[str, Any], runtime: StepRuntime) -> Work:
    response, usage = runtime.call_model(step, args, json_output=step.output == "json")
    value: Any = response.text
    if step.output == "json":
        try:
            value = json.loads(response.text)
        except json.JSONDecodeError as exc:
            raise StepFailed(f"step {step.id!r}: the model did not return JSON ({exc})") from None
    return Work(value, usage)


def _call_tool(
    step: ToolStep, args: dict[str, Any], key: StepKey, attempt: int, before_call: Callable[[], None]
) -> Work:
    context = ToolContext(tenant=key.tenant, run_id=key.run_id, step_path=key.path, attempt=attempt)
    return Work(get_tool(step.tool).run(args, context, before_call))
