"""The payloads the Lambda tasks send: one builder per sutram.contracts model, as JSON with `.$` paths.

    builder                  model (its `task`)      sent by
    step_payload             StepTask                an `llm` or `tool` step's task (states.py)
    agent_turn_payload       AgentTurnTask           an agent's turn task (agent.py)
    agent_tool_payload       AgentToolTask           an agent's tool-call task, in its Map (agent.py)
    approval_payload         ApprovalTask            an `approval` step's waiting task (approvals.py)
    items_payload            ItemsTask               a distributed map's staging task (states.py)
    pause_payload            PauseTask               a paused step's waiting task (states.py)
    tool_approval_payload    ToolApprovalTask        a gated tool call's waiting task (agent.py)
    compensate_payload       CompensateTask          the failure path's compensations (states.py)
    success_payload,         FinishTask              RecordSuccess / RecordFailure (states.py)
    failure_payload

A payload's keys are the model's field names, with `.$` when the value is a path, and its `task`
is `task_name(<model>)`. tests/infra/test_task_payloads.py validates every task payload of every
synthesized state machine against sutram.contracts.TASKS, so a key the runtime does not know
fails there, not in a run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from aws_cdk import aws_stepfunctions as sfn

from infra.constants import JSON_NULL
from infra.workflow.frames import Frame
from sutram import expressions
from sutram.contracts import (
    AgentToolTask,
    AgentTurnTask,
    ApprovalTask,
    CompensateTask,
    Decision,
    FinishTask,
    ItemsTask,
    PauseTask,
    StepTask,
    ToolApprovalTask,
    task_name,
)
from sutram.definition import AnyStep, ApprovalStep, MapStep, WorkflowDefinition
from sutram.definition.reads import Path

RUN_PATH = "$.run"
ERROR_PATH = "$.error"
COMPENSATION_PATH = "$.compensation"  # what the failure path's compensations undid
SCOPE_PATH = "$.scope"
# Which delivery of a task this is (0 first, then 1 per Retry): a later delivery may take over the
# lease of an earlier one, which Step Functions has given up on.
DELIVERY_PATH = "$$.State.RetryCount"

# What a waiting task asks for (contracts._Waiting.approval_action): the first decision, or the
# escalation once its deadline passed.
ApprovalAction = Literal["request", "escalate"]

# A waiting task's output when its deadline passes undecided: a contracts.Decision, `expired`.
EXPIRED_DECISION = {"outcome": "expired"} | {
    f"{name}.$": JSON_NULL for name in Decision.model_fields if name != "outcome"
}


@dataclass(frozen=True)
class Scope:
    """Where a step runs, as its checkpoint path prefix. Outside any map it is known when compiling
    ("fanout.docs/"); inside a map it starts with the iteration's own scope, which the Map state's
    ItemSelector computes at run time into `$.scope` ("analyse[3]/"), followed by `suffix`."""

    suffix: str = ""
    in_map: bool = False

    def payload(self) -> dict[str, str]:
        if not self.in_map:
            return {"scope": self.suffix}
        return {"scope.$": _format(f"{{}}{self.suffix}", SCOPE_PATH) if self.suffix else SCOPE_PATH}

    def branch(self, text: str) -> Scope:
        return Scope(self.suffix + text, self.in_map)

    def iteration(self, map_id: str) -> str:
        """The ItemSelector expression of the scope of a map's current iteration."""
        text = f"{self.suffix}{map_id}[{{}}]/"
        if self.in_map:
            return _format(f"{{}}{text}", SCOPE_PATH, "$$.Map.Item.Index")
        return _format(text, "$$.Map.Item.Index")

    @property
    def top_level(self) -> bool:
        """Outside any map or parallel branch."""
        return not self.in_map and not self.suffix


def _format(template: str, *paths: str) -> str:
    # Step ids and branch names are [a-z0-9_], so the template needs no escaping.
    return f"States.Format('{template}', {', '.join(paths)})"


def _waiting() -> dict[str, Any]:
    """The entries of a waitForTaskToken task (contracts._Waiting)."""
    return {
        "task_token": sfn.JsonPath.task_token,
        # The deadline counts from here, so the record's never falls after the task's timeout.
        "entered_at": sfn.JsonPath.string_at("$$.State.EnteredTime"),
    }


def step_payload(
    definition: WorkflowDefinition, step: AnyStep, scope: Scope, frame: Frame, keep: list[Path] | None = None
) -> dict[str, Any]:
    """StepTask: the run, the delivery, the scope, the step's own spec, only the state roots its
    input mapping reads (from where `frame` keeps them) and the parts of its output to keep in state
    if it is offloaded (sutram.definition.reads). An agent's and an approval's payloads start from it."""
    return {
        "task": task_name(StepTask),
        "run.$": RUN_PATH,
        "delivery.$": DELIVERY_PATH,
        **scope.payload(),
        "step": step.model_dump(mode="json", exclude_defaults=True, exclude={"retry", "description", "on_error"})
        | {"id": step.id, "type": step.type},
        "sources": frame.sources(definition.roots_needed_by(step)),
    } | ({"keep": [list(path) for path in keep]} if keep else {})


def approval_payload(
    definition: WorkflowDefinition, step: ApprovalStep, scope: Scope, frame: Frame, action: ApprovalAction
) -> dict[str, Any]:
    """ApprovalTask: `request` asks the step's group, `escalate` its `escalate_to`."""
    payload = step_payload(definition, step, scope, frame)
    del payload["delivery.$"]  # the approval is keyed by its step, and each delivery brings a new token
    return payload | {"task": task_name(ApprovalTask), "approval_action": action} | _waiting()


def items_payload(step: MapStep, scope: Scope, frame: Frame, keep: list[Path] | None = None) -> dict[str, Any]:
    """ItemsTask: stage a distributed map's list in S3; `keep` applies to each item."""
    root = expressions.parse(step.items).root
    return {
        "task": task_name(ItemsTask),
        "run.$": RUN_PATH,
        **scope.payload(),
        "map_id": step.id,
        "items": step.items,
        "sources": frame.sources([root]),
    } | ({"keep": [list(path) for path in keep]} if keep else {})


def pause_payload(step: AnyStep) -> dict[str, Any]:
    """PauseTask: the run waits at `step`, paused by the error a Catch put at `$.error`."""
    return {
        "task": task_name(PauseTask),
        "run.$": RUN_PATH,
        "step_id": step.id,
        "error.$": ERROR_PATH,
    } | _waiting()


def compensate_payload(definition: WorkflowDefinition) -> dict[str, Any]:
    """CompensateTask: the compensated steps' compensations, in definition order, and the run's input."""
    return {
        "task": task_name(CompensateTask),
        "run.$": RUN_PATH,
        "delivery.$": DELIVERY_PATH,
        "input.$": "$.input",
        "compensations": [
            {"step_id": step.id, "tool": step.compensate.tool, "input": step.compensate.input}
            for step in definition.compensated_steps()
            if step.compensate is not None
        ],
    }


def success_payload(output_path: str) -> dict[str, Any]:
    """FinishTask of RecordSuccess: the run's output is at `output_path`."""
    return {"task": task_name(FinishTask), "run.$": RUN_PATH, "status": "SUCCEEDED", "output.$": output_path}


def failure_payload(compensated: bool = False) -> dict[str, Any]:
    """FinishTask of RecordFailure: the error a Catch put at `$.error`, and with compensations what
    they undid (`$.compensation`)."""
    payload = {"task": task_name(FinishTask), "run.$": RUN_PATH, "status": "FAILED", "error.$": ERROR_PATH}
    return payload | ({"compensation.$": COMPENSATION_PATH} if compensated else {})


# An agent's payloads start from its step payload (`common`: {run, delivery, scope, step, sources}).
# Entries of it that the tool calls do not need; the rest (run, scope) is carried into each Map
# iteration, which the calls and their approvals read it from.
_NOT_FOR_TOOLS = frozenset({"task", "delivery.$", "step", "sources", "sources.$", "keep"})


def agent_turn_payload(common: dict[str, Any], loop: str) -> dict[str, Any]:
    """AgentTurnTask: turn `<loop>.turn` of an execution that started at `<loop>.first_turn`."""
    return common | {"task": task_name(AgentTurnTask), "turn.$": f"{loop}.turn", "first_turn.$": f"{loop}.first_turn"}


def tool_calls_item_selector(common: dict[str, Any], loop: str, *, gated: bool) -> dict[str, Any]:
    """The state of a tool-call iteration (the tools Map's ItemSelector): the carried entries, the
    turn and the call (and, with gated tools, no decision yet)."""
    carried = {key: value for key, value in common.items() if key not in _NOT_FOR_TOOLS}
    selected = carried | {"turn.$": f"{loop}.turn", "call.$": "$$.Map.Item.Value.call"}
    return selected | ({"approval.$": JSON_NULL} if gated else {})


def _in_iteration(common: dict[str, Any]) -> dict[str, Any]:
    """The entries a task in a tool-call iteration sends: the carried ones, read from the
    iteration's state, the agent's step, its turn and the call."""
    carried = [key.removesuffix(".$") for key in common if key not in _NOT_FOR_TOOLS]
    return {f"{name}.$": f"$.{name}" for name in carried} | {
        "step": common["step"],
        "turn.$": "$.turn",
        "call.$": "$.call",
    }


def agent_tool_payload(common: dict[str, Any], *, gated: bool) -> dict[str, Any]:
    """AgentToolTask: the call, with the decision at `$.approval` when the agent has gated tools."""
    decision = {"approval.$": "$.approval"} if gated else {}
    return _in_iteration(common) | {"delivery.$": DELIVERY_PATH, "task": task_name(AgentToolTask)} | decision


def tool_approval_payload(common: dict[str, Any], action: ApprovalAction) -> dict[str, Any]:
    """ToolApprovalTask: `request` asks the tool's group, `escalate` its `escalate_to`."""
    return _in_iteration(common) | {"task": task_name(ToolApprovalTask), "approval_action": action} | _waiting()
