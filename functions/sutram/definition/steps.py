"""Step models: every step type, conditions, retry policy, model spec, agent tools and limits,
approval rules, and the `{{name}}` templates of prompts and summaries."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from sutram import expressions, schemas
from sutram.errors import DEFAULT_RETRYABLE_ERRORS
from sutram.tools import tool_names

STEP_ID = r"^[a-z][a-z0-9_]{0,47}$"
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


# A JSON Schema a definition declares, checked to be one when the definition loads.
JsonSchema = Annotated[dict[str, Any], AfterValidator(schemas.check_schema)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RetryPolicy(Strict):
    errors: list[str] = Field(default_factory=lambda: list(DEFAULT_RETRYABLE_ERRORS), min_length=1)
    max_attempts: int = Field(3, ge=0, le=20)  # retries after the first attempt
    interval_seconds: int = Field(1, ge=1, le=3600)
    backoff_rate: float = Field(2.0, ge=1.0, le=10.0)
    max_delay_seconds: int | None = Field(60, ge=1, le=86400)
    jitter: Literal["full", "none"] = "full"


class ModelSpec(Strict):
    provider: Literal["bedrock", "openai", "scripted"] | None = None  # None: deployment default
    model_id: str | None = None
    max_tokens: int = Field(1024, ge=1, le=200_000)
    temperature: float = Field(0.0, ge=0.0, le=2.0)


class _StepBase(Strict):
    id: str = Field(pattern=STEP_ID)
    description: str = ""
    # Named arguments: literals, or expressions like "$.input.doc" / "$.steps.<id>.field".
    input: dict[str, Any] = Field(default_factory=dict)
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    timeout_seconds: int = Field(300, ge=1, le=900)

    @field_validator("input")
    @classmethod
    def _expressions_parse(cls, mapping: dict[str, Any]) -> dict[str, Any]:
        for ref in expressions.references_in(mapping):
            del ref  # parsing is the check
        return mapping


class OnError(Strict):
    """What a step's errors may do besides being retried or failing the run."""

    # Error names (as in `retry.errors`) that pause the run once retries are exhausted: it waits,
    # at zero compute, for an operator to resume it (the step runs again) or abort it.
    pause: list[str] = Field(min_length=1)


class _PromptedStep(_StepBase):
    """A step that prompts a model: `llm` (one call) and `agent` (a tool-use loop)."""

    model: ModelSpec = Field(default_factory=ModelSpec)
    system: str | None = None
    prompt: str = Field(min_length=1)  # {{name}} placeholders are filled from `input`

    @model_validator(mode="after")
    def _placeholders_have_inputs(self) -> _PromptedStep:
        for template in (self.prompt, self.system or ""):
            for name in _PLACEHOLDER.findall(template):
                if name not in self.input:
                    raise ValueError(f"prompt placeholder {{{{{name}}}}} has no entry in input")
        return self

    def render(self, template: str, args: dict[str, Any]) -> str:
        return render_template(template, args)


def render_template(template: str, args: dict[str, Any]) -> str:
    """Fill {{name}} placeholders from `args`: strings as they are, other values as YAML."""

    def fill(match: re.Match[str]) -> str:
        value = args[match.group(1)]
        if isinstance(value, str):
            return value
        # A scalar dumps as a one-value document: drop its end marker ("42\n...").
        return yaml.safe_dump(value, sort_keys=False).strip().removesuffix("\n...")

    return _PLACEHOLDER.sub(fill, template)


class LlmStep(_PromptedStep):
    type: Literal["llm"]
    output: Literal["text", "json"] = "text"
    on_error: OnError | None = None


class ApprovalRules(Strict):
    """Who decides, by when, and what happens when nobody does: for `approval` steps and for the
    calls of gated agent tools. When `timeout_seconds` pass, `on_timeout` rejects, escalates to
    `escalate_to` (who has `escalate_timeout_seconds`, then it rejects), or fails the run with
    `Sutram.ApprovalTimedOut`."""

    group: str = Field(min_length=1, max_length=128)
    timeout_seconds: int = Field(86_400, ge=1, le=31_536_000)  # the decision deadline
    on_timeout: Literal["reject", "escalate", "fail"] = "reject"
    escalate_to: str | None = Field(None, min_length=1, max_length=128)
    escalate_timeout_seconds: int | None = Field(None, ge=1, le=31_536_000)  # default: timeout_seconds

    @model_validator(mode="after")
    def _escalation_is_complete(self) -> ApprovalRules:
        if (self.on_timeout == "escalate") != (self.escalate_to is not None):
            raise ValueError("'escalate_to' is needed with on_timeout: escalate, and only with it")
        if self.escalate_timeout_seconds is not None and self.on_timeout != "escalate":
            raise ValueError("'escalate_timeout_seconds' is only for on_timeout: escalate")
        return self

    @property
    def escalation_deadline(self) -> int:
        return self.escalate_timeout_seconds or self.timeout_seconds


class AgentTool(Strict):
    """A tool the agent may call. With `approval`, each call waits for a decision under those rules
    (sutram.approvals.requests); the call then runs with the approved, possibly edited, arguments, or
    the model reads that it was rejected or that nobody decided in time."""

    name: str
    approval: ApprovalRules | None = None

    @property
    def needs_approval(self) -> bool:
        return self.approval is not None


class AgentLimits(Strict):
    max_turns: int = Field(20, ge=1, le=9999)  # model calls
    max_tokens: int = Field(100_000, ge=1)  # input + output tokens over all turns
    max_seconds: int = Field(900, ge=1)  # wall clock from the start of the first turn
    # Step Functions history events one execution may spend on this agent before the run continues
    # in a fresh execution (Standard executions stop at 25,000 events; the rest is for other steps).
    history_events: int = Field(20_000, ge=100, le=24_000)


class AgentStep(_PromptedStep):
    """A model calling tools in a loop until it answers or a limit ends it (sutram.engine.agent)."""

    type: Literal["agent"]
    tools: list[AgentTool] = Field(min_length=1)  # a plain name, or {name, approval: {group, ...}}
    limits: AgentLimits = Field(default_factory=AgentLimits)
    parallel_tool_calls: bool = True  # run one turn's calls at once, else one after another
    # For the scripted provider: one action per turn, {call, arguments}, a list of them, or {answer}.
    script: list[Any] = Field(default_factory=list)

    @field_validator("tools", mode="before")
    @classmethod
    def _names_are_tools(cls, tools: Any) -> Any:
        if not isinstance(tools, list):
            return tools
        return [{"name": tool} if isinstance(tool, str) else tool for tool in tools]

    @field_validator("tools")
    @classmethod
    def _tools_are_registered_once(cls, tools: list[AgentTool]) -> list[AgentTool]:
        known, names = tool_names(), [tool.name for tool in tools]
        for name in names:
            if name not in known:
                raise ValueError(f"unknown tool {name!r}; registered tools: {', '.join(sorted(known))}")
        if len(set(names)) != len(names):
            raise ValueError("a tool is listed twice")
        return tools

    def tool(self, name: str) -> AgentTool | None:
        return next((tool for tool in self.tools if tool.name == name), None)

    @property
    def gated_tools(self) -> list[AgentTool]:
        return [tool for tool in self.tools if tool.needs_approval]


def _registered(name: str) -> str:
    known = tool_names()
    if name not in known:
        raise ValueError(f"unknown tool {name!r}; registered tools: {', '.join(sorted(known))}")
    return name


RegisteredTool = Annotated[str, Field(min_length=1), AfterValidator(_registered)]


class Compensation(Strict):
    """How to undo a tool step's side effect when the run fails after it: a tool and its input,
    which may read `$.input` and the output of this step or an earlier one."""

    tool: RegisteredTool
    input: dict[str, Any] = Field(default_factory=dict)

    @field_validator("input")
    @classmethod
    def _expressions_parse(cls, mapping: dict[str, Any]) -> dict[str, Any]:
        expressions.references_in(mapping)
        return mapping


class ToolStep(_StepBase):
    type: Literal["tool"]
    tool: RegisteredTool
    on_error: OnError | None = None
    compensate: Compensation | None = None


_COMPARISONS = (
    "equals",
    "not_equals",
    "greater_than",
    "greater_than_or_equal",
    "less_than",
    "less_than_or_equal",
    "is_present",
    "matches",
)


class Condition(Strict):
    """A choice rule: `{var, <comparison>: value}`, or `all`/`any` of conditions, or `not` one."""

    model_config = ConfigDict(populate_by_name=True)

    var: str | None = None
    equals: str | int | float | bool | None = None
    not_equals: str | int | float | bool | None = None
    greater_than: str | int | float | None = None
    greater_than_or_equal: str | int | float | None = None
    less_than: str | int | float | None = None
    less_than_or_equal: str | int | float | None = None
    is_present: bool | None = None
    matches: str | None = None  # a glob: * matches any run of characters
    all: list[Condition] | None = Field(None, min_length=1)
    any: list[Condition] | None = Field(None, min_length=1)
    not_: Condition | None = Field(None, alias="not")

    @model_validator(mode="after")
    def _one_rule(self) -> Condition:
        comparisons = [name for name in _COMPARISONS if name in self.model_fields_set]
        combinators = [name for name in ("all", "any", "not_") if name in self.model_fields_set]
        if len(comparisons) + len(combinators) != 1:
            raise ValueError(f"a condition needs exactly one of {', '.join(_COMPARISONS)}, all, any, not")
        if comparisons and self.var is None:
            raise ValueError(f"{comparisons[0]!r} needs a 'var' expression")
        if combinators and self.var is not None:
            raise ValueError("'var' belongs in the conditions inside all/any/not")
        if self.var is not None:
            expressions.parse(self.var)
        return self

    @property
    def comparison(self) -> str | None:
        return next((name for name in _COMPARISONS if name in self.model_fields_set), None)

    def references(self) -> list[expressions.Reference]:
        if self.var is not None:
            return [expressions.parse(self.var)]
        children = self.all or self.any or ([self.not_] if self.not_ else [])
        return [ref for child in children for ref in child.references()]


class _Container(Strict):
    id: str = Field(pattern=STEP_ID)
    description: str = ""


class ChoiceBranch(Strict):
    when: Condition
    then: list[Step] = Field(min_length=1)


class ChoiceStep(_Container):
    """Run the first branch whose condition holds, else `otherwise`; then the step after the choice.
    Its output is the last output of the branch that ran."""

    type: Literal["choice"]
    choices: list[ChoiceBranch] = Field(min_length=1)
    otherwise: list[Step] = Field(default_factory=list)


class ParallelStep(_Container):
    """Run every branch at once; the output maps each branch name to its last step's output."""

    type: Literal["parallel"]
    branches: dict[Annotated[str, Field(pattern=STEP_ID)], list[Step]] = Field(min_length=1)
    # collect: a failed branch's output is {"error": {"Error", "Cause"}} and the others carry on.
    on_failure: Literal["fail_fast", "collect"] = "fail_fast"

    @field_validator("branches")
    @classmethod
    def _branches_have_steps(cls, branches: dict[str, list[Step]]) -> dict[str, list[Step]]:
        for name, steps in branches.items():
            if not steps:
                raise ValueError(f"branch {name!r} has no steps")
        return branches


class MapStep(_Container):
    """Run `steps` once per item of a list, at most `max_concurrency` at a time; the output is the
    list of each iteration's last step output. Inside, `$.item` is the current item."""

    type: Literal["map"]
    items: str
    max_concurrency: int = Field(10, ge=1, le=1000)
    steps: list[Step] = Field(min_length=1)
    distributed: bool = False  # a Distributed Map: each iteration is a child Standard execution

    @field_validator("items")
    @classmethod
    def _items_is_an_expression(cls, items: str) -> str:
        expressions.parse(items)
        return items


class WaitStep(_Container):
    """Pause the run for `seconds`, or until the ISO 8601 timestamp at the `until` expression."""

    type: Literal["wait"]
    seconds: int | None = Field(None, ge=0, le=31_536_000)
    until: str | None = None

    @model_validator(mode="after")
    def _seconds_or_until(self) -> WaitStep:
        if (self.seconds is None) == (self.until is None):
            raise ValueError("a wait needs exactly one of 'seconds' and 'until'")
        if self.until is not None:
            expressions.parse(self.until)
        return self


class TransformStep(_Container):
    """Build an output from expressions and literals, in the state machine itself (no Lambda).

    It copies values as they are in state: an offloaded value is copied as its artifact reference
    (steps reading it get it whole), and a path into one reads the part its producer kept in state
    for this transform (sutram.definition.reads)."""

    type: Literal["transform"]
    output: dict[str, Any] = Field(min_length=1)

    @field_validator("output")
    @classmethod
    def _expressions_outside_lists(cls, output: dict[str, Any]) -> dict[str, Any]:
        def check(value: Any, in_list: bool) -> None:
            if expressions.is_expression(value):
                if in_list:
                    raise ValueError(f"{value!r}: an expression cannot be inside a list in a transform")
                expressions.parse(value)
            elif isinstance(value, dict):
                for child in value.values():
                    check(child, in_list)
            elif isinstance(value, list):
                for child in value:
                    check(child, True)

        check(output, False)
        return output


class ApprovalStep(ApprovalRules, _Container):
    """Wait for a person of `group` to approve or reject `proposal`, the proposed action as data,
    until `timeout_seconds` pass; then `on_timeout` decides (ApprovalRules). No Lambda runs while
    it waits. Its output is {outcome: approve | reject | expired, proposal (as approved, maybe
    edited), by, comment}. `summary` is what the approver reads; its {{placeholders}} are filled
    from `input`."""

    type: Literal["approval"]
    summary: str = Field(min_length=1)
    input: dict[str, Any] = Field(default_factory=dict)
    proposal: Any = None  # an expression, or a mapping of literals and expressions
    proposal_schema: JsonSchema | None = None  # an edited proposal must satisfy it
    retry: RetryPolicy = Field(default_factory=RetryPolicy)  # of the request (recording and notifying)

    @model_validator(mode="after")
    def _consistent(self) -> ApprovalStep:
        expressions.references_in(self.input)
        expressions.references_in(self.proposal)
        for name in _PLACEHOLDER.findall(self.summary):
            if name not in self.input:
                raise ValueError(f"summary placeholder {{{{{name}}}}} has no entry in input")
        return self


TaskStep = Annotated[LlmStep | ToolStep, Field(discriminator="type")]
Step = Annotated[
    LlmStep | ToolStep | AgentStep | ApprovalStep | ChoiceStep | ParallelStep | MapStep | WaitStep | TransformStep,
    Field(discriminator="type"),
]
AnyStep = LlmStep | ToolStep | AgentStep | ApprovalStep | ChoiceStep | ParallelStep | MapStep | WaitStep | TransformStep
for _model in (Condition, ChoiceBranch, ChoiceStep, ParallelStep, MapStep):
    _model.model_rebuild()
