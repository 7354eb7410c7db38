"""What every checkpointed piece of work shares: the runtime it runs with, the one skeleton that
runs it once per checkpoint key, and the resolution of its input.

    claim the lease ─> recorded already? return it (no model or tool call)
        └─> work ─> offload if large ─> record the result ─> return it
              └─ raises ─> release the lease, re-raise (Step Functions retries or catches)
              └─ hands over ─> release the lease, record nothing

`llm`/`tool` steps (engine.steps), agent turns and agent tool calls (engine.agent) all run through
`run_once`; faults (sutram.faults) crash it at the same points for each.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sutram import expressions, faults
from sutram.contracts import RunRef
from sutram.definition import AgentStep, AnyStep, LlmStep
from sutram.errors import InvalidStepInput
from sutram.models import ModelProvider, ModelRequest, ModelResponse
from sutram.store.artifacts import ArtifactStore
from sutram.store.checkpoints import AlreadyRecorded, CheckpointStore, Claimed, StepKey


@dataclass
class StepRuntime:
    checkpoints: CheckpointStore
    artifacts: ArtifactStore
    providers: Callable[[str], ModelProvider]  # provider name -> provider
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
        provider = self.providers(provider_name)
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
class Work:
    """What a piece of work produced: its value, and the model usage to record with it."""

    value: Any
    usage: dict[str, Any] | None = None


@dataclass(frozen=True)
class HandOver:
    """The work is not done here: release the lease (so that another execution takes it), record nothing."""

    reason: str


@dataclass(frozen=True)
class Done:
    output: Any  # as recorded: the value inline, or its artifact reference
    value: Any  # the value itself (loaded back only with `need_value`, when it was recorded earlier)


def run_once(
    runtime: StepRuntime,
    key: StepKey,
    *,
    step_type: str,
    timeout_seconds: int,
    delivery: int,
    execution: int,
    work: Callable[[Claimed], Work | HandOver],
    fault_label: str,
    done_point: str,
    at_most_once: bool = False,
    need_value: bool = False,
    keep: Sequence[Sequence[str]] = (),
) -> Done | HandOver:
    """Run `work` once for `key`: a recorded result is returned without running it again. An
    offloaded result keeps the `keep` parts in state (sutram.definition.reads)."""
    claim = runtime.checkpoints.claim(
        key,
        step_type=step_type,
        lease_seconds=timeout_seconds + runtime.lease_margin_seconds,
        at_most_once=at_most_once,
        delivery=delivery,
        execution=execution,
    )
    if isinstance(claim, AlreadyRecorded):
        value = runtime.artifacts.load(key.tenant, claim.output) if need_value else claim.output
        return Done(claim.output, value)
    try:
        faults.crash_if_injected(runtime.faults, fault_label, "before_call", claim.attempt)
        result = work(claim)
        if isinstance(result, HandOver):
            runtime.checkpoints.release(claim, result.reason)
            return result
        # The call is made and its result not yet recorded: a crash here loses the result.
        faults.crash_if_injected(runtime.faults, fault_label, "before_record", claim.attempt)
        output = runtime.artifacts.offload_if_large(key.tenant, result.value, keep, f"{key.path} output")
        runtime.checkpoints.complete(claim, output, result.usage)
    except Exception as exc:
        runtime.checkpoints.release(claim, f"{type(exc).__name__}: {exc}")
        raise
    faults.crash_if_injected(runtime.faults, fault_label, done_point, claim.attempt)
    return Done(output, result.value)


def resolve(mapping: Any, run: RunRef, step: AnyStep, roots: dict[str, Any], artifacts: ArtifactStore) -> Any:
    """Evaluate an input mapping (or a proposal) against the task's roots, loading artifacts back:
    the values a step gets hold no reference, however deep (a map's output list of offloaded
    iteration outputs, a list kept item by item)."""
    try:
        value = expressions.evaluate(mapping, roots, lambda part: artifacts.load(run.tenant, part))
    except expressions.ExpressionError as exc:
        raise InvalidStepInput(f"step {step.id!r} input: {exc}") from None
    return artifacts.load_all(run.tenant, value)
