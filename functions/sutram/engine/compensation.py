"""Compensation (saga): when a run fails, undo the side effects of its completed compensated steps.

The failure path runs one `compensate` task before RecordFailure. It goes through the compensated
steps last first; a step that never completed has nothing to undo. Each compensation is a tool
call checkpointed under `<step>/compensate`, so it runs exactly once however often the task is
retried. One that fails is reported and the others still run. The report says what was undone and
what could not be; the run then ends COMPENSATED (sutram.runs.service.finish_run).
"""

from __future__ import annotations

from typing import Any

from sutram import expressions
from sutram.contracts import CompensateTask, CompensationReport, CompensationSpec
from sutram.engine.work import StepRuntime, Work, run_once
from sutram.errors import InvalidStepInput
from sutram.store.checkpoints import Claimed, StepKey
from sutram.tools import ToolContext, get_tool

TIMEOUT_SECONDS = 300  # one compensation's lease, like a tool step's default timeout


def compensate(task: CompensateTask, runtime: StepRuntime) -> dict[str, Any]:
    report = CompensationReport()
    for spec in reversed(task.compensations):
        step_key = StepKey(task.run.tenant, task.run.run_id, spec.step_id)
        if runtime.checkpoints.recorded(step_key) is None:
            continue  # it never completed: nothing to undo
        try:
            _undo(task, spec, runtime)
            report.undone.append(spec.step_id)
        except Exception as exc:  # reported; the other compensations still run
            report.not_undone.append({"step": spec.step_id, "error": f"{type(exc).__name__}: {exc}"})
    return report.model_dump()


def _undo(task: CompensateTask, spec: CompensationSpec, runtime: StepRuntime) -> None:
    run, tenant = task.run, task.run.tenant
    roots: dict[str, Any] = {"input": task.input}
    for ref in expressions.references_in(spec.input):
        if ref.step_id is not None:
            roots[ref.root] = runtime.checkpoints.recorded(StepKey(tenant, run.run_id, ref.step_id))
    try:
        value = expressions.evaluate(spec.input, roots, lambda part: runtime.artifacts.load(tenant, part))
    except expressions.ExpressionError as exc:
        raise InvalidStepInput(f"step {spec.step_id!r} compensation input: {exc}") from None
    args = runtime.artifacts.load_all(tenant, value)
    key = StepKey(tenant, run.run_id, f"{spec.step_id}/compensate")

    def work(claim: Claimed) -> Work:
        context = ToolContext(tenant=tenant, run_id=run.run_id, step_path=key.path, attempt=claim.attempt)
        return Work(get_tool(spec.tool).run(args, context))

    run_once(
        runtime,
        key,
        step_type="compensation",
        timeout_seconds=TIMEOUT_SECONDS,
        delivery=task.delivery,
        run=run,
        work=work,
        fault_label=f"{spec.step_id}/compensate",
        done_point="after_tool_call",
        request=lambda: {"tool": spec.tool, "arguments": args},
    )
