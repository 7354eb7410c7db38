"""Request and response models of the runs routes. The OpenAPI document is generated from these.

Models only grow by adding optional fields: clients built against an older shape keep working.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from sutram.store.runs import RunStatus

StepStatus = RunStatus  # a step's status in the API's case (sutram.store.checkpoints.step_status)


class StartRunRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    input: dict[str, Any] = Field(
        default_factory=dict, description="The run's input, checked against the workflow's input_schema."
    )
    version: int | None = Field(
        None, ge=1, description="Run this published version of the workflow; by default the live (latest) one."
    )


class ArtifactLink(BaseModel):
    """A value too large to travel inline: download it from `url` (a presigned S3 URL)."""

    key: str
    bytes: int
    url: str


class RunError(BaseModel):
    error: str = Field(description="The error name, e.g. the failing step's exception class.")
    cause: str | None = Field(None, description="A human-readable explanation.")


class RunLinks(BaseModel):
    """Paths relative to the API's base URL (which includes the stage, e.g. `/v1`)."""

    run: str
    steps: str


class ForkedFrom(BaseModel):
    run_id: str = Field(description="The run this one was forked from.")
    step: str = Field(description="The step it was forked at: the steps before it were reused from that run.")


class RunSummary(BaseModel):
    run_id: str
    workflow: str
    status: RunStatus
    version: int | None = Field(None, description="The published workflow version the run executes.")
    execution: int = Field(0, description="How many times the run was resumed (each resume is a new execution).")
    forked_from: ForkedFrom | None = None
    replay_of: str | None = Field(
        None,
        description="The recorded run this run replays: it calls no model and no tool, and fails with "
        "ReplayDiverged at the first step that asks something else.",
    )
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None = None
    error: RunError | None = None
    links: RunLinks


class UsageTotals(BaseModel):
    """Model usage summed over the run's steps, from the providers' own usage fields."""

    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    model_calls: int = 0


class RunDetail(RunSummary):
    input: Any = Field(None, description="The run's input, when it is small enough to travel inline.")
    input_artifact: ArtifactLink | None = None
    output: Any = Field(None, description="The last step's output, inline, once the run has succeeded.")
    output_artifact: ArtifactLink | None = None
    usage: UsageTotals
    steps_completed: int
    forks: list[str] = Field(default_factory=list, description="The runs forked from this one, oldest first.")
    aborted_by: str | None = Field(None, description="Who aborted the run, if someone did.")
    compensation: dict[str, Any] | None = Field(
        None,
        description="COMPENSATED: `undone`, the steps whose compensation ran (last first), and `not_undone`, "
        "{step, error} for each that failed.",
    )
    paused_step: str | None = Field(
        None,
        description="While PAUSED: the step whose error (see `error`) paused the run. Resume it (the step runs "
        "again) or abort it.",
    )


class RunPage(BaseModel):
    runs: list[RunSummary]
    next_cursor: str | None = Field(None, description="Pass as `cursor` to get the next page; null on the last.")


class StepUsage(BaseModel):
    provider: str | None = None
    model_id: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    latency_ms: int | None = None


class StepView(BaseModel):
    id: str = Field(description="The step's path: its id, plus loop turn or map index where it has one.")
    type: str | None = None
    status: StepStatus
    attempts: int
    started_at: datetime | None = None
    finished_at: datetime | None = None
    duration_ms: int | None = None
    usage: StepUsage | None = None
    output: Any = None
    output_artifact: ArtifactLink | None = None
    error: str | None = None
    delivery: Literal["at_least_once", "at_most_once"] | None = Field(
        None, description="A tool's: whether a retry may call it again (at least once) or never (at most once)."
    )
    outcome_unknown: bool = Field(
        False, description="An at-most-once call started and recorded no outcome: resolve it (record or retry)."
    )
    resolved_by: str | None = Field(None, description="Who settled a call of unknown outcome, if anyone did.")
    copied_from: str | None = Field(None, description="The run this checkpoint was copied from by a fork.")


class StepList(BaseModel):
    steps: list[StepView]
