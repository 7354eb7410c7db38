"""The step runtime: run one `llm` or `tool` step exactly once per step key.

    claim lease ──> already recorded? return it (no model/tool call)
        │
        └─> resolve input ─> call model or tool ─> offload if large ─> record result ─> return

The value returned is what Step Functions stores at the step's result path: the step's output
inline, or a reference to its S3 artifact when the output is over the offload threshold.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from sutram import expressions, faults
from sutram.artifacts import ArtifactStore
from sutram.checkpoints import AlreadyRecorded, CheckpointStore, StepKey
from sutram.definition import AgentStep, LlmStep, TaskStep, ToolStep
from sutram.errors import InvalidStepInput, StepFailed
from sutram.models import ModelProvider, ModelRequest, ModelResponse
from sutram.tools import ToolContext, get_tool


class RunRef(BaseModel):
    tenant: str
    run_id: str
    workflow: str


class StepEvent(BaseModel):
    """The task payload the compiled state machine sends to the step Lambda."""

    run: RunRef
    delivery: int = 0  # Step Functions' retry count for this task ($$.State.RetryCount)
    # Where the step runs: "" at the top level, "analyse[3]/" in iteration 3 of map `analyse`,
    # "fanout.docs/" in branch `docs` of parallel `fanout`. It prefixes the checkpoint's path.
    scope: str = ""
    step: TaskStep
    # The state roots the step's input mapping reads: {"input": ..., "item": ..., "steps": {"<id>": ...}}.
    sources: dict[str, Any] = {}

    @property
    def roots(self) -> dict[str, Any]:
        roots = {f"steps.{step_id}": value for step_id, value in self.sources.get("steps", {}).items()}
        return roots | {name: self.sources[name] for name in ("input", "item") if name in self.sources}


@dataclass
class StepRuntime:
    checkpoints: CheckpointStore
    artifacts: ArtifactStore
    providers: Any  # callable: provider name -> ModelProvider
    default_provider: str
    default_model_id: str
    lease_margin_seconds: int
    faults: str = ""

    def call_model(
        self, step: LlmStep | AgentStep, args: dict[str, Any], **request: Any
    ) -> tuple[ModelResponse, dict[str, Any]]:
        """Call the step's model once with its rendered prompt; `request` adds fields (tools, messages).
        Returns the response and the usage to record: provider, model, latency and token counts."""
        provider_name = step.model.provider or self.default_provider
        provider: ModelProvider = self.providers(provider_name)
        started = time.perf_counter()
        response = provider.complete(
            ModelRequest(
                model_id=step.model.model_id or self.default_model_id,
                system=step.render(step.system, args) if step.system else None,
                prompt=step.render(step.prompt, args),
                max_tokens=step.model.max_tokens,
                temperature=step.model.temperature,
                **request,
            )
        )
        latency_ms = int((time.perf_counter() - started) * 1000)
        usage = {"provider": provider_name, "model_id": response.model_id, "latency_ms": latency_ms}
        return response, usage | response.usage.model_dump()


@dataclass(frozen=True)
class StepResult:
    value: Any
    usage: dict[str, Any] | None = None


def run_step(event: StepEvent, runtime: StepRuntime) -> Any:
    step, run = event.step, event.run
    key = StepKey(run.tenant, run.run_id, event.scope + step.id)
    at_most_once = isinstance(step, ToolStep) and get_tool(step.tool).delivery == "at_most_once"
    claim = runtime.checkpoints.claim(
        key,
        step_type=step.type,
        lease_seconds=step.timeout_seconds + runtime.lease_margin_seconds,
        at_most_once=at_most_once,
        delivery=event.delivery,
    )
    if isinstance(claim, AlreadyRecorded):
        return claim.output
    try:
        faults.crash_if_injected(runtime.faults, step.id, "before_call", claim.attempt)
        args = _resolve_input(event, runtime.artifacts)
        if isinstance(step, LlmStep):
            result = _call_model(step, args, runtime)
        else:
            result = _call_tool(step, args, key, claim.attempt)
        output = runtime.artifacts.offload_if_large(run.tenant, result.value)
        runtime.checkpoints.complete(claim, output, result.usage)
    except Exception as exc:
        runtime.checkpoints.release(claim, f"{type(exc).__name__}: {exc}")
        raise
    point = "after_model_call" if isinstance(step, LlmStep) else "after_tool_call"
    faults.crash_if_injected(runtime.faults, step.id, point, claim.attempt)
    return output


def _resolve_input(event: StepEvent, artifacts: ArtifactStore) -> dict[str, Any]:
    try:
        return expressions.evaluate(event.step.input, event.roots, lambda v: artifacts.load(event.run.tenant, v))
    except expressions.ExpressionError as exc:
        raise InvalidStepInput(f"step {event.step.id!r} input: {exc}") from None


def _call_model(step: LlmStep, args: dict[str, Any], runtime: StepRuntime) -> StepResult:
    response, usage = runtime.call_model(step, args, json_output=step.output == "json")
    value: Any = response.text
    if step.output == "json":
        try:
            value = json.loads(response.text)
        except json.JSONDecodeError as exc:
            raise StepFailed(f"step {step.id!r}: the model did not return JSON ({exc})") from None
    return StepResult(value, usage)


def _call_tool(step: ToolStep, args: dict[str, Any], key: StepKey, attempt: int) -> StepResult:
    context = ToolContext(tenant=key.tenant, run_id=key.run_id, step_path=key.path, attempt=attempt)
    return StepResult(get_tool(step.tool).run(args, context))
