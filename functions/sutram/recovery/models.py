"""Request models of the recovery routes; they answer with the runs' RunSummary."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from sutram.definition import STEP_ID

MAX_INPUTS_BYTES = 8192  # corrected arguments travel with every task of the run


class ResumeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    inputs: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="Corrected arguments, by step path, for steps that have not completed (the one that stopped "
        "the run): they run with these instead of their input mapping's. At most 8 KiB of JSON.",
    )

    version: int | None = Field(
        None,
        ge=1,
        description="Resume on this version: the run's own (the default) or the live one, if the run's "
        "completed steps are all still in it.",
    )


class AbortRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=1000, description="Why, recorded with the run as its error.")


class ForkRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    step: str = Field(
        pattern=STEP_ID,
        description="The top-level step to fork at: every step before it is reused from the parent's checkpoints, "
        "it and every step after it run again.",
    )
    outputs: dict[str, Any] = Field(
        default_factory=dict,
        description="Recorded outputs to replace, by step path (a step before the fork point): the fork reads "
        "these instead of the parent's.",
    )


class ResolveRequest(BaseModel):
    """Settle an at-most-once call whose outcome is unknown, then resume the run."""

    model_config = ConfigDict(extra="forbid")

    step: str = Field(min_length=1, max_length=512, description="The step's path, as GET /runs/{id}/steps lists it.")
    action: Literal["record", "retry"] = Field(
        description="record: the side effect happened and produced `output`; retry: it did not, call once more."
    )
    output: Any = Field(None, description="With record: what the call produced, the step's output from now on.")


class ReplayRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int | None = Field(
        None, ge=1, description="The published version to replay the run on; by default the run's own."
    )
