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

import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sutram import expressions, faults
from sutram.contracts import RunRef
from sutram.definition import AgentStep, AnyStep, LlmStep
from sutram.errors import InvalidStepInput, ReplayDiverged
from sutram.models import ModelProvider, ModelRequest, ModelResponse
from sutram.store.artifacts import ArtifactStore
from sutram.store.checkpoints import REQUEST_PREVIEW_CHARS, AlreadyRecorded, CheckpointStore, Claimed, StepKey
from sutram.store.dynamo import canonical


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
        response = provider.complete(self.model_request(step, args, **request))
        latency_ms = int((time.perf_counter() - started) * 1000)
        usage = {"provider": provider_name, "model_id": response.model_id, "latency_ms": latency_ms}
        return response, usage | response.usage.model_dump()

    def model_request(self, step: LlmStep | AgentStep, args: dict[str, Any], **request: Any) -> ModelRequest:
        """The request a step makes of its model, with its rendered prompt."""
        return ModelRequest(
            model_id=step.model.model_id or self.default_model_id,
            system=step.render(step.system, args) if step.system else None,
            prompt=step.render(step.prompt, args),
            max_tokens=step.model.max_tokens,
            temperature=step.model.temperature,
            **request,
        )


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
    run: RunRef,
    work: Callable[[Claimed], Work | HandOver],
    fault_label: str,
    done_point: str,
    at_most_once: bool = False,
    need_value: bool = False,
    keep: Sequence[Sequence[str]] = (),
    request: Callable[[], Any] | None = None,
) -> Done | HandOver:
    """Run `work` once for `key`: a recorded result is returned without running it again. An
    offloaded result keeps the `keep` parts in state (sutram.definition.reads). `request` says what
    the work asks (a model request, a tool call): recorded with the result, and compared by a replay
    (`run.replay_of`), which never runs any work."""
    claim = runtime.checkpoints.claim(
        key,
        step_type=step_type,
        lease_seconds=timeout_seconds + runtime.lease_margin_seconds,
        at_most_once=at_most_once,
        delivery=delivery,
        execution=run.execution,
    )
    if isinstance(claim, AlreadyRecorded):
        if run.replay_of is not None and request is not None and claim.request_digest is not None:
            _check_replayed(key, run.replay_of, claim, canonical(request()))
        value = runtime.artifacts.load(key.tenant, claim.output) if need_value else claim.output
        return Done(claim.output, value)
    if run.replay_of is not None:
        runtime.checkpoints.release(claim, "replay: no recorded result")
        raise ReplayDiverged(f"step {key.path!r} did not run in run {run.replay_of}: a replay calls nothing")
    try:
        asked = canonical(request()) if request is not None else None
        faults.crash_if_injected(runtime.faults, fault_label, "before_call", claim.attempt)
        result = work(claim)
        if isinstance(result, HandOver):
            runtime.checkpoints.release(claim, result.reason)
            return result
        # The call is made and its result not yet recorded: a crash here loses the result.
        faults.crash_if_injected(runtime.faults, fault_label, "before_record", claim.attempt)
        output = runtime.artifacts.offload_if_large(key.tenant, result.value, keep, f"{key.path} output")
        runtime.checkpoints.complete(claim, output, result.usage, asked)
    except Exception as exc:
        runtime.checkpoints.release(claim, f"{type(exc).__name__}: {exc}")
        raise
    faults.crash_if_injected(runtime.faults, fault_label, done_point, claim.attempt)
    return Done(output, result.value)


def _check_replayed(key: StepKey, replay_of: str, recorded: AlreadyRecorded, asked: str) -> None:
    """A replayed step must ask what the recorded run's step asked."""
    if hashlib.sha256(asked.encode()).hexdigest() != recorded.request_digest:
        raise ReplayDiverged(
            f"step {key.path!r} asks something else than in run {replay_of}.\n"
            f"recorded: {recorded.request}\nnow: {asked[:REQUEST_PREVIEW_CHARS]}"
        )


def resolve(mapping: Any, run: RunRef, step: AnyStep, roots: dict[str, Any], artifacts: ArtifactStore) -> Any:
    """Evaluate an input mapping (or a proposal) against the task's roots, loading artifacts back:
    the values a step gets hold no reference, however deep (a map's output list of offloaded
    iteration outputs, a list kept item by item)."""
    try:
        value = expressions.evaluate(mapping, roots, lambda part: artifacts.load(run.tenant, part))
    except expressions.ExpressionError as exc:
        raise InvalidStepInput(f"step {step.id!r} input: {exc}") from None
    return artifacts.load_all(run.tenant, value)
