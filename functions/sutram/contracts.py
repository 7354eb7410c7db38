"""The Step Functions task payloads: the only vocabulary shared by the state machines and the Lambdas.

Every payload a compiled state machine sends to a Lambda is one of the models below, told apart by
its `task` field. The step handler dispatches on `Task` (one discriminated union); `infra/`
builds each payload from the same models, through `task_name` and the field names here
(infra/workflow/payloads.py), and an infra test (tests/infra/test_task_payloads.py) validates every
task payload of every synthesized state machine against the union. The models are strict: a key a
model does not declare is an error, not silently dropped.

    task            sent by                                  runs
    step            an `llm` or `tool` step's Task           sutram.engine.steps.run_step
    agent_turn      an agent's turn Task                     sutram.engine.agent.run_agent_turn
    agent_tool      an agent's tool-call Task (in its Map)   sutram.engine.agent.run_agent_tool
    items           a distributed map's staging Task          sutram.engine.items.stage_items
    pause           a step's paused wait (waitForTaskToken)   sutram.runs.service.pause_run
    compensate      the failure path, before RecordFailure    sutram.engine.compensation.compensate
    approval        an `approval` step (waitForTaskToken)    sutram.approvals.requests.request_approval
    tool_approval   a gated call's approval (waitForToken)   sutram.approvals.requests.request_tool_approval
    finish          RecordSuccess / RecordFailure            sutram.runs.service.finish_run
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from sutram.definition import AgentStep, ApprovalStep, TaskStep


class RunRef(BaseModel):
    """Which run a task belongs to; the state machine carries it at `$.run`."""

    tenant: str
    run_id: str
    workflow: str
    # Which execution of the run: 0 the first, n after n resumes. A lease left by an earlier
    # execution is abandoned, whatever its delivery (sutram.store.checkpoints.claim).
    execution: int = Field(0, ge=0)
    # A replay of that run: every model and tool result comes from its checkpoints, and a step
    # that would ask anything else stops the replay (sutram.engine.work.run_once).
    replay_of: str | None = None
    # Arguments an operator corrected on resume, by step path: the step runs with these instead of
    # its input mapping's (sutram.engine.steps).
    inputs: dict[str, dict[str, Any]] | None = None


class _Contract(BaseModel):
    """The base of every task model: a payload key the model does not declare is an error, never
    silently dropped, so a state machine and the Lambdas cannot drift apart unnoticed."""

    model_config = ConfigDict(extra="forbid")


class _InRun(_Contract):
    run: RunRef
    # Where the step runs: "" at the top level, "analyse[3]/" in iteration 3 of map `analyse`,
    # "fanout.docs/" in branch `docs` of parallel `fanout`. It prefixes the checkpoint's path.
    scope: str = ""


class _Delivered(_InRun):
    delivery: int = 0  # Step Functions' retry count for this task ($$.State.RetryCount)


class _Sourced(_Contract):
    # The state roots the step's input mapping reads: {"input": ..., "item": ..., "steps": {"<id>": ...}}.
    sources: dict[str, Any] = {}

    @property
    def roots(self) -> dict[str, Any]:
        """The sources as expression roots: "input", "item" and "steps.<id>"."""
        roots = {f"steps.{step_id}": value for step_id, value in self.sources.get("steps", {}).items()}
        return roots | {name: self.sources[name] for name in ("input", "item") if name in self.sources}


class _Keeping(_Contract):
    # The parts of the output that Step Functions reads itself (sutram.definition.reads), kept in
    # state when the output is offloaded: [["label"], ["documents", "*", "title"]].
    keep: list[list[str]] = []


class _Waiting(_Contract):
    """A waitForTaskToken task: the token resumes the run, and the deadline counts from `entered_at`."""

    task_token: str
    # request: the first approval; escalate: its deadline passed, ask `escalate_to` instead.
    approval_action: Literal["request", "escalate"] = "request"
    # When Step Functions entered the waiting state ($$.State.EnteredTime), so the record's deadline
    # never falls after the task's own timeout.
    entered_at: datetime | None = None


class StepTask(_Delivered, _Sourced, _Keeping):
    """Run an `llm` or `tool` step once."""

    task: Literal["step"] = "step"
    step: TaskStep


class _AgentTask(_InRun):
    step: AgentStep
    turn: int = Field(ge=0)

    @property
    def agent_path(self) -> str:
        return f"{self.scope}{self.step.id}"


class AgentTurnTask(_AgentTask, _Delivered, _Sourced, _Keeping):
    """Run turn `turn` of an agent: one model call."""

    task: Literal["agent_turn"] = "agent_turn"
    first_turn: int = Field(0, ge=0)  # the turn this execution started at (later ones continue a run)


class Decision(BaseModel):
    """A human decision as it resumes a run (sutram.approvals.decisions.decision_output), or
    `expired` when the deadline passed undecided."""

    outcome: Literal["approve", "reject", "expired"]
    proposal: Any = None  # what to act on, as approved (maybe edited); null unless approved
    by: str | None = None
    comment: str | None = None


class AgentToolTask(_AgentTask, _Delivered):
    """Run call `call` of an agent's turn `turn`, with the human decision when its tool is gated."""

    task: Literal["agent_tool"] = "agent_tool"
    call: int = Field(ge=0)  # the index of the call in the turn's tool_calls
    approval: Decision | None = None


class ApprovalTask(_InRun, _Sourced, _Waiting):
    """Ask for the decision of an `approval` step."""

    task: Literal["approval"] = "approval"
    step: ApprovalStep


class ToolApprovalTask(_AgentTask, _Waiting):
    """Ask for the decision on a gated tool call of an agent."""

    task: Literal["tool_approval"] = "tool_approval"
    call: int = Field(ge=0)


class ItemsTask(_InRun, _Sourced, _Keeping):
    """Write the list a distributed map iterates to S3, for its ItemReader; `keep` applies to each item."""

    task: Literal["items"] = "items"
    map_id: str
    items: str  # the map's `items` expression


class ExecutionError(BaseModel):
    Error: str = "States.Unknown"
    Cause: str | None = None


class CompensationSpec(_Contract):
    step_id: str
    tool: str
    input: dict[str, Any] = {}


class CompensateTask(_Delivered):
    """Undo the completed compensated steps of a failed run, last first, each exactly once."""

    task: Literal["compensate"] = "compensate"
    input: Any = None  # the run's input (`$.input` of its compensations' mappings)
    compensations: list[CompensationSpec]  # in definition order


class CompensationReport(BaseModel):
    undone: list[str] = []  # step ids whose compensation ran, last step first
    not_undone: list[dict[str, str]] = []  # {"step", "error"}: compensations that failed


class PauseTask(_InRun, _Waiting):
    """Record that the run is paused at `step_id` by `error`, with the token that resumes it."""

    task: Literal["pause"] = "pause"
    step_id: str
    error: ExecutionError


class FinishTask(_Contract):
    """Record how a run ended (RecordSuccess / RecordFailure)."""

    task: Literal["finish"] = "finish"
    run: RunRef
    status: Literal["SUCCEEDED", "FAILED"]
    output: Any = None
    error: ExecutionError | None = None
    # On the failure path of a workflow with compensations: what they undid (or the task's own error).
    compensation: dict[str, Any] | None = None


Task = Annotated[
    StepTask
    | AgentTurnTask
    | AgentToolTask
    | ApprovalTask
    | ToolApprovalTask
    | ItemsTask
    | PauseTask
    | CompensateTask
    | FinishTask,
    Field(discriminator="task"),
]
TASKS: TypeAdapter[Task] = TypeAdapter(Task)


def parse_task(payload: Any) -> Task:
    """The task a payload is; pydantic's ValidationError names the field that does not fit."""
    return TASKS.validate_python(payload)


def task_name(model: type[BaseModel]) -> str:
    """The `task` value of a payload model, as infra writes it into the state machine."""
    return str(model.model_fields["task"].default)
